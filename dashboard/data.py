"""The data edge: the dashboard's only module that calls ``core``, and its caches.

Every function here takes a dataset name (and plain values) and returns plain frames,
arrays, numbers or small frozen values; pages never see a fitted detector or its
internals. Caching is by kind (Streamlit's guidance):

- ``st.cache_resource`` (one object per process, shared by every session, never mutated):
  read-only DuckDB connections, the item matrix, the language model, fitted recommenders,
  explainers and detectors, and the big event arrays (``st.cache_data`` would copy tens of
  MB on every call);
- ``st.cache_data`` (a copy per call): query results, one user's frames, projections.

One decorator, :func:`by_version`, keys every cached function by the dataset's version (its
content digest, :func:`core.artefacts.dataset_version`), so a re-imported dataset is read
again instead of served from an old entry. Pages never encode text or fit UMAP as a side
effect of a request: both are set-up steps
(``python -m core encode``/``project``); encoding also runs from an explicit button
(:mod:`dashboard.actions`).
"""

from __future__ import annotations

import functools
import json
import math
import threading
import time
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

DEFAULT_DATASET = "movielens-100k"
RECORDED_RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"


# --------------------------------------------------------------------------- caching


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

        # Streamlit names a function's cache after its module, qualified name and source;
        # the source of ``keyed`` is the same for every decorated function, so it takes
        # the decorated function's names to get a cache of its own.
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
    # A DuckDB connection is not safe across threads (one per browser session); a cursor
    # is a cheap, separate connection to the same read-only database.
    return store.cursor(_connection(name))


@st.cache_data(show_spinner=False, ttl=10)
def _dataset_names(folder: str) -> list[str]:
    return store.list_dataset_names()


def dataset_names(fresh: bool = False) -> list[str]:
    """Datasets in the data folder (re-listed every 10 s, at once after an import, and
    when ``fresh``)."""
    if fresh:
        _dataset_names.clear()
    return _dataset_names(str(store.data_dir()))


def data_folder() -> Path:
    return store.data_dir()


@by_version(max_entries=16)
def info(name: str) -> dict:
    """Counts and provenance: n_users, n_items, n_events, has_ground_truth, source."""
    with _cursor(name) as con:
        return store.dataset_info(con)


@by_version(max_entries=8)
def items(name: str) -> pd.DataFrame:
    """The catalogue in item_idx order."""
    with _cursor(name) as con:
        return store.load_items(con)


@by_version(max_entries=8)
def users(name: str) -> pd.DataFrame:
    """user_id, n_events of every user."""
    with _cursor(name) as con:
        return store.load_users(con)


@by_version(max_entries=256)
def user_exists(name: str, user_id: str) -> bool:
    with _cursor(name) as con:
        return store.user_exists(con, str(user_id))


@by_version(max_entries=256)
def user_events(name: str, user_id: str) -> pd.DataFrame:
    """One user's events in order with title and categories (raises UnknownUser)."""
    with _cursor(name) as con:
        return store.load_user_events(con, str(user_id))


@by_version(max_entries=8)
def ground_truth(name: str) -> pd.DataFrame:
    """Planted change points: user_id, event_index, … (empty for real logs)."""
    with _cursor(name) as con:
        return store.load_ground_truth(con)


