"""The data edge: the dashboard's caches over ``core``, keyed by the dataset's content version.

Every function takes a dataset name (and plain values) and returns plain values; decisions
live in ``core`` (results in :mod:`core.results`, what changed in :mod:`core.explain`, lists in
:mod:`core.recommend`), background work in :mod:`dashboard.jobs`. ``st.cache_resource`` holds
what is shared and never mutated (connections, item matrix, model, results, recommenders,
explainers, event arrays, a user's items); ``st.cache_data`` query results and frames.
:func:`by_version` keys every cached function by the dataset's version, so a re-imported
dataset is read again instead of served from an old entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import duckdb
import numpy as np
import pandas as pd
import streamlit as st

from core import store
from core.errors import ShiftError
from dashboard import jobs
from dashboard.caching import by_version, finetuned_model, model_id, version  # noqa: F401 (pages read finetuned_model here)
from dashboard.jobs import FitStatus, TaskStatus  # noqa: F401  (pages read them from here)

DEFAULT_DATASET = "movielens-100k"


# --------------------------------------------------------------------------- store


@by_version("resource", max_entries=16)
def _connection(name: str) -> duckdb.DuckDBPyConnection:
    return store.connect(name, read_only=True)


def _cursor(name: str) -> duckdb.DuckDBPyConnection:
    # A connection is not safe across threads (one per browser session); a cursor is a cheap,
    # separate connection to the same read-only database.
    return store.cursor(_connection(name))


@st.cache_data(show_spinner=False, ttl=10)
def _dataset_names(folder: str) -> list[str]:
    return store.list_dataset_names()


def dataset_names(fresh: bool = False) -> list[str]:
    """Datasets in the data folder (re-listed every 10 s, at once after an import, and when ``fresh``)."""
    if fresh:
        _dataset_names.clear()
    return _dataset_names(str(store.data_dir()))


def data_folder() -> Path:
    return store.data_dir()


def _stored(
    query: Callable, name: str, max_entries: int, kind: Literal["data", "resource"] = "data", doc: str = ""
):
    """A cached reader ``fn(dataset, *args)`` of one store query, named ``name`` (its cache's
    identity: every reader gets a cache of its own)."""

    def read(dataset: str, *args: Any):
        with _cursor(dataset) as con:
            return query(con, *(str(a) for a in args))

    read.__name__ = read.__qualname__ = name
    read.__doc__ = doc
    return by_version(kind, max_entries=max_entries)(read)


info = _stored(store.dataset_info, "info", 16, doc="Counts and provenance: n_users, n_items, n_events, …")
items = _stored(store.load_items, "items", 8, doc="The catalogue in item_idx order.")
users = _stored(store.load_users, "users", 8, doc="user_id, n_events of every user.")
user_exists = _stored(store.user_exists, "user_exists", 256)
# cache_data unpickled a user's events at every read (1.8 ms for 737; issue 22): each caller
# gets a copy (0.03 ms) sharing the per-event category arrays, which nobody changes in place.
_user_events = _stored(store.load_user_events, "user_events", 256, "resource")


def user_events(name: str, user_id: str) -> pd.DataFrame:
    """One user's events in order (UnknownUser): the caller's own frame."""
    return _user_events(name, user_id).copy()


user_events.__wrapped__, user_events.clear = _user_events.__wrapped__, _user_events.clear
user_items = _stored(store.load_user_items, "user_items", 512, "resource", "One user's item_idx (read-only).")
ground_truth = _stored(store.load_ground_truth, "ground_truth", 8, doc="Planted change points (or none).")
user_labels = _stored(store.load_user_labels, "user_labels", 8)
category_counts = _stored(store.category_counts, "category_counts", 8)
_event_arrays = _stored(store.load_event_arrays, "_event_arrays", 4, "resource")


@by_version(max_entries=256)
def composition(name: str, user_id: str, window: int) -> pd.DataFrame:
    """Category shares over one user's events (trailing window), rows = event index."""
    from core.composition import category_composition

    return category_composition(user_events(name, user_id)["categories"].tolist(), window=int(window))


def segments(n_events: int, change_points: list[int]) -> np.ndarray:
    """Segment number (0, 1, …) of each of ``n_events`` events split at ``change_points``."""
    from core.composition import segment_of

    return segment_of(n_events, change_points)


def import_options(**fields: Any) -> store.ImportOptions:
    return store.ImportOptions(**fields)


