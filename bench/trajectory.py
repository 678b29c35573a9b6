"""Trajectory math: vectorised population passes, chunked streaming, and one user's fetch.

On an ingested and encoded dataset (default movielens-100k) it times, in one run:
  * two_window_delta / recent_mean / ewma over every user at once (CSR, cumulative sums),
    next to a plain per-user Python loop computing the same delta (checked equal);
  * iter_trajectories in chunks of --max-events events (the bound on memory per chunk);
  * user_trajectory for --users random users, with a held read-only connection and without.
Usage: python -m bench.trajectory [--dataset movielens-100k] [--h 10] [--max-events 20000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np


def _timed(fn, *args):
    started = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - started


def naive_delta(vectors: np.ndarray, offsets: np.ndarray, h: int) -> np.ndarray:
    """The per-user loop the vectorised version replaces (baseline only)."""
    out = np.full(vectors.shape, np.nan, dtype=np.float32)
    for k in range(len(offsets) - 1):
        x = vectors[offsets[k] : offsets[k + 1]].astype(np.float64)
        for t in range(h, len(x) - h + 1):
            out[offsets[k] + t] = x[t : t + h].mean(0) - x[t - h : t].mean(0)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--h", type=int, default=10)
    parser.add_argument("--max-events", type=int, default=20_000)
    parser.add_argument("--users", type=int, default=50)
    args = parser.parse_args(argv)

    from core import store
    from core.artefacts import cached_item_matrix, iter_trajectories, user_trajectory
    from core.artefacts import trajectories as load_trajectories
    from core.errors import ShiftError
    from core.trajectory import (
        ewma,
        rating_weights,
        recent_mean,
        two_window_delta,
    )

    items = cached_item_matrix(args.dataset)
    if items is None:
        raise ShiftError(f"encode first: python -m core encode {args.dataset}")
    tr, t_load = _timed(load_trajectories, args.dataset, None, items)
    x = tr.vectors()
    print(
        f"{args.dataset}: {tr.n_users:,} users, {tr.n_events:,} events, d={x.shape[1]}; load {t_load:.2f} s"
    )
    delta, t_delta = _timed(two_window_delta, x, tr.offsets, args.h)
    _, t_recent = _timed(recent_mean, x, tr.offsets, args.h)
    _, t_ewma = _timed(ewma, x, tr.offsets, float(args.h))
    w = rating_weights(tr.rating, tr.offsets)
    _, t_weighted = _timed(two_window_delta, x, tr.offsets, args.h, w)
    slow, t_naive = _timed(naive_delta, x, tr.offsets, args.h)
    err = np.nanmax(np.abs(delta - slow))
    print(
        f"two_window_delta h={args.h}: {t_delta:.2f} s (per-user loop {t_naive:.2f} s, "
        f"{t_naive / t_delta:.1f}x slower; max |diff| {err:.1e})"
    )
    print(
        f"recent_mean h={args.h}: {t_recent:.2f} s; ewma halflife={args.h}: {t_ewma:.2f} s; "
        f"rating-weighted delta: {t_weighted:.2f} s"
    )

    started = time.perf_counter()
    chunks = [(c.n_users, c.n_events) for c in iter_trajectories(args.dataset, args.max_events, items)]
    t_chunks = time.perf_counter() - started
    biggest = max(n for _, n in chunks)
    print(
        f"iter_trajectories max_events={args.max_events:,}: {len(chunks)} chunks, largest {biggest:,} events "
        f"= {biggest * x.shape[1] * 4 / 2**20:.0f} MiB of float32 vectors; all chunks read in {t_chunks:.2f} s"
    )

    rng = np.random.default_rng(0)
    picks = rng.choice(tr.user_ids, size=min(args.users, tr.n_users), replace=False)
    con = store.connect(args.dataset)
    held, fresh = [], []
    for user in picks:
        _, t = _timed(lambda u=user: user_trajectory(args.dataset, u, items, con).delta(args.h))
        held.append(t * 1000)
        _, t = _timed(lambda u=user: user_trajectory(args.dataset, u, items).delta(args.h))
        fresh.append(t * 1000)
    con.close()
    print(
        f"user_trajectory + delta, {len(picks)} users: median {statistics.median(held):.1f} ms with a held "
        f"connection (max {max(held):.1f}), {statistics.median(fresh):.1f} ms opening the file each time"
    )


if __name__ == "__main__":
    main()