@by_version(max_entries=8)
def user_labels(name: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.load_user_labels(con)


@by_version(max_entries=8)
def category_counts(name: str) -> pd.DataFrame:
    with _cursor(name) as con:
        return store.category_counts(con)


@by_version("resource", max_entries=4)
def _event_arrays(name: str) -> store.EventArrays:
    with _cursor(name) as con:
        return store.load_event_arrays(con)


@by_version(max_entries=8)
def _user_positions(name: str) -> dict[str, int]:
    return {u: k for k, u in enumerate(_event_arrays(name).user_ids)}


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
    """The importer's options (core.store.ImportOptions)."""
    return store.ImportOptions(**fields)


def ingest_uploaded(
    name: str,
    events: tuple[Path, str],
    items: tuple[Path, str],
    delimiter: str = ",",
    options: store.ImportOptions | None = None,
) -> store.ImportReport:
    """Import (path on disk, name shown in messages) pairs through the CLI's validated,
    atomic importer, then forget the cached list of datasets."""
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


# --------------------------------------------------------------------------- embeddings


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


# --------------------------------------------------------------------------- detection


def detector_names() -> list[str]:
    from core import detectors

    return detectors.detector_names()


def default_detector() -> str:
    from core import detectors

    return detectors.DEFAULT


@by_version(
    "resource",
    show_spinner="Fitting the detector over every user (once per dataset and detector)…",
    max_entries=8,
)
def _fitted(name: str, detector: str):
    """core.detectors.population.PopulationFit, from the disk cache or fitted now (shared;
    never mutated). A slider move only calls its cheap predict."""
    from core.artefacts import fitted_detector

    if precomputed(name):
        raise ShiftError(
            f"{name!r} is too big to fit a detector in the dashboard; this view needs one. The "
            f"timeline and overview read what `python -m core detect {name}` stored."
        )

    matrix = stored_item_matrix(name)
    if matrix is None:
        raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
    fit = fitted_detector(name, detector, matrix)
    _READY.add((name, version(name), detector))
    return fit


# Fitting a detector on a dataset takes from seconds to minutes (MovieLens-100K: 17–125 s on
# two cores), so a page never waits for one: a missing fit is built in a background thread
# (one per dataset and detector, shared by every session of the process) while pages show
# its progress. Small logs fit in well under the 2 s an interaction may take, in the run.
FOREGROUND_FIT_EVENTS = 20_000
# Rough fitting seconds per 100,000 events on two cores (MovieLens-100K, bench runs): only
# to draw a progress bar, which never claims to be done before the fit is.
_FIT_SECONDS_PER_100K = {"kernel_cpd": 125.0, "kernel_cpd_raw": 125.0, "isolation_forest": 60.0}
_READY: set[tuple[str, str, str]] = set()  # (dataset, version, detector) loaded without fitting


@dataclass
class _FitJob:
    started: float
    thread: threading.Thread | None = None
    error: str | None = None


_JOBS: dict[tuple[str, str, str], _FitJob] = {}
_JOBS_LOCK = threading.Lock()


@dataclass(frozen=True)
class FitStatus:
    """Whether a detector's fit on a dataset can be read now, or is being built."""

    ready: bool
    running: bool = False
    elapsed: float = 0.0  # seconds since the background fit started
    expected: float = 0.0  # a rough estimate of its duration, seconds
    error: str | None = None


def fit_status(name: str, detector: str) -> FitStatus:
    """Ready (in memory or stored on disk), running in the background, or failed."""
    from core.artefacts import fit_is_stored

    key = (name, version(name), detector)
    if key in _READY or precomputed(name):  # big datasets: stored results, never a fit here
        return FitStatus(True)
    n_events = int(info(name).get("n_events", 0))
    expected = max(3.0, _FIT_SECONDS_PER_100K.get(detector, 30.0) * n_events / 100_000)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
    if job is not None and job.thread is not None and job.thread.is_alive():
        return FitStatus(False, True, time.monotonic() - job.started, expected)
    if job is not None and job.error is not None:
        return FitStatus(False, False, 0.0, expected, job.error)
    matrix = stored_item_matrix(name)
    if matrix is not None and fit_is_stored(name, detector, matrix):
        _READY.add(key)
        return FitStatus(True)
    return FitStatus(False, False, 0.0, expected)


def fits_in_foreground(name: str) -> bool:
    """Small logs are fitted in the run that asks (well under 2 s)."""
    return int(info(name).get("n_events", 0)) <= FOREGROUND_FIT_EVENTS


def start_fit(name: str, detector: str) -> None:
    """Fit ``detector`` on ``name`` in a background thread (no-op if one runs already); the
    fit is stored on disk, where :func:`fit_status` and the next page run find it."""
    from core.artefacts import cached_item_matrix, fitted_detector

    key = (name, version(name), detector)
    with _JOBS_LOCK:
        job = _JOBS.get(key)
        if job is not None and job.thread is not None and job.thread.is_alive():
            return
        job = _JOBS[key] = _FitJob(time.monotonic())

        def run() -> None:
            try:
                matrix = cached_item_matrix(name)  # core's reader: no Streamlit cache in a thread
                if matrix is None:
                    raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
                fitted_detector(name, detector, matrix)
            except ShiftError as err:  # shown on the page; anything else is a bug and is raised
                job.error = str(err)

        # The thread calls core only (no Streamlit element, no session state): it needs no
        # script-run context.
        job.thread = threading.Thread(target=run, name=f"fit-{name}-{detector}", daemon=True)
        job.thread.start()


@by_version(max_entries=16)
def precomputed(name: str) -> bool:
    """Big datasets (core.artefacts.results): detection results are read from what `python -m
    core detect` stored, one user at a time; nothing is fitted or held for the population."""
    from core.artefacts import needs_precomputed

    return needs_precomputed(name)


@by_version(max_entries=16)
def _summary(name: str, detector: str):
    """The stored population summary (raises NotPrecomputed with the command to run)."""
    from core.artefacts import population_summary

    return population_summary(name, detector)


def _calibration(name: str, detector: str):
    return _summary(name, detector).calibration if precomputed(name) else _fitted(name, detector).calibration


@dataclass(frozen=True)
class ThresholdScale:
    """The ε slider of a detector: its range and step, and the calibrated default ε."""

    low: float
    high: float
    step: float
    default: float


@by_version(max_entries=16)
def threshold_scale(name: str, detector: str) -> ThresholdScale:
    from core.detectors.population import DEFAULT_FALSE_ALARMS, stated_threshold

    if precomputed(name):
        summary = _summary(name, detector)
        edges = summary.score_histogram[1]
        calibration, top_score = summary.calibration, float(edges.max()) if len(edges) else 0.0
    else:
        fit = _fitted(name, detector)
        cand = fit.result.candidates
        calibration, top_score = fit.calibration, float(np.nanmax(cand.score)) if len(cand) else 0.0
    finite = calibration.thresholds[np.isfinite(calibration.thresholds)]
    top = float(max(top_score, finite.max() if len(finite) else 0.0, 1e-6))
    step = float(10 ** np.floor(np.log10(top / 200)))
    high = float(np.ceil(top / step) * step)
    try:
        default = min(stated_threshold(calibration.threshold_for(DEFAULT_FALSE_ALARMS)), high)
    except ShiftError:
        default = high
    if not np.isfinite(default):
        # No null history was long enough for the detector's windows: nothing to calibrate.
        default = high
    if default > 0:  # the stated default (three significant digits) lies on the slider's grid
        step = min(step, float(10 ** (math.floor(math.log10(default)) - 2)))
        high = float(np.ceil(top / step) * step)
    return ThresholdScale(0.0, high, step, float(default))


def rebuild_notices() -> list[str]:
    """Stored artefacts (fits, maps) found damaged or out of date and rebuilt since the last
    call, in words with no server path (core.derived_files)."""
    from core.derived_files import take_rebuild_notices

    return take_rebuild_notices()


def false_alarms_at(name: str, detector: str, threshold: float) -> float:
    """Expected false alarms per 1,000 events at ``threshold``, from the fit's calibration
    (held-aside real histories or shuffled ones: :func:`calibration_source` says which)."""
    return _calibration(name, detector).false_alarms_at(float(threshold))


def false_alarm_rates(name: str, detector: str, threshold: float):
    """Both units the product states at ``threshold``: per 1,000 events and the share of users
    flagged (real-history calibration only), with the check sample's rates
    (core.detectors.population.FalseAlarmRates)."""
    from core.detectors.population import false_alarm_rates as rates

    if precomputed(name):
        from core.artefacts import stored_false_alarm_rates

        return stored_false_alarm_rates(name, detector, float(threshold))
    return rates(_fitted(name, detector), float(threshold))


def calibration_source(name: str, detector: str) -> str:
    """What the detector's false-alarm rate was measured on, in words."""
    cal = _calibration(name, detector)
    if getattr(cal, "null", "shuffled") == "real":
        if getattr(cal, "sample", "all") == "shift-free":
            return (
                "held-aside real histories of the users this dataset's ground truth marks as unchanged "
                "(every alarm there counted as false)"
            )
        return "held-aside real histories of this dataset (every alarm there counted as false)"
    return "the same histories shuffled (no shift by construction)"


def threshold_for_rate(name: str, detector: str, false_alarms_per_1000: float) -> float:
    """The threshold expected to give at most this many false alarms, as the CLI states it
    (three significant digits, rounded up; raises ShiftError if none does)."""
    from core.detectors.population import stated_threshold

    return stated_threshold(_calibration(name, detector).threshold_for(float(false_alarms_per_1000)))


def is_online(name: str, detector: str) -> bool:
    """Online detectors raise an alarm after the change: their alert index is drawn too."""
    if precomputed(name):
        from core.detectors import make_detector

        return bool(make_detector(detector).online)
    return bool(getattr(_fitted(name, detector).detector, "online", False))


@by_version(max_entries=32)
def user_ranking(name: str, detector: str) -> pd.DataFrame:
    """user_id, max_score: users by their strongest candidate change (threshold-free, so it
    survives slider moves)."""
    if precomputed(name):
        from core.artefacts import user_table

        best = user_table(name, detector).dropna(subset=["max_score"])
        best = best.sort_values("max_score", ascending=False, kind="stable")
        return best[["user_id", "max_score"]].reset_index(drop=True)
    fit = _fitted(name, detector)
    cand = fit.result.candidates
    if len(cand) == 0:
        return pd.DataFrame({"user_id": pd.Series(dtype=str), "max_score": pd.Series(dtype=float)})
    best = pd.DataFrame({"user": cand.user, "score": cand.score}).groupby("user")["score"].max()
    best = best.sort_values(ascending=False, kind="stable")
    return pd.DataFrame({"user_id": fit.events.user_ids[best.index.to_numpy()], "max_score": best.to_numpy()})


def change_points(name: str, detector: str, threshold: float) -> pd.DataFrame:
    """Every user's change points at ``threshold``: user_id, event_index, timestamp, score,
    detector, alert_index."""
    if precomputed(name):
        return _stored_change_points(name, detector, float(threshold))
    return _fitted_change_points(name, detector, float(threshold))


@by_version(max_entries=64)
def _fitted_change_points(name: str, detector: str, threshold: float) -> pd.DataFrame:
    from core.detectors.population import change_points as population_change_points

    return population_change_points(_fitted(name, detector), threshold)


# A big dataset's change points at one threshold are ~100 MB in the cache at 50M events (600,000
# rows): a few thresholds are kept, not 64, or slider moves would grow the server past 3 GB.
@by_version(max_entries=4)
def _stored_change_points(name: str, detector: str, threshold: float) -> pd.DataFrame:
    from core.artefacts import stored_change_points

    return stored_change_points(name, detector, threshold)


@dataclass(frozen=True)
class UserDetection:
    """One user's per-event score (NaN where undefined) and change points at a threshold."""

    scores: np.ndarray
    change_points: pd.DataFrame  # event_index, score, alert_index, timestamp, …


def user_detection(name: str, detector: str, threshold: float | None, user_id: str) -> UserDetection:
    """One user's scores and change points (``threshold`` None: the calibrated default).

    Only this user's candidates are filtered (or, for detectors whose change points depend
    on the threshold beyond a filter, only this user is re-run), so a slider move is cheap:
    cheaper than storing each threshold's result in a cache, so it is not cached.
    """
    from core.detectors.population import user_signal

    if precomputed(name):  # one user's row group of the stored scores, nothing fitted
        from core.artefacts import stored_user_signal

        signal = stored_user_signal(name, str(user_id), detector, threshold)
    else:
        signal = user_signal(_fitted(name, detector), str(user_id), threshold)
    return UserDetection(np.asarray(signal.score, dtype=np.float64), signal.change_points)


def user_scores(name: str, detector: str, user_id: str) -> np.ndarray:
    """One user's per-event score alone (no threshold involved, so no calibration needed)."""
    return user_detection(name, detector, math.inf, user_id).scores


@by_version(max_entries=16)
def candidates(name: str, detector: str) -> pd.DataFrame:
    """Every candidate change point (a threshold only filters these): user_id, event_index,
    alert_index, score."""
    if precomputed(name):
        from core.artefacts import stored_change_points

        stored = stored_change_points(name, detector, -math.inf)
        return stored[["user_id", "event_index", "alert_index", "score"]]
    fit = _fitted(name, detector)
    cand = fit.result.candidates
    return pd.DataFrame(
        {
            "user_id": fit.events.user_ids[cand.user],
            "event_index": cand.event_index.astype(np.int64),
            "alert_index": cand.alert_index.astype(np.int64),
            "score": cand.score.astype(np.float64),
        }
    )


# --------------------------------------------------------------------------- recommendations


@by_version("resource", show_spinner="Fitting the recommender…", max_entries=4)
def _recommender(name: str):
    # core.artefacts.recommender's fit, from the arrays this module holds already (it would
    # open the database twice more to read them again)
    from core.recommend import fit_recommender

    if precomputed(name):
        # A big dataset: co-occurrence learned from a seeded sample of whole users (as a fit
        # samples users), never from the whole log (16 bytes an event, and minutes at 50M).
        from core.artefacts import sampled_histories

        with _cursor(name) as con:
            sample = sampled_histories(name, con=con)
        return fit_recommender(_item_matrix(name), sample, item_keys=items(name)["title"].to_numpy())
    return fit_recommender(_item_matrix(name), _event_arrays(name), item_keys=items(name)["title"].to_numpy())


@by_version(max_entries=8)
def recommender_sample(name: str) -> tuple[int, int] | None:
    """(users, of users) the recommender's co-occurrence was learned from on a big dataset,
    when that is a sample; None when it is every user."""
    if not precomputed(name):
        return None
    from core.artefacts.results import sample_users

    with _cursor(name) as con:
        sampled, n_users = sample_users(con)
    return None if len(sampled) == n_users else (len(sampled), n_users)


@by_version("resource", show_spinner="Fitting the explainer…", max_entries=4)
def _explainer(name: str):
    from core.explain import ShiftExplainer

    return ShiftExplainer().fit(items(name), _item_matrix(name))


@by_version(max_entries=256)
def recommendations(
    name: str, user_id: str, change_point: int, k: int = 10, source: str = "given", neighbours: tuple = ()
):
    """Before/after/now lists around one change point (core.recommend.UserRecommendations:
    ``.lists[policy]`` frames with rank, item_idx, title, categories; ``.rising_share``),
    from the segments between its neighbouring change points ``neighbours`` (the user's
    change points at the current ε), as the CLI's ``recommend`` does."""
    from core.recommend import recommend_around_change

    history = user_events(name, user_id)["item_idx"].to_numpy()
    return recommend_around_change(
        _recommender(name),
        _explainer(name),
        items(name),
        str(user_id),
        history,
        [int(c) for c in neighbours],
        int(change_point),
        k=int(k),
        change_point_source=source,
    )


@by_version(max_entries=256)
def explanation(name: str, user_id: str, change_point: int, neighbours: tuple = ()):
    """What changed at the change point (core.explain.ShiftExplanation: summary, categories,
    representative_before/after frames): the segment from the previous change point in
    ``neighbours`` against the segment up to the next one, never across them."""
    from core.explain import neighbouring_segments

    history = user_events(name, user_id)["item_idx"].to_numpy()
    start, end = neighbouring_segments(len(history), [int(c) for c in neighbours], int(change_point))
    return _explainer(name).explain(history, int(change_point), start, end)


def user_change_point_indices(name: str, detector: str, threshold: float, user_id: str) -> tuple[int, ...]:
    """The user's change points (event indices, ascending) at ``threshold``: the segment
    bounds that explanations and lists respect."""
    cps = user_detection(name, detector, threshold, user_id).change_points
    return tuple(sorted(int(c) for c in cps["event_index"]))


# --------------------------------------------------------------------------- projection


def _projection_path(name: str) -> Path:
    from core.artefacts import projection_path

    return projection_path(name)


@by_version(max_entries=4)
def _projection(name: str, mtime: float) -> np.ndarray | None:
    from core.artefacts import cached_projection

    return cached_projection(name, _item_matrix(name))


def projection(name: str) -> np.ndarray | None:
    """The stored UMAP map of the items (None until ``python -m core project NAME`` ran)."""
    path = _projection_path(name)
    if not path.exists() or stored_item_matrix(name) is None:
        return None
    return _projection(name, path.stat().st_mtime)


@by_version(max_entries=64)
def interest_path(name: str, user_id: str, window: int) -> np.ndarray:
    """One user's interest vector after each event (mean of the last ``window`` items),
    placed on the stored map among its nearest items: (n_events, 2)."""
    from core.projection import place
    from core.trajectory import recent_mean

    matrix = _item_matrix(name)
    history = user_events(name, user_id)["item_idx"].to_numpy()
    means = recent_mean(matrix[history], np.array([0, len(history)]), int(window))
    return place(means, matrix, projection(name))


@by_version(max_entries=16)
def shift_endpoints(name: str, detector: str, threshold: float, limit: int):
    """(change points, before (n, 2), after (n, 2)): the strongest change point of up to
    ``limit`` users, and their interest before/after it placed on the map."""
    from core.projection import place, segment_means

    cps = change_points(name, detector, threshold)
    strongest = (
        cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id").head(int(limit))
    )
    matrix = _item_matrix(name)
    if precomputed(name):  # only the 20 events either side of each change point are read
        from core.artefacts import event_windows

        cp = strongest["event_index"].to_numpy(np.int64)
        with _cursor(name) as con:
            k, seq, item = event_windows(name, strongest["user_id"].tolist(), cp, 20, 20, con)
        bounds = np.searchsorted(k, np.arange(len(strongest) + 1))
        means = [
            segment_means(matrix, item[a:b], int(c - seq[a]) if b > a else int(c))
            for a, b, c in zip(bounds[:-1], bounds[1:], cp)
        ]
    else:
        ev = _event_arrays(name)
        pos = _user_positions(name)
        means = [
            segment_means(matrix, ev.item_idx[ev.user_slice(pos[r.user_id])], r.event_index)
            for r in strongest.itertuples()
        ]
    if not means:
        return strongest, np.empty((0, 2)), np.empty((0, 2))
    placed = place(np.vstack(means), matrix, projection(name))
    return strongest, placed[0::2], placed[1::2]


# --------------------------------------------------------------------------- evaluation


@by_version(show_spinner="Scoring against the planted truth…", max_entries=16)
def truth_sweep(name: str, detector: str, margin: int = 10) -> pd.DataFrame:
    """Precision/recall/F1 and false alarms vs threshold on the dataset's planted truth
    (peak detectors only: their change points at t are the candidates scoring >= t)."""
    from core.benchmark.planted import threshold_grid, threshold_sweep

    cand = candidates(name, detector)
    return threshold_sweep(
        ground_truth(name),
        user_labels(name),
        cand,
        users(name).set_index("user_id")["n_events"],
        threshold_grid(cand["score"].to_numpy()),
        int(margin),
    )


def truth_scores(name: str, detector: str, threshold: float, margin: int = 10) -> dict:
    """Scores of the change points at ``threshold`` against the planted truth: precision,
    recall, f1, false_alarms_per_1000, tp, fn, delays."""
    from core.benchmark.planted import score_detections

    return score_detections(
        ground_truth(name),
        user_labels(name),
        change_points(name, detector, threshold),
        users(name).set_index("user_id")["n_events"],
        int(margin),
    )


def evaluation_folder(name: str) -> Path | None:
    """Where ``python -m core evaluate NAME`` wrote its results: the dataset's cache folder
    (the command's default), else the benchmark recorded in the repository (bench/results)."""
    for folder in (store.cache_dir(name) / "evaluation", RECORDED_RESULTS / store.check_name(name)):
        if (folder / "results.json").exists():
            return folder
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def _stored_evaluation(folder: str, mtime: float):
    payload = json.loads((Path(folder) / "results.json").read_text(encoding="utf-8"))
    curves_path = Path(folder) / "pr_curves.csv"
    curves = pd.read_csv(curves_path) if curves_path.exists() else pd.DataFrame()
    return payload.get("meta", {}), pd.DataFrame(payload["rows"]), curves


@st.cache_data(show_spinner=False, max_entries=4)
def _detection_study(path: str, mtime: float) -> list[dict]:
    return json.loads(Path(path).read_text())


def detection_study(name: str) -> tuple[dict, pd.DataFrame, pd.DataFrame] | None:
    """The recorded real-log study of ``python -m bench.detection_study`` for a dataset of this
    name (bench/results/detection_study.json): (meta, rows by detector and setting, F1 against
    the calibrated real false-alarm rate), or None when it has none."""
    path = RECORDED_RESULTS / "detection_study.json"
    if not path.exists():
        return None
    for entry in _detection_study(str(path), path.stat().st_mtime):
        if entry.get("dataset") == name:
            meta = {k: v for k, v in entry.items() if not isinstance(v, (list, dict))}
            return meta, pd.DataFrame(entry.get("rows", [])), pd.DataFrame(entry.get("tradeoff", []))
    return None


def stored_evaluation(name: str):
    """(meta, table, curves, folder) written by ``python -m core evaluate NAME``, or None."""
    folder = evaluation_folder(name)
    if folder is None:
        return None
    return (*_stored_evaluation(str(folder), (folder / "results.json").stat().st_mtime), folder)


# --------------------------------------------------------------------------- states
#
# What the headline and the timeline say about *who could be scored* and *how many flags to
# expect by chance*. These are the functions to repoint when the detector grows those states
# itself (a per-user "too short" state, a real-history false-alarm rate, a tentative
# recent-shift alert): pages read only these frozen values, never the fit.


@dataclass(frozen=True)
class PopulationSummary:
    """The headline of a dataset at a threshold: who shifted, out of whom, and how many of
    those flags chance alone would give."""

    n_users: int
    n_scorable: int  # users long enough for the detector to score any event
    min_events: int  # the shortest history the detector scored (0: none scored)
    n_shifted: int  # users with at least one located change point
    n_change_points: int
    false_alarms_per_1000: float  # the fit's calibration at this threshold, per 1,000 events
    scored_events: int  # events of scorable users (the base of the rate)
    expected_false: float  # flags expected by chance among the scorable users' events
    n_recent: int | None  # users with a tentative recent shift (None: the detector has none)
    calibration_source: str  # what the rate was measured on, in words
    rates_text: str = ""  # both units and the check sample, as the CLI prints them
    # Why a detector meant for real-history calibration was calibrated on shuffled ones ("": it was not)
    calibration_fallback: str = ""
    # real null only: "all" (the dataset's own users: the flagged count and the expected false
    # one are then the same measurement) or "shift-free" (a ground truth's unchanged users)
    calibration_sample: str = ""


@by_version(max_entries=16)
def _scorable(name: str, detector: str) -> tuple[np.ndarray, np.ndarray]:
    """(scorable per user, n_events per user) in the fit's user order."""
    fit = _fitted(name, detector)
    offsets = np.asarray(fit.result.offsets, dtype=np.int64)
    counts = np.diff(offsets)
    finite = np.isfinite(np.asarray(fit.result.scores, dtype=np.float64)).astype(np.int64)
    per_user = np.add.reduceat(finite, offsets[:-1]) if len(finite) else np.zeros(len(counts), np.int64)
    per_user[counts == 0] = 0  # reduceat repeats a value for an empty slice
    return per_user > 0, counts


@by_version(max_entries=16)
def _scored_users(name: str, detector: str) -> tuple[int, int, int, int]:
    """(users, scorable users, the shortest scored history, events of scorable users)."""
    if precomputed(name):
        from core.artefacts import scored_users

        s = scored_users(name, detector)
        return s.n_users, s.n_scorable, s.min_events, s.scored_events
    scorable, counts = _scorable(name, detector)
    return (
        len(counts),
        int(scorable.sum()),
        int(counts[scorable].min()) if scorable.any() else 0,
        int(counts[scorable].sum()),
    )


def population_summary(name: str, detector: str, threshold: float) -> PopulationSummary:
    """The headline numbers at ``threshold``.

    Repoint here when the detector reports its own states: ``n_scorable`` from its "too
    short" state, ``false_alarms_per_1000``/``expected_false`` from its real-history
    calibration (in users), ``n_recent`` from its recent-shift alerts.
    """
    n_users, n_scorable, min_events, scored_events = _scored_users(name, detector)
    cps = change_points(name, detector, threshold)
    rates = false_alarm_rates(name, detector, threshold)
    rate = rates.per_1000
    # In users when the calibration measured it (the share of held-aside real users flagged,
    # over all users as it was measured); else an upper bound from the per-event rate (each
    # false alarm flags at most one user).
    expected = rates.users * n_users if rates.users is not None else rate * scored_events / 1000.0
    return PopulationSummary(
        n_users=n_users,
        n_scorable=n_scorable,
        min_events=min_events,
        n_shifted=int(cps["user_id"].nunique()),
        n_change_points=len(cps),
        false_alarms_per_1000=rate,
        scored_events=scored_events,
        expected_false=float(expected),
        n_recent=recent_shift_count(name, detector, threshold),
        calibration_source=calibration_source(name, detector),
        rates_text=rates.summary(),
        calibration_fallback=rates.fallback,
        calibration_sample=rates.sample if rates.null == "real" else "",
    )


def recent_shift_count(name: str, detector: str, threshold: float) -> int | None:
    """Users whose last events hint at a shift too recent to locate (a tentative alert).

    None: the detector has no recent-shift companion (only ``best_split`` has one,
    ``recent_shift``, calibrated on its own to its default rate).
    """
    alerts = tentative_alerts(name, detector)
    return None if alerts is None else int(alerts["user_id"].nunique())


@by_version(max_entries=16)
def tentative_alerts(name: str, detector: str) -> pd.DataFrame | None:
    """The recent-shift companion's alerts at each user's last event, at its calibrated
    default (user_id, event_index = the tentative change, alert_index = the last event), or
    None when ``detector`` has no companion."""
    from core.detectors.population import tentative_alerts as alerts

    if precomputed(name):  # the companion's results, stored by `detect` beside the detector's
        from core.artefacts import stored_change_points
        from core.detectors import make_detector

        companion = getattr(make_detector(detector), "tentative", None)
        return stored_change_points(name, companion, None, kind="tentative") if companion else None
    companion = getattr(_fitted(name, detector).detector, "tentative", None)
    if not companion:
        return None
    return alerts(_fitted(name, companion))


@dataclass(frozen=True)
class UserState:
    """What the detector can and cannot say about one user."""

    n_events: int
    scored: tuple[int, int] | None  # first and last scored event index; None: too short
    min_events: int  # the shortest history the detector scored in this dataset
    suppressed: pd.DataFrame  # event_index, score, reason: peaks at or above ε left unmarked
    recent: int | None  # event index of a tentative recent-shift alert (None: none)

    @property
    def too_short(self) -> bool:
        return self.scored is None


def user_state(name: str, detector: str, threshold: float, user_id: str) -> UserState:
    """One user's scored range, why peaks above ``threshold`` are not change points, and a
    recent-shift alert. Repoint ``scored``/``recent`` to the new detector's states."""
    if precomputed(name):
        from core.detectors import make_detector

        det = make_detector(detector)  # its settings (h, kind): what suppressed_peaks reads
    else:
        det = _fitted(name, detector).detector
    signal = user_detection(name, detector, threshold, user_id)
    scores = signal.scores
    finite = np.flatnonzero(np.isfinite(scores))
    min_events = _scored_users(name, detector)[2]
    scored = (int(finite[0]), int(finite[-1])) if len(finite) else None
    alerts = tentative_alerts(name, detector)
    mine = alerts[alerts["user_id"] == str(user_id)] if alerts is not None else None
    return UserState(
        n_events=len(scores),
        scored=scored,
        min_events=min_events,
        suppressed=suppressed_peaks(scores, signal.change_points, threshold, det),
        recent=int(mine["event_index"].iloc[-1]) if mine is not None and len(mine) else None,
    )


def suppressed_peaks(scores: np.ndarray, cps: pd.DataFrame, threshold: float, detector) -> pd.DataFrame:
    """Local maxima of ``scores`` at or above ``threshold`` that are not change points, with
    the reason in words (a peak detector keeps one peak per ``h`` events; a segmentation or
    online detector decides on its own terms)."""
    s = np.where(np.isfinite(scores), scores, -np.inf)
    if len(s) < 3:
        return pd.DataFrame({"event_index": [], "score": [], "reason": []})
    left = np.concatenate([[-np.inf], s[:-1]])
    right = np.concatenate([s[1:], [-np.inf]])
    marked = set(cps["event_index"].astype(int))
    local = np.flatnonzero((s >= threshold) & (s > left) & (s >= right) & np.isfinite(s))
    rows = []
    h = int(getattr(detector, "h", 1))
    for i in local:
        if int(i) in marked:
            continue
        if getattr(detector, "peak_based", True):
            lo, hi = max(0, i - h), min(len(s), i + h + 1)
            j = lo + int(np.argmax(s[lo:hi]))
            reason = (
                f"within {h} events of a stronger score at event {j} ({s[j]:.3g}): "
                f"one change point per {h} events (minimum distance)"
            )
        elif getattr(detector, "online", False):
            reason = "the online detector had already raised an alarm in this stretch"
        else:
            size = int(getattr(detector, "min_size", h))
            reason = f"not chosen by the segmentation (segments are at least {size} events long)"
        rows.append((int(i), float(scores[i]), reason))
    return pd.DataFrame(rows, columns=["event_index", "score", "reason"])


# --------------------------------------------------------------------------- set-up tasks
#
# Building the item map (UMAP) and running the benchmark take tens of seconds to minutes: a
# button starts them in a background thread (one per dataset and task, shared by every
# session) and pages show their progress; the result lands on disk, where the pages read it.


@dataclass
class _Task:
    started: float
    thread: threading.Thread | None = None
    message: str = "starting…"
    error: str | None = None
    finished: float | None = None


@dataclass(frozen=True)
class TaskStatus:
    running: bool
    done: bool = False
    elapsed: float = 0.0
    message: str = ""
    error: str | None = None


_TASKS: dict[tuple[str, str], _Task] = {}
TASKS = ("projection", "benchmark")


def task_status(kind: str, name: str) -> TaskStatus | None:
    """The state of the last ``kind`` task started on ``name`` in this process (None: none)."""
    with _JOBS_LOCK:
        task = _TASKS.get((kind, name))
    if task is None:
        return None
    running = task.thread is not None and task.thread.is_alive()
    end = time.monotonic() if running or task.finished is None else task.finished
    return TaskStatus(
        running, not running and task.error is None, end - task.started, task.message, task.error
    )


def start_task(kind: str, name: str) -> None:
    """Start building ``kind`` ("projection": the item map; "benchmark": the spliced-user
    evaluation of every detector) for ``name`` in the background (no-op while one runs)."""
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}")
    with _JOBS_LOCK:
        task = _TASKS.get((kind, name))
        if task is not None and task.thread is not None and task.thread.is_alive():
            return
        task = _TASKS[(kind, name)] = _Task(time.monotonic())

        def say(message: str) -> None:
            task.message = message

        def run() -> None:
            try:
                if kind == "projection":
                    _build_projection(name, say)
                else:
                    _run_benchmark(name, say)
            except ShiftError as err:  # shown on the page; anything else is a bug and is raised
                task.error = str(err)
            finally:
                task.finished = time.monotonic()

        task.thread = threading.Thread(target=run, name=f"{kind}-{name}", daemon=True)
        task.thread.start()


