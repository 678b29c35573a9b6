"""What the pages say in words, cached: the headline's sentences (:mod:`core.headline`), whether
a log's dates are real or a sign-up back-fill (:mod:`core.sessions`), a benchmark setting or a
calibration in plain words. The computation is in ``core``; the edge over detection results is
:mod:`dashboard.data`, the one past them :mod:`dashboard.downstream`.
"""

from __future__ import annotations

import ast
import math

import pandas as pd

from core import headline as core_headline
from core import sessions
from dashboard import data, downstream
from dashboard.caching import by_version

# Users read to judge a log's timestamps: the first ones suffice, and a 50M-event world's
# whole event table would be seconds to read for a caption.
_SESSION_SAMPLE_USERS = 2_000
# The spliced benchmark's size (core.benchmark.splices.splice_benchmark's default) and the
# users below which its splices reuse each user so often that its figures say little.
BENCHMARK_SPLICES = 300
BENCHMARK_MIN_USERS = 200


def headline(name: str, detector: str, threshold: float) -> dict[str, str]:
    """The Overview's and the Tour's headline in plain words (core.headline.sentences)."""
    summary = data.population_summary(name, detector, threshold)
    return core_headline.sentences(summary, threshold, own_real_rate(name, detector))


def own_real_rate(name: str, detector: str) -> tuple[float, float] | None:
    """(false alarms per 1,000 events on real, unspliced users, the rate the default was
    calibrated to) from this dataset's own stored benchmark, at ``detector``'s default; None
    when the dataset has none: a figure on screen is the dataset's own or is not shown."""
    stored = downstream.stored_evaluation(name)
    if stored is None:
        return None
    meta, table, _, _ = stored
    if not {"detector", "setting", "FA/1000 control"} <= set(table.columns):
        return None
    row = table[(table["detector"] == detector) & (table["setting"] == "default")]
    try:
        measured = float(row["FA/1000 control"].iloc[0])
        stated = float(meta.get("target_false_alarms_per_1000"))
    except (IndexError, TypeError, ValueError):
        return None
    return (measured, stated) if math.isfinite(measured) and math.isfinite(stated) else None


@by_version(max_entries=16)
def dates_backfilled(name: str) -> bool:
    """Whether most users entered their events in one sitting (core.sessions), judged on
    the dataset's first users."""
    from core import store

    with store.connect(name) as con:
        events = store.load_event_arrays(con, (0, _SESSION_SAMPLE_USERS))
    return sessions.backfilled_share(events.offsets, events.ts) >= sessions.BACKFILLED_LOG


def user_backfilled(events: pd.DataFrame) -> bool:
    """Whether one user's events (``ts`` column) were entered in one sitting."""
    return sessions.busiest_day_share(events["ts"].to_numpy()) >= sessions.ONE_SITTING


def setting_in_words(value: object) -> str:
    """A benchmark row's setting as words: ``{'pca': 16, 'h': 20}`` -> "pca 16, h 20" (a raw
    dict, or its text as the stored results hold it); anything else as itself."""
    if isinstance(value, str) and value.startswith("{"):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            return value
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return "" if value is None else str(value)


def settings_in_words(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with its ``setting`` column (if any) in words."""
    if "setting" not in table.columns:
        return table
    return table.assign(setting=[setting_in_words(v) for v in table["setting"]])


def calibration_words(name: str, detector: str) -> str:
    """What ``detector``'s false-alarm rate was measured on, in plain words (the sidebar's
    captions; "held-aside real histories" meant nothing to a product manager)."""
    rates = data.false_alarm_rates(name, detector, data.threshold_scale(name, detector).default)
    if rates.null != "real":
        return "the same histories shuffled into random order, where no shift exists"
    if rates.sample == "shift-free":
        return "this dataset's users with no planted shift, every flag there counted as false"
    return "users of this dataset set aside for it, every flag there counted as false"
