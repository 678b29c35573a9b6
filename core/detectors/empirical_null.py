"""Efron's empirical null for per-user shift scores: fitted to the bulk of the log's own users.

Real users drift on their own, so "how large a best-split F is by chance" must be learned
from the log itself; but a log also holds users who really shifted, and they sit in the
upper tail. A null fitted to the whole distribution (or to its tail, as the length null of
:mod:`core.detectors.best_split` did on the top decile) learns them as normal and compresses
their scores. Large-scale inference's answer (Efron 2004, *Large-scale simultaneous
hypothesis testing: the choice of a null hypothesis*; Efron 2010, ch. 6) is to fit the null
to the centre of the score distribution, where the non-null minority barely reaches; the share
of users beyond it (pi1 = 1 - pi0) and each user's local false discovery rate come with it.

The fit, on x = log(max F) of each user's root split and its history length n:

1. **Length.** max F grows with n (real users drift, and a drift's F grows with the events
   that carry it), so users are grouped in equal-count length buckets and each bucket is
   centred on its median and scaled by the spread of its *lower half*
   ((median - 25th percentile) / 0.674, a normal's): both statistics move little when a
   minority of users is pushed into the upper tail.
2. **Bulk.** The pooled standardised scores are fitted by a two-component normal mixture
   (scikit-learn's ``GaussianMixture``, EM): the lower component is the null N(delta,
   sigma0^2) with weight pi0, the upper one absorbs the users beyond everyday drift. The
   shifters get a component of their own instead of widening the null (a tail fit, or a
   normal fitted to everyone, learns them as normal), so a minority of shifters leaves the
   null where the bulk is; delta and sigma0 also correct step 1's small pull of the median.
   (Efron's truncated-normal MLE below the median, ``locfdr``'s ``MLE`` method, was tried
   first: with ~1,000 users its pi0 was too unstable, 95% intervals as wide as 0-0.25.)
3. **Per user.** z = (x - mu(n)) / sigma(n) is N(0, 1) under the null; the local fdr is
   pi0 * phi(z) / f(z) with f the density of every user's z (a Gaussian kernel estimate),
   made non-increasing above the null's centre; the probability that the shift is real is
   1 - lfdr. The tail-area FDR of a threshold t is pi0 * N * (1 - Phi(t)) / #{z >= t}.
4. **Interval.** pi1 is refitted on users resampled with replacement (a percentile bootstrap).

**A log whose bulk is moving** (half the users spliced, a marketing event that moved
everyone) breaks the premise: the centre itself is shifted and pi1 comes out large. When
the fitted pi1 reaches ``BULK_MOVING_SHARE`` the null falls back to one that does not come from
the log's centre, and every text names it: the *shuffled* null when the caller gives the scores of
the same users' histories with their events in random order (the default detector does: the same
features, whatever setting the log chose), else the *reference* one, the length curve fitted on
the bulk of MovieLens-100K and Food.com users (``REFERENCE``; for the 16-component features it was
fitted on only). A shuffled history has no change and no everyday drift either, so the share
beyond the shuffled null counts drift too: an upper bound, said so.

Why not statsmodels' ``local_fdr``: statsmodels is not in the environment, and its
``NullDistribution`` fits one global null, with no length dependence; ``scipy.stats``
carries the distributions and the kernel density, scikit-learn the mixture.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> n = rng.integers(30, 300, 2000)
>>> x = 0.5 * np.log(n) + rng.normal(0, 0.4, 2000)
>>> x[:200] += 2.0  # 10% of users shifted
>>> null = EmpiricalNull().fit(x, n)
>>> round(null.pi1_, 2), null.source_
(0.1, 'empirical')
"""

from __future__ import annotations

import numpy as np

# scipy.special, not scipy.stats: the normal's functions are these (scipy.stats' norm calls
# them), and importing scipy.stats costs 0.6 s of every process's first page; the one KDE at
# fit time imports it there.
from scipy import special

from core.errors import ShiftError

