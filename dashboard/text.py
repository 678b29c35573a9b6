"""Text from data (user ids, titles, categories, file headers) made inert for Streamlit.

``st.markdown`` and every element that takes Markdown (captions, labels, info boxes)
interpret links, emphasis, HTML and LaTeX; a value from a log must show as itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Every character CommonMark or Streamlit's Markdown extensions give a meaning to
# (LaTeX: ``$``; emoji shortcodes and directives: ``:``; strike-through: ``~``).
_MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~$:"


# GFM's autolink literals (remark-gfm, which Streamlit runs) turn bare URLs, "www." domains
# and e-mail addresses into links *after* escapes are resolved, so escaping cannot stop them:
# a WORD JOINER (U+2060, invisible, no width) after the scheme, "www" or "@" does, since the
# patterns need "https://", "www." and "@domain" with nothing between.
_WORD_JOINER = "\u2060"
_AUTOLINK_START = re.compile(r"(?i)(\b(?:https?|ftp|mailto|xmpp)(?=:)|\bwww(?=\.)|@(?=[-\w]))")


def md_escape(text: object) -> str:
    """``text`` made inert inside st.markdown (no links, autolinks, emphasis, HTML or LaTeX).

    >>> print(md_escape("[g](https://evil.example/gm) *x* a@b.example").replace(_WORD_JOINER, "<WJ>"))
    \\[g\\]\\(https<WJ>\\://evil\\.example/gm\\) \\*x\\* a@<WJ>b\\.example
    """
    unlinked = _AUTOLINK_START.sub(lambda m: m.group(0) + _WORD_JOINER, str(text))
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in unlinked)


def md_code(text: object) -> str:
    """``text`` as inline code: shown verbatim, whatever it holds (backticks included).

    A code span ends at a run of backticks as long as its fence, so the fence is one
    longer than the longest run inside (CommonMark, "code spans").
    """
    text = str(text).replace("\n", " ")
    run, longest = 0, 0
    for c in text:
        run = run + 1 if c == "`" else 0
        longest = max(longest, run)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def joined(values: Iterable[object] | None, sep: str = ", ") -> str:
    """A list cell (categories) as one plain string; None or empty -> ''."""
    return "" if values is None else sep.join(str(v) for v in values)


def eps(value: float) -> str:
    """ε the one way every page prints it: three significant digits (0.0123, 1.24, 12.3)."""
    return f"{float(value):.3g}"


# One line per symbol or term the pages show; pages open it in a "What these words mean"
# expander and reuse single lines as tooltips.
TERMS = {
    "shift score": "How different a user's next events are from their previous ones; higher means a clearer change.",
    "ε (epsilon)": "The threshold: a change point is a peak of the shift score at or above ε.",
    "change point": "The first event after which a user's interests differ (a peak of the score at or above ε).",
    "false alarms per 1,000 events": "How many change points the detector raises per 1,000 events where "
    "every one is counted as false. The default detector measures it on this dataset's own users set aside "
    "for the purpose (a planted world: its users that have no planted shift); other detectors, and datasets "
    "with too few users, on the same histories shuffled into random order, which drift less than real ones.",
    "beyond everyday drift": "Real people's tastes wander all the time. The default detector learns how "
    "much from the bulk of this dataset's own users (their middle, where the few who really changed barely "
    "reach) and counts the users whose change is larger than that: the count comes with a range (95% "
    "bootstrap interval). When most users moved at once (a season, a campaign), their middle cannot stand for "
    "everyday drift: the same users' histories with their events shuffled into random order stand in (they "
    "keep no drift at all, so the count then includes everyday drift: at most that many), said so. "
    "A planted world, whose ground truth names the users that did not change, learns everyday drift from "
    "those users alone and counts all of its users against it.",
    "chance it is real": "For one user: the probability that their strongest change is beyond everyday "
    "drift (1 - local false discovery rate). It does not depend on ε.",
    "share of flagged that may be chance": "A false discovery rate: of the users flagged at ε, the share "
    "everyday drift alone would explain. Setting the threshold this way picks the lowest ε that keeps it "
    "at most the share asked for.",
    "item features": "Each item's text is turned into numbers by a language model; the default detector "
    "reads a few main directions of those numbers (principal components), and may also read which items "
    "the dataset's own users consume together (co-consumption factors: two recipes with unrelated names "
    "that the same people cook sit close). It may also keep only the directions along which users differ "
    "from each other more than one user wanders from page to page (a user rating a page of westerns, then "
    "a page of comedies, is still the same user). How many directions, and whether co-consumption or that "
    "projection helps, suits one dataset and not another, so the dataset chooses: its users that set the "
    "false-alarm rate are mixed "
    "with other users' histories at a known event, and the setting that finds those planted changes best "
    "at the stated rate is used (shown on the Overview, under how it was measured).",
    "scored / not scored": "A detector compares windows of events before and after each event, so the "
    "first and last events of a history, and whole short histories, cannot be scored.",
    "|wᵀΔf|": "The linear rule's score: how far a user's recent mean moved along the direction that "
    "separates shifts from noise.",
    "∩ (intersection)": "Items that are in both lists.",
    "oracle": "A benchmark row whose threshold was tuned on the test users themselves: a ceiling for "
    "reference, not a fair score.",
    "real null / control": "Real histories with no splice, so any alarm on them is false.",
    "F1@10": "The balance of precision and recall when a detected change counts as right within 10 events "
    "of the true one (F1@5: within 5; 'hard': only sharp splices).",
    "precision / recall": "Precision: the share of detected changes that are true. Recall: the share of "
    "true changes detected.",
    "planted": "A change point built into a synthetic or spliced history, so the truth is known.",
}
GLOSSARY = "\n".join(f"- **{md_escape(term)}**: {md_escape(line)}" for term, line in TERMS.items())
