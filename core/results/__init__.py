"""Detection results: one way to read them, whatever produced them.

logs -> store -> item features -> trajectories -> detectors -> **results** -> explanations,
re-recommendation, pages. The CLI, the Python API and the dashboard read a detector's results
on a dataset through :class:`~core.results.base.DetectionResults`:

- :func:`open_results` picks the implementation once per dataset: the files ``detect`` stored
  (:class:`~core.results.stored.StoredResults`) for a dataset too big to fit in memory
  (:mod:`core.limits`), else the detector fitted on every user
  (:class:`~core.results.fitted.FittedResults`: read from its stored fit, or fitted now);
- :func:`fit_results` always fits (what ``detect`` runs, on any engine) and stores the results
  for readers that must not fit;
- :func:`~core.results.moves.category_moves`: what flagged users left and joined.

>>> from core.results import DetectionResults
>>> sorted(m for m in ("change_points", "summary", "scale", "user_state") if hasattr(DetectionResults, m))
['change_points', 'scale', 'summary', 'user_state']
"""

from __future__ import annotations

import numpy as np

from core.detectors import DEFAULT, make_detector
from core.results.base import DetectionResults, PopulationSummary, ThresholdScale, UserState
from core.results.fitted import FittedResults
from core.results.stored import StoredResults

__all__ = [
    "DetectionResults",
    "FittedResults",
    "PopulationSummary",
    "StoredResults",
    "ThresholdScale",
    "UserState",
    "fit_results",
    "is_stored",
    "open_results",
]


def is_stored(name: str) -> bool:
    """Whether ``name``'s results are read from what ``detect`` stored (a big dataset)."""
    from core.artefacts import needs_precomputed

    return needs_precomputed(name)


def open_results(
    name: str, detector: str = DEFAULT, item_vectors: np.ndarray | None = None
) -> DetectionResults:
    """``detector``'s results on dataset ``name``: stored ones for a big dataset (never fits),
    else the fit on every user (from disk, or fitted and stored now). ``item_vectors`` is the
    item matrix when the caller holds it."""
    make_detector(detector)  # an unknown name fails before any data is read
    if is_stored(name):
        return StoredResults(name, detector)
    return _fitted(name, detector, item_vectors, None)


def fit_results(
    name: str, detector: str = DEFAULT, item_vectors: np.ndarray | None = None, scorer=None
) -> FittedResults:
    """``detector`` fitted on every user of ``name`` (``scorer``: an engine of :mod:`core.runner`),
    its results and its companion's stored for the readers that fit nothing."""
    from core import artefacts

    results = _fitted(name, detector, item_vectors, scorer)
    artefacts.ensure_results(results.fit)
    companion = results.companion()
    if companion is not None:
        artefacts.ensure_results(companion.fit)
    return results


def _fitted(name: str, detector: str, item_vectors, scorer) -> FittedResults:
    from core import artefacts

    fit = artefacts.fitted_detector(name, detector, item_vectors, scorer=scorer)
    tentative = getattr(fit.detector, "tentative", None)
    if not tentative:
        return FittedResults(fit)
    # the companion scores apart on the same engine when its users can be scored apart
    apart = make_detector(tentative).peak_based or make_detector(tentative).chunkable
    return FittedResults(fit, lambda: _fitted(name, tentative, item_vectors, scorer if apart else None))
