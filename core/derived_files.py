"""Derived files: written atomically, described by a manifest, rebuilt when stale or unreadable.

Every derived file (embeddings, detector fits with their calibration, the projection, the
encoder's digest memo) is written by :func:`atomic_write`: a temporary file in the same
folder replaced with ``os.replace``, so a reader in another process sees the old file or
the new one, never half of one. Arrays are stored as ``.npz`` (read with
``allow_pickle=False``) or Parquet; nothing is pickled.

A :class:`Manifest` says what a file was built from: its kind, the dataset's content
version, the parameters and the version of the code that produced it. It is stored *inside*
the file (an entry of the ``.npz``, the Parquet schema metadata, a key of the JSON), so data
and manifest are replaced together by one rename. :func:`load_or_build` serves a file only
when its manifest matches and it loads and validates; anything else is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TypeVar

import numpy as np

from core.errors import ShiftError

T = TypeVar("T")
_MANIFEST_KEY = "__manifest__"
_CHECKSUM_KEY = "__checksum__"


class InvalidArtefact(ShiftError):
    """A derived file that loads but does not hold what its manifest promises (rebuilt)."""


# What a truncated or foreign file raises while being read: numpy (ValueError, EOFError,
# BadZipFile), json (ValueError), pyarrow (ArrowInvalid is a ValueError; OSError for I/O).
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, InvalidArtefact)


@dataclass(frozen=True)
class Manifest:
    """What a derived file was built from; a file is served only when all of it matches."""

    kind: str
    dataset_version: str
    params: dict = field(default_factory=dict)
    code_version: str = ""

    def to_json(self) -> str:
        # Round-tripped through JSON on both sides, so tuples/lists and numpy scalars compare equal.
        return json.dumps(asdict(self), sort_keys=True, default=_plain)

    def matches(self, stored: str | bytes | None) -> bool:
        if stored is None:
            return False
        try:
            return json.loads(stored) == json.loads(self.to_json())
        except ValueError:
            return False


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise ShiftError(
            f"{path.parent} is a file where a folder of derived files belongs; move it away"
        ) from None
    if path.is_dir() and not path.is_symlink():
        raise ShiftError(f"{path} is a folder where a derived file belongs; move it away (it is rebuilt)")
    # A name per call: two threads of one process (dashboard sessions) never share a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)  # atomic on POSIX and Windows: readers never see half a file
    finally:
        tmp.unlink(missing_ok=True)
    return path


def code_version(*modules: ModuleType) -> str:
    """Digest of the source files of ``modules`` (every file of a package), so a changed
    producer never serves a file made by its previous version."""
    h = hashlib.sha256()
    for module in modules:
        origin = Path(module.__file__)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def content_checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 of arrays' names, dtypes, shapes and values: what a file's reader recomputes
    to know that it got back exactly what was written (a flipped byte in a Parquet data page
    or an ``.npz`` member can still decode, to another number)."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.asarray(arrays[key])
        h.update(f"{key}\0{a.dtype.kind}{a.dtype.itemsize}\0{a.shape}\0".encode())
        if a.dtype.kind in "OUS":
            h.update("\0".join(str(v) for v in a.ravel()).encode("utf-8", "surrogatepass"))
        else:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def verify_checksum(what: str, arrays: dict[str, np.ndarray], stored: str | bytes | None) -> None:
    """Raise InvalidArtefact unless ``arrays`` hash to ``stored`` (a file without one is
    treated as damaged too: it was written before checksums, and is rebuilt once)."""
    if isinstance(stored, bytes):
        stored = stored.decode("ascii", "replace")
    if stored != content_checksum(arrays):
        raise InvalidArtefact(f"{what}: content does not match its checksum (damaged)")


def file_checksum(path: Path) -> str:
    """SHA-256 of a file's bytes (for files read in parts, where no reader sees the whole
    content: stored results read one row group at a time)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# Files whose checksum matched, by (path, inode, size, mtime): a reader verifies each file
# version once per process, not on every read (a replaced or rewritten file is a new key).
_VERIFIED: set[tuple] = set()
_VERIFIED_LOCK = threading.Lock()


