"""Two-window rule in the directions where users differ from each other more than a user
differs from themself over time.

Real histories drift locally (a MovieLens user rates a page of westerns, then a page of
comedies), so a raw window change is often just that. From the population (no labels)
this detector estimates two covariances of window differences: within users (after-window
minus before-window of the same user) and between users (after-window of one user minus
before-window of another). The generalised eigenvectors of that pair (scipy ``eigh``) are
the directions of taste that tell users apart; the score is the Gaussian log-likelihood
ratio "between users" versus "within a user", Σ_i (1 − 1/λ_i) z_i² over eigenvalues
λ_i > 1 — a change that looks like becoming another user.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> centres = rng.normal(size=(30, 6)) * [3, 3, 0, 0, 0, 0]  # users differ in 2 directions
>>> x = np.vstack([c + rng.normal(size=(40, 6)) for c in centres])
>>> x[20 * 40 + 20:21 * 40] += [6, -6, 0, 0, 0, 0]  # user 20 changes taste at event 20
>>> cp = UserDiscriminant(h=10, random_state=0).fit(x, np.arange(0, 1201, 40)).predict(12.0)
>>> cp.user, cp.event_index
(array([20]), array([20]))
"""

from __future__ import annotations

import numpy as np

from core.detectors.base import Detector
from core.detectors.windows import valid_rows, window_means
from core.errors import DataError
from core.user_events import UserEvents


class UserDiscriminant(Detector):
    name = "discriminant"

    def __init__(
        self, h: int = 20, n_pairs: int = 20_000, ridge: float = 1e-6, random_state: int = 0
    ) -> None:
        self.h = h
        self.n_pairs = n_pairs
        self.ridge = ridge
        self.random_state = random_state

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        self.center_ = vectors.mean(axis=0)
        self.projection_, self.weights_ = discriminant_directions(
            vectors - self.center_, offsets, self.h, self.n_pairs, self.ridge, self.random_state, self.name
        )

    def score_signal(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        z = (vectors - self.center_) @ self.projection_
        before, after = window_means(z, offsets, self.h)
        return (((after - before) ** 2) * self.weights_).sum(axis=1)


def discriminant_directions(
    vectors: np.ndarray,
    offsets: np.ndarray,
    h: int,
    n_pairs: int = 20_000,
    ridge: float = 1e-6,
    random_state: int = 0,
    who: str = "discriminant",
) -> tuple[np.ndarray, np.ndarray]:
    """(directions (d, m), weights (m,)): the generalised eigenvectors of the between-user and
    within-user covariances of ``h``-event window differences of a population (CSR layout),
    those with eigenvalue lambda > 1, and their weights 1 - 1/lambda. ``vectors`` centred.
    Raises DataError with fewer than two users of ``2 h`` events."""
    from scipy.linalg import eigh

    before, after = window_means(vectors, offsets, h)
    rows = np.flatnonzero(valid_rows(offsets, h))
    user = UserEvents(offsets).event_user
    if len(rows) < 2 or len(np.unique(user[rows])) < 2:
        raise DataError(f"{who}: needs at least two users with {2 * h}+ events")
    rng = np.random.default_rng(random_state)
    i, j = rng.choice(rows, n_pairs), rng.choice(rows, n_pairs)
    other = user[i] != user[j]
    d = vectors.shape[1]
    within = np.cov((after[rows] - before[rows]).T).reshape(d, d) + ridge * np.eye(d)
    between = np.cov((after[i[other]] - before[j[other]]).T).reshape(d, d) + ridge * np.eye(d)
    lam, vecs = eigh(between, within)
    keep = lam > 1.0
    return vecs[:, keep], 1.0 - 1.0 / lam[keep]
