"""Per-event features for the best-split and recent-shift detectors, learned on a population.

Two blocks, each standardised so that neither dominates by its scale:

- the language-model block: the event vectors projected on their first ``n_components``
  principal components (PCA fitted on the population), whitened;
- the category block (only when the dataset has categories): the ``n_categories`` columns
  after the language-model ones, the item's category histogram, centred;
- the co-consumption block (only when ``n_co`` > 0): the last ``n_co`` columns of the input,
  item factors learned from the log's own user-item matrix (:mod:`core.co_consumption`),
  whitened. ``use_co`` False reads the input's layout but leaves the block out (the feature
  choice of :mod:`core.detectors.feature_choice` decides per log).

Optionally (``discriminant`` = a window of h events) the detrended blocks are then projected
on the directions that tell users apart: the generalised eigenvectors of the population's
between-user and within-user covariances of h-event window differences (eigenvalue lambda > 1,
each weighted 1 - 1/lambda; :func:`core.detectors.discriminant.discriminant_directions`).
Whitening gives every principal direction the same weight, so a direction along which each
user's own taste wanders (a page of westerns, then a page of comedies) counts as much as one
along which users differ from each other; the projection keeps the second kind. On
MovieLens-100K splice logs (bench/discriminant_probe.py: root splits only, at an equal 1 real
false alarm per 1,000 events) it lifted F1@10 from 0.27-0.43 (8 or 16 whitened components) to
0.39-0.49 (48 components projected, windows of 12 events); on Food.com the co-consumption block
did more (bench/RESULTS.md, issue 19, fourth round). Whether a log gains is its own choice.

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


def check_co_block(block: np.ndarray) -> None:
    """Raise unless ``block`` looks like co-consumption factors (every row a unit vector, or zeros
    for an item nobody consumed): an item matrix built without them would otherwise have its
    last language-model columns read as co-consumption, silently."""
    norms = np.linalg.norm(np.asarray(block, np.float64), axis=1)
    bad = ~((np.abs(norms - 1.0) < 1e-3) | (norms < 1e-6))
    if bad.any():
        raise ShiftError(
            f"this detector reads the log's item co-consumption factors as the last {block.shape[1]} "
            f"columns of its input, but row {int(np.argmax(bad))} there is not one (norm "
            f"{norms[np.argmax(bad)]:.3g}): build the item matrix with core.artefacts.item_features(name, "
            "detector.features) or core.co_consumption.with_co"
        )


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
        n_co: int = 0,
        use_co: bool = True,
        discriminant: int = 0,
    ) -> None:
        self.n_components = n_components
        self.discriminant = discriminant  # window h of the user-discriminant projection; 0: none
        self.n_categories = n_categories
        self.n_co = n_co
        self.use_co = use_co
        self.detrend = detrend
        self.min_users = min_users
        self.smooth = smooth
        self.random_state = random_state

    def _blocks(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """(language-model, category or None, co-consumption or None) columns of the input."""
        cut = vectors.shape[1] - int(self.n_co)
        co = None
        if self.n_co:
            co = vectors[:, cut:]
            check_co_block(co)  # the layout holds whether or not this setting reads the block
        co = co if self.use_co else None
        rest = vectors[:, :cut]
        c = int(self.n_categories)
        if c:
            return rest[:, :-c], rest[:, -c:], co
        return rest, None, co

    @property
    def reads_co(self) -> bool:
        return bool(self.n_co and self.use_co)

    def _raw(self, vectors: np.ndarray) -> np.ndarray:
        lm, cat, co = self._blocks(np.asarray(vectors, np.float64))
        parts = [self.pca_.transform(lm) / self.lm_scale_] if self.pca_ is not None else []
        if cat is not None:
            parts.append((cat - self.cat_mean_) / self.cat_scale_)
        if co is not None:
            parts.append(self.co_.transform(co) / self.co_scale_)
        return np.hstack(parts)

    def fit(self, vectors: np.ndarray, offsets: np.ndarray) -> ShiftFeatures:
        if self.detrend not in DETRENDS:
            raise ShiftError(f"detrend must be one of {DETRENDS}, got {self.detrend!r}")
        if self.n_components < 0 or self.n_categories < 0:
            raise ShiftError("n_components and n_categories must be >= 0")
        if self.n_co < 0:
            raise ShiftError("n_co must be >= 0")
        if self.n_components == 0 and self.n_categories == 0 and not self.reads_co:
            raise ShiftError("at least one feature block is needed: n_components, n_categories or n_co > 0")
        vectors = np.asarray(vectors, np.float64)
        if vectors.shape[1] <= self.n_co + self.n_categories:
            raise ShiftError(
                f"{vectors.shape[1]} feature columns cannot hold {self.n_categories} category and "
                f"{self.n_co} co-consumption columns besides the language-model ones"
            )
        lm, cat, co = self._blocks(vectors)
        self.pca_ = None
        if self.n_components:
            self.pca_ = self._whitened(lm, self.n_components)
            self.lm_scale_ = np.sqrt(len(self.pca_.explained_variance_))  # whitened: total variance k -> 1
        if co is not None:
            # only the directions the log's factors vary along (a log with no co-consumption
            # to speak of, e.g. every item consumed once, leaves the block empty, not NaN)
            self.co_ = self._whitened(co, co.shape[1], drop_flat=True)
            self.co_scale_ = np.sqrt(max(len(self.co_.explained_variance_), 1))
        if cat is not None:
            self.cat_mean_ = cat.mean(axis=0)
            self.cat_scale_ = max(float(np.sqrt(cat.var(axis=0).sum())), 1e-12)
        z = self._raw(vectors)
        self.trend_ = self._trend(z, offsets) if self.detrend == "index" else np.zeros((1, z.shape[1]))
        self.disc_ = None
        if self.discriminant:
            from core.detectors.discriminant import discriminant_directions

            directions, weights = discriminant_directions(
                self._detrended(z, offsets),  # what transform gives before the projection
                offsets,
                self.discriminant,
                random_state=self.random_state,
                who="the user-discriminant features",
            )
            if not len(weights):
                raise ShiftError("the user-discriminant features: no direction tells these users apart")
            self.disc_ = directions * weights
        return self

    def _whitened(self, block: np.ndarray, k: int, drop_flat: bool = False) -> WhitenedProjection:
        """A whitened PCA of ``block``'s rows (a seeded 50,000 of them past that); ``drop_flat``
        leaves out directions of (numerically) no variance."""
        from sklearn.decomposition import PCA

        rng = np.random.default_rng(self.random_state)
        rows = block if len(block) <= 50_000 else block[rng.choice(len(block), 50_000, replace=False)]
        k = min(k, block.shape[1], len(rows))
        mean = rows.mean(axis=0)
        if drop_flat and float(((rows - mean) ** 2).sum()) <= 1e-18 * len(rows):
            return WhitenedProjection(mean, np.zeros((0, block.shape[1])), np.ones(0))
        pca = PCA(n_components=k, whiten=True, random_state=self.random_state).fit(rows)
        keep = np.ones(len(pca.explained_variance_), bool)
        if drop_flat:
            keep = pca.explained_variance_ > 1e-9 * float(pca.explained_variance_.max())
        return WhitenedProjection(pca.mean_, pca.components_[keep], pca.explained_variance_[keep])

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
        if self.reads_co:
            state["features.co_mean"] = self.co_.mean_
            state["features.co_components"] = self.co_.components_
            state["features.co_variance"] = self.co_.explained_variance_
        if self.discriminant:
            state["features.discriminant"] = self.disc_
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
        if self.reads_co:
            self.co_ = WhitenedProjection(
                state["features.co_mean"], state["features.co_components"], state["features.co_variance"]
            )
            self.co_scale_ = np.sqrt(max(len(self.co_.explained_variance_), 1))
        self.disc_ = np.asarray(state["features.discriminant"], np.float64) if self.discriminant else None
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
        z = self._detrended(self._raw(vectors), offsets)
        if getattr(self, "disc_", None) is not None:
            z = z @ self.disc_
        return z

    def _detrended(self, z: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        if self.detrend == "index":
            idx = np.minimum(event_index(offsets), len(self.trend_) - 1)
            z = z - self.trend_[idx]
        return z