def _build_projection(name: str, say: Callable[[str], None]) -> None:
    from core.artefacts import build_projection, cached_item_matrix

    matrix = cached_item_matrix(name)
    if matrix is None:
        raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
    say(f"fitting the map of {len(matrix):,} items (UMAP)…")
    build_projection(name, matrix)
    say("done")


def _run_benchmark(name: str, say: Callable[[str], None]) -> None:
    from core.benchmark.detection import run_evaluation
    from core.benchmark.report import write_evaluation

    result = run_evaluation(name, None, target=1.0, random_state=0, progress=say)
    write_evaluation(result, store.cache_dir(name) / "evaluation")
    say("done")


# --------------------------------------------------------------------------- population moves


@by_version("resource", max_entries=4)
def _item_categories(name: str):
    """(sparse items x categories matrix, each row summing to 1; category names)."""
    from scipy import sparse

    cats = items(name)["categories"]
    names: dict[str, int] = {}
    rows, cols, vals = [], [], []
    for i, row in enumerate(cats):
        row = list(row) if row is not None and len(row) else ["(no category)"]
        for c in row:
            rows.append(i)
            cols.append(names.setdefault(str(c), len(names)))
            vals.append(1.0 / len(row))
    matrix = sparse.csr_matrix((vals, (rows, cols)), shape=(len(cats), max(len(names), 1)))
    return matrix, np.array(list(names), dtype=object)