# A fitted share of shifted users this large means the centre of the log is moving: the
# bulk can no longer stand for everyday drift, and the reference null is used instead.
BULK_MOVING_SHARE = 0.3
# Normal-consistent spread from the lower half: (median - Q1) / z_0.75.
_Q1_TO_SIGMA = float(special.ndtri(0.75))
# The reference null: location a + b log n and spread c + d log n of log(max F) of the root
# split, for the default best_split features (16 components, index detrending, min_size 12),
# fitted by this module to the bulk of MovieLens-100K (943 users: a = -1.21, b = 0.505,
# c = 0.345, d = 0.009) and of a seeded 300,000-event sample of Food.com (9,399 users:
# -0.665, 0.276, 0.445, -0.041), averaged: `python -m bench.detection_study --reference
# movielens-100k food`. The two logs disagree: at 100 events their null centres lie 0.52 apart
# in log F, over one null spread, so a share read off the reference is rough on any other log.
REFERENCE = {"a": -0.939, "b": 0.391, "c": 0.395, "d": -0.016}

SOURCES = {
    "empirical": "an empirical null fitted to the bulk of this log's own users",
    "reference": "the reference null stored with the product (the bulk of MovieLens-100K and Food.com users)",
    "known": "the null of the users the ground truth marks as unchanged (a planted world)",
    "shuffled": (
        "a null of this log's own histories with each user's events in random order (no change in any "
        "of them, and no everyday drift either, so the share beyond it counts drift too: an upper bound)"
    ),
}
# Nulls whose upper tail is their own users' scores (sorted, ``null_z``), not a normal's.
OWN_TAIL = ("known", "shuffled")


