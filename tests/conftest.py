"""Shared fixtures: an isolated data folder per test, and small files written on the spot."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """A fresh, empty data folder: datasets made in a test never touch the real data/."""
    folder = tmp_path / "data"
    folder.mkdir()
    monkeypatch.setenv("SHIFT_DATA_DIR", str(folder))
    return folder


@pytest.fixture
def write_file(tmp_path):
    """Write text (or bytes) to a file under the test's tmp folder and return its path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / "files" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


def pytest_sessionfinish(session, exitstatus):
    # AppTests leave DuckDB connections in Streamlit's resource cache; close them before the
    # interpreter shuts down, or DuckDB's bindings report them as leaked at exit.
    import gc
    import sys

    if "streamlit" in sys.modules:
        import logging

        import streamlit as st

        logging.disable(logging.WARNING)  # "No runtime found": expected outside a server
        st.cache_resource.clear()
        st.cache_data.clear()
        logging.disable(logging.NOTSET)
    gc.collect()