@by_version(max_entries=32)
def category_moves(name: str, detector: str, threshold: float, window: int = 20) -> pd.DataFrame:
    """What flagged users left and joined: ``from``, ``to``, ``users``, ``example`` (a user id).

    Per user with a change point at ``threshold`` (its strongest one), the category whose
    share fell most and the one whose share rose most between the ``window`` events before
    and after it. Counted with a sparse items x categories matrix rather than one
    explanation per user (hundreds of explanations would take seconds on MovieLens-100K).
    """
    cps = change_points(name, detector, threshold)
    columns = ["from", "to", "users", "example"]
    if len(cps) == 0:
        return pd.DataFrame(columns=columns)
    strongest = cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id")
    matrix, cat_names = _item_categories(name)
    if precomputed(name):
        frame = _windowed_moves(name, strongest, matrix, cat_names, int(window))
    else:
        frame = _moves_of(name, strongest, matrix, cat_names, int(window))
    table = (
        frame.groupby(["from", "to"], sort=False)
        .agg(users=("example", "size"), example=("example", "first"))
        .reset_index()
        .sort_values(["users", "from", "to"], ascending=[False, True, True], kind="stable")
        .reset_index(drop=True)
    )
    return table[columns]


def _moves_of(name: str, strongest: pd.DataFrame, matrix, cat_names: np.ndarray, window: int) -> pd.DataFrame:
    ev, pos = _event_arrays(name), _user_positions(name)
    moves = []
    for r in strongest.itertuples():
        history = ev.item_idx[ev.user_slice(pos[r.user_id])]
        cp = int(r.event_index)
        before, after = history[max(0, cp - window) : cp], history[cp : cp + window]
        if len(before) == 0 or len(after) == 0:
            continue
        change = (
            np.asarray(matrix[after].mean(axis=0)).ravel() - np.asarray(matrix[before].mean(axis=0)).ravel()
        )
        moves.append((cat_names[int(np.argmin(change))], cat_names[int(np.argmax(change))], r.user_id))
    return pd.DataFrame(moves, columns=["from", "to", "example"])


