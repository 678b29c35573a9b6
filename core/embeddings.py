"""The item matrix: one encoder vector per catalogue item, cached on disk beside the dataset.

Vectors are cached per model in ``<dataset>.cache/embeddings/<model>.parquet`` keyed by a
hash of the item text, so

* a second run encodes nothing,
* a changed title re-encodes only that item (its text hash is new),
* two models never mix (one file per model id, and the id is checked on read).

The cache lives in the dataset's cache folder rather than in its ``.duckdb`` file because
the dashboard holds that database open read-only while the CLI may be writing vectors.
Writes are atomic (``core.derived_files.atomic_write``) and carry a checksum of their
content, verified on every read. A file that does not load (truncated, foreign, vectors of
the wrong width or with NaN, a flipped byte that still decodes) counts as empty, so the
next encode rebuilds it; a file holding another model's vectors is refused with a message.
It is keyed by item text, not by the dataset's version, on purpose: a re-import re-encodes
only texts it has not seen.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from core import store
from core.derived_files import UNREADABLE, atomic_write, check_matrix, content_checksum, verify_checksum
from core.encoder import Encoder, Progress, model_id_for
from core.errors import ShiftError

_META_MODEL = b"model_id"
_META_CHECKSUM = b"content_sha256"  # of the hashes and vectors (core.derived_files.content_checksum)


@dataclass(frozen=True)
class ItemEncoding:
    """The item matrix and how it was obtained (what the CLI reports)."""

    matrix: np.ndarray  # (n_items, d) float32, row i = item_idx i
    model_id: str
    n_items: int
    n_unique_texts: int
    n_cached: int  # unique texts found in the cache
    n_encoded: int  # unique texts encoded in this call
    encode_seconds: float

    @property
    def items_per_second(self) -> float:
        return self.n_encoded / self.encode_seconds if self.encode_seconds > 0 else float("nan")


def text_hash(text: str) -> str:
    """Cache key of an item text (128 bits of SHA-256, hex)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def cache_path(name: str, model_id: str) -> Path:
    """File holding one model's vectors for one dataset."""
    readable, _, digest = model_id.rpartition("@")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", readable or model_id).strip("_.")[-60:]
    folder = store.cache_dir(name) / "embeddings"
    folder.mkdir(exist_ok=True)
    suffix = digest or hashlib.sha256(model_id.encode()).hexdigest()[:12]
    return folder / f"{slug}-{suffix}.parquet"


