"""The dashboard's cache key: every cached function is keyed by its dataset's content version.

Streamlit caches by arguments; a dataset re-imported under the same name has new contents, so
:func:`by_version` adds the dataset's version (its content digest,
:func:`core.artefacts.dataset_version`) to every key: a re-imported dataset is read again
instead of served from an old entry.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal

import streamlit as st

from core import store
from core.errors import DatasetNotFound


def version(name: str) -> str:
    """Changes whenever the dataset's database file is replaced (a re-import) or moved."""
    from core.artefacts import dataset_version

    if not store.dataset_exists(name):
        raise DatasetNotFound(f"no dataset named {name!r}")
    return dataset_version(name)


def by_version(kind: Literal["data", "resource"] = "data", **options: Any) -> Callable:
    """Cache ``fn(name, *args)`` in ``st.cache_<kind>`` under the dataset's current version.

    The decorated function keeps its signature; ``.clear()`` empties its cache and
    ``.__wrapped__`` is the uncached function. Arguments must be hashable plain values.
    """
    options.setdefault("show_spinner", False)
    cache = st.cache_resource if kind == "resource" else st.cache_data

    def decorate(fn: Callable) -> Callable:
        def keyed(name: str, version: str, *args: Any, **kwargs: Any) -> Any:
            return fn(name, *args, **kwargs)

        # Streamlit names a cache after the function's module, name and source; ``keyed``'s
        # source is the same for every decorated function, so it takes the decorated names.
        keyed.__module__, keyed.__name__, keyed.__qualname__ = fn.__module__, fn.__name__, fn.__qualname__
        cached = cache(**options)(keyed)

        @functools.wraps(fn)
        def call(name: str, *args: Any, **kwargs: Any) -> Any:
            return cached(name, version(name), *args, **kwargs)

        call.clear = cached.clear
        return call

    return decorate
