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
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
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


def save_npz(path: Path, manifest: Manifest, arrays: dict[str, np.ndarray]) -> Path:
    """Arrays and their manifest in one ``.npz``, written atomically."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **{_MANIFEST_KEY: np.array(manifest.to_json())}, **arrays)

    return atomic_write(path, write)


def load_npz(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """(manifest JSON, arrays) of a file written by :func:`save_npz`; never unpickles."""
    with np.load(path, allow_pickle=False) as stored:
        arrays = {k: stored[k] for k in stored.files}
    return str(arrays.pop(_MANIFEST_KEY)), arrays


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
            f"The stored {manifest.kind} {path.name!r} of dataset {_dataset_of(path)!r} {reason}; it was rebuilt."
        )
    return value


# Rebuilds of files that existed, for a front end to show ("rebuilt with a visible notice"):
# the CLI simply rebuilds; the dashboard takes these after a run and shows them atop the page.
_NOTICES: list[str] = []
_NOTICES_LOCK = threading.Lock()


def _note(message: str) -> None:
    with _NOTICES_LOCK:
        _NOTICES.append(message)


def _dataset_of(path: Path) -> str:
    # Derived files live under <data dir>/<name>.cache/…; the name, never the server path.
    for part in reversed(path.parts):
        if part.endswith(".cache"):
            return part[: -len(".cache")]
    return path.parent.name


def take_rebuild_notices() -> list[str]:
    """The notices of artefacts rebuilt since the last call (each taken once), oldest first."""
    with _NOTICES_LOCK:
        taken = list(_NOTICES)
        _NOTICES.clear()
    return taken
