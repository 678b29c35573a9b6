"""Detectors fitted on a whole dataset and calibrated, stored as arrays so a fresh process
(the dashboard, the next CLI run) starts in seconds instead of refitting.

Fitting a detector over every MovieLens-100K user and calibrating it on shuffled histories
takes tens of seconds on two cores; a slider then only needs the result (scores, candidate
peaks), the calibration curve and, for threshold-dependent detectors, their learned state.
All of it goes into one ``.npz`` per (detector, item features) under
``<dataset>.cache/fits/``, with a manifest of the dataset's content version, the detector's
settings, the features' fingerprint and the code version of the detectors: any change
refits instead of serving an old fit.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np

import core.detectors
import core.detectors.calibration
import core.detectors.real_null
import core.trajectory
import core.user_events
from core import store
from core.artefacts.datasets import dataset_version, events, shift_free_users
from core.artefacts.items import item_features
from core.derived_files import InvalidArtefact, Manifest, code_version, load_npz, load_or_build, save_npz
from core.detectors import DEFAULT, make_detector, population
from core.detectors.base import ChangePoints, Detector, DetectorResult
from core.detectors.calibration import Calibration
from core.detectors.population import CALIBRATION_SHUFFLES, PopulationFit, Scorer, fit_population
from core.detectors.real_null import RealCalibration

KIND = "detector-fit"
# Folders of earlier versions of this cache (pickled fits, separate calibration files):
# removed when a fit is stored, so an updated install keeps no pickles in its data folder.
_LEGACY = (("fitted", "*.pkl"), ("calibration", "*.json"))
_CANDIDATE_FIELDS = ("user", "event_index", "score", "alert_index")


def fingerprint(matrix: np.ndarray) -> str:
    """Identifies a matrix (shape and contents), so an artefact is never paired with another."""
    vectors = np.ascontiguousarray(matrix, dtype=np.float32)
    digest = hashlib.sha1(vectors.tobytes()).hexdigest()[:16]
    return f"{vectors.shape[0]}x{vectors.shape[1]}:{digest}"


def detector_params(det: Detector) -> dict:
    """A detector's settings: its constructor arguments (learned state ends in ``_``)."""
    return {k: v for k, v in vars(det).items() if not k.endswith("_")}


def fit_path(name: str, detector: str, features: np.ndarray) -> Path:
    """File of one detector's fit on one dataset with this item feature matrix."""
    suffix = hashlib.sha256(fingerprint(features).encode()).hexdigest()[:12]
    return store.cache_dir(name) / "fits" / f"{detector}-{suffix}.npz"


def _code_version() -> str:
    return code_version(
        core.detectors,
        core.detectors.calibration,
        core.detectors.real_null,
        core.trajectory,
        core.user_events,
        sys.modules[__name__],
    )


def fit_manifest(name: str, det: Detector, features: np.ndarray) -> Manifest:
    return Manifest(
        KIND,
        dataset_version(name),
        {
            "detector": det.name,
            "settings": detector_params(det),
            "features": fingerprint(features),
            "calibration_shuffles": CALIBRATION_SHUFFLES,
            "calibration_null": det.null,
            # the smallest real null sample (a change moves a log between real and shuffled)
            "real_null_min": [population.MIN_REAL_NULL_USERS, population.MIN_REAL_NULL_EVENTS],
        },
        _code_version(),
    )


def fitted_detector(
    name: str, detector: str = DEFAULT, item_vectors: np.ndarray | None = None, scorer: Scorer | None = None
) -> PopulationFit:
    """``detector`` fitted on every user of dataset ``name`` and calibrated: from disk, or fitted
    now and stored. ``item_vectors`` is the item matrix when the caller holds it (otherwise it
    is read from the embeddings cache, encoding what is missing). ``scorer`` scores the users
    when a fit is built (an engine of :mod:`core.runner`); the stored file is the same whichever
    engine built it, so it is not part of the manifest."""
    det = make_detector(detector)
    features = item_features(name, det.features, item_vectors)
    ev = events(name)
    return load_or_build(
        fit_path(name, detector, features),
        fit_manifest(name, det, features),
        read=lambda path: _read(path, name, detector, ev, features),
        build=lambda: fit_population(
            ev,
            features,
            det,
            dataset=name,
            scorer=scorer,
            null_users=shift_free_users(name) if det.null == "real" else None,
        ),
        write=_write,
    )


