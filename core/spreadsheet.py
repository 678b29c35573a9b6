"""CSV cells made safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel, LibreOffice and Google Sheets (``=HYPERLINK(…)`` can leak data or open a
link), and ids come from the logs, so whoever wrote the log chooses them. Such text cells
get a leading apostrophe, which spreadsheets show as text; numbers (``-1.5``) stay as they
are. This is OWASP's "CSV injection" advice; it changes the written text, so it is applied
to files meant for people, not to data files read back by this package.
"""

from __future__ import annotations

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value: object) -> object:
    """``value`` with an apostrophe in front if a spreadsheet would run it as a formula.

    >>> [neutralise_cell(v) for v in ("=HYPERLINK(1)", "@sum", "-1.5", "u-1", 3, "+")]
    ["'=HYPERLINK(1)", "'@sum", '-1.5', 'u-1', 3, "'+"]
    """
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value  # a number written as text is data, not a formula


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` whose text cells a spreadsheet would run are neutralised."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(neutralise_cell)
    return out
