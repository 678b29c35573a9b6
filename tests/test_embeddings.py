"""The item-matrix cache: encode once, re-encode only changed texts, never mix models."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from core import cli, embeddings, ingest, store
from core.embeddings import cached_item_matrix, encode_items, item_matrix
from core.errors import ShiftError
from core.store import TableSource

EVENTS = "user_id,item_id,timestamp\nu1,a,1\nu1,b,2\nu2,c,3\nu2,d,4\n"


def _items(title_b: str = "Heat (1995)") -> str:
    # Items c and d share a text on purpose: it is encoded once.
    return (
        "item_id,title,genres\n"
        "a,Alien (1979),Horror|Sci-Fi\n"
        f"b,{title_b},Action|Crime\n"
        "c,Emma (1996),Romance\n"
        "d,Emma (1996),Romance\n"
    )


class StubEncoder:
    """A deterministic function of the text (no model), recording what it was asked to encode."""

    def __init__(self, model_id: str = "stub@000000000001", dim: int = 8) -> None:
        self.model_id = model_id
        self.dim = dim
        self.calls: list[list[str]] = []
        self.device_, self.precision_ = "cpu", "stub"

    def load(self) -> StubEncoder:
        return self

    def encode(self, texts, progress=None):
        texts = list(texts)
        self.calls.append(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256((self.model_id + text).encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=self.dim)
            out[i] = v / np.linalg.norm(v)
            if progress:
                progress(i + 1, len(texts))
        return out

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


def _ingest(write_file, title_b: str = "Heat (1995)") -> str:
    ingest.ingest_files(
        "shop", TableSource(write_file("e.csv", EVENTS)), TableSource(write_file("i.csv", _items(title_b)))
    )
    return "shop"


def test_second_run_encodes_nothing_and_returns_the_same_matrix(data_dir, write_file):
    name = _ingest(write_file)
    enc = StubEncoder()
    assert cached_item_matrix(name, enc.model_id) is None
    first = encode_items(name, enc)
    assert (first.n_items, first.n_unique_texts, first.n_encoded, first.n_cached) == (4, 3, 3, 0)
    assert enc.n_encoded == 3
    np.testing.assert_array_equal(first.matrix[2], first.matrix[3])  # shared text, shared vector

    again = StubEncoder()
    second = encode_items(name, again)
    assert (second.n_encoded, second.n_cached) == (0, 3)
    assert again.calls == []
    np.testing.assert_array_equal(second.matrix, first.matrix)
    np.testing.assert_array_equal(cached_item_matrix(name, enc.model_id), first.matrix)
    # Row i is item_idx i: compare with the stub applied to each item's text directly.
    con = store.connect(name)
    texts = store.load_items(con)["text"].tolist()
    con.close()
    np.testing.assert_allclose(first.matrix, StubEncoder().encode(texts), atol=1e-7)


def test_a_changed_title_re_encodes_exactly_that_item(data_dir, write_file):
    name = _ingest(write_file)
    before = item_matrix(name, StubEncoder())
    _ingest(write_file, title_b="Heat (1995 director's cut)")
    enc = StubEncoder()
    result = encode_items(name, enc)
    assert (result.n_encoded, result.n_cached) == (1, 2)
    assert enc.calls == [["Heat (1995 director's cut). Action, Crime"]]
    np.testing.assert_array_equal(result.matrix[[0, 2, 3]], before[[0, 2, 3]])
    assert not np.allclose(result.matrix[1], before[1])


def test_two_models_never_mix(data_dir, write_file):
    name = _ingest(write_file)
    a, b = StubEncoder("model-a@aaaaaaaaaaaa"), StubEncoder("model-b@bbbbbbbbbbbb", dim=6)
    ma = item_matrix(name, a)
    mb = encode_items(name, b)
    assert mb.n_encoded == 3 and mb.matrix.shape == (4, 6)
    assert embeddings.cache_path(name, a.model_id) != embeddings.cache_path(name, b.model_id)
    np.testing.assert_array_equal(cached_item_matrix(name, a.model_id), ma)
    np.testing.assert_array_equal(cached_item_matrix(name, b.model_id), mb.matrix)
    assert cached_item_matrix(name, "model-c@cccccccccccc") is None


def test_cache_file_of_another_model_is_refused(data_dir, write_file):
    name = _ingest(write_file)
    enc = StubEncoder("model-a@aaaaaaaaaaaa")
    item_matrix(name, enc)
    # Same file name, different id inside (e.g. a renamed file): never read as this model.
    path = embeddings.cache_path(name, enc.model_id)
    hashes, vectors = embeddings.read_cache(name, enc.model_id)
    embeddings.write_cache(name, "model-z@aaaaaaaaaaaa", hashes, vectors)
    embeddings.cache_path(name, "model-z@aaaaaaaaaaaa").replace(path)
    with pytest.raises(ShiftError, match="holds vectors of model"):
        embeddings.read_cache(name, enc.model_id)


def test_writes_are_atomic_and_leave_no_temporary_files(data_dir, write_file, monkeypatch):
    name = _ingest(write_file)
    enc = StubEncoder()
    item_matrix(name, enc)
    old_hashes, old_vectors = embeddings.read_cache(name, enc.model_id)
    folder = store.cache_dir(name) / "embeddings"
    _ingest(write_file, title_b="Ronin (1998)")

    def crash(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(embeddings.pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        item_matrix(name, StubEncoder())
    assert sorted(p.name for p in folder.iterdir()) == [embeddings.cache_path(name, enc.model_id).name]
    hashes, vectors = embeddings.read_cache(name, enc.model_id)
    assert hashes.tolist() == old_hashes.tolist()  # the old cache is intact
    np.testing.assert_array_equal(vectors, old_vectors)


def test_progress_reports_done_and_total(data_dir, write_file):
    name = _ingest(write_file)
    seen = []
    encode_items(name, StubEncoder(), progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3)


def test_encode_command_reports_cache_hits(data_dir, write_file, monkeypatch, capsys):
    import core.encoder

    _ingest(write_file)
    monkeypatch.setattr(core.encoder, "Encoder", lambda *a, **k: StubEncoder())
    assert cli.main(["encode", "shop"]) == 0
    out = capsys.readouterr().out
    assert "0 from the cache, 3 encoded" in out and "items/s" in out
    assert cli.main(["encode", "shop"]) == 0
    assert "3 from the cache, 0 encoded" in capsys.readouterr().out


def test_encode_command_unknown_dataset_is_a_clear_error(data_dir, capsys):
    assert cli.main(["encode", "nope"]) == 2
    assert "no dataset named 'nope'" in capsys.readouterr().err
