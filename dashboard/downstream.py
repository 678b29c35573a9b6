"""The data edge past detection: what changed, the before/after lists, the item map and the
ground-truth evaluation — cached wrappers over ``core.explain``, ``core.recommend``,
``core.projection`` and ``core.benchmark``, keyed by the dataset's version like
:mod:`dashboard.data`, whose readers (items, events, results) they build on.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core import store
from dashboard.caching import by_version
from dashboard.data import (
    _cursor,
    _event_arrays,
    _item_matrix,
    _results,
    candidates,
    change_points,
    ground_truth,
    items,
    stored_item_matrix,
    user_events,
    user_items,
    user_labels,
    users,
)

# --------------------------------------------------------------------------- recommendations


@by_version("resource", max_entries=4)
def _histories(name: str):
    """Whole histories the recommender learns from: every user, or a big dataset's sample."""
    from core.artefacts import population_histories

    with _cursor(name) as con:
        return population_histories(name, con, lambda: _event_arrays(name))


@by_version("resource", show_spinner="Fitting the recommender…", max_entries=4)
def _recommender(name: str):
    from core.recommend import fit_recommender

    return fit_recommender(_item_matrix(name), _histories(name), item_keys=items(name)["title"].to_numpy())


@by_version(max_entries=8)
def recommender_sample(name: str) -> tuple[int, int] | None:
    """(users, of users) the recommender learned from, when that is a sample of a big dataset."""
    sample = _histories(name)
    return None if sample.n_users == sample.of_users else (sample.n_users, sample.of_users)


@by_version("resource", show_spinner="Fitting the explainer…", max_entries=4)
def _explainer(name: str):
    from core.explain import ShiftExplainer

    return ShiftExplainer().fit(items(name), _item_matrix(name))


@by_version(max_entries=256)
def recommendations(
    name: str, user_id: str, change_point: int, k: int = 10, source: str = "given", neighbours: tuple = ()
):
    """Before/after/now lists around one change point (core.recommend.UserRecommendations), from
    the segments between its neighbouring change points ``neighbours``, as ``recommend`` does."""
    from core.recommend import recommend_around_change

    history = user_items(name, user_id)
    return recommend_around_change(
        _recommender(name), _explainer(name), items(name), str(user_id), history,
        [int(c) for c in neighbours], int(change_point), k=int(k), change_point_source=source,
    )  # fmt: skip


@by_version(max_entries=256)
def explanation(name: str, user_id: str, change_point: int, neighbours: tuple = ()):
    """What changed at the change point (core.explain.ShiftExplanation), segment to segment."""
    from core.explain import neighbouring_segments

    history = user_items(name, user_id)
    start, end = neighbouring_segments(len(history), [int(c) for c in neighbours], int(change_point))
    return _explainer(name).explain(history, int(change_point), start, end)


# --------------------------------------------------------------------------- projection


@by_version(max_entries=4)
def _projection(name: str, mtime: float) -> np.ndarray | None:
    from core.artefacts import cached_projection

    return cached_projection(name, _item_matrix(name))


def projection(name: str) -> np.ndarray | None:
    """The stored UMAP map of the items (None until ``python -m core project NAME`` ran)."""
    from core.artefacts import projection_path

    path = projection_path(name)
    if not path.exists() or stored_item_matrix(name) is None:
        return None
    return _projection(name, path.stat().st_mtime)


@by_version(max_entries=64)
def interest_path(name: str, user_id: str, window: int) -> np.ndarray:
    """One user's interest trajectory (the mean of the last ``window`` items after each event),
    placed on the stored map among its nearest items: (n_events, 2)."""
    from core.projection import place
    from core.trajectory import Trajectories

    events = user_events(name, user_id)
    matrix = _item_matrix(name)
    path = Trajectories.of_history(events["item_idx"].to_numpy(), matrix).recent(int(window))
    return place(path, matrix, projection(name))


@by_version(max_entries=16)
def shift_endpoints(name: str, detector: str, threshold: float, limit: int):
    """(change points, before (n, 2), after (n, 2)): the strongest change point of up to
    ``limit`` users, and their interest before/after it placed on the map."""
    from core.projection import shift_endpoints as endpoints

    return endpoints(
        _results(name, detector), _item_matrix(name), projection(name), float(threshold), int(limit)
    )


# --------------------------------------------------------------------------- evaluation


@by_version(show_spinner="Scoring against the planted truth…", max_entries=16)
def truth_sweep(name: str, detector: str, margin: int = 10) -> pd.DataFrame:
    """Precision/recall/F1 and false alarms vs threshold on the planted truth (peak detectors)."""
    from core.benchmark.planted import threshold_grid, threshold_sweep

    cand = candidates(name, detector)
    lengths = users(name).set_index("user_id")["n_events"]
    grid = threshold_grid(cand["score"].to_numpy())
    return threshold_sweep(ground_truth(name), user_labels(name), cand, lengths, grid, int(margin))


def truth_scores(name: str, detector: str, threshold: float, margin: int = 10) -> dict:
    """The change points at ``threshold`` against the planted truth: precision, recall, f1, …"""
    from core.benchmark.planted import score_detections

    cps = change_points(name, detector, threshold)
    lengths = users(name).set_index("user_id")["n_events"]
    return score_detections(ground_truth(name), user_labels(name), cps, lengths, int(margin))


def evaluation_folder(name: str) -> Path | None:
    """Where ``python -m core evaluate NAME`` wrote this dataset's results (None: never run)."""
    folder = store.cache_dir(name) / "evaluation"
    return folder if (folder / "results.json").exists() else None


@st.cache_data(show_spinner=False, max_entries=8)
def _read_json(path: str, mtime: float):
    return json.loads(Path(path).read_text(encoding="utf-8"))


def stored_evaluation(name: str):
    """(meta, table, curves, folder) written by ``python -m core evaluate NAME``, or None."""
    folder = evaluation_folder(name)
    if folder is None:
        return None
    results = folder / "results.json"
    payload = _read_json(str(results), results.stat().st_mtime)
    curves_path = folder / "pr_curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else pd.DataFrame()
    return payload.get("meta", {}), pd.DataFrame(payload["rows"]), curves, folder


def detection_study(name: str) -> tuple[dict, pd.DataFrame, pd.DataFrame] | None:
    """This dataset's own real-log study (``python -m bench.detection_study`` writes it to the
    dataset's evaluation folder): (meta, rows, F1 against the real false-alarm rate), or None."""
    path = store.cache_dir(name) / "evaluation" / "detection_study.json"
    if not path.exists():
        return None
    entry = _read_json(str(path), path.stat().st_mtime)
    meta = {k: v for k, v in entry.items() if not isinstance(v, (list, dict))}
    return meta, pd.DataFrame(entry.get("rows", [])), pd.DataFrame(entry.get("tradeoff", []))