def _standardise_buckets(x: np.ndarray, length: np.ndarray, per_bucket: int, max_buckets: int):
    """Per equal-count length bucket: median log length, median x and lower-half spread."""
    order = np.argsort(length, kind="stable")
    n_buckets = int(np.clip(len(x) // per_bucket, 1, max_buckets))
    loglen, centre, spread = [], [], []
    for g in np.array_split(order, n_buckets):
        med, q1 = np.quantile(x[g], [0.5, 0.25])
        loglen.append(float(np.median(np.log(length[g]))))
        centre.append(float(med))
        spread.append(max(float(med - q1) / _Q1_TO_SIGMA, 1e-6))
    return np.array(loglen), np.array(centre), np.array(spread)


def _bulk_mixture(z: np.ndarray, random_state: int = 0) -> tuple[float, float, float]:
    """(pi0, delta, sigma0): a two-component normal mixture; the null is the lower component.

    EM starts from the null at the centre and the shifters far above it, right for a minority
    of shifters. When half the users moved, step 1's median sits between the two groups and that
    start lets one component cover both (a planted half read a share of 5%;
    tests/test_empirical_null.py), so EM is also started from k-means, and that fit is kept when
    it is likelier *and* shows two separate groups (Ashman's D = sqrt(2) |mu1 - mu2| /
    sqrt(s1^2 + s2^2) > 2): on real logs' unimodal, skewed scores k-means' split is sometimes the
    likelier one too (a MovieLens-100K splice log with 25% spliced: a share of 87% against 211 of
    843 planted), with D near 1."""
    from sklearn.mixture import GaussianMixture

    gm = GaussianMixture(2, random_state=random_state, n_init=1, means_init=[[0.0], [3.0]]).fit(z[:, None])
    km = GaussianMixture(2, random_state=random_state, n_init=1, init_params="kmeans").fit(z[:, None])
    sd = np.sqrt(km.covariances_.ravel())
    ashman_d = np.sqrt(2.0) * abs(km.means_[0, 0] - km.means_[1, 0]) / np.sqrt((sd**2).sum())
    if ashman_d > 2.0 and km.score(z[:, None]) > gm.score(z[:, None]):
        gm = km
    j = int(np.argmin(gm.means_[:, 0]))
    return float(gm.weights_[j]), float(gm.means_[j, 0]), float(np.sqrt(gm.covariances_[j].ravel()[0]))


def fit_bulk(x: np.ndarray, length: np.ndarray, per_bucket: int = 150, max_buckets: int = 8):
    """(log-length knots, null location, null spread at each knot, pi0) of scores ``x``."""
    loglen, centre, spread = _standardise_buckets(x, length, per_bucket, max_buckets)
    z1 = (x - np.interp(np.log(length), loglen, centre)) / np.interp(np.log(length), loglen, spread)
    pi0, delta, sigma0 = _bulk_mixture(z1)
    return loglen, centre + spread * delta, spread * sigma0, pi0


def null_tail(t, null_z: np.ndarray | None = None) -> np.ndarray:
    """The null's upper tail P(z >= t): the standard normal's, or, for a known null (a planted
    world's unchanged users), the share of those users' sorted scores ``null_z`` at or above t."""
    t = np.asarray(t, np.float64)
    if null_z is None or not len(null_z):
        return special.ndtr(-t)
    return (len(null_z) - np.searchsorted(null_z, t, side="left")) / len(null_z)


def fdr_threshold(root_scores: np.ndarray, pi1: float, q: float, null_z: np.ndarray | None = None) -> float:
    """The lowest root score t such that flagging every user scoring >= t has a tail-area FDR
    (1 - pi1) * N * P_null(z >= t) / #{score >= t} of at most ``q``; NaN scores are ignored.
    The same rule for a fit and for stored results (users' highest scores and pi1; ``null_z``
    the known null's sorted scores, None for a normal null)."""
    if not 0 < q < 1:
        raise ShiftError(f"a false discovery rate must be in (0, 1), got {q}")
    z = np.sort(np.asarray(root_scores, np.float64)[np.isfinite(root_scores)])
    fdr = np.minimum((1.0 - pi1) * len(z) * null_tail(z, null_z) / (len(z) - np.arange(len(z))), 1.0)
    ok = np.flatnonzero(fdr <= q)  # flagging every user from z[i] up
    if len(ok) == 0:
        lowest = f"{fdr.min():.3g}" if len(fdr) else "undefined (no scored user)"
        raise ShiftError(f"no threshold reaches a false discovery rate of {q}; lowest is {lowest}")
    return float(z[ok[0]])


class EmpiricalNull:
    """The null of root-split scores, fitted to the bulk of a log's users (module docstring).

    ``fit(x, length)``: x = log(max F) of each scored user's root split, ``length`` its number
    of events. Learned: ``loglen_``, ``mu_``, ``sigma_`` (the null's location and spread at
    log-length knots, interpolated between them), ``pi1_`` and ``pi1_interval_``, ``source_``
    ("empirical" or "reference"), ``fitted_pi1_`` (the bulk fit's own share, also when it was
    set aside), the sorted z of every user and their local fdr.
    """

    def __init__(
        self,
        per_bucket: int = 150,
        max_buckets: int = 8,
        n_boot: int = 200,
        bulk_moving_share: float = BULK_MOVING_SHARE,
        random_state: int = 0,
    ) -> None:
        self.per_bucket = per_bucket
        self.max_buckets = max_buckets
        self.n_boot = n_boot
        self.bulk_moving_share = bulk_moving_share
        self.random_state = random_state

    def fit(self, x: np.ndarray, length: np.ndarray, shuffled=None) -> EmpiricalNull:
        """``shuffled``: a callable giving (x, length) of the same users' histories with their
        events in random order, called only when the bulk is moving (module docstring)."""
        from threadpoolctl import threadpool_limits

        # Each mixture is fitted on a few hundred numbers, where BLAS/OpenMP threads cost more
        # than they save: one thread gives the same fit 3x faster on an idle 2-core box (22 ms
        # -> 7 ms a mixture; 200 of them for the interval), and far more on a busy one.
        with threadpool_limits(1):
            return self._fit(x, length, shuffled)

    def _fit(self, x: np.ndarray, length: np.ndarray, shuffled=None) -> EmpiricalNull:
        x, length = np.asarray(x, np.float64), np.asarray(length, np.float64)
        if x.shape != length.shape or len(x) < 50 or not np.isfinite(x).all():
            raise ShiftError(f"the empirical null needs >= 50 finite user scores, got {len(x)}")
        self.loglen_, self.mu_, self.sigma_, pi0 = fit_bulk(x, length, self.per_bucket, self.max_buckets)
        self.fitted_pi1_ = 1.0 - pi0
        self.source_ = "empirical"
        if self.fitted_pi1_ >= self.bulk_moving_share and shuffled is not None:
            # The centre moved: the null of the same users' shuffled histories, same features.
            x_null, length_null = (np.asarray(a, np.float64) for a in shuffled())
            self._fit_own_null(x_null, length_null, "shuffled")
            self._against_own_null(x, length)
            return self
        if self.fitted_pi1_ >= self.bulk_moving_share:
            # The centre itself moved: the reference null, and pi0 by Storey's estimator on it
            # (users below the reference null's median are taken as null; lambda = 0.5).
            self.source_ = "reference"
            self.loglen_ = np.log(np.array([16.0, 1024.0]))
            self.mu_ = REFERENCE["a"] + REFERENCE["b"] * self.loglen_
            self.sigma_ = REFERENCE["c"] + REFERENCE["d"] * self.loglen_
        z = self.z(x, length)
        self.pi1_ = self._share(z) if self.source_ == "reference" else self.fitted_pi1_
        self.pi1_interval_ = self._bootstrap(x, length)
        self._set_lfdr(z)
        return self

    def fit_known(
        self, x_null: np.ndarray, length_null: np.ndarray, x: np.ndarray, length: np.ndarray
    ) -> EmpiricalNull:
        """A planted world, where the ground truth names users with no change: the null is
        fitted to *their* scores (``x_null``, ``length_null``: its location and spread by
        length, as for the bulk), and the share beyond it, the interval and every local fdr are
        of *all* users (``x``, ``length``), by Storey's estimator as for the reference null.
        Without this the share would be of the unchanged users alone (a question nobody asked)."""
        x_null, length_null = np.asarray(x_null, np.float64), np.asarray(length_null, np.float64)
        x, length = np.asarray(x, np.float64), np.asarray(length, np.float64)
        if len(x_null) < 50 or len(x) < 50 or not (np.isfinite(x_null).all() and np.isfinite(x).all()):
            raise ShiftError(f"the known null needs >= 50 finite scores, got {len(x_null)} and {len(x)}")
        self._fit_own_null(x_null, length_null, "known")
        self._against_own_null(x, length)
        self.fitted_pi1_ = self.pi1_
        return self

    def _fit_own_null(self, x_null: np.ndarray, length_null: np.ndarray, source: str) -> None:
        """The null of scores known to be null (a planted world's unchanged users, or shuffled
        histories): no mixture, every one of them is null, so each length bucket's median and
        lower-half spread are the null's location and spread themselves; their own scores are its
        upper tail (real drift is heavier-tailed than a normal: the synthetic world's unchanged
        users reach z = 2.65 six times as often)."""
        if len(x_null) < 50 or not np.isfinite(x_null).all():
            raise ShiftError(f"the {source} null needs >= 50 finite scores, got {len(x_null)}")
        self.loglen_, self.mu_, self.sigma_ = _standardise_buckets(
            x_null, length_null, self.per_bucket, self.max_buckets
        )
        self.source_ = source
        self.null_z_ = np.sort(self.z(x_null, length_null))

    def _against_own_null(self, x: np.ndarray, length: np.ndarray) -> None:
        """Every user (``x``, ``length``) against a null of :meth:`_fit_own_null`: the share
        beyond it by Storey's estimator, its bootstrap interval and the local fdr."""
        z = self.z(x, length)
        self.pi1_ = self._share(z)
        self.pi1_interval_ = self._bootstrap(x, length)
        self._set_lfdr(z)

    @staticmethod
    def _share(z: np.ndarray) -> float:
        return float(np.clip(1.0 - 2.0 * np.mean(z < 0.0), 0.0, 1.0))

    def _bootstrap(self, x: np.ndarray, length: np.ndarray) -> tuple[float, float]:
        rng = np.random.default_rng(self.random_state)
        shares = []
        for _ in range(self.n_boot):
            i = rng.integers(0, len(x), len(x))
            if self.source_ == "empirical":
                shares.append(1.0 - fit_bulk(x[i], length[i], self.per_bucket, self.max_buckets)[3])
            else:
                shares.append(self._share(self.z(x[i], length[i])))
        if not shares:
            return (self.pi1_, self.pi1_)
        lo, hi = np.quantile(shares, [0.025, 0.975])
        return (float(lo), float(hi))

    def _set_lfdr(self, z: np.ndarray) -> None:
        self.z_sorted_ = np.sort(z)
        pi0 = 1.0 - self.pi1_
        from scipy import stats

        f = stats.gaussian_kde(self.z_sorted_)(self.z_sorted_)
        if self.known_z is not None:  # the known null's own density
            pdf = stats.gaussian_kde(self.known_z)(self.z_sorted_)
        else:
            pdf = np.exp(-(self.z_sorted_**2) / 2.0) / np.sqrt(2.0 * np.pi)  # the standard normal's
        lfdr = np.clip(pi0 * pdf / np.maximum(f, 1e-300), 0.0, 1.0)
        # Above the null's centre a larger z is never less likely to be a shift: running minimum.
        above = self.z_sorted_ >= 0
        lfdr[above] = np.minimum.accumulate(lfdr[above])
        lfdr[~above] = np.maximum(lfdr[~above], lfdr[above][0] if above.any() else 0.0)
        self.lfdr_sorted_ = lfdr

    def z(self, x: np.ndarray, length: np.ndarray) -> np.ndarray:
        """Scores in units of the null: N(0, 1) for a user whose F is everyday drift."""
        loglen = np.log(np.maximum(np.asarray(length, np.float64), 1.0))
        mu = np.interp(loglen, self.loglen_, self.mu_)
        sigma = np.interp(loglen, self.loglen_, self.sigma_)
        return (np.asarray(x, np.float64) - mu) / sigma

    @property
    def n_users(self) -> int:
        return len(self.z_sorted_)

    @property
    def known_z(self) -> np.ndarray | None:
        """The sorted scores of a null with its own tail (a planted world's unchanged users,
        or shuffled histories), else None (a normal tail)."""
        return getattr(self, "null_z_", None) if self.source_ in OWN_TAIL else None

    def lfdr(self, z: np.ndarray) -> np.ndarray:
        """Local false discovery rate at ``z`` (interpolated on the fitted users' z)."""
        return np.interp(np.asarray(z, np.float64), self.z_sorted_, self.lfdr_sorted_)

    def probability(self, z: np.ndarray) -> np.ndarray:
        """Probability that a user with root score ``z`` shifted beyond everyday drift (1 - lfdr)."""
        return 1.0 - self.lfdr(z)

    def flagged(self, threshold: float) -> int:
        """Users whose root score reaches ``threshold``."""
        return int(self.n_users - np.searchsorted(self.z_sorted_, threshold, side="left"))

    def expected_chance(self, threshold: float) -> float:
        """Expected users among the fitted ones that reach ``threshold`` by everyday drift (the
        normal's tail; a known null's own)."""
        return float((1.0 - self.pi1_) * self.n_users * null_tail(threshold, self.known_z))

    def fdr(self, threshold: float) -> float:
        """Tail-area false discovery rate: the expected share of chance among flagged users."""
        return min(self.expected_chance(threshold) / max(self.flagged(threshold), 1), 1.0)

    def threshold_for_fdr(self, q: float) -> float:
        """The lowest threshold whose FDR is at most ``q`` (Storey's rule: every user from it up is flagged)."""
        return fdr_threshold(self.z_sorted_, self.pi1_, q, self.known_z)

    def export_state(self, prefix: str = "empirical.") -> dict[str, np.ndarray]:
        """Plain arrays (no pickle); :meth:`restore` reads them back."""
        return {
            f"{prefix}loglen": self.loglen_,
            f"{prefix}mu": self.mu_,
            f"{prefix}sigma": self.sigma_,
            f"{prefix}pi1": np.asarray(self.pi1_),
            f"{prefix}fitted_pi1": np.asarray(self.fitted_pi1_),
            f"{prefix}pi1_interval": np.asarray(self.pi1_interval_, np.float64),
            f"{prefix}source": np.asarray(self.source_),
            f"{prefix}z_sorted": self.z_sorted_,
            f"{prefix}lfdr_sorted": self.lfdr_sorted_,
            f"{prefix}null_z": self.known_z if self.known_z is not None else np.empty(0),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray], prefix: str = "empirical.") -> EmpiricalNull:
        """The null :meth:`export_state` wrote (ValueError when the arrays do not fit together)."""
        null = cls()
        null.loglen_ = np.asarray(state[f"{prefix}loglen"], np.float64)
        null.mu_ = np.asarray(state[f"{prefix}mu"], np.float64)
        null.sigma_ = np.asarray(state[f"{prefix}sigma"], np.float64)
        null.pi1_ = float(state[f"{prefix}pi1"])
        null.fitted_pi1_ = float(state[f"{prefix}fitted_pi1"])
        null.pi1_interval_ = tuple(float(v) for v in state[f"{prefix}pi1_interval"])
        null.source_ = str(state[f"{prefix}source"])
        null.z_sorted_ = np.asarray(state[f"{prefix}z_sorted"], np.float64)
        null.lfdr_sorted_ = np.asarray(state[f"{prefix}lfdr_sorted"], np.float64)
        null.null_z_ = np.asarray(state.get(f"{prefix}null_z", np.empty(0)), np.float64)
        if null.source_ in OWN_TAIL and not len(null.null_z_):
            raise ValueError(f"stored {null.source_} null has no null scores")
        if (
            not (len(null.loglen_) == len(null.mu_) == len(null.sigma_) > 0)
            or len(null.z_sorted_) != len(null.lfdr_sorted_)
            or null.source_ not in SOURCES
        ):
            raise ValueError("stored empirical null is inconsistent")
        return null
