"""The headline of a dataset at a threshold in plain words: who shifted, out of whom, how
many of them chance alone would flag, and who is changing right now.

One denominator: every share printed is of all the dataset's users (the Overview and the
Tour once printed "74 (9%)" of the scorable users next to "78 users (8%)" of all of them).
The counts come from the population summary (``core.results.PopulationSummary``): a recent,
not yet locatable shift counted only for users with no located one, and the chance count on
the users the false-alarm share was measured for (a planted world's unchanged users).

The sentences are for a product manager, one per topic, so a page can place them, and a new
one (the count of users beyond everyday drift, with its interval) slots in between
(:data:`ORDER`).

>>> from types import SimpleNamespace
>>> s = SimpleNamespace(n_users=1000, n_scorable=990, min_events=24, n_shifted=475,
...     expected_false=32.0, n_recent=7, calibration_sample="shift-free", n_null_users=550,
...     false_alarms_per_1000=0.97, calibration_fallback="")
>>> said = sentences(s, 1.5)
>>> print(said["flagged"])
**475 of 1,000 users (48%)** changed their interests strongly enough to pass the threshold (ε = 1.5).
>>> print(said["chance"])  # doctest: +NORMALIZE_WHITESPACE
How sure is that? Among the 550 users this dataset's ground truth marks as unchanged, the detector
flags 6% at this threshold: about **32 users** of the 475 may be chance, so roughly **443 users
(44%)** are real shifts.
"""

from __future__ import annotations

# The order of the headline's sentences; "beyond_drift" is the count of users beyond everyday
# drift with its interval (the empirical null of the detection issue), absent until it lands.
ORDER = ("flagged", "scored", "beyond_drift", "chance", "recent")


def percent(share: float) -> str:
    """0.078 -> '8%'; under 1% but not 0 -> 'under 1%' (never '0%' for a non-zero count)."""
    if share <= 0:
        return "0%"
    return "under 1%" if share < 0.005 else f"{share:.0%}"


def users(n: float) -> str:
    """'1 user', '12 users', '1,234 users' (a count of users in words)."""
    n = int(round(n))
    return f"{n:,} user" if n == 1 else f"{n:,} users"


