"""Probe behind the user-discriminant projection (issue 19, fourth round): how many splices the
root split finds on whitened principal components against the same components projected on the
directions that tell users apart (core.detectors.discriminant.discriminant_directions).

A probe, not the product's protocol: each user's root split only (no binary segmentation, no
empirical null), the score log max F standardised by length bucket as the empirical null's
first step, and the threshold set on the splice log's own control users at 1 alarm per 1,000
of their events (an oracle threshold: the same for every feature setting, so the settings are
compared at equal real false alarms). The window h is the product's (min_size, 12 events),
with 6 and 24 beside it for 48 components. The splice logs are the prevalence study's
(bench.detection_study.splice_log, seed 0).

    SHIFT_DATA_DIR=... python -m bench.discriminant_probe movielens-100k food
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from bench.detection_study import MAX_PREVALENCE_USERS, load_world, splice_log
from core.co_consumption import with_co
from core.detectors.best_split import f_scan
from core.detectors.discriminant import discriminant_directions
from core.detectors.empirical_null import _standardise_buckets
from core.detectors.shift_features import ShiftFeatures, event_index


def whitened(vectors: np.ndarray, k: int) -> np.ndarray:
    mean = vectors.mean(0)
    _, s, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    return (vectors - mean) @ vt[:k].T / (s[:k] / np.sqrt(len(vectors)))


def detrended(z: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Less the population's mean at each event index (the product's index detrending)."""
    trend = ShiftFeatures(z.shape[1])._trend(z, offsets)
    return z - trend[np.minimum(event_index(offsets), len(trend) - 1)]


def root_f1(z: np.ndarray, log, min_size: int = 12) -> float:
    off = log.offsets
    n = len(off) - 1
    x, tau = np.full(n, np.nan), np.zeros(n, int)
    for k in range(n):
        lo, hi = off[k], off[k + 1]
        if hi - lo >= 2 * min_size:
            f = f_scan(z[lo:hi], min_size)
            j = int(np.argmax(f))
            x[k], tau[k] = np.log(f[j]), min_size + j
    length = np.diff(off).astype(float)
    ok = np.isfinite(x)
    loglen, centre, spread = _standardise_buckets(x[ok], length[ok], 150, 8)
    t = np.full(n, -np.inf)
    t[ok] = (x[ok] - np.interp(np.log(length[ok]), loglen, centre)) / np.interp(
        np.log(length[ok]), loglen, spread
    )
    spliced = log.spliced
    control = ~spliced & ok
    allowed = int(length[control].sum() / 1000)  # a root split: at most one alarm per user
    ranked = np.sort(t[control])[::-1]
    flag = t > (ranked[allowed] if allowed < len(ranked) else -np.inf)
    tp = sum(1 for k in np.flatnonzero(spliced & flag) if abs(tau[k] - log.truth[k][0]) <= 10)
    fp, fn = (spliced & flag).sum() - tp, spliced.sum() - tp
    return 2 * tp / max(2 * tp + fp + fn, 1)


def probe(name: str, say=print) -> None:
    world = load_world(name)
    emb = world.emb.astype(np.float64)
    for lengths, share in itertools.product(("truncated", "whole"), (0.05, 0.125)):
        t0 = time.perf_counter()
        log = splice_log(world, share, lengths, 0, MAX_PREVALENCE_USERS)
        v, off = emb[log.item_idx], log.offsets
        co = with_co(world.emb, log.item_idx, off, 16)[:, -16:].astype(np.float64)[log.item_idx]
        cells = []
        for k in (8, 16, 32, 64):
            cells.append(f"pca{k} {root_f1(detrended(whitened(v, k), off), log):.3f}")
        cells.append(
            f"pca16+co {root_f1(detrended(np.hstack([whitened(v, 16) / 4, whitened(co, 16) / 4]), off), log):.3f}"
        )
        for k in (32, 48, 64, 96):
            z0 = detrended(whitened(v, k), off)
            for h in (6, 12, 24) if k == 48 else (12,):
                d, w = discriminant_directions(z0, off, h)
                cells.append(f"u{k}/h{h} ({len(w)}) {root_f1(z0 @ (d * w), log):.3f}")
        z0 = detrended(np.hstack([whitened(v, 48), whitened(co, 16)]), off)
        d, w = discriminant_directions(z0, off, 12)
        cells.append(f"u48+co/h12 ({len(w)}) {root_f1(z0 @ (d * w), log):.3f}")
        say(f"{name} {lengths} {share}: " + " | ".join(cells) + f" ({time.perf_counter() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("logs", nargs="+")
    for name in ap.parse_args(argv).logs:
        probe(name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