def verify_file(path: Path, expected: str | None, *, memo: bool = True) -> None:
    """Raise InvalidArtefact unless the bytes of ``path`` hash to ``expected``."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns, expected)
    with _VERIFIED_LOCK:
        if memo and key in _VERIFIED:
            return
    if not expected or file_checksum(path) != expected:
        raise InvalidArtefact(f"{path.name}: its content does not match its checksum (damaged)")
    with _VERIFIED_LOCK:
        _VERIFIED.add(key)


def save_npz(path: Path, manifest: Manifest, arrays: dict[str, np.ndarray]) -> Path:
    """Arrays, their manifest and their checksum in one ``.npz``, written atomically."""
    checksum = content_checksum(arrays)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(
                fh,
                **{_MANIFEST_KEY: np.array(manifest.to_json()), _CHECKSUM_KEY: np.array(checksum)},
                **arrays,
            )

    return atomic_write(path, write)


def load_npz(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(manifest JSON, arrays) of a file written by :func:`save_npz`; never unpickles.
    Raises InvalidArtefact when the arrays do not match the checksum stored with them."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    manifest = str(arrays.pop(_MANIFEST_KEY))
    checksum = arrays.pop(_CHECKSUM_KEY, None)
    verify_checksum(str(path), arrays, None if checksum is None else str(checksum))
    return manifest, arrays


def read_manifest(path: Path) -> str:
    """The manifest JSON of a file written by :func:`save_npz`, without reading its arrays."""
    with np.load(path, allow_pickle=False) as stored:
        return str(stored[_MANIFEST_KEY])


def check_matrix(matrix: np.ndarray, what: str, rows: int | None = None, cols: int | None = None) -> None:
    """Raise InvalidArtefact unless ``matrix`` is 2-D, finite and of the expected shape."""
    if (
        matrix.ndim != 2
        or (rows is not None and len(matrix) != rows)
        or (cols is not None and matrix.shape[1] != cols)
    ):
        raise InvalidArtefact(f"{what}: unexpected shape {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise InvalidArtefact(f"{what}: contains NaN or infinite values")


def load_or_build(
    path: Path,
    manifest: Manifest,
    read: Callable[[Path], tuple[str | None, T]],
    build: Callable[[], T],
    write: Callable[[Path, T, Manifest], object],
) -> T:
    """The file at ``path`` if ``read`` loads it and its manifest matches; else ``build()``,
    stored with ``write`` (which must write atomically) and returned.

    ``read`` raises one of :data:`UNREADABLE` (or :class:`InvalidArtefact` from its own
    checks) for a truncated, foreign or inconsistent file: that file is rebuilt, not fatal.
    """
    reason = None
    try:
        stored, value = read(path)
        if manifest.matches(stored):
            return value
        reason = "was made from other data, settings or code"
    except UNREADABLE:
        reason = "could not be read (damaged or incomplete)" if path.exists() else None
    value = build()
    write(path, value, manifest)
    if reason is not None:
        _note(
            f"The stored {manifest.kind} {path.name!r} of dataset {_dataset_of(path)!r} {reason}; it was rebuilt.",
            _dataset_of(path),
        )
    return value


# Rebuilds of files that existed, for a front end to show ("rebuilt with a visible notice"):
# the CLI simply rebuilds; the dashboard shows each viewer the notices of the dataset on its
# screen that are newer than the last it showed that viewer (rebuild_notices_after), so no
# viewer takes another's notice away. A bounded log: (sequence number, dataset, message).
_NOTICES: list[tuple[int, str, str]] = []
_NOTICES_KEPT = 200
_NOTICES_LOCK = threading.Lock()
_TAKEN = [0]  # the last sequence number take_rebuild_notices handed out


def _note(message: str, dataset: str = "") -> None:
    with _NOTICES_LOCK:
        seq = _NOTICES[-1][0] + 1 if _NOTICES else _TAKEN[0] + 1
        _NOTICES.append((seq, dataset, message))
        del _NOTICES[:-_NOTICES_KEPT]


def _dataset_of(path: Path) -> str:
    # Derived files live under <data dir>/<name>.cache/…; the name, never the server path.
    for part in reversed(path.parts):
        if part.endswith(".cache"):
            return part[: -len(".cache")]
    return path.parent.name


def take_rebuild_notices() -> list[str]:
    """The notices of artefacts rebuilt since the last call (each taken once), oldest first."""
    with _NOTICES_LOCK:
        taken = [m for seq, _, m in _NOTICES if seq > _TAKEN[0]]
        if _NOTICES:
            _TAKEN[0] = max(_TAKEN[0], _NOTICES[-1][0])
    return taken


def last_rebuild_notice() -> int:
    """The sequence number of the latest notice (0: none yet): where a new viewer starts."""
    with _NOTICES_LOCK:
        return _NOTICES[-1][0] if _NOTICES else 0


def rebuild_notices_after(seq: int, dataset: str) -> tuple[list[str], int]:
    """(notices of ``dataset`` newer than ``seq``, oldest first; the latest sequence number):
    what one viewer of ``dataset`` has not been shown yet. Nothing is taken away from others."""
    with _NOTICES_LOCK:
        mine = [m for s, d, m in _NOTICES if s > seq and d == dataset]
        return mine, (_NOTICES[-1][0] if _NOTICES else seq)