def ingest_uploaded(
    name: str,
    events: tuple[Path, str],
    items: tuple[Path, str],
    delimiter: str = ",",
    options: store.ImportOptions | None = None,
) -> store.ImportReport:
    """Import (path on disk, name shown in messages) pairs through the CLI's validated, atomic
    importer, then forget the cached list of datasets."""
    from core.ingest import ingest_files

    store.check_name(name)
    sources = [
        store.TableSource(path, delimiter=delimiter, display_name=label) for path, label in (events, items)
    ]
    report = ingest_files(name, sources[0], sources[1], options)
    _dataset_names.clear()
    return report


def check_dataset_name(name: str) -> str:
    """The name if it is a valid dataset name (raises ShiftError with the rule otherwise)."""
    return store.check_name(name)


# --------------------------------------------------------------------------- item features


class _NotEmbedded(Exception):
    """Raised inside cached loaders so that a missing artefact is not cached as ``None``."""


@by_version("resource", max_entries=4)
def _item_matrix(name: str) -> np.ndarray:
    from core.artefacts import cached_item_matrix

    matrix = cached_item_matrix(name, model_id(name))
    if matrix is None:
        raise _NotEmbedded(name)
    matrix.setflags(write=False)  # shared by every session: make accidental writes fail loudly
    return matrix


def stored_item_matrix(name: str) -> np.ndarray | None:
    """The stored item embeddings (row i = item_idx i), or None if never encoded. Never encodes."""
    try:
        return _item_matrix(name)
    except _NotEmbedded:
        return None


@st.cache_resource(show_spinner="Loading the language model…")
def shared_encoder():
    """The language model, loaded once per process (core.encoder.Encoder)."""
    from core.encoder import Encoder

    return Encoder().load()


def encode_dataset(name: str, encoder, progress: Callable[[int, int], None] | None = None) -> None:
    """Encode the item texts ``encoder`` has not seen yet and store them (core.embeddings)."""
    from core.artefacts import item_matrix as encode_and_store

    encode_and_store(name, encoder=encoder, progress=progress)
    _item_matrix.clear()


# --------------------------------------------------------------------------- detection results


def detector_names() -> list[str]:
    from core import detectors

    return detectors.detector_names()


def default_detector() -> str:
    from core import detectors

    return detectors.DEFAULT


@by_version(max_entries=16)
def precomputed(name: str) -> bool:
    """Big datasets: results are read from what `detect` stored; nothing is fitted here."""
    from core.results import is_stored

    return is_stored(name)


@by_version(
    "resource",
    show_spinner="Fitting the detector over every user (once per dataset and detector)…",
    max_entries=8,
)
def _results(name: str, detector: str):
    """core.results.DetectionResults of ``detector`` on ``name`` (shared; never mutated)."""
    from core.results import StoredResults, open_results

    if precomputed(name):
        return StoredResults(name, detector)
    matrix = stored_item_matrix(name)
    if matrix is None:
        raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
    results = open_results(name, detector, matrix)
    jobs.mark_ready(name, version(name), detector)
    return results


def _fitted(name: str, detector: str):
    """The fit behind fitted results (ShiftError on a big dataset, which is never fitted here)."""
    if precomputed(name):
        raise ShiftError(
            f"{name!r} is too big to fit a detector in the dashboard; this view needs one. The "
            f"timeline and overview read what `python -m core detect {name}` stored."
        )
    return _results(name, detector).fit


def fit_status(name: str, detector: str) -> FitStatus:
    """Ready (in memory, stored on disk, or a big dataset's stored results), running, or failed."""
    from core.artefacts import fit_is_stored

    if precomputed(name):
        return FitStatus(True)
    matrix = stored_item_matrix(name)
    n_events = int(info(name).get("n_events", 0))
    return jobs.fit_status(
        name,
        version(name),
        detector,
        n_events,
        lambda: matrix is not None and fit_is_stored(name, detector, matrix),
    )


def fits_in_foreground(name: str) -> bool:
    """Small logs are fitted in the run that asks (well under 2 s)."""
    return int(info(name).get("n_events", 0)) <= jobs.FOREGROUND_FIT_EVENTS


def start_fit(name: str, detector: str) -> None:
    jobs.start_fit(name, version(name), detector, model_id(name))


task_status, start_task = jobs.task_status, jobs.start_task


@by_version(max_entries=16)
def threshold_scale(name: str, detector: str):
    """The ε control: range, calibrated default and its positions (core.results.ThresholdScale)."""
    return _results(name, detector).scale()


@by_version(max_entries=64)
def _summary(name: str, detector: str, threshold: float):
    return _results(name, detector).summary(threshold)


@by_version(max_entries=32)
def user_ranking(name: str, detector: str) -> pd.DataFrame:
    """user_id, max_score: users by their strongest candidate (threshold-free)."""
    return _results(name, detector).user_ranking()


