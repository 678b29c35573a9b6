"""The data edge: the dashboard's caches over ``core``, keyed by the dataset's content version.

Every function takes a dataset name (and plain values) and returns plain frames, arrays,
numbers or small frozen values; decisions live in ``core`` (detection results in
:mod:`core.results`, which picks fitted or stored results once per dataset; what changed in
:mod:`core.explain`; lists in :mod:`core.recommend`), background work in
:mod:`dashboard.jobs`. Caching is by kind (Streamlit's guidance): ``st.cache_resource`` for
what is shared and never mutated (connections, the item matrix, the language model, results,
recommenders, explainers, event arrays); ``st.cache_data`` for query results and frames.
:func:`by_version` keys every cached function by the dataset's version, so a re-imported
dataset is read again instead of served from an old entry.
"""

from __future__ import annotations

import functools
import json
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
from core.errors import DatasetNotFound, ShiftError
from dashboard import jobs
from dashboard.jobs import FitStatus, TaskStatus  # noqa: F401  (pages read them from here)

DEFAULT_DATASET = "movielens-100k"


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


# --------------------------------------------------------------------------- store


@by_version("resource", max_entries=16)
def _connection(name: str) -> duckdb.DuckDBPyConnection:
    return store.connect(name, read_only=True)


def _cursor(name: str) -> duckdb.DuckDBPyConnection:
    # A connection is not safe across threads (one per browser session); a cursor is a cheap,
    # separate connection to the same read-only database.
    return store.cursor(_connection(name))


def _query(fn: Callable, name: str, *args: Any):
    with _cursor(name) as con:
        return fn(con, *args)


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


@by_version(max_entries=16)
def info(name: str) -> dict:
    """Counts and provenance: n_users, n_items, n_events, has_ground_truth, source."""
    return _query(store.dataset_info, name)


@by_version(max_entries=8)
def items(name: str) -> pd.DataFrame:
    """The catalogue in item_idx order."""
    return _query(store.load_items, name)


@by_version(max_entries=8)
def users(name: str) -> pd.DataFrame:
    """user_id, n_events of every user."""
    return _query(store.load_users, name)


@by_version(max_entries=256)
def user_exists(name: str, user_id: str) -> bool:
    return _query(store.user_exists, name, str(user_id))


@by_version(max_entries=256)
def user_events(name: str, user_id: str) -> pd.DataFrame:
    """One user's events in order with title and categories (raises UnknownUser)."""
    return _query(store.load_user_events, name, str(user_id))


@by_version(max_entries=8)
def ground_truth(name: str) -> pd.DataFrame:
    """Planted change points: user_id, event_index, … (empty for real logs)."""
    return _query(store.load_ground_truth, name)


@by_version(max_entries=8)
def user_labels(name: str) -> pd.DataFrame:
    return _query(store.load_user_labels, name)


@by_version(max_entries=8)
def category_counts(name: str) -> pd.DataFrame:
    return _query(store.category_counts, name)


@by_version("resource", max_entries=4)
def _event_arrays(name: str) -> store.EventArrays:
    return _query(store.load_event_arrays, name)


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

    matrix = cached_item_matrix(name)
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
    jobs.start_fit(name, version(name), detector)


task_status, start_task = jobs.task_status, jobs.start_task


@by_version(max_entries=16)
def threshold_scale(name: str, detector: str):
    """The ε slider: range, step and the calibrated default (core.results.ThresholdScale)."""
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
def tentative_alerts(name: str, detector: str) -> pd.DataFrame | None:
    """The recent-shift companion's alerts at its default (None: the detector has none)."""
    return _results(name, detector).tentative_alerts()


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


def calibration_source(name: str, detector: str) -> str:
    return _results(name, detector).calibration_source()


def threshold_for_rate(name: str, detector: str, false_alarms_per_1000: float) -> float:
    """The threshold of at most this many false alarms, as the CLI states it (ShiftError if none)."""
    return _results(name, detector).threshold_for(float(false_alarms_per_1000))


def is_online(name: str, detector: str) -> bool:
    """Online detectors raise an alarm after the change: their alert index is drawn too."""
    return _results(name, detector).is_online


def recent_shift_count(name: str, detector: str, threshold: float) -> int | None:
    """Users with a tentative recent shift and no located change point (None: no companion)."""
    return population_summary(name, detector, threshold).n_recent


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

    history = user_events(name, user_id)["item_idx"].to_numpy()
    return recommend_around_change(
        _recommender(name), _explainer(name), items(name), str(user_id), history,
        [int(c) for c in neighbours], int(change_point), k=int(k), change_point_source=source,
    )  # fmt: skip


@by_version(max_entries=256)
def explanation(name: str, user_id: str, change_point: int, neighbours: tuple = ()):
    """What changed at the change point (core.explain.ShiftExplanation), segment to segment."""
    from core.explain import neighbouring_segments

    history = user_events(name, user_id)["item_idx"].to_numpy()
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
