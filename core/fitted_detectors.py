"""Population detectors fitted once and kept on disk, so a fresh dashboard starts in seconds.

Fitting a detector over every MovieLens-100K user and calibrating it on shuffled histories
takes tens of seconds on two cores; a slider then only needs the fitted state (scores,
candidate peaks, calibration curve). :func:`fitted_population` returns
``fit_population``'s :class:`core.detectors.population.PopulationFit` and pickles it under
``store.cache_dir(name)/fitted/``, keyed by the database file, the detector's settings and a
fingerprint of the item features, so a changed dataset, model or detector setting is
refitted rather than served stale.

The pickles are this program's own cache files in the data folder (as trusted as the
DuckDB files beside them); never point the data folder at files from elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import numpy as np

from core import store
from core.detectors import make_detector
from core.detectors.features import genre_matrix
from core.detectors.population import PopulationFit, fit_population
from core.projection import fingerprint

_FORMAT = 1  # bump when PopulationFit's layout changes


def fit_path(name: str, detector: str, items: np.ndarray) -> Path:
    """Cache file of one detector's fit on one dataset with these item features."""
    det = make_detector(detector)
    params = {k: v for k, v in vars(det).items() if not k.endswith("_")}
    key = json.dumps(
        [_FORMAT, detector, params, store.dataset_path(name).stat().st_mtime_ns, fingerprint(items)],
        default=str,
        sort_keys=True,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return store.cache_dir(name) / "fitted" / f"{detector}-{digest}.pkl"


def feature_matrix(name: str, detector: str, item_vectors: np.ndarray) -> np.ndarray:
    """The item features ``detector`` reads: the given embeddings, or genre histograms."""
    if make_detector(detector).features == "genres":
        with store.connect(name) as con:
            return genre_matrix(store.load_items(con))
    return np.asarray(item_vectors, dtype=np.float32)


def fitted_population(name: str, detector: str, item_vectors: np.ndarray) -> PopulationFit:
    """The detector fitted on every user of ``name`` and calibrated: from disk, or fitted now
    by :func:`core.detectors.population.fit_population` (which handles logs too big for
    memory) and then stored. ``item_vectors`` must be the cached item matrix (the caller
    checks it exists, so fitting never has to encode)."""
    items = feature_matrix(name, detector, item_vectors)
    path = fit_path(name, detector, items)
    if path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh)
    # Past fit_population's in-process lru_cache: it is keyed by name only, so after a
    # re-import it would hand back the fit of the old data; the disk key above is exact.
    fit = fit_population.__wrapped__(name, detector)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            pickle.dump(fit, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, path)  # concurrent sessions never read half a file
    finally:
        tmp.unlink(missing_ok=True)
    return fit
