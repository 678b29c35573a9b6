"""Whether an artefact would load without being built: callers that must not block (the
dashboard) build a missing one in the background instead of waiting on it.

A module of its own: the fits' code version is a digest of ``fits.py``, so an addition
there would invalidate every stored fit.
"""

from __future__ import annotations

import numpy as np

from core.artefacts.fits import fit_manifest, fit_path
from core.artefacts.items import item_features
from core.derived_files import UNREADABLE, read_manifest
from core.detectors import make_detector


def fit_is_stored(name: str, detector: str, item_vectors: np.ndarray | None = None) -> bool:
    """Whether :func:`core.artefacts.fitted_detector` would read its fit from disk (no
    fitting): the stored file's manifest matches. Reads the manifest alone."""
    det = make_detector(detector)
    features = item_features(name, det.features, item_vectors)
    path = fit_path(name, detector, features)
    if not path.exists():
        return False
    try:
        stored = read_manifest(path)
    except UNREADABLE:
        return False
    return fit_manifest(name, det, features).matches(stored)
