"""Category composition of a user's history over event order (the stacked-area chart).

Each event spreads one unit over its item's categories (a film that is both Horror and
Sci-Fi gives each half), so the shares of a window always sum to 1 and multi-genre items
do not inflate the chart.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

OTHER = "other"
NONE = "(no category)"


def category_composition(categories: Sequence[Sequence[str]], window: int = 10, top: int = 8) -> pd.DataFrame:
    """Share of each category among the trailing ``window`` events at every event index.

    Rows are event indices 0..T-1, columns the ``top`` most frequent categories of this
    history (the rest summed into ``"other"``); each row sums to 1.

    >>> df = category_composition([["Horror"]] * 3 + [["Sci-Fi"]] * 3, window=2)
    >>> df.round(2).to_dict("list")
    {'Horror': [1.0, 1.0, 1.0, 0.5, 0.0, 0.0], 'Sci-Fi': [0.0, 0.0, 0.0, 0.5, 1.0, 1.0]}
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    lists = [list(c) if c is not None and len(c) else [NONE] for c in categories]
    if not lists:
        return pd.DataFrame(index=pd.RangeIndex(0, name="event_index"))
    rows = np.repeat(np.arange(len(lists)), [len(c) for c in lists])
    flat = [c for cats in lists for c in cats]
    weight = np.repeat([1.0 / len(c) for c in lists], [len(c) for c in lists])
    long = pd.DataFrame({"event": rows, "category": flat, "weight": weight})
    shares = long.pivot_table(
        index="event", columns="category", values="weight", aggfunc="sum", fill_value=0.0
    )
    order = shares.sum().sort_values(ascending=False, kind="stable").index
    keep = list(order[:top])
    if len(order) > top:
        shares[OTHER] = shares[order[top:]].sum(axis=1)
        keep.append(OTHER)
    shares = shares[keep].rolling(window, min_periods=1).mean()
    shares.index.name = "event_index"
    shares.columns.name = None
    return shares


def segment_of(n_events: int, change_points: Sequence[int]) -> np.ndarray:
    """Segment number (0, 1, …) of every event, given change points (first event after each change).

    >>> segment_of(6, [2, 4]).tolist()
    [0, 0, 1, 1, 2, 2]
    """
    cps = np.sort(np.asarray(list(change_points), dtype=np.int64))
    return np.searchsorted(cps, np.arange(n_events), side="right")