def _remove_legacy(name: str) -> None:
    for folder, pattern in _LEGACY:
        path = store.cache_dir(name) / folder
        for f in path.glob(pattern):
            f.unlink(missing_ok=True)
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def _write(path: Path, fit: PopulationFit, manifest: Manifest) -> None:
    r, cal = fit.result, fit.calibration
    if isinstance(cal, RealCalibration):
        calibration = {f"real_calibration.{k}": v for k, v in cal.to_arrays().items()}
    else:
        calibration = {
            "calibration.thresholds": cal.thresholds,
            "calibration.false_alarms": cal.false_alarms,
            "calibration.n_null_events": np.asarray(cal.n_null_events),
        }
    arrays = {
        "scores": r.scores,
        "offsets": r.offsets,
        **{f"candidates.{f}": getattr(r.candidates, f) for f in _CANDIDATE_FIELDS},
        **calibration,
        **{f"state.{k}": v for k, v in fit.detector.export_state().items()},
    }
    if r.rerun is not None and np.isfinite(fit.default_threshold):
        # A threshold-dependent detector reruns every user for its change points at a
        # threshold (seconds): those at the default are stored, so a first view is a read.
        found = r.at(fit.default_threshold)
        arrays["default_change_points.threshold"] = np.asarray(fit.default_threshold)
        arrays.update({f"default_change_points.{f}": getattr(found, f) for f in _CANDIDATE_FIELDS})
    save_npz(path, manifest, arrays)
    _remove_legacy(fit.dataset)


def _read(path: Path, name: str, detector: str, ev: store.EventArrays, features: np.ndarray):
    manifest, a = load_npz(path)
    n = int(ev.offsets[-1])
    if a["scores"].shape != (n,) or not np.array_equal(a["offsets"], ev.offsets):
        raise InvalidArtefact(f"{path}: fitted on another population")
    cand = ChangePoints(*(a[f"candidates.{f}"] for f in _CANDIDATE_FIELDS))
    if len({len(getattr(cand, f)) for f in _CANDIDATE_FIELDS}) != 1 or not np.isfinite(cand.score).all():
        raise InvalidArtefact(f"{path}: inconsistent candidates")
    real = {k.removeprefix("real_calibration."): v for k, v in a.items() if k.startswith("real_calibration.")}
    if real:
        try:
            cal = RealCalibration.from_arrays(detector, real)
        except (KeyError, ValueError) as err:
            raise InvalidArtefact(f"{path}: invalid real calibration ({err})") from None
    else:
        thresholds, rates = a["calibration.thresholds"], a["calibration.false_alarms"]
        if thresholds.shape != rates.shape or np.isnan(thresholds).any() or not np.isfinite(rates).all():
            raise InvalidArtefact(f"{path}: invalid calibration")
        cal = Calibration(detector, thresholds, rates, int(a["calibration.n_null_events"]))
    state = {k.removeprefix("state."): v for k, v in a.items() if k.startswith("state.")}
    try:
        det = make_detector(detector).restore(state, DetectorResult(a["scores"], a["offsets"], cand))
    except (KeyError, ValueError) as err:
        raise InvalidArtefact(f"{path}: stored detector state does not load ({err!r})") from None
    if hasattr(det, "attach_population"):  # state it recomputes from the population, not stored
        det.attach_population(lambda: features[ev.item_idx])
    result = det.result_
    if "default_change_points.threshold" in a and result.rerun is not None:
        known = ChangePoints(*(a[f"default_change_points.{f}"] for f in _CANDIDATE_FIELDS))
        result = result.knowing(float(a["default_change_points.threshold"]), known)
    return manifest, PopulationFit(name, det, ev, features, cal, result)
