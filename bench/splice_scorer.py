"""Probe (issue 19): can a scorer the log trains on splices of its own users find splices that
the shipped default's F statistic cannot tell from everyday drift?

The shipped default scores a user by the F statistic of the root split of its item features
(text, and the log's co-consumption factors where its feature choice takes them), against an
empirical null. Here each
splice log (the prevalence study's, ``bench.detection_study.splice_log``) is also scored by a
gradient-boosted classifier trained, with no labels of the log, on *self-made* splices: the
users of the calibration half as they are (label 0, planted splices among them unlabelled, as
in a real log) against splices of those same users with each other (label 1; the protocol of
``core.detectors.feature_choice.splice_histories``). Two folds of the calibration half are
cross-fitted (a user is scored by the model that never saw it); the check half by both
models' mean. The threshold is the real calibration's: the score at which the calibration half
raises 1.0 alarm per 1,000 of its events (root split only: one alarm per flagged user); the
change is located at the root split of the default's features.

Per user, from the root split tau of the default's chosen features:
- ``split``: log max F, its significance under the detector's empirical null, tau / n, the cosine
  of the two segments' mean vectors;
- ``+co``: the same F scan over the log's item co-consumption factors (core.co_consumption, the
  block the default may read itself): its log max F, log F at tau, the distance of its argmax
  from tau, the two segments' cosine;
- ``+pop``: the items' log popularity in the log, mean before minus after tau, the slope over
  the history and the change in spread. In this benchmark a splice appends user B's *first*
  events, which are popular ones, so these columns partly read the protocol rather than the
  interests: they are reported apart.
Never the history's length: a splice needs 40+ events and a real user only 24+, so length alone
would "find" splices here.

Usage: ``python -m bench.splice_scorer [movielens-100k food] [--seeds 0 1]``; writes
bench/results/splice_scorer.{json,md}.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import time

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score

from bench.detection_study import (
    MAX_PREVALENCE_USERS,
    RESULTS,
    TARGET,
    SpliceLog,
    _log_scores,
    load_world,
    splice_log,
)
from core.co_consumption import with_co
from core.detectors import ChangePoints, make_detector
from core.detectors.best_split import f_scan
from core.detectors.feature_choice import splice_histories
from core.detectors.real_null import calibrate_real, calibration_halves

SETS = {
    "split": ["logF", "z", "tau/n", "cos"],
    "split+co": ["logF", "z", "tau/n", "cos", "co logF", "co logF@tau", "co |argmax-tau|/n", "co cos"],
    "split+co+pop": [
        "logF",
        "z",
        "tau/n",
        "cos",
        "co logF",
        "co logF@tau",
        "co |argmax-tau|/n",
        "co cos",
        "pop before-after",
        "pop slope",
        "pop sd before-after",
    ],
}
COLUMNS = SETS["split+co+pop"]
DRAWS = 4  # self-made splice logs per fold
TRAIN_SHARE = 0.5  # share of a fold's users spliced in each draw


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.mean(0), b.mean(0)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def root_features(det, emb, co, logpop, item_idx, offsets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users x COLUMNS, each user's root split tau, the argmax of the two scans together);
    NaN rows for users too short to split."""
    z = det.features_.transform(emb[item_idx], offsets)
    m = det.min_size
    out = np.full((len(offsets) - 1, len(COLUMNS)), np.nan)
    taus = np.full(len(offsets) - 1, -1)
    taus_both = np.full(len(offsets) - 1, -1)  # argmax of both scans, each over its own mean
    for k in range(len(offsets) - 1):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        n = hi - lo
        if n < det.min_events:
            continue
        f = f_scan(z[lo:hi], m)
        j = int(np.argmax(f))
        tau = m + j
        c = co[item_idx[lo:hi]]
        fc = f_scan(c, m)
        jc = int(np.argmax(fc))
        p = logpop[item_idx[lo:hi]]
        zt = z[lo:hi]
        taus_both[k] = m + int(np.argmax(f / f.mean() + fc / fc.mean()))
        out[k] = [
            np.log(f[j]),
            float(det._significance(np.array([f[j]]), n)[0]),
            tau / n,
            _cos(zt[:tau], zt[tau:]),
            np.log(fc[jc]),
            np.log(fc[j]),
            abs(jc - j) / n,
            _cos(c[:tau], c[tau:]),
            p[:tau].mean() - p[tau:].mean(),
            np.polyfit(np.arange(n), p, 1)[0] * n,
            p[:tau].std() - p[tau:].std(),
        ]
        taus[k] = tau
    return out, taus, taus_both