@by_version(max_entries=16)
def candidates(name: str, detector: str) -> pd.DataFrame:
    """Every candidate change point: user_id, event_index, alert_index, score."""
    return _results(name, detector).candidates()


@by_version(max_entries=16)
def user_probabilities(name: str, detector: str) -> pd.Series | None:
    """Per user id: the probability that the user's shift is real (1 - local fdr under the
    empirical null), or None when the detector has no null."""
    frame = _results(name, detector).user_probabilities()
    return None if frame is None else frame.set_index("user_id")["probability"]


# A big dataset's change points at one threshold are ~100 MB at 50M events: a few are kept.
@by_version(max_entries=16)
def _change_points(name: str, detector: str, threshold: float) -> pd.DataFrame:
    return _results(name, detector).change_points(threshold)


def population_summary(name: str, detector: str, threshold: float):
    """The headline numbers at ``threshold`` (core.results.PopulationSummary)."""
    return _summary(name, detector, float(threshold))


def change_points(name: str, detector: str, threshold: float) -> pd.DataFrame:
    """Every user's change points at ``threshold``: user_id, event_index, timestamp, score,
    detector, alert_index, kind."""
    return _change_points(name, detector, float(threshold))


def false_alarms_at(name: str, detector: str, threshold: float) -> float:
    """Expected false alarms per 1,000 events at ``threshold``, from the calibration."""
    return _results(name, detector).false_alarms_at(float(threshold))


def false_alarm_rates(name: str, detector: str, threshold: float):
    """Both units the product states at ``threshold`` (core.detectors.population.FalseAlarmRates)."""
    return _results(name, detector).rates(float(threshold))


def threshold_for_rate(name: str, detector: str, false_alarms_per_1000: float) -> float:
    """The threshold of at most this many false alarms, as the CLI states it (ShiftError if none)."""
    return _results(name, detector).threshold_for(float(false_alarms_per_1000))


def has_empirical_null(name: str, detector: str) -> bool:
    """Whether ε can be set as a false discovery rate (the detector has an empirical null)."""
    return _results(name, detector).shift_share() is not None


def feature_choice(name: str, detector: str):
    """The feature setting the log chose (core.detectors.feature_choice; None: no choice)."""
    return _results(name, detector).feature_choice()


def threshold_for_fdr(name: str, detector: str, fdr: float) -> float:
    """The lowest ε flagging users of whom at most ``fdr`` may be chance (ShiftError if none)."""
    return _results(name, detector).threshold_for_fdr(float(fdr))


def fdr_at(name: str, detector: str, threshold: float) -> float:
    """The estimated share of users flagged at ``threshold`` that may be chance."""
    return _results(name, detector).flagged_chance(float(threshold)).fdr


def is_online(name: str, detector: str) -> bool:
    """Online detectors raise an alarm after the change: their alert index is drawn too."""
    return _results(name, detector).is_online


@dataclass(frozen=True)
class UserDetection:
    """One user's per-event score (NaN where undefined) and change points at a threshold."""

    scores: np.ndarray
    change_points: pd.DataFrame  # event_index, score, alert_index, timestamp, …


def user_detection(name: str, detector: str, threshold: float | None, user_id: str) -> UserDetection:
    """One user's scores and change points (``threshold`` None: the default); only this user is
    read (or re-run), so a slider move is cheap and it is not cached."""
    signal = _results(name, detector).user_signal(str(user_id), threshold)
    return UserDetection(np.asarray(signal.score, dtype=np.float64), signal.change_points)


def user_scores(name: str, detector: str, user_id: str) -> np.ndarray:
    """One user's per-event score alone (no threshold involved)."""
    return user_detection(name, detector, math.inf, user_id).scores


def user_state(name: str, detector: str, threshold: float, user_id: str):
    """One user's scored range, unmarked peaks and recent alert (core.results.UserState)."""
    return _results(name, detector).user_state(str(user_id), float(threshold))


def user_change_point_indices(name: str, detector: str, threshold: float, user_id: str) -> tuple[int, ...]:
    """The user's change points (event indices, ascending) at ``threshold``: the segment bounds
    that explanations and lists respect."""
    cps = user_detection(name, detector, threshold, user_id).change_points
    return tuple(sorted(int(c) for c in cps["event_index"]))


@by_version("resource", max_entries=4)
def _item_categories(name: str):
    from core.results.moves import item_categories

    return item_categories(items(name)["categories"])


@by_version(max_entries=32)
def category_moves(name: str, detector: str, threshold: float, window: int = 20) -> pd.DataFrame:
    """What flagged users left and joined: ``from, to, users, example`` (core.results.moves)."""
    from core.results.moves import category_moves as moves

    return moves(_results(name, detector), _item_categories(name), float(threshold), int(window))
