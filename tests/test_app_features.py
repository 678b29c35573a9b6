"""Issue 20 in the dashboard: "item features: pretrained / fine-tuned on this log" in the
sidebar when a fine-tuned model's vectors are stored; the choice reaches every reader of the
item matrix, and links carry it."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.conftest import stub_item_matrix

NAME = "synthetic"
TUNED = "all-MiniLM-L6-v2-finetuned@0123456789ab"  # the id a stored fine-tune would have


@pytest.fixture
def tuned(world_copy, monkeypatch, request):
    """The world with vectors of a (stub) fine-tuned model stored under its model id."""
    from core import store
    from core.embeddings import text_hash, write_cache

    with store.connect(NAME) as con:
        items = store.load_items(con)
    matrix = stub_item_matrix(items, random_state=7)  # other vectors than the pretrained stub's
    hashes = np.array([text_hash(t) for t in items["text"]], dtype=object)
    _, first = np.unique(hashes, return_index=True)
    write_cache(NAME, TUNED, hashes[first], matrix[first])
    monkeypatch.setattr("core.artefacts.finetuned_model_id", lambda name: TUNED if name == NAME else None)
    st.cache_data.clear()
    st.cache_resource.clear()
    request.addfinalizer(lambda: (st.cache_data.clear(), st.cache_resource.clear()))
    return world_copy, matrix


def _run(app: str, **params) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def test_no_fine_tuned_model_no_choice(world):
    at = _run(world.app, dataset=NAME)
    assert not [r for r in at.sidebar.radio if r.label == "Item features"]


def test_choosing_fine_tuned_features_reads_their_vectors_everywhere(tuned):
    from dashboard import caching, data

    world, matrix = tuned
    at = _run(world.app, dataset=NAME)
    choice = next(r for r in at.sidebar.radio if r.label == "Item features")
    assert choice.value == "pretrained"
    pretrained_flagged = at.session_state[f"eps:{NAME}:best_split"]
    choice.set_value("finetuned").run()
    assert not at.exception, at.exception
    assert at.session_state[f"features:{NAME}"] == "finetuned"
    # the fit the pages read is the one on the fine-tuned vectors (fits are keyed by features)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(caching, "features", lambda name: "finetuned")
        np.testing.assert_allclose(data.stored_item_matrix(NAME), matrix, rtol=1e-6)
        fit = data._fitted(NAME, "best_split")
        # the fine-tuned vectors, then the log's co-consumption factors (the default's last columns)
        np.testing.assert_allclose(fit.items[:, : matrix.shape[1]], matrix, rtol=1e-6)
        assert fit.items.shape == (len(matrix), matrix.shape[1] + fit.detector.n_co)
    assert pretrained_flagged is not None
    # the link carries it, and a link with it opens with it
    again = _run(world.app, dataset=NAME, model="finetuned")
    assert next(r for r in again.sidebar.radio if r.label == "Item features").value == "finetuned"
    assert not again.warning


def test_a_link_asking_for_features_the_dataset_lacks_says_so(world):
    at = _run(world.app, dataset=NAME, model="finetuned")
    assert any("does not have; showing the pretrained ones" in w.value for w in at.warning)
