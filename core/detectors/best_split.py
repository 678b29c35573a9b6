"""Best split with a significance statistic, then binary segmentation.

For a segment x_1..x_n of a user's (block-standardised, detrended) features and a split
tau, F(tau) = BSS(tau) / (WSS(tau) / (n - 2)), with BSS(tau) = tau (n - tau) / n ·
||mean_1 - mean_2||² and WSS = TSS - BSS: the between-segment variance over the residual
variance, an F statistic that compares users of any spread on one scale. The split at
argmax F is an alarm when max F reaches the threshold; both halves are then split again
with the same threshold (binary segmentation), down to ``min_size`` events per segment.

Fit once, predict many: the split of every segment is its argmax, which does not depend
on the threshold, so ``fit`` records the whole binary-segmentation tree of every user
with each node's max F. A threshold keeps a node when its F and every ancestor's F reach
it, i.e. when its *effective* score min(F along the path from the root) does; so
``predict`` is one comparison per node, exact, and the calibration of
:mod:`core.detectors.real_null` is exact too (an alarm fires at t exactly when its score >= t).

Why hand-written: ruptures' ``Binseg`` segments by a penalty or a number of breakpoints,
with no significance statistic and no fit-once / predict-at-any-threshold path (each
``predict(pen=...)`` reruns the search); sktime/skchange's (seeded) binary segmentation
takes its penalty in the constructor too, and skchange is not in our environment. The
per-node "smallest threshold that keeps it" is the bookkeeping of R's ``wbs::sbs``
(``min.th``). The F-scan is a few lines of numpy over prefix sums, O(n·d) per segment.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = np.vstack([rng.normal(size=(30, 5)) + [2, 0, 0, 0, 0], rng.normal(size=(30, 5))])
>>> det = BestSplit(n_components=5, detrend="none", min_size=8, length_null=False)
>>> det.fit(x, np.array([0, 60])).predict(threshold=5.0).event_index
array([30])
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np

from core.detectors.base import ChangePoints, Detector, DetectorResult, check_population
from core.detectors.empirical_null import EmpiricalNull
from core.detectors.feature_choice import FeatureChoice, choose_components
from core.detectors.real_null import RealCalibration, calibrate_real, calibration_halves
from core.detectors.shift_features import ShiftFeatures
from core.errors import ShiftError

# The fewest tree segments the length null is built from (two length buckets of 200).
MIN_NULL_SEGMENTS = 400
# The fewest scored users an empirical null is fitted to (two length buckets of 150).
MIN_EMPIRICAL_USERS = 300
# A planted world's known null (its unchanged users): the fewest of them it is fitted to.
MIN_KNOWN_NULL_USERS = 100


def f_scan(z: np.ndarray, min_size: int) -> np.ndarray:
    """F(tau) for tau = min_size .. n - min_size of one segment z (n, d); NaN-free."""
    n = len(z)
    cum = np.cumsum(z, axis=0)
    total = cum[-1]
    tss = float((z**2).sum() - total @ total / n)
    t = np.arange(min_size, n - min_size + 1)
    left = cum[t - 1] - np.outer(t / n, total)  # L - t S / n
    bss = (left**2).sum(axis=1) * n / (t * (n - t))
    wss = np.maximum(tss - bss, 1e-12 * max(tss, 1e-300))
    return bss / (wss / (n - 2))


def split_tree(z: np.ndarray, min_size: int) -> list[tuple[int, float, int, int]]:
    """Binary-segmentation tree of one user: (split index, max F, segment length, parent
    node or -1) per node, every parent listed before its children."""
    nodes: list[tuple[int, float, int, int]] = []
    stack = [(0, len(z), -1)]
    while stack:
        a, b, parent = stack.pop()
        if b - a < 2 * min_size or b - a < 3:
            continue
        f = f_scan(z[a:b], min_size)
        j = int(np.argmax(f))
        tau = a + min_size + j
        nodes.append((tau, float(f[j]), b - a, parent))
        me = len(nodes) - 1
        stack += [(a, tau, me), (tau, b, me)]
    return nodes


def effective_scores(score: np.ndarray, parent: np.ndarray) -> np.ndarray:
    """min(score along the path from the root): parents come before their children."""
    eff = score.copy()
    for i, p in enumerate(parent.tolist()):
        if p >= 0 and eff[p] < eff[i]:
            eff[i] = eff[p]
    return eff


class LengthNull:
    """The population's own distribution of max F by segment length.

    On real histories max F grows with the segment's length (real users drift, and a
    drift's F grows with the events that carry it): on MovieLens-100K the median root max F
    is 2.1 for users of 16-40 events and 8.5 for 160-320. One F threshold would then be
    spent on long users and miss changes in short ones. So a split's score is its
    significance among the population's segments of similar length: -log10 of the share
    of them whose max F is at least as large (equal-count length buckets; the top decile of
    each bucket is extended by an exponential tail, so scores beyond the largest observed F
    still rise).
    """

    def __init__(self, f: np.ndarray, length: np.ndarray, per_bucket: int = 200, tail: float = 0.1) -> None:
        order = np.argsort(length, kind="stable")
        n_buckets = int(np.clip(len(f) // per_bucket, 1, 16))
        groups = np.array_split(order, n_buckets)
        # a bucket's upper edge: the midpoint to the next bucket's first length
        self.edges = np.array([length[g[-1]] for g in groups[:-1]], dtype=np.float64)
        self.sorted = [np.sort(f[g]) for g in groups]
        self.tail = tail
        self.f_q, self.beta = [], []
        for s in self.sorted:
            q = float(np.quantile(s, 1 - tail)) if len(s) else 0.0
            excess = s[s > q] - q
            self.f_q.append(q)
            self.beta.append(max(float(excess.mean()) if len(excess) else 1.0, 1e-9))

    def export_state(self) -> dict[str, np.ndarray]:
        """Plain arrays (no pickle): bucket edges, each bucket's sorted max F, tail parameters."""
        sizes = np.array([len(s) for s in self.sorted], np.int64)
        return {
            "null.edges": self.edges,
            "null.sizes": sizes,
            "null.sorted": np.concatenate(self.sorted) if len(self.sorted) else np.empty(0),
            "null.f_q": np.asarray(self.f_q, np.float64),
            "null.beta": np.asarray(self.beta, np.float64),
            "null.tail": np.asarray(self.tail, np.float64),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> LengthNull:
        """The null :meth:`export_state` wrote (ValueError when the arrays do not fit together)."""
        null = cls.__new__(cls)
        sizes = np.asarray(state["null.sizes"], np.int64)
        flat = np.asarray(state["null.sorted"], np.float64)
        null.edges = np.asarray(state["null.edges"], np.float64)
        null.f_q = [float(v) for v in state["null.f_q"]]
        null.beta = [float(v) for v in state["null.beta"]]
        null.tail = float(state["null.tail"])
        if sizes.sum() != len(flat) or len(null.edges) != len(sizes) - 1 or len(null.f_q) != len(sizes):
            raise ValueError("best_split: stored length null is inconsistent")
        null.sorted = np.split(flat, np.cumsum(sizes)[:-1])
        return null

    def significance(self, f: np.ndarray, length: np.ndarray) -> np.ndarray:
        """-log10 of the population's share of same-length segments with max F >= ``f``."""
        f, length = np.asarray(f, np.float64), np.asarray(length)
        bucket = np.searchsorted(self.edges, np.broadcast_to(length, f.shape), side="left")
        out = np.zeros(f.shape)
        for b in np.unique(bucket):
            s, m = self.sorted[b], bucket == b
            if len(s) == 0:
                continue
            fb = f[m]
            ge = len(s) - np.searchsorted(s, fb, side="left")
            body = -np.log10(np.maximum(ge, 1) / len(s))
            tail = -np.log10(self.tail) + (fb - self.f_q[b]) / self.beta[b] / np.log(10)
            out[m] = np.where(fb >= self.f_q[b], tail, body)
        return out


class BestSplit(Detector):
    """Best split by F statistic plus binary segmentation, on :class:`ShiftFeatures`.

    ``n_categories`` > 0 means the last ``n_categories`` columns of each event vector are
    its category histogram (the second feature block); 0 for logs without categories.
    """

    name = "best_split"
    peak_based = False
    exact_threshold = True  # an alarm fires at t exactly when its effective score >= t
    chunkable = True  # each user's tree depends only on that user and the fitted state
    # Real users drift on their own; shuffled histories understated real false alarms 3-8x
    # (bench/results/detection_study.md), so the stated rate comes from real histories.
    null = "real"
    tentative = "recent_shift"  # changes in the last min_size events cannot be located

    def __init__(
        self,
        n_components: int = 8,
        n_categories: int = 0,
        min_size: int = 8,
        detrend: str = "index",
        length_null: bool = True,
        random_state: int = 0,
        empirical_null: bool = False,
        split_margin: float = 0.0,
        choose_components: tuple[int, ...] = (),
        n_boot: int = 200,
        n_co: int = 0,
        use_co: bool = True,
        choose_co: tuple[int, ...] = (),
        discriminant: bool = False,
        choose_disc: tuple[int, ...] = (),
    ) -> None:
        self.n_components = n_components
        self.n_categories = n_categories
        # The input's last n_co columns are item co-consumption factors learned from the log
        # (core.co_consumption); use_co says whether the features read them.
        self.n_co = n_co
        self.use_co = use_co
        # Numbers of components also tried *with* the co-consumption block by the choice.
        self.choose_co = tuple(choose_co) if n_co else ()
        # Project the features on the directions that tell users apart (ShiftFeatures'
        # ``discriminant``, with windows of min_size events: the shortest segment a split
        # leaves); choose_disc: numbers of components also tried that way by the choice (with
        # the co block too, when given one).
        self.discriminant = discriminant
        self.choose_disc = tuple(choose_disc)
        self.min_size = min_size
        self.detrend = detrend
        self.length_null = length_null
        self.random_state = random_state
        # Score every split against Efron's empirical null of root splits, fitted to the bulk
        # of the null users (core.detectors.empirical_null), instead of the length null.
        self.empirical_null = empirical_null
        # A split below the root is kept only when its own score reaches the threshold plus
        # this margin (and every ancestor's reaches the threshold): the user-level decision is
        # the root split's, and each further split must be significant on its own (inf: root only).
        self.split_margin = split_margin
        # Candidate numbers of principal components the log chooses from at fit, on splices of
        # its own calibration users (core.detectors.feature_choice); () keeps n_components.
        self.choose_components = tuple(choose_components)
        self.n_boot = n_boot  # bootstrap draws of the empirical null's share interval

    @property
    def features(self) -> str:  # type: ignore[override]  # what core.artefacts.item_features builds
        return "embedding+co" if self.n_co else "embedding"

    @property
    def h(self) -> int:  # the base class's window: here the shortest segment
        return self.min_size

    @property
    def min_events(self) -> int:
        """The fewest events a user needs to be scored (two segments of ``min_size``)."""
        return max(2 * self.min_size, 3)

    def real_calibration(
        self, vectors: np.ndarray, offsets: np.ndarray, users: np.ndarray | None = None
    ) -> RealCalibration:
        """Calibration on the fitted population's own real histories (half set, half check),
        from the tree already recorded at fit: no second pass. ``users``: the null sample
        (positions; default every user)."""
        return calibrate_real(self, users=users)

    def _fit_population(self, vectors: np.ndarray, offsets: np.ndarray, ratings: np.ndarray | None) -> None:
        if self.min_size < 2:
            raise ShiftError(f"{self.name}: min_size must be >= 2, got {self.min_size}")
        self.features_ = self._shift_features().fit(vectors, offsets)

    def _shift_features(self) -> ShiftFeatures:
        """This detector's feature setting, unfitted (fit and restore both start from it)."""
        return ShiftFeatures(
            self.n_components,
            self.n_categories,
            self.detrend,
            random_state=self.random_state,
            n_co=self.n_co,
            use_co=self.use_co,
            discriminant=self.min_size if self.discriminant else 0,
        )

    def fit(
        self,
        vectors: np.ndarray,
        offsets: np.ndarray,
        ratings: np.ndarray | None = None,
        null_users: np.ndarray | None = None,
    ) -> BestSplit:
        """Fit on a population; the length null comes from the tree nodes of ``null_users``
        (positions; default every user), the users whose splits are taken as chance."""
        vectors, offsets = check_population(vectors, offsets)
        self.choice_ = None
        if self.choose_components or self.choose_co or self.choose_disc:
            self.choice_ = self._choose_components(vectors, offsets, null_users)
            self.n_components = self.choice_.chosen
            self.use_co = self.choice_.chosen_co
            self.discriminant = self.choice_.chosen_disc
        self._fit_population(vectors, offsets, ratings)
        self.offsets_, self.n_events_ = offsets, int(offsets[-1])
        z = self.features_.transform(vectors, offsets)
        nodes = self._nodes(z, offsets)
        ref = (
            nodes
            if null_users is None
            else {k: v[np.isin(nodes["user"], null_users)] for k, v in nodes.items()}
        )
        # A population of a few dozen users has too few segments to say how rare an F is at a
        # length: there the score stays the raw F (and the calibration is on shuffled histories).
        use_null = self.length_null and len(ref["f"]) >= MIN_NULL_SEGMENTS
        self.null_ = LengthNull(ref["f"], ref["length"]) if use_null else None
        self.empirical_ = None
        roots, every = ref["parent"] < 0, nodes["parent"] < 0
        known = null_users is not None and roots.sum() >= MIN_KNOWN_NULL_USERS
        if self.empirical_null and every.sum() >= MIN_EMPIRICAL_USERS and (null_users is None or known):
            self.null_ = None
            null = EmpiricalNull(n_boot=self.n_boot, random_state=self.random_state)
            if null_users is None:
                self.empirical_ = null.fit(
                    np.log(ref["f"][roots]), ref["length"][roots], lambda: self._shuffled_roots(z, offsets)
                )
            else:  # a planted world: the null of its unchanged users, the share of all of them
                self.empirical_ = null.fit_known(
                    np.log(ref["f"][roots]),
                    ref["length"][roots],
                    np.log(nodes["f"][every]),
                    nodes["length"][every],
                )
        self.result_ = DetectorResult(self._root_scan(z, offsets), offsets, self._candidates_of(nodes))
        return self

    def _shuffled_roots(self, z: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log max F, length) of every scorable user's root split with the user's events in a
        seeded random order: histories with no change and no drift, on this fit's features (the
        empirical null's fallback when the bulk of the log is moving)."""
        rng = np.random.default_rng(self.random_state)
        x, length = [], []
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            if hi - lo >= self.min_events:
                x.append(
                    np.log(
                        max(float(f_scan(z[lo:hi][rng.permutation(hi - lo)], self.min_size).max()), 1e-300)
                    )
                )
                length.append(hi - lo)
        return np.asarray(x), np.asarray(length, np.float64)

    def _choose_components(
        self, vectors: np.ndarray, offsets: np.ndarray, null_users: np.ndarray | None
    ) -> FeatureChoice:
        """The log's own choice of n_components: splices of the users that set the real
        false-alarm rate (the check half never looked at), each candidate fitted as this
        detector is (core.detectors.feature_choice)."""
        pool = np.arange(len(offsets) - 1) if null_users is None else np.asarray(null_users, np.int64)
        setting, _ = calibration_halves(pool, 0.5, 0)  # the halves real_calibration uses

        def candidate(k: int, co: bool, disc: bool = False) -> BestSplit:
            det = copy.copy(self)  # every setting of this detector (fit() replaces what it learns)
            # k components, the co block or not, projected on user-discriminant directions or
            # not, no choice of its own, and no interval: the choice reads scores only
            det.n_components, det.use_co, det.discriminant, det.n_boot = k, co, disc, 0
            det.choose_components, det.choose_co, det.choose_disc = (), (), ()
            return det

        return choose_components(
            candidate,
            vectors,
            offsets,
            setting,
            self.n_components,
            self.choose_components,
            self.random_state,
            self.choose_co,
            self.n_co,
            self.choose_disc,
        )

    def score(self, vectors: np.ndarray, offsets: np.ndarray) -> DetectorResult:
        """Root-scan signal and every tree node of another population (fitted state; changes
        nothing): exact per user, so a large log can be scored chunk by chunk."""
        vectors, offsets = check_population(vectors, offsets)
        z = self.features_.transform(vectors, offsets)
        return DetectorResult(self._root_scan(z, offsets), offsets, self._tree(z, offsets))

    def export_state(self) -> dict[str, np.ndarray]:
        """The features' PCA, scales and trend, and the length null's sorted max F per bucket."""
        state = self.features_.export_state()
        state["null.used"] = np.asarray(self.null_ is not None)
        if self.null_ is not None:
            state.update(self.null_.export_state())
        if getattr(self, "choice_", None) is not None:
            state.update(self.choice_.export_state())
        state["empirical.used"] = np.asarray(self.empirical_ is not None)
        if self.empirical_ is not None:
            state.update(self.empirical_.export_state())
        return state

    def _import_state(self, state: dict[str, np.ndarray]) -> None:
        self.choice_ = FeatureChoice.restore(state)
        if self.choice_ is not None:
            self.n_components = self.choice_.chosen
            self.use_co = self.choice_.chosen_co
            self.discriminant = self.choice_.chosen_disc
        self.features_ = self._shift_features().restore(state)
        used = bool(state["null.used"])
        self.null_ = LengthNull.restore(state) if used else None
        if used and not self.length_null:
            raise ValueError("best_split: a length null is stored for a detector without one")
        empirical = bool(state.get("empirical.used", False))
        self.empirical_ = EmpiricalNull.restore(state) if empirical else None
        if empirical and not self.empirical_null:
            raise ValueError("best_split: an empirical null is stored for a detector without one")

    def null_rate(self, threshold: float) -> float:
        """Expected false alarms per 1,000 events of the fitted population at ``threshold``
        under the empirical null: its null users (pi0 of the scored ones) each reach it with
        probability 1 - Phi(threshold) at their root split."""
        from scipy.special import ndtr

        null = self._empirical()
        chance = (1.0 - null.pi1_) * null.n_users * float(ndtr(-threshold))
        return 1000.0 * chance / max(self.n_events_, 1)

    def threshold_for_null_rate(self, rate: float) -> float:
        """The threshold at which the empirical null expects ``rate`` false alarms per 1,000 events."""
        from scipy.special import ndtri

        null = self._empirical()
        if rate <= 0:
            raise ShiftError(f"a false-alarm rate must be > 0, got {rate}")
        tail = rate * self.n_events_ / 1000.0 / max((1.0 - null.pi1_) * null.n_users, 1e-12)
        return float(-ndtri(min(tail, 0.5)))  # the normal's inverse tail (norm.isf)

    def _empirical(self) -> EmpiricalNull:
        if getattr(self, "empirical_", None) is None:
            raise ShiftError(
                f"{self.name}: fitted without an empirical null (empirical_null=False or too few users)"
            )
        return self.empirical_

    def _root_scan(self, z: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        """Per-event signal for timelines: the score of a single split of the whole history there."""
        out = np.full(len(z), np.nan)
        m = self.min_size
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            if hi - lo >= self.min_events:
                out[lo + m : hi - m + 1] = self._significance(f_scan(z[lo:hi], m), hi - lo)
        return out

    def _significance(self, f: np.ndarray, length) -> np.ndarray:
        """A split's score: z under the empirical null, the length null's -log10 share, or raw F."""
        if self.empirical_ is not None:
            return self.empirical_.z(np.log(np.maximum(f, 1e-300)), np.broadcast_to(length, np.shape(f)))
        return f if self.null_ is None else self.null_.significance(f, length)

    def _nodes(self, z: np.ndarray, offsets: np.ndarray) -> dict[str, np.ndarray]:
        """Every user's tree, concatenated; ``parent`` indexes the concatenation."""
        cols: dict[str, list] = {"user": [], "split": [], "f": [], "length": [], "parent": [], "last": []}
        for k in range(len(offsets) - 1):
            lo, hi = int(offsets[k]), int(offsets[k + 1])
            base = len(cols["f"])
            for tau, f, n, parent in split_tree(z[lo:hi], self.min_size):
                cols["user"].append(k)
                cols["split"].append(tau)
                cols["f"].append(f)
                cols["length"].append(n)
                cols["parent"].append(parent + base if parent >= 0 else -1)
                cols["last"].append(hi - lo - 1)
        return {c: np.asarray(v, np.float64 if c == "f" else np.int64) for c, v in cols.items()}

    def _candidates_of(self, nodes: dict[str, np.ndarray]) -> ChangePoints:
        if not len(nodes["f"]):
            return ChangePoints.empty()
        score = self._significance(nodes["f"], nodes["length"])
        score = np.where(nodes["parent"] >= 0, score - self.split_margin, score)
        eff = effective_scores(score, nodes["parent"])
        order = np.lexsort((nodes["split"], nodes["user"]))
        # Offline: a split is known once the whole history is seen (alert = last event).
        return ChangePoints(nodes["user"][order], nodes["split"][order], eff[order], nodes["last"][order])

    def _tree(self, z: np.ndarray, offsets: np.ndarray) -> ChangePoints:
        return self._candidates_of(self._nodes(z, offsets))

    def detect(
        self, vectors: np.ndarray, offsets: np.ndarray, thresholds: Sequence[float]
    ) -> list[ChangePoints]:
        vectors, offsets = check_population(vectors, offsets)
        cand = self._tree(self.features_.transform(vectors, offsets), offsets)
        return [cand.where(cand.score >= t) for t in thresholds]

    def null_alarm_scores(self, vectors: np.ndarray, offsets: np.ndarray) -> np.ndarray:
        vectors, offsets = check_population(vectors, offsets)
        return self._tree(self.features_.transform(vectors, offsets), offsets).score
