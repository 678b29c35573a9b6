"""Temporary files of imports, named after the process that writes them, and their clean-up.

An import builds ``.NAME.duckdb.PID.TOKEN.tmp`` (plus DuckDB's ``.wal``) beside the target and a
synthetic world is generated into ``.synthetic.PID.*/``; a killed process (``kill -9``, a
power cut) leaves them behind. The next import removes those whose process is gone, and
never those of a live one.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import time
from pathlib import Path

# PID, then a random token (two imports of one process, two dashboard sessions, never share
# a file); files of older versions carry the PID only.
_IMPORT_TMP = re.compile(r"^\..+\.duckdb\.(\d+)(\.[0-9a-f]+)?\.tmp(\.wal)?$")
_SYNTHETIC_TMP = re.compile(r"^\.synthetic\.(\d+)\..+$")
# Before temporary folders carried the process id, synthetic worlds were generated into
# tempfile's default names (data/tmpXXXXXXXX/). Those hold no id to check, so one is removed
# only when it holds nothing but a world's files and none was written in the last hour.
_LEGACY_SYNTHETIC_TMP = re.compile(r"^tmp[a-z0-9_]{8}$")
_WORLD_FILES = {"items.parquet", "events.parquet", "truth.parquet", "labels.parquet"}
_LEGACY_QUIET_S = 3600


def import_temp_path(target: Path) -> Path:
    """Where an import into ``target`` is built before it is swapped in: a name of its own
    per call, so concurrent imports in one process (dashboard sessions) never share one."""
    return target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def synthetic_temp_prefix() -> str:
    return f".synthetic.{os.getpid()}."


def process_alive(pid: int) -> bool:
    """Whether a process with this id exists (one of another user counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_stale_temp_files(folder: Path) -> list[Path]:
    """Remove import and synthetic temporary files of dead processes in ``folder``; return them."""
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for path in entries:
        match = _IMPORT_TMP.match(path.name) or _SYNTHETIC_TMP.match(path.name)
        if match is None:
            if not _abandoned_legacy_world(path):
                continue
        elif process_alive(int(match.group(1))):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except FileNotFoundError:
            continue  # another import swept it first
        removed.append(path)
    return removed


def _abandoned_legacy_world(path: Path) -> bool:
    if not _LEGACY_SYNTHETIC_TMP.match(path.name) or path.is_symlink() or not path.is_dir():
        return False
    try:
        files = list(path.iterdir())
        newest = max([path.stat().st_mtime, *(f.stat().st_mtime for f in files)])
    except OSError:
        return False
    return {f.name for f in files} <= _WORLD_FILES and time.time() - newest > _LEGACY_QUIET_S