def sentences(summary, threshold: float, own_real_rate: tuple[float, float] | None = None) -> dict[str, str]:
    """The headline of ``summary`` (a ``PopulationSummary`` at ``threshold``) in plain words,
    one sentence (or two) per topic of :data:`ORDER`; a topic with nothing to say is left
    out. ``own_real_rate``: (false alarms per 1,000 events this dataset's own benchmark
    measured on its real, unspliced users at the detector's calibrated default, the rate that
    default was calibrated to); None when the dataset has no benchmark: no figure is stated
    that is not this dataset's own."""
    n_users, n_flagged = summary.n_users, summary.n_shifted

    def share(count: float) -> str:
        return percent(count / n_users) if n_users else "0%"

    out = {
        "flagged": f"**{n_flagged:,} of {n_users:,} users ({share(n_flagged)})** changed their "
        f"interests strongly enough to pass the threshold (ε = {threshold:.3g}).",
    }
    short = n_users - summary.n_scorable
    if short > 0:
        out["scored"] = (
            f"{users(short)} ({share(short)}) {'has' if short == 1 else 'have'} too few events to judge "
            f"(fewer than {summary.min_events})."
        )
    expected = summary.expected_false
    null_users = getattr(summary, "n_null_users", n_users) or n_users
    beyond, chance = getattr(summary, "beyond_drift", None), getattr(summary, "chance", None)
    if beyond is not None and chance is not None:
        out["beyond_drift"] = beyond_drift(beyond, chance, n_users)
    if summary.calibration_sample == "all":
        # With the empirical null's count of those flagged that may be chance (on this log's own
        # users), the everyday-drift sentence ("about as many as are flagged") would contradict it.
        if "beyond_drift" not in out:
            out["chance"] = (
                f"How sure is that? Real people's tastes wander all the time. Counting every flag as a false one on "
                f"this dataset's own users, about **{users(expected)} ({share(expected)})** would be flagged at "
                f"this threshold: about as many as are. So read the {n_flagged:,} as the users whose interests "
                "moved the most, not as a count of real changes; a higher ε keeps only the strongest."
            )
    elif summary.calibration_sample == "shift-free":
        real = max(n_flagged - expected, 0)
        out["chance"] = (
            f"How sure is that? Among the {null_users:,} users this dataset's ground truth marks as unchanged, "
            f"the detector flags {percent(expected / null_users)} at this threshold: "
            f"about **{users(expected)}** of the {n_flagged:,} may be chance, so roughly "
            f"**{users(real)} ({share(real)})** are real shifts."
        )
    else:
        text = (
            f"How sure is that? This detector's threshold was set on the same histories shuffled into random "
            f"order, where it would flag about **{users(expected)}**. Real histories drift on their own, so "
            f"real false alarms run higher: read the {n_flagged:,} as an upper bound."
        )
        if own_real_rate is not None:
            measured, stated = own_real_rate
            text += (
                f" This dataset's own benchmark measured {measured:.3g} false alarms per 1,000 events on its real, "
                f"unchanged users at the detector's default, which shuffled histories put at {stated:.3g}."
            )
        if summary.calibration_fallback:
            # (the fallback's own words, for data scientists, are in the Overview's details)
            text += " This dataset has too few users to measure the rate on its real histories."
        out["chance"] = text
    if summary.n_recent:
        out["recent"] = (
            f"A further **{users(summary.n_recent)}**, not among the {n_flagged:,}, "
            f"{'seems' if summary.n_recent == 1 else 'seem'} to be changing right now (too recent to say when)."
        )
    return out


def beyond_drift(share, chance, n_users: int) -> str:
    """How many users changed beyond everyday drift, with the interval, and how many of those
    flagged at the threshold may be chance (``share``: core.detectors.population.ShiftShare;
    ``chance``: FlaggedChance), in plain words.

    >>> from types import SimpleNamespace
    >>> share = SimpleNamespace(users=31.2, users_interval=(18.0, 45.4), n_scored=900, bulk_moving=False)
    >>> chance = SimpleNamespace(flagged=40, expected_chance=8.4, fdr=0.21)
    >>> print(beyond_drift(share, chance, 943))  # doctest: +NORMALIZE_WHITESPACE
    How many really changed? Compared with how this dataset's users usually drift, about **31 users
    (18–45)** changed their interests beyond everyday drift. Of the 40 users flagged at this
    threshold, about **8** may be everyday drift rather than a real change (21%).
    """
    lo, hi = share.users_interval
    text = (
        f"How many really changed? Compared with how this dataset's users usually drift, about "
        f"**{users(share.users)} ({lo:.0f}–{hi:.0f})** changed their interests beyond everyday drift."
    )
    if getattr(share, "null", "") == "known":
        text = (
            "How many really changed? Compared with the users this dataset's ground truth marks as unchanged, "
            f"about **{users(share.users)} ({lo:.0f}–{hi:.0f})** changed their interests beyond everyday drift."
        )
    if share.bulk_moving:
        against = (
            "the same histories with their events shuffled (which keep no drift at all, so this counts "
            "everyday drift too: at most)"
            if share.null == "shuffled"
            else "the usual drift of the reference logs stored with the product"
        )
        text = (
            "How many really changed? Most of this dataset's users moved at once (a season, a campaign, a "
            "change of catalogue), so their usual drift cannot be learned from them; compared with "
            f"{against}, about **{users(share.users)} ({lo:.0f}–{hi:.0f})** changed their interests beyond it."
        )
    return text + (
        f" Of the {chance.flagged:,} users flagged at this threshold, about **{chance.expected_chance:.0f}** may be "
        f"everyday drift rather than a real change ({chance.fdr:.0%})."
    )