# Users whose change-point windows are read at once (~40 events each: ~2M rows, tens of MB).
_WINDOW_CHUNK_USERS = 50_000


def _windowed_moves(
    name: str, strongest: pd.DataFrame, matrix, cat_names: np.ndarray, window: int
) -> pd.DataFrame:
    """:func:`_moves_of` for a big dataset: only the ``window`` events either side of each
    change point are read (core.artefacts.event_windows), a chunk of users at a time (400,000
    flagged users at 50M events), and the shares of a chunk's users are two sparse products
    instead of a loop over users."""
    from scipy import sparse

    from core.artefacts import event_windows

    parts = []
    for lo in range(0, len(strongest), _WINDOW_CHUNK_USERS):
        chunk = strongest.iloc[lo : lo + _WINDOW_CHUNK_USERS]
        cp = chunk["event_index"].to_numpy(np.int64)
        with _cursor(name) as con:
            k, seq, item = event_windows(name, chunk["user_id"].tolist(), cp, window, window, con)
        n = len(chunk)
        side = 2 * k + (seq >= cp[k])
        sides = sparse.csr_matrix((np.ones(len(k)), (side, item)), shape=(2 * n, matrix.shape[0]))
        sums = np.asarray((sides @ matrix).todense())
        counts = np.bincount(side, minlength=2 * n).astype(np.float64)
        keep = (counts[0::2] > 0) & (counts[1::2] > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            change = (sums[1::2] / counts[1::2, None] - sums[0::2] / counts[0::2, None])[keep]
        parts.append(
            pd.DataFrame(
                {
                    "from": cat_names[np.argmin(change, axis=1)] if len(change) else [],
                    "to": cat_names[np.argmax(change, axis=1)] if len(change) else [],
                    "example": chunk["user_id"].to_numpy()[keep],
                }
            )
        )
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["from", "to", "example"])
