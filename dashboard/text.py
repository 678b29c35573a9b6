"""Text from data (user ids, titles, categories, file headers) made inert for Streamlit.

``st.markdown`` and every element that takes Markdown (captions, labels, info boxes)
interpret links, emphasis, HTML and LaTeX; a value from a log must show as itself.
"""

from __future__ import annotations

from collections.abc import Iterable

# Every character CommonMark or Streamlit's Markdown extensions give a meaning to
# (LaTeX: ``$``; emoji shortcodes and directives: ``:``; strike-through: ``~``).
_MARKDOWN_SPECIAL = "\\`*_{}[]()<>#+-.!|~$:"


def md_escape(text: object) -> str:
    """``text`` made inert inside st.markdown (no links, emphasis, HTML or LaTeX)."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIAL else c for c in str(text))


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