def read_cache(name: str, model_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(hashes (n,) str, vectors (n, d) float32) cached for this model; empty when none or
    when the file does not load (it is then rewritten by the next encode)."""
    path = cache_path(name, model_id)
    empty = read_cache_empty()
    if not path.exists():
        return empty
    try:
        table = pq.read_table(path)
        stored = (table.schema.metadata or {}).get(_META_MODEL, b"").decode()
        column = table.column("vector").combine_chunks()
        dim = column.type.list_size
        vectors = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
        hashes = table.column("text_hash").to_numpy(zero_copy_only=False)
        vectors = vectors.reshape(len(hashes), dim)
        check_matrix(vectors, str(path))
        checksum = (table.schema.metadata or {}).get(_META_CHECKSUM)
        verify_checksum(str(path), _checked_content(hashes, vectors), checksum)
    except (*UNREADABLE, AttributeError):  # AttributeError: a "vector" column of another type
        return empty
    if stored != model_id:
        raise ShiftError(f"{path} holds vectors of model {stored!r}, not {model_id!r}; delete the file")
    return hashes, vectors


def write_cache(name: str, model_id: str, hashes: np.ndarray, vectors: np.ndarray) -> Path:
    """Replace this model's cache file atomically with the given rows."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    column = pa.FixedSizeListArray.from_arrays(pa.array(vectors.reshape(-1)), vectors.shape[1])
    table = pa.table({"text_hash": pa.array(hashes, type=pa.string()), "vector": column})
    checksum = content_checksum(_checked_content(hashes, vectors))
    table = table.replace_schema_metadata({_META_MODEL: model_id.encode(), _META_CHECKSUM: checksum.encode()})
    return atomic_write(cache_path(name, model_id), lambda tmp: pq.write_table(table, tmp))


def _checked_content(hashes: np.ndarray, vectors: np.ndarray) -> dict[str, np.ndarray]:
    # The same arrays on both sides of the checksum, whatever types they were read back as.
    return {"text_hash": np.asarray(hashes, dtype=object), "vector": np.asarray(vectors, np.float32)}


def read_cache_empty() -> tuple[np.ndarray, np.ndarray]:
    return np.empty(0, dtype=object), np.empty((0, 0), dtype=np.float32)


def _item_texts(name: str) -> list[str]:
    con = store.connect(name, read_only=True)
    try:
        return store.load_items(con)["text"].astype(str).tolist()
    finally:
        con.close()


def _lookup(hashes: np.ndarray, cached: np.ndarray) -> np.ndarray:
    """Row in ``cached`` of each hash, -1 where absent."""
    import pandas as pd

    return pd.Index(cached).get_indexer(hashes) if len(cached) else np.full(len(hashes), -1)


def encode_items(name: str, encoder: Encoder | None = None, progress: Progress | None = None) -> ItemEncoding:
    """Item matrix of dataset ``name``, encoding only texts the cache lacks."""
    encoder = encoder or Encoder()
    model_id = encoder.model_id
    texts = _item_texts(name)
    hashes = np.array([text_hash(t) for t in texts], dtype=object)
    unique_hashes, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
    cached_hashes, cached_vectors = read_cache(name, model_id)
    rows = _lookup(unique_hashes, cached_hashes)
    missing = np.flatnonzero(rows < 0)
    dim = cached_vectors.shape[1] if len(cached_hashes) else encoder.dim
    cached_vectors = cached_vectors.reshape(-1, dim)
    unique_vectors = np.empty((len(unique_hashes), dim), dtype=np.float32)
    unique_vectors[rows >= 0] = cached_vectors[rows[rows >= 0]]
    seconds = 0.0
    if len(missing):
        encoder.load()  # model loading is not encoding: keep it out of items/s
        t0 = time.perf_counter()
        fresh = encoder.encode([texts[i] for i in first[missing]], progress=progress)
        seconds = time.perf_counter() - t0
        unique_vectors[missing] = fresh
        all_hashes = np.concatenate([cached_hashes, unique_hashes[missing]])
        all_vectors = np.concatenate([cached_vectors, fresh])
        write_cache(name, model_id, all_hashes, all_vectors)
    elif progress:
        progress(0, 0)
    return ItemEncoding(
        matrix=unique_vectors[inverse],
        model_id=model_id,
        n_items=len(texts),
        n_unique_texts=len(unique_hashes),
        n_cached=len(unique_hashes) - len(missing),
        n_encoded=len(missing),
        encode_seconds=seconds,
    )


def item_matrix(name: str, encoder: Encoder | None = None, progress: Progress | None = None) -> np.ndarray:
    """(n_items, d) float32, row i = item_idx i; encodes only texts not yet cached."""
    return encode_items(name, encoder, progress).matrix


def cached_item_matrix(name: str, model_id: str | None = None) -> np.ndarray | None:
    """The item matrix if every item text is cached for ``model_id`` (default model), else None.

    Never loads a model, so pages can call it freely.
    """
    model_id = model_id or model_id_for(None)
    cached_hashes, cached_vectors = read_cache(name, model_id)
    if not len(cached_hashes):
        return None
    hashes = np.array([text_hash(t) for t in _item_texts(name)], dtype=object)
    rows = _lookup(hashes, cached_hashes)
    if (rows < 0).any():
        return None
    return cached_vectors[rows]
