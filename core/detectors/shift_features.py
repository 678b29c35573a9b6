"""Per-event features for the best-split and recent-shift detectors, learned on a population.

Two blocks, each standardised so that neither dominates by its scale:

- the language-model block: the event vectors projected on their first ``n_components``
  principal components (PCA fitted on the population), whitened;
- the category block (only when the dataset has categories): the last ``n_categories``
  columns of the input, the item's category histogram, centred.

Each block is divided by the square root of its total variance, so each carries a total
variance of 1 whatever its width.

Detrending removes what every user shares before scoring: the population's mean feature
at each event index is subtracted (a user's n-th event is compared with everyone's n-th),
so common drift (sign-up back-fill, onboarding) is not a personal change. Beyond the index
where fewer than ``min_users`` users remain, the last reliable mean is carried forward.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(60, 6))
>>> f = ShiftFeatures(n_components=3).fit(x, np.array([0, 30, 60]))
>>> f.transform(x, np.array([0, 30, 60])).shape
(60, 3)
"""

from __future__ import annotations

import numpy as np

from core.errors import ShiftError

DETRENDS = ("index", "none")


def event_index(offsets: np.ndarray) -> np.ndarray:
    """Every event's index within its user's history (CSR layout)."""
    counts = np.diff(offsets)
    return np.arange(int(offsets[-1])) - np.repeat(offsets[:-1], counts)


class WhitenedProjection:
    """A fitted whitened PCA as its three arrays: ``transform(x) = (x - mean_) @
    components_.T / sqrt(explained_variance_)``, as scikit-learn's ``PCA(whiten=True)``
    computes it. Hand-written so that a stored fit is read back without importing
    scikit-learn (over a second of every dashboard process's first page)."""

    def __init__(self, mean: np.ndarray, components: np.ndarray, explained_variance: np.ndarray) -> None:
        self.mean_ = np.asarray(mean, np.float64)
        self.components_ = np.asarray(components, np.float64)
        self.explained_variance_ = np.asarray(explained_variance, np.float64)

    def transform(self, x: np.ndarray) -> np.ndarray:
        # x @ W - mean @ W, not (x - mean) @ W: the same numbers without a centred copy of x
        # (100,000 events x 384 dimensions: a 300 MB temporary per call)
        w = self.components_.T / np.sqrt(self.explained_variance_)
        return np.asarray(x, np.float64) @ w - self.mean_ @ w


