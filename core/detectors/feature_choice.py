"""The feature setting chosen per log, by the log itself (issue 19, item 6).

How many principal components of the item vectors a detector reads is a choice that suits one
log and not another: with the default detector at its stated 1 real false alarm per 1,000
events, 4 components found more splices than 16 on whole MovieLens-100K histories and 8 more
than 16 on Food.com (bench/RESULTS.md, "feature setting chosen per log"). So the log chooses:
splices are built from the log's own *calibration* users (the half of the users that sets the
false-alarm rate; the other half, which checks it, is never looked at), each candidate setting
is fitted and calibrated on that splice log exactly as ``detect`` runs it, with no labels, and
the setting whose F1@10 on the splices is highest wins. A setting is a number of components
and, when the detector is given them, whether it also reads the log's item co-consumption
factors (:mod:`core.co_consumption`): on Food.com they doubled the splices found, on
MovieLens-100K they did not help (bench/RESULTS.md, issue 19, third round), so the log decides.
Too few calibration users to build a fair splice log: the given setting stays, and the choice
says why.

The splice protocol is the benchmark's (``bench.detection_study``'s prevalence study uses
:func:`splice_histories` too): a share of the users' histories replaced by user A's first c
events followed by another user B's first L - c (c uniform in the middle 60% of L, both parts
at least 20 events).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from core.metrics import match_change_points, precision_recall_f1

CANDIDATES = (4, 8, 16, 32)  # principal components of the item vectors
CO_CANDIDATES = (4, 8, 16)  # ... each also tried with the co-consumption block, when given one
# ... and projected on the directions that tell users apart (core.detectors.shift_features),
# without and (when given) with the co block. 48: of 32, 48, 64 and 96 projected components none
# was best on every MovieLens-100K splice log (bench/discriminant_probe.py: 48 0.39-0.49, 96
# 0.36-0.49); 48 was best or tied in three of four in a first run (windows of 10 events), and
# each candidate is a fit of every splice log, so one is tried (bench/RESULTS.md, fourth round).
DISC_CANDIDATES = (48,)
SPLICE_SHARE = 0.125  # share of the calibration users spliced
# Splice logs drawn, their F1 averaged: enough draws for about TARGET_SPLICES spliced users in
# all, at least 2 and at most MAX_DRAWS. One draw of ~40 splices (MovieLens-100K's calibration
# half) is noisy: there two draws chose 4, 8 or 16 whitened components from one prevalence to
# the next, where a probe on the whole splice logs found the projected 48 better in each.
MIN_DRAWS, MAX_DRAWS, TARGET_SPLICES = 2, 4, 150
TARGET_RATE = 1.0  # false alarms per 1,000 real events: the product's default rate
MARGIN = 10  # events: a detected change this close to the splice point counts (F1@10)
MIN_USERS = 200  # calibration users with >= MIN_EVENTS events needed to choose at all
MAX_USERS = 1_500  # a seeded sample of them past this (each candidate is a fit)
MIN_EVENTS = 40  # both parts of a splice need 20 events


@dataclass(frozen=True)
class FeatureChoice:
    """Which setting the log chose, from which, and how each candidate did."""

    chosen: int  # principal components used
    candidates: tuple[int, ...]
    f1: tuple[float, ...]  # mean F1@10 on the calibration splices, per candidate (NaN: not tried)
    users: int  # calibration users the splice logs were built from
    splices: int  # spliced users per splice log
    why: str = ""  # "": chosen by the splices; else why the given setting stayed
    co: tuple[bool, ...] = ()  # per candidate: with the co-consumption block (() = none did)
    chosen_co: bool = False  # the chosen setting reads the co-consumption block
    disc: tuple[bool, ...] = ()  # per candidate: projected on user-discriminant directions (() = none was)
    chosen_disc: bool = False  # the chosen setting is projected so
    draws: int = MIN_DRAWS  # splice logs drawn (the F1 is their mean)

    @property
    def labels(self) -> tuple[str, ...]:
        """Each candidate in words' short form: "16", "8+co" with the co-consumption block,
        "48u" projected on user-discriminant directions ("48u+co" both)."""
        co = self.co or (False,) * len(self.candidates)
        disc = self.disc or (False,) * len(self.candidates)
        return tuple(
            f"{k}{'u' if d else ''}{'+co' if c else ''}"
            for k, c, d in zip(self.candidates, co, disc, strict=True)
        )

    @property
    def setting(self) -> str:
        """The chosen setting in words."""
        also = " and the log's item co-consumption factors" if self.chosen_co else ""
        projected = " projected on the directions that tell users apart" if self.chosen_disc else ""
        return f"{self.chosen} principal components{also}{projected}"

    def describe(self) -> str:
        """One line for the CLI and the dashboard."""
        if self.why:
            return f"{self.setting} (the default: {self.why})"
        scores = ", ".join(
            f"{k}: {f:.2f}" if f == f else f"{k}: could not be fitted"
            for k, f in zip(self.labels, self.f1, strict=True)
        )
        legend = "".join(
            [
                "; +co: with co-consumption factors" if any(self.co) else "",
                "; u: projected on the directions that tell users apart" if any(self.disc) else "",
            ]
        )
        return (
            f"{self.setting}, chosen by this log: of {self.users} calibration users, "
            f"{self.splices} were spliced with another user's history ({self.draws} draws), and this setting found "
            f"those splices best at {TARGET_RATE:g} real false alarm per 1,000 events "
            f"(F1@10 {scores}{legend})"
        )

    def export_state(self) -> dict[str, np.ndarray]:
        return {
            "choice.chosen": np.asarray(self.chosen, np.int64),
            "choice.candidates": np.asarray(self.candidates, np.int64),
            "choice.f1": np.asarray(self.f1, np.float64),
            "choice.users": np.asarray(self.users, np.int64),
            "choice.splices": np.asarray(self.splices, np.int64),
            "choice.why": np.asarray(self.why),
            "choice.co": np.asarray(self.co or (False,) * len(self.candidates), bool),
            "choice.chosen_co": np.asarray(self.chosen_co),
            "choice.disc": np.asarray(self.disc or (False,) * len(self.candidates), bool),
            "choice.chosen_disc": np.asarray(self.chosen_disc),
            "choice.draws": np.asarray(self.draws, np.int64),
        }

    @classmethod
    def restore(cls, state: dict[str, np.ndarray]) -> FeatureChoice | None:
        if "choice.chosen" not in state:
            return None
        return cls(
            int(state["choice.chosen"]),
            tuple(int(k) for k in state["choice.candidates"]),
            tuple(float(f) for f in state["choice.f1"]),
            int(state["choice.users"]),
            int(state["choice.splices"]),
            str(state["choice.why"]),
            tuple(bool(c) for c in state["choice.co"]) if "choice.co" in state else (),
            bool(state.get("choice.chosen_co", False)),
            tuple(bool(d) for d in state["choice.disc"]) if "choice.disc" in state else (),
            bool(state.get("choice.chosen_disc", False)),
            int(state.get("choice.draws", MIN_DRAWS)),
        )


def splice_histories(
    hist: list[np.ndarray], share: float, rng: np.random.Generator
) -> tuple[list[np.ndarray], list[list[int]]]:
    """``share`` of the histories (those of >= 40 events) replaced by A's first c events followed
    by a random other user B's first L - c (L the length A had, c uniform in the middle 60% of
    it, both parts >= 20 events): (the histories, each one's planted change point, [] if real)."""
    hist = list(hist)
    n = np.array([len(h) for h in hist])
    able = np.flatnonzero(n >= MIN_EVENTS)
    chosen = rng.choice(able, min(int(round(share * len(hist))), len(able)), replace=False)
    truth: list[list[int]] = [[] for _ in hist]
    for i in chosen:
        length = int(n[i])
        c = int(rng.integers(max(20, int(0.2 * length)), min(length - 20, int(0.8 * length)) + 1))
        donors = np.flatnonzero(n >= length - c)
        j = int(rng.choice(donors[donors != i]))
        hist[i] = np.concatenate([hist[i][:c], hist[j][: length - c]])
        truth[i] = [c]
    return hist, truth


def splice_f1(found: Sequence[np.ndarray], truth: list[list[int]]) -> float:
    """F1@10 over the spliced users: a located change within MARGIN events of the splice is a
    hit; every other change point of a spliced user is a false one."""
    tp = fp = fn = 0
    for k, planted in enumerate(truth):
        if not planted:
            continue
        pairs = match_change_points(planted, found[k], MARGIN)
        tp, fp, fn = tp + len(pairs), fp + len(found[k]) - len(pairs), fn + len(planted) - len(pairs)
    return precision_recall_f1(tp, fp, fn)[2]


def choose_components(
    make: Callable[..., object],
    vectors: np.ndarray,
    offsets: np.ndarray,
    users: np.ndarray,
    given: int,
    candidates: Sequence[int] = CANDIDATES,
    random_state: int = 0,
    co_candidates: Sequence[int] = (),
    n_co: int = 0,
    disc_candidates: Sequence[int] = (),
) -> FeatureChoice:
    """The setting that finds splices of the calibration ``users`` (positions) best at the
    product's stated rate: a number of principal components from ``candidates``, one of
    ``co_candidates`` with the co-consumption block, or one of ``disc_candidates`` projected on
    the directions that tell users apart (and, when the co block is given, also with it).
    ``make(k, co, disc)`` (``make(k, co)`` without ``disc_candidates``) is a fresh, unfitted
    detector of that setting (fitted and calibrated
    here on each splice log as ``detect`` does: the whole splice log, real-history calibration,
    no labels); a setting the splice log cannot fit (ShiftError) scores NaN and is not chosen.
    ``n_co``: the input's last ``n_co`` columns are co-consumption factors, learned anew for
    each splice log (:func:`splice_co`). Ties go to ``given`` as it is, then to fewer
    components, then to no block, then to no projection."""
    from core.co_consumption import item_codes
    from core.detectors.real_null import calibrate_real
    from core.errors import ShiftError

    counts = np.diff(offsets)
    pool = np.asarray(users, np.int64)
    pool = pool[counts[pool] >= MIN_EVENTS]
    settings = (
        [(int(k), False, False) for k in candidates]
        + [(int(k), True, False) for k in co_candidates]
        + [(int(k), False, True) for k in disc_candidates]
        + [(int(k), True, True) for k in (disc_candidates if co_candidates else ())]
    )
    candidates = tuple(k for k, _, _ in settings)
    co = tuple(c for _, c, _ in settings) if co_candidates else ()
    disc = tuple(d for _, _, d in settings) if disc_candidates else ()
    if len(pool) < MIN_USERS:
        why = f"{len(pool)} calibration users of {MIN_EVENTS}+ events, fewer than the {MIN_USERS} a choice needs"
        return FeatureChoice(
            int(given), candidates, (np.nan,) * len(candidates), len(pool), 0, why, co, disc=disc
        )
    rng = np.random.default_rng(random_state)
    if len(pool) > MAX_USERS:
        pool = np.sort(rng.choice(pool, MAX_USERS, replace=False))
    scores = np.zeros(len(candidates))
    n_spliced = 0
    codes = item_codes(vectors, random_state) if n_co and co_candidates else None
    per_draw = max(int(round(SPLICE_SHARE * len(pool))), 1)
    draws = int(np.clip(-(-TARGET_SPLICES // per_draw), MIN_DRAWS, MAX_DRAWS))
    for seed in range(draws):
        rows = [np.arange(offsets[k], offsets[k + 1]) for k in pool]
        rows, truth = splice_histories(rows, SPLICE_SHARE, np.random.default_rng([random_state, seed]))
        n_spliced = sum(1 for t in truth if t)
        log_vectors = vectors[np.concatenate(rows)]
        log_offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        if codes is not None:  # factors learned with the splices in the log, as detect would learn them
            log_vectors = splice_co(log_vectors, rows, pool, offsets, codes, n_co, random_state)
        for i, (k, with_co, with_disc) in enumerate(settings):
            try:
                # make(k, co) keeps working for callers without projected candidates
                det = (make(k, with_co, with_disc) if disc_candidates else make(k, with_co)).fit(
                    log_vectors, log_offsets
                )
            except ShiftError:
                scores[i] = np.nan
                continue
            threshold = calibrate_real(det).threshold_for(TARGET_RATE)
            found = per_user_indices(det.predict(threshold), len(rows))
            scores[i] += splice_f1(found, truth) / draws
    best = np.nanmax(scores) if np.isfinite(scores).any() else np.nan
    ties = [st for st, s in zip(settings, scores, strict=True) if np.isfinite(s) and s >= best - 1e-12]
    if not ties:  # no setting could be fitted on the splice logs: the given one stays
        why = "no candidate setting could be fitted on the calibration splice logs"
        f1 = tuple(float(s) for s in scores)
        return FeatureChoice(
            int(given), candidates, f1, len(pool), n_spliced, why, co, disc=disc, draws=draws
        )
    given_setting = (int(given), False, False)
    chosen = given_setting if given_setting in ties else min(ties)
    return FeatureChoice(
        chosen[0],
        candidates,
        tuple(float(s) for s in scores),
        len(pool),
        n_spliced,
        "",
        co,
        chosen[1],
        disc,
        chosen[2],
        draws,
    )


def splice_co(
    log_vectors: np.ndarray,
    rows: list[np.ndarray],
    pool: np.ndarray,
    offsets: np.ndarray,
    codes: tuple[np.ndarray, int],
    n_co: int,
    random_state: int = 0,
) -> np.ndarray:
    """The splice log's vectors with their last ``n_co`` columns (co-consumption factors)
    learned from the whole log *as it would be with the splices in it*: each user of ``pool``
    (positions) has the history ``rows`` (event rows of the log) in place of their own.

    Why: the factors are learned from the histories they then score, so a user's own before /
    after items are pulled together, and a real shift is scored with that handicap. Splices
    scored with the real log's factors, in which each spliced user's first part was still tied
    to their own later events, had no handicap: on a Food.com splice log (issue 19 prevalence
    study, 5% spliced, histories cut to 80-160 events) they scored a median z of 3.7 where the
    log's planted splices scored 1.8; learned with the splices in place, 2.1 against 1.8
    (bench/RESULTS.md, issue 19, fourth round)."""
    from core.co_consumption import item_factors

    if not np.any(log_vectors[:, -n_co:]):  # a flat block (no item consumed twice) stays flat
        return log_vectors
    item, n_items = codes
    hist = [np.arange(offsets[k], offsets[k + 1]) for k in range(len(offsets) - 1)]
    for k, r in zip(pool.tolist(), rows, strict=True):
        hist[k] = r
    lengths = np.array([len(h) for h in hist])
    learn_offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    factors = item_factors(item[np.concatenate(hist)], learn_offsets, n_items, n_co, random_state)
    out = np.array(log_vectors, copy=True)
    out[:, -n_co:] = factors[item[np.concatenate(rows)]]
    return out


def per_user_indices(cp, n_users: int) -> list[np.ndarray]:
    """Each user's located change points (event indices) of a ChangePoints sorted by user."""
    bounds = np.searchsorted(cp.user, np.arange(n_users + 1))
    return [cp.event_index[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
