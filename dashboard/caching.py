"""The dashboard's cache key: every cached function is keyed by its dataset's content version
and the item features the viewer chose (pretrained, or fine-tuned on the log).

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

FEATURES = ("pretrained", "finetuned")  # the item features a viewer may pick (issue 20)


def features(name: str) -> str:
    """The item features this viewer chose for ``name``: "pretrained" (all-MiniLM-L6-v2 as
    shipped) or "finetuned" (the model fine-tuned on this log, when one is stored)."""
    chosen = st.session_state.get(f"features:{name}", FEATURES[0])
    return chosen if chosen in FEATURES else FEATURES[0]


def version(name: str) -> str:
    """Changes whenever the dataset's database file is replaced (a re-import) or moved, and
    with the item features chosen: everything derived from the features (fits, results, lists)
    is cached apart for each."""
    from core.artefacts import dataset_version

    if not store.dataset_exists(name):
        raise DatasetNotFound(f"no dataset named {name!r}")
    return f"{dataset_version(name)}:{features(name)}"


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


def model_id(name: str) -> str | None:
    """The model whose vectors this viewer reads (None: the pretrained one as shipped)."""
    if features(name) != "finetuned":
        return None
    return finetuned_model(name)


@st.cache_data(show_spinner=False, ttl=10)
def _finetuned_model(name: str, dataset: str) -> str | None:
    from core.artefacts import cached_item_matrix, finetuned_model_id

    found = finetuned_model_id(name)
    return found if found is not None and cached_item_matrix(name, found) is not None else None


def finetuned_model(name: str) -> str | None:
    """The id of the model fine-tuned on ``name`` when one is stored, current, and its item
    vectors encoded (``python -m core finetune NAME`` then ``encode NAME --model finetuned``)."""
    from core.artefacts import dataset_version

    return _finetuned_model(name, dataset_version(name))