def _rows(log: SpliceLog, users: np.ndarray) -> list[np.ndarray]:
    return [log.item_idx[log.offsets[k] : log.offsets[k + 1]] for k in users]


def _train(det, emb, co, logpop, log, users, cols, seed) -> HistGradientBoostingClassifier:
    xs, ys = [], []
    for draw in range(DRAWS):
        rows, truth = splice_histories(_rows(log, users), TRAIN_SHARE, np.random.default_rng([seed, draw]))
        offs = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int64)
        x, _, _ = root_features(det, emb, co, logpop, np.concatenate(rows), offs)
        ok = ~np.isnan(x[:, 0])
        xs.append(x[ok][:, cols])
        ys.append(np.array([bool(t) for t in truth])[ok])
    return HistGradientBoostingClassifier(
        max_iter=200, learning_rate=0.05, max_leaf_nodes=15, random_state=0
    ).fit(np.vstack(xs), np.concatenate(ys))


def learned_scores(det, emb, co, logpop, log, feats, setting, cols, seed) -> np.ndarray:
    """Cross-fitted log-odds of 'spliced' per user (NaN: too short)."""
    scores = np.full(len(log.truth), np.nan)
    folds = np.array_split(np.random.default_rng(seed).permutation(setting), 2)
    others = np.setdiff1d(np.arange(len(log.truth)), setting)
    ok = ~np.isnan(feats[:, 0])
    rest = []
    for i, fold in enumerate(folds):
        model = _train(det, emb, co, logpop, log, folds[1 - i], cols, seed * 10 + i)
        mine = fold[ok[fold]]
        scores[mine] = model.decision_function(feats[mine][:, cols])
        rest.append(model.decision_function(feats[others][:, cols]))
    scores[others] = np.mean(rest, axis=0)
    scores[~ok] = np.nan
    return scores


def threshold_at_rate(scores: np.ndarray, offsets: np.ndarray, users: np.ndarray, rate: float) -> float:
    """Smallest score at which ``users`` raise at most ``rate`` alarms per 1,000 of their events
    (one root alarm per flagged user)."""
    s = np.sort(scores[users][~np.isnan(scores[users])])[::-1]
    allowed = int(np.floor(rate * np.diff(offsets)[users].sum() / 1000.0))
    return float(s[allowed]) + 1e-9 if allowed < len(s) else float(s[-1])


def as_change_points(scores, taus, threshold) -> ChangePoints:
    flagged = np.flatnonzero(np.nan_to_num(scores, nan=-np.inf) >= threshold)
    return ChangePoints(flagged, taus[flagged], scores[flagged], taus[flagged])


