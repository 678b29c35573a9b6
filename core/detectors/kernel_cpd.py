"""Offline segmentation with ruptures' KernelCPD (PELT search, ``jump=1``) per user.

Each user's trajectory (optionally PCA-reduced and whitened with a projection fitted on
the population, so every direction counts by its spread rather than by the encoder's
scale) is segmented with penalty = the threshold; a larger penalty means fewer change
points. The score of a change point is the cost reduction of splitting its segment there
(linear-kernel cost, the within-segment sum of squares). The per-event signal, shown on
timelines, is the gain of a single split of the whole history at that event.

ruptures does the search; only the gain bookkeeping is written here, because ruptures
reports breakpoints without their costs.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.vstack([rng.normal(size=(40, 4)) + [3, 0, 0, 0], rng.normal(size=(40, 4))])
>>> KernelCPD(n_components=None, min_size=5).fit(x, np.array([0, 80])).predict(50.0).event_index
array([40])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np

from core.detectors.base import ChangePoints, Detector, DetectorResult, check_population
from core.errors import ShiftError

KERNELS = ("linear", "cosine")


def _cost(cum: np.ndarray, cum_sq: np.ndarray, a: int, b: int) -> float:
    """Within-segment sum of squares of rows a..b-1, from prefix sums."""
    s = cum[b] - cum[a]
    return float(cum_sq[b] - cum_sq[a] - s @ s / (b - a))


class KernelCPD(Detector):
    name = "kernel_cpd"
    peak_based = False

    def __init__(
        self,
        kernel: str = "linear",
        n_components: int | None = 16,
        whiten: bool = True,
        min_size: int = 10,
        random_state: int = 0,
    ) -> None:
        self.kernel = kernel
        self.n_components = n_components
        self.whiten = whiten
        self.min_size = min_size
        self.random_state = random_state

    @property
    def h(self) -> int:  # the peak window of the base class: the shortest segment
        return self.min_size

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        from sklearn.decomposition import PCA

        if self.kernel not in KERNELS:
            raise ShiftError(f"{self.name}: kernel must be one of {KERNELS}, got {self.kernel!r}")
        self.components_ = self.mean_ = self.scale_ = None
        if self.n_components:
            rng = np.random.default_rng(self.random_state)
            rows = (
                vectors
                if len(vectors) <= 50_000
                else vectors[rng.choice(len(vectors), 50_000, replace=False)]
            )
            k = min(self.n_components, vectors.shape[1], len(rows))
            pca = PCA(n_components=k, whiten=self.whiten, random_state=self.random_state).fit(rows)
            # Kept as arrays (a fit is stored without pickle); transform() applies them in
            # the order scikit-learn's PCA.transform does, so results are bit-identical.
            self.components_, self.mean_ = pca.components_, pca.mean_
            if self.whiten:
                scale = np.sqrt(pca.explained_variance_)
                self.scale_ = np.maximum(scale, np.finfo(scale.dtype).eps)

    def transform(self, vectors: np.ndarray) -> np.ndarray:
        if self.components_ is not None:
            x = np.asarray(vectors, np.float64)
            z = x @ self.components_.T
            z -= self.mean_.reshape(1, -1) @ self.components_.T
            if self.scale_ is not None:
                z /= self.scale_
        else:
            z = np.asarray(vectors, np.float64)
        if self.kernel == "cosine":
            z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return z

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        z = self.transform(vectors)
        out = np.full(len(z), np.nan)
        m = self.min_size
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            n = hi - lo
            if n < 2 * m:
                continue
            cum = np.vstack([np.zeros(z.shape[1]), np.cumsum(z[lo:hi], axis=0)])
            t = np.arange(m, n - m + 1)
            left, right, total = cum[t], cum[n] - cum[t], cum[n]
            gain = (left**2).sum(1) / t + (right**2).sum(1) / (n - t) - total @ total / n
            out[lo + t[t < n]] = gain[t < n]
        return out

    def fit(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None = None) -> KernelCPD:
        super().fit(vectors, offsets, ratings)
        self.z_ = self.transform(check_population(vectors, offsets)[0])
        return self

    def _segment(self, z: np.ndarray, offsets: np.ndarray, thresholds: Sequence[float]) -> list[ChangePoints]:
        import ruptures as rpt

        found: list[list[tuple[int, int, float]]] = [[] for _ in thresholds]
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            if hi - lo < 2 * self.min_size:
                continue
            zu = z[lo:hi]
            algo = rpt.KernelCPD(kernel=self.kernel, min_size=self.min_size, jump=1).fit(zu)
            cum = np.vstack([np.zeros(zu.shape[1]), np.cumsum(zu, axis=0)])
            cum_sq = np.concatenate([[0.0], np.cumsum((zu**2).sum(1))])
            for i, pen in enumerate(thresholds):
                bkps = [0, *algo.predict(pen=float(pen))]
                for a, b, c in zip(bkps[:-2], bkps[1:-1], bkps[2:], strict=True):
                    gain = _cost(cum, cum_sq, a, c) - _cost(cum, cum_sq, a, b) - _cost(cum, cum_sq, b, c)
                    found[i].append((k, b, gain, hi - lo - 1))
        out = []
        for rows in found:
            if not rows:
                out.append(ChangePoints.empty())
                continue
            arr = np.array(rows, dtype=np.float64)
            # Offline: known only once the whole history has been seen (alert = last event).
            out.append(
                ChangePoints(
                    arr[:, 0].astype(np.int64),
                    arr[:, 1].astype(np.int64),
                    arr[:, 2],
                    arr[:, 3].astype(np.int64),
                )
            )
        return out

    def _with_rerun(self, result: DetectorResult) -> DetectorResult:
        return replace(result, rerun=self._segment_fitted)

    def _segment_fitted(self, threshold: float) -> ChangePoints:
        if self.z_ is None:  # restored: projected once, when a threshold first needs a rerun
            if self._population is None:
                raise RuntimeError(f"{self.name}: restored without its population (attach_population)")
            self.z_ = self.transform(np.asarray(self._population(), dtype=np.float64))
        return self._segment(self.z_, self.offsets_, [threshold])[0]

    def export_state(self) -> dict[str, np.ndarray]:
        """The projection only: the population's projected trajectories (``z_``) are recomputed
        from its features when a restored fit first reruns (``attach_population``), not stored
        (without PCA they are every event's 384 numbers: a 308 MB file for MovieLens-100K that
        took a second to read and checksum on every first view)."""
        return {
            key: getattr(self, f"{key}_")
            for key in ("components", "mean", "scale")
            if getattr(self, f"{key}_") is not None
        }

    def _import_state(self, state: dict[str, np.ndarray]) -> None:
        components, mean, scale = (state.get(k) for k in ("components", "mean", "scale"))
        if (self.n_components is not None) != (components is not None):
            raise ValueError(f"{self.name}: the stored projection does not match the settings")
        if components is not None:
            k, d = components.shape if components.ndim == 2 else (-1, -1)
            if (
                not 1 <= k <= self.n_components
                or mean is None
                or mean.shape != (d,)
                or (scale is not None and scale.shape != (k,))
                or not all(
                    np.isfinite(a).all() for a in (components, mean, *([] if scale is None else [scale]))
                )
            ):
                raise ValueError(f"{self.name}: the stored projection is damaged")
        self.components_, self.mean_, self.scale_ = components, mean, scale
        self.z_, self._population = None, None

    def attach_population(self, vectors: Callable[[], np.ndarray]) -> None:
        """Where a restored fit gets the population's per-event features (called lazily)."""
        self._population = vectors

    def detect(
        self, vectors: np.ndarray, offsets: np.ndarray, thresholds: Sequence[float]
    ) -> list[ChangePoints]:
        vectors, offsets = check_population(vectors, offsets)
        return self._segment(self.transform(vectors), offsets, thresholds)

    def null_alarm_scores(self, vectors: np.ndarray, offsets: np.ndarray) -> None:
        return None  # the penalty changes the segmentation itself: calibrate on a grid

    def threshold_grid(self) -> np.ndarray:
        # 16 penalties: each one is a full PELT pass over every user
        scores = self.result_.scores
        top = np.nanmax(scores) if np.any(np.isfinite(scores)) else 1.0
        return np.geomspace(max(top, 1e-6) * 1e-3, max(top, 1e-6) * 2, 16)
