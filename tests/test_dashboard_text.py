"""Text helpers of the dashboard: data text stays inert in Markdown."""

from dashboard.text import joined, md_code, md_escape


def test_md_code_fences_longer_than_any_backtick_run_inside():
    assert md_code("python -m core encode x") == "`python -m core encode x`"
    assert md_code("a``b") == "```a``b```"
    assert md_code("`x`") == "`` `x` ``"
    assert md_code("line\nbreak") == "`line break`"


def test_md_escape_and_joined():
    assert md_escape("$x^2$") == r"\$x^2\$"
    assert md_escape(3) == "3"
    assert joined(["Drama", "War"]) == "Drama, War" and joined(None) == ""


def test_the_glossary_defines_false_alarms_as_the_default_measures_them():
    # Issue 21 row 8: it defined them on shuffled histories only, while the default detector
    # is calibrated on the dataset's own real histories.
    from dashboard.text import GLOSSARY, TERMS

    line = TERMS["false alarms per 1,000 events"]
    assert "this dataset's own users" in line and "default detector" in line
    assert "shuffled" in line  # the other detectors' calibration, still said
    assert md_escape(line) in GLOSSARY