def cell(world, share: float, lengths: str, seed: int) -> dict:
    log = splice_log(world, share, lengths, seed, MAX_PREVALENCE_USERS)
    t0 = time.perf_counter()
    det = make_detector("best_split")  # the shipped default, given the log's co-consumption factors
    matrix = with_co(world.emb, log.item_idx, log.offsets, det.n_co)
    det.fit(matrix[log.item_idx], log.offsets)
    thr = calibrate_real(det).threshold_for(TARGET)
    row = {
        "log": world.name,
        "histories": lengths,
        "spliced": share,
        "seed": seed,
        "components": det.n_components,
    }
    row["co-consumption"] = bool(det.use_co)
    row["default"] = _log_scores(log, det.predict(thr))
    co = matrix[:, -det.n_co :]
    logpop = np.log1p(np.bincount(log.item_idx, minlength=len(world.emb)))
    feats, taus, tb = root_features(det, matrix, co, logpop, log.item_idx, log.offsets)
    setting, checking = calibration_halves(np.arange(len(log.truth)), 0.5, 0)
    judge = checking[np.diff(log.offsets)[checking] >= 40]  # AUC among users a splice could be
    row["AUC check half, 40+ events"] = {"default z": roc_auc_score(log.spliced[judge], feats[judge, 1])}
    for name, names in SETS.items():
        cols = [COLUMNS.index(c) for c in names]
        s = learned_scores(det, matrix, co, logpop, log, feats, setting, cols, seed)
        t = threshold_at_rate(s, log.offsets, setting, TARGET)
        row[name] = _log_scores(log, as_change_points(s, taus, t)) | {"threshold": t}
        hit = np.array([bool(tr) and abs(taus[k] - tr[0]) <= 10 for k, tr in enumerate(log.truth)])
        flagged_spliced = log.spliced & (np.nan_to_num(s, nan=-np.inf) >= t)
        row[name]["spliced flagged"] = int(flagged_spliced.sum())
        row[name]["located within 10"] = (
            float(hit[flagged_spliced].mean()) if flagged_spliced.any() else np.nan
        )
        hit2 = np.array([bool(tr) and abs(tb[k] - tr[0]) <= 10 for k, tr in enumerate(log.truth)])
        row[name]["located both"] = float(hit2[flagged_spliced].mean()) if flagged_spliced.any() else np.nan
        row["AUC check half, 40+ events"][name] = roc_auc_score(log.spliced[judge], s[judge])
    row["seconds"] = time.perf_counter() - t0
    row["load"] = os.getloadavg()[0]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="*", default=["movielens-100k", "food"])
    ap.add_argument("--seeds", nargs="*", type=int, default=[0])
    ap.add_argument("--shares", nargs="*", type=float, default=[0.05, 0.125])
    ap.add_argument("--stem", default="splice_scorer")
    args = ap.parse_args()
    rows = []
    for name in args.logs:
        world = load_world(name)
        for lengths, share, seed in itertools.product(("truncated", "whole"), args.shares, args.seeds):
            row = cell(world, share, lengths, seed)
            rows.append(row)
            d = row["default"]
            parts = [f"default {d['F1@10']:.3f}/{d['FA/1000 control']:.2f}"] + [
                f"{k} {row[k]['F1@10']:.3f}/{row[k]['FA/1000 control']:.2f} ({row[k]['spliced flagged']} flagged, "
                f"{row[k]['located within 10']:.2f} located, both {row[k]['located both']:.2f})"
                for k in SETS
            ]
            auc = " ".join(f"{k} {v:.3f}" for k, v in row["AUC check half, 40+ events"].items())
            print(
                f"{name} {lengths} {share:g} seed {seed}: F1@10/FA " + ", ".join(parts) + f" | AUC {auc} | "
                f"{row['seconds']:.0f}s load {row['load']:.1f}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{args.stem}.json").write_text(json.dumps(rows, indent=1))
    lines = [
        "| log | histories | spliced | seed | default F1@10 / FA | "
        + " | ".join(f"{k} F1@10 / FA" for k in SETS)
        + " | AUC default z | "
        + " | ".join(f"AUC {k}" for k in SETS)
        + " |",
        "|" + "---|" * (5 + 2 * len(SETS) + 1),
    ]
    for r in rows:
        a = r["AUC check half, 40+ events"]
        lines.append(
            f"| {r['log']} | {r['histories']} | {r['spliced']:g} | {r['seed']} | "
            f"{r['default']['F1@10']:.3f} / {r['default']['FA/1000 control']:.2f} | "
            + " | ".join(f"{r[k]['F1@10']:.3f} / {r[k]['FA/1000 control']:.2f}" for k in SETS)
            + f" | {a['default z']:.3f} | "
            + " | ".join(f"{a[k]:.3f}" for k in SETS)
            + " |"
        )
    (RESULTS / f"{args.stem}.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
