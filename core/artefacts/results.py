"""Detection results stored with a dataset, for readers that must not fit anything.

A fit of a big dataset takes minutes and gigabytes (50M events: every event's score, the
item features, the calibration); the dashboard opens in seconds only if it reads what
``python -m core detect`` (any engine) already computed. :func:`store_results` writes,
beside the fit, under ``<dataset>.cache/results/<detector>-<features>/``:

- ``scores.parquet``: ``user_idx, event_index, score`` of every event, sorted by user, in
  row groups of ``ROW_GROUP`` events: one user's signal is one row group read (Parquet's
  min/max statistics skip the others);
- ``change_points.parquet``: every candidate peak (``user_idx, user_id, event_index,
  timestamp, score, alert_index``); the change points at a threshold are those scoring at
  least that much (peak-picking detectors, the only ones run on big datasets);
- ``users.parquet``: one row per user (events, highest score, change points at the default
  threshold, the first of them, the probability that the user's shift is real);
- ``summary.json``: population summaries (sizes, default threshold, the whole calibration curve,
  users with a change point, change points per week, a histogram of candidate scores).

Each file carries the fit's manifest (dataset content version, detector settings, item
features, code version); readers serve a file only when it matches, so a re-import or a
changed detector never shows old results. ``summary.json`` is written last and holds the
SHA-256 of each Parquet file: a reader verifies a file once per version (a flipped byte can
still decode, to another score), ``detect`` verifies every one and rewrites any that differs,
and a damaged file is refused with "run detect", never served.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core import limits, store
from core.derived_files import UNREADABLE, InvalidArtefact, Manifest, atomic_write, file_checksum, verify_file
from core.detectors import DEFAULT, population
from core.detectors.calibration import Calibration
from core.detectors.feature_choice import FeatureChoice
from core.detectors.population import FalseAlarmRates, PopulationFit, UserSignal
from core.detectors.real_null import RealCalibration
from core.errors import ShiftError

KIND = "detection-results"
ROW_GROUP = 1_000_000
_META = b"manifest"
_HISTOGRAM_BINS = 50


class NotPrecomputed(ShiftError):
    """A big dataset whose detection results are missing or stale."""


@dataclass(frozen=True)
class StoredSummary:
    """What ``summary.json`` holds (see the module docstring)."""

    detector: str
    n_users: int
    n_events: int
    default_threshold: float
    # the fit's whole curve: threshold <-> false alarms per 1,000 events (and, calibrated on
    # real histories, the share of users flagged, with the check sample's curves)
    calibration: Calibration | RealCalibration
    users_with_change_points: int  # at the default threshold
    n_change_points: int  # at the default threshold
    change_points_per_week: pd.Series  # week start -> count, at the default threshold
    score_histogram: tuple[np.ndarray, np.ndarray]  # (counts, bin edges) of candidate scores


def results_dir(name: str, detector: str, features: np.ndarray) -> Path:
    from core.artefacts.fits import fit_path

    return store.cache_dir(name) / "results" / fit_path(name, detector, features).stem


def _manifest(name: str, detector: str, features: np.ndarray) -> Manifest:
    from core.artefacts.fits import fit_manifest
    from core.detectors import make_detector

    fit = fit_manifest(name, make_detector(detector), features)
    return Manifest(KIND, fit.dataset_version, fit.params, fit.code_version)


def _write_parquet(path: Path, table: pa.Table, manifest: Manifest) -> None:
    table = table.replace_schema_metadata({_META: manifest.to_json().encode()})
    atomic_write(path, lambda tmp: pq.write_table(table, tmp, row_group_size=ROW_GROUP))


def store_results(fit: PopulationFit, manifest: Manifest | None = None) -> Path:
    """Write ``fit``'s results for readers that do not fit (see the module docstring)."""
    name, det = fit.dataset, fit.detector
    manifest = manifest or _manifest(name, det.name, fit.items)
    folder = results_dir(name, det.name, fit.items)
    ev, result = fit.events, fit.result
    users = ev.users
    _write_parquet(
        folder / "scores.parquet",
        pa.table(
            {
                "user_idx": users.event_user.astype(np.int64),
                "event_index": users.index_in_user.astype(np.int32),
                "score": np.asarray(result.scores, np.float64),
            }
        ),
        manifest,
    )
    cand = result.candidates
    rows = ev.offsets[cand.user] + cand.event_index
    _write_parquet(
        folder / "change_points.parquet",
        pa.table(
            {
                "user_idx": cand.user.astype(np.int64),
                "user_id": ev.user_ids[cand.user].astype(str),
                "event_index": cand.event_index.astype(np.int64),
                "timestamp": ev.ts[rows].astype("datetime64[us]"),
                "score": cand.score.astype(np.float64),
                "alert_index": cand.alert_index.astype(np.int64),
            }
        ),
        manifest,
    )
    thr = fit.default_threshold
    fired = cand.where(cand.score >= thr)
    n_users = ev.n_users
    per_user = np.bincount(fired.user, minlength=n_users)
    first = np.full(n_users, -1, np.int64)
    first[fired.user[::-1]] = fired.event_index[::-1]  # sorted by (user, index): the first wins
    max_score = np.full(n_users, np.nan)
    finite = np.isfinite(result.scores)
    np.fmax.at(max_score, users.event_user[finite], result.scores[finite])
    _write_parquet(
        folder / "users.parquet",
        pa.table(
            {
                "user_idx": np.arange(n_users, dtype=np.int64),
                "user_id": ev.user_ids.astype(str),
                "n_events": users.counts.astype(np.int64),
                "max_score": max_score,
                "n_change_points": per_user.astype(np.int64),
                "first_change_index": first,
                # issue 19: 1 - local fdr under the empirical null (NaN without one)
                "probability": population.user_probabilities(fit)["probability"].to_numpy(np.float64),
            }
        ),
        manifest,
    )
    fired_ts = pd.to_datetime(ev.ts[ev.offsets[fired.user] + fired.event_index])
    weeks = pd.Series(1, index=fired_ts).resample("W-MON", label="left", closed="left").sum()
    cal = fit.calibration
    finite_scores = cand.score[np.isfinite(cand.score)]
    counts, edges = np.histogram(finite_scores, bins=_HISTOGRAM_BINS) if len(finite_scores) else ([], [])
    summary = {
        "manifest": json.loads(manifest.to_json()),
        "detector": det.name,
        "n_users": int(n_users),
        "n_events": int(ev.offsets[-1]),
        "default_threshold": float(thr),
        "calibration": cal.to_dict(),
        "users_with_change_points": int((per_user > 0).sum()),
        "n_change_points": int(len(fired)),
        "change_points_per_week": {k.strftime("%Y-%m-%d"): int(v) for k, v in weeks.items()},
        "score_histogram": {"counts": [int(c) for c in counts], "edges": [float(e) for e in edges]},
        "files": {f: file_checksum(folder / f) for f in RESULT_FILES},
    }
    share = population.shift_share(fit)
    if share is not None:  # issue 19: users beyond everyday drift, from the empirical null
        summary["shift_share"] = dataclasses.asdict(share)
    choice = getattr(fit.detector, "choice_", None)
    if choice is not None:  # issue 19: the feature setting this log chose
        summary["feature_choice"] = dataclasses.asdict(choice)
    text = json.dumps(summary)
    atomic_write(folder / "summary.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return folder


def stored_shift_share(name: str, detector: str = DEFAULT) -> population.ShiftShare | None:
    """The share of users beyond everyday drift stored by ``detect`` (None: a detector or a
    log without an empirical null); NotPrecomputed when the results are missing or stale."""
    folder, _ = _checked(name, detector)
    s = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("shift_share")
    return None if s is None else population.ShiftShare(**{**s, "null_z": tuple(s.get("null_z", ()))})


def stored_feature_choice(name: str, detector: str = DEFAULT) -> FeatureChoice | None:
    """The feature setting the log chose at ``detect`` (None: a detector without a choice)."""
    folder, _ = _checked(name, detector)
    c = json.loads((folder / "summary.json").read_text(encoding="utf-8")).get("feature_choice")
    if c is None:
        return None
    return FeatureChoice(
        **{
            **c,
            "candidates": tuple(c["candidates"]),
            "f1": tuple(c["f1"]),
            "co": tuple(c.get("co", ())),
            "disc": tuple(c.get("disc", ())),
        }
    )


def ensure_results(fit: PopulationFit) -> Path:
    """The stored results of ``fit``: written unless files of this very fit are there."""
    manifest = _manifest(fit.dataset, fit.detector.name, fit.items)
    folder = results_dir(fit.dataset, fit.detector.name, fit.items)
    try:
        stored = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
        if manifest.matches(json.dumps(stored.get("manifest"))):
            _verify_files(folder, stored, memo=False)  # every file detect relies on, read whole
            return folder
    except (*UNREADABLE, FileNotFoundError):
        pass
    return store_results(fit, manifest)


RESULT_FILES = ("scores.parquet", "change_points.parquet", "users.parquet")


def _verify_files(folder: Path, summary: dict, memo: bool = True) -> None:
    """Raise InvalidArtefact (or OSError) unless every results file matches its checksum."""
    files = summary.get("files")
    if not isinstance(files, dict):
        raise InvalidArtefact(f"{folder.name}: results written without checksums")
    for f in RESULT_FILES:
        verify_file(folder / f, files.get(f), memo=memo)


def needs_precomputed(name: str) -> bool:
    """Whether readers of ``name`` must use stored results instead of fitting (a big dataset)."""
    with store.connect(name) as con:
        n_events = int(store.dataset_info(con).get("n_events") or 0)
    # the limit above which a fit samples users and scores in chunks (core.limits)
    return n_events > limits.MAX_EVENTS_IN_MEMORY


def _features(name: str, detector: str) -> np.ndarray:
    """The detector's item features without encoding anything (NotPrecomputed when missing)."""
    from core.artefacts.items import cached_item_matrix, item_features
    from core.detectors import make_detector

    kind = make_detector(detector).features
    reads_text = kind.startswith("embedding")  # "embedding" or "embedding+co"
    vectors = cached_item_matrix(name) if reads_text else None
    if reads_text and vectors is None:
        raise NotPrecomputed(f"{name!r} has no encoded items; run: python -m core encode {name}")
    return item_features(name, kind, vectors)


def _checked(name: str, detector: str) -> tuple[Path, Manifest]:
    features = _features(name, detector)
    folder, manifest = results_dir(name, detector, features), _manifest(name, detector, features)
    hint = f"run: python -m core detect {name} --detector {detector}"
    try:
        stored = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (*UNREADABLE, FileNotFoundError):
        raise NotPrecomputed(f"no stored detection results for {name!r} ({detector}); {hint}") from None
    if not manifest.matches(json.dumps(stored.get("manifest"))):
        raise NotPrecomputed(f"the stored results of {name!r} ({detector}) are out of date; {hint}")
    try:
        _verify_files(folder, stored)
    except (*UNREADABLE, FileNotFoundError) as err:
        raise NotPrecomputed(
            f"the stored results of {name!r} ({detector}) are damaged ({err}); {hint}"
        ) from None
    return folder, manifest


def population_summary(name: str, detector: str = DEFAULT) -> StoredSummary:
    """The stored population summaries (never fits; NotPrecomputed when missing or stale)."""
    folder, _ = _checked(name, detector)
    s = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    weeks = pd.Series(s["change_points_per_week"], dtype=np.int64)
    weeks.index = pd.to_datetime(weeks.index)
    return StoredSummary(
        detector=s["detector"],
        n_users=s["n_users"],
        n_events=s["n_events"],
        default_threshold=s["default_threshold"],
        calibration=_calibration(s["calibration"]),
        users_with_change_points=s["users_with_change_points"],
        n_change_points=s["n_change_points"],
        change_points_per_week=weeks,
        score_histogram=(
            np.asarray(s["score_histogram"]["counts"]),
            np.asarray(s["score_histogram"]["edges"]),
        ),
    )


def _calibration(d: dict) -> Calibration | RealCalibration:
    # Each class writes its own to_dict; a real-history curve carries the share of users too.
    return RealCalibration.from_dict(d) if "users_flagged" in d else Calibration.from_dict(d)


def stored_false_alarm_rates(
    name: str, detector: str = DEFAULT, threshold: float | None = None
) -> FalseAlarmRates:
    """Both rates at ``threshold`` (None: the default) from the stored calibration, as
    :func:`core.detectors.population.false_alarm_rates` gives them for a fit."""
    from types import SimpleNamespace

    from core.detectors import make_detector
    from core.detectors.population import false_alarm_rates

    summary = population_summary(name, detector)
    # false_alarm_rates reads only these three attributes of a fit: hand it the stored ones
    # rather than a second copy of its wording.
    stand_in = SimpleNamespace(
        calibration=summary.calibration,
        default_threshold=summary.default_threshold,
        detector=make_detector(detector),
    )
    return false_alarm_rates(stand_in, threshold)


@dataclass(frozen=True)
class ScoredUsers:
    """Who the detector could score, from ``users.parquet``: users with any finite score."""

    n_users: int
    n_scorable: int
    min_events: int  # the shortest scored history (0: none scored)
    scored_events: int  # events of the scorable users


def scored_users(name: str, detector: str = DEFAULT) -> ScoredUsers:
    """Counts of scorable users and their events (two numeric columns read, no user ids)."""
    folder, manifest = _checked(name, detector)
    users = _read(folder / "users.parquet", manifest, columns=["n_events", "max_score"])
    counts = users["n_events"].to_numpy(np.int64)
    scorable = np.isfinite(users["max_score"].to_numpy(np.float64))
    return ScoredUsers(
        n_users=len(counts),
        n_scorable=int(scorable.sum()),
        min_events=int(counts[scorable].min()) if scorable.any() else 0,
        scored_events=int(counts[scorable].sum()),
    )


def _read(path: Path, manifest: Manifest, filters=None, columns=None) -> pd.DataFrame:
    meta = pq.read_schema(path).metadata or {}
    if not manifest.matches(meta.get(_META)):
        raise NotPrecomputed(f"{path} is out of date; run: python -m core detect again")
    return pq.read_table(path, filters=filters, columns=columns).to_pandas()


def user_table(name: str, detector: str = DEFAULT) -> pd.DataFrame:
    """One row per user (``users.parquet``): events, highest score, change points at the
    default threshold and the first of them (-1: none)."""
    folder, manifest = _checked(name, detector)
    return _read(folder / "users.parquet", manifest)


def stored_change_points(
    name: str, detector: str = DEFAULT, threshold: float | None = None, kind: str = "located"
) -> pd.DataFrame:
    """Every user's change points at ``threshold`` (None: the calibrated default; -inf: every
    candidate), in the columns of :func:`core.detectors.population.change_points` (``kind``
    "tentative" for a recent-shift companion's alerts, as
    :func:`core.detectors.population.tentative_alerts` labels them)."""
    folder, manifest = _checked(name, detector)
    thr = population_summary(name, detector).default_threshold if threshold is None else float(threshold)
    cp = _read(
        folder / "change_points.parquet", manifest, [("score", ">=", thr)] if np.isfinite(thr) else None
    )
    return _frame(cp, detector, kind)


def _frame(cp: pd.DataFrame, detector: str, kind: str = "located") -> pd.DataFrame:
    cp = cp.sort_values(["user_idx", "event_index"], kind="stable").reset_index(drop=True)
    return pd.DataFrame(
        {
            "user_id": cp.user_id.astype(str),
            "event_index": cp.event_index.astype(np.int64),
            "timestamp": pd.to_datetime(cp.timestamp),
            "score": cp.score.astype(np.float64),
            "detector": detector,
            "alert_index": cp.alert_index.astype(np.int64),
            "kind": kind,
        }
    )


def stored_user_signal(
    name: str, user_id: str, detector: str = DEFAULT, threshold: float | None = None
) -> UserSignal:
    """One user's score signal and change points read from the stored results: only that
    user's row group is read, whatever the size of the dataset."""
    folder, manifest = _checked(name, detector)
    with store.connect(name) as con:
        k = store.user_index(con, user_id)
    key = [("user_idx", "=", k)]
    scores = _read(folder / "scores.parquet", manifest, key).sort_values("event_index")
    thr = population_summary(name, detector).default_threshold if threshold is None else float(threshold)
    cp = _read(folder / "change_points.parquet", manifest, key)
    frame = _frame(cp[cp.score >= thr], detector)
    return UserSignal(str(user_id), thr, scores.score.to_numpy(np.float64), frame)


def event_windows(
    name: str, user_ids, centres, before: int, after: int, con=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item indices of the events ``[centre - before, centre + after)`` of each given user (a
    change point's neighbourhood), read from the dataset's database for those users only:
    ``(k, seq, item_idx)`` arrays, ``k`` the position in ``user_ids``, sorted by ``(k, seq)``
    (:func:`core.store.event_windows`). What readers of a big dataset use instead of the whole
    event array (16 bytes an event: 0.8 GB at 50M events)."""
    if con is not None:
        return store.event_windows(con, user_ids, centres, before, after)
    with store.connect(name, read_only=True) as own:
        return store.event_windows(own, user_ids, centres, before, after)


@dataclass(frozen=True)
class UserSample:
    """Whole histories of a seeded sample of users: ``item_idx`` in CSR layout by ``offsets``."""

    item_idx: np.ndarray
    offsets: np.ndarray
    n_users: int  # users in the sample
    of_users: int  # users in the dataset


def sample_users(con, max_events: int | None = None, random_state: int = 0) -> tuple[np.ndarray, int]:
    """(``user_idx`` of whole users drawn at random, seeded, until ``max_events`` events (None:
    the product's memory limit, :mod:`core.limits`); the number of users in the dataset)."""
    max_events = limits.MAX_EVENTS_IN_MEMORY if max_events is None else int(max_events)
    return store.sample_users(con, max_events, random_state)


def sampled_histories(
    name: str, max_events: int | None = None, random_state: int = 0, con=None
) -> UserSample:
    """Item indices of the whole histories of :func:`sample_users`; only the sample is read."""

    def read(c) -> UserSample:
        idx, n_users = sample_users(c, max_events, random_state)
        item_idx, offsets = store.user_histories(c, idx)
        return UserSample(item_idx, offsets, len(offsets) - 1, n_users)

    if con is not None:
        return read(con)
    with store.connect(name, read_only=True) as own:
        return read(own)