class ShiftFeatures:
    """Block-standardised, optionally detrended per-event features (fit on a population)."""

    def __init__(
        self,
        n_components: int = 8,
        n_categories: int = 0,
        detrend: str = "index",
        min_users: int = 30,
        smooth: int = 5,
        random_state: int = 0,
    ) -> None:
        self.n_components = n_components
        self.n_categories = n_categories
        self.detrend = detrend
        self.min_users = min_users
        self.smooth = smooth
        self.random_state = random_state

    def _blocks(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        c = int(self.n_categories)
        if c:
            return vectors[:, :-c], vectors[:, -c:]
        return vectors, None

    def _raw(self, vectors: np.ndarray) -> np.ndarray:
        lm, cat = self._blocks(np.asarray(vectors, np.float64))
        parts = [self.pca_.transform(lm) / self.lm_scale_] if self.pca_ is not None else []
        if cat is not None:
            parts.append((cat - self.cat_mean_) / self.cat_scale_)
        return np.hstack(parts)

    def fit(self, vectors: np.ndarray, offsets: np.ndarray) -> ShiftFeatures:
        from sklearn.decomposition import PCA

        if self.detrend not in DETRENDS:
            raise ShiftError(f"detrend must be one of {DETRENDS}, got {self.detrend!r}")
        if self.n_components < 0 or self.n_categories < 0:
            raise ShiftError("n_components and n_categories must be >= 0")
        if self.n_components == 0 and self.n_categories == 0:
            raise ShiftError("at least one feature block is needed: n_components or n_categories > 0")
        vectors = np.asarray(vectors, np.float64)
        lm, cat = self._blocks(vectors)
        self.pca_ = None
        if self.n_components:
            rng = np.random.default_rng(self.random_state)
            rows = lm if len(lm) <= 50_000 else lm[rng.choice(len(lm), 50_000, replace=False)]
            k = min(self.n_components, lm.shape[1], len(rows))
            pca = PCA(n_components=k, whiten=True, random_state=self.random_state).fit(rows)
            self.pca_ = WhitenedProjection(pca.mean_, pca.components_, pca.explained_variance_)
            self.lm_scale_ = np.sqrt(k)  # whitened: total variance k -> 1
        if cat is not None:
            self.cat_mean_ = cat.mean(axis=0)
            self.cat_scale_ = max(float(np.sqrt(cat.var(axis=0).sum())), 1e-12)
        z = self._raw(vectors)
        self.trend_ = self._trend(z, offsets) if self.detrend == "index" else np.zeros((1, z.shape[1]))
        return self

    def export_state(self) -> dict[str, np.ndarray]:
        """The learned state as plain arrays (stored without pickle; see :meth:`restore`)."""
        state = {"features.trend": self.trend_}
        if self.pca_ is not None:
            state.update(
                {
                    "features.pca_mean": self.pca_.mean_,
                    "features.pca_components": self.pca_.components_,
                    "features.pca_variance": self.pca_.explained_variance_,
                    "features.lm_scale": np.asarray(self.lm_scale_, np.float64),
                }
            )
        if self.n_categories:
            state["features.cat_mean"] = self.cat_mean_
            state["features.cat_scale"] = np.asarray(self.cat_scale_, np.float64)
        return state

    def restore(self, state: dict[str, np.ndarray]) -> ShiftFeatures:
        """Put back :meth:`export_state`'s arrays; returns self (KeyError when one is missing)."""
        self.trend_ = np.asarray(state["features.trend"], np.float64)
        self.pca_ = None
        if self.n_components:
            self.pca_ = WhitenedProjection(
                state["features.pca_mean"], state["features.pca_components"], state["features.pca_variance"]
            )
            self.lm_scale_ = float(state["features.lm_scale"])
        if self.n_categories:
            self.cat_mean_ = np.asarray(state["features.cat_mean"], np.float64)
            self.cat_scale_ = float(state["features.cat_scale"])
        return self

    def _trend(self, z: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Mean feature at each event index, smoothed, carried forward where users are few."""
        idx = event_index(offsets)
        n_idx = int(idx.max()) + 1 if len(idx) else 1
        counts = np.bincount(idx, minlength=n_idx).astype(np.float64)
        sums = np.zeros((n_idx, z.shape[1]))
        np.add.at(sums, idx, z)
        # Enough users: the raw mean; a centred moving average (window ``smooth``) takes the
        # noise of a few hundred users off without blurring the onboarding trend.
        reliable = int(np.searchsorted(-counts, -self.min_users, side="right"))
        reliable = max(reliable, 1)
        mean = sums[:reliable] / np.maximum(counts[:reliable, None], 1)
        if self.smooth > 1 and reliable > self.smooth:
            k = np.ones(self.smooth) / self.smooth
            pad = self.smooth // 2
            padded = np.pad(mean, ((pad, self.smooth - 1 - pad), (0, 0)), mode="edge")
            mean = np.stack([np.convolve(padded[:, j], k, mode="valid") for j in range(mean.shape[1])], 1)
        return mean

    def transform(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Features (N, k) of a population in CSR layout, detrended by event index."""
        if not hasattr(self, "trend_"):
            raise RuntimeError("ShiftFeatures: call fit() before transform()")
        z = self._raw(vectors)
        if self.detrend == "index":
            idx = np.minimum(event_index(offsets), len(self.trend_) - 1)
            z = z - self.trend_[idx]
        return z
