"""Every numeric option of every command is checked while parsing; outputs and crashes get a line."""

from __future__ import annotations

from pathlib import Path

import pytest

from core import cli

BAD_NUMBERS = [
    (["detect", "d", "--threshold", "nan"], "argument --threshold: 'nan' is not a finite number"),
    (["detect", "d", "--threshold", "inf"], "argument --threshold: 'inf' is not a finite number"),
    (["detect", "d", "--false-alarms", "0"], "argument --false-alarms: '0' is outside (0, ∞)"),
    (["detect", "d", "--false-alarms", "-1"], "argument --false-alarms: '-1' is outside (0, ∞)"),
    (["detect", "d", "--false-alarms", "nan"], "argument --false-alarms: 'nan' is not a finite number"),
    (["project", "d", "--n-neighbors", "0"], "argument --n-neighbors: '0' must be at least 2"),
    (["project", "d", "--n-neighbors", "x"], "argument --n-neighbors: 'x' is not an integer"),
    (["project", "d", "--min-dist", "-1"], "argument --min-dist: '-1' is outside [0, 1]"),
    (["project", "d", "--min-dist", "nan"], "argument --min-dist: 'nan' is not a finite number"),
    (["project", "d", "--random-state", "-3"], "argument --random-state: '-3' must be between 0 and"),
    (["evaluate", "d", "--false-alarms", "inf"], "argument --false-alarms: 'inf' is not a finite number"),
    (["evaluate", "d", "--seed", "-1"], "argument --seed: '-1' must be between 0 and"),
    (["encode", "d", "--batch-size", "0"], "argument --batch-size: '0' must be at least 1"),
    (
        ["recommend", "d", "--user", "u", "--change-point", "-2"],
        "argument --change-point: '-2' must be at least 0",
    ),
    (["recommend", "d", "--user", "u", "--k", "nan"], "argument --k: invalid int value: 'nan'"),
    (["ingest", "d", "--synthetic", "tiny", "--seed", "1e3"], "argument --seed: '1e3' is not an integer"),
    (["ingest", "d", "--delimiter", ""], "argument --delimiter: must not be empty"),
    (
        ["ingest", "d", "--synthetic", "0"],
        "argument --synthetic: the synthetic world needs at least one user",
    ),
    (["ingest", "d", "--synthetic", "99999999999"], "argument --synthetic: the synthetic world has at most"),
    (["ingest", "d", "--synthetic", "-5"], "argument --synthetic: unknown synthetic size '-5'"),
    (["ingest", "abc\n", "--synthetic", "tiny"], "argument name: dataset name 'abc\\n' is not allowed"),
]


@pytest.mark.parametrize(
    ("argv", "message"), BAD_NUMBERS, ids=[" ".join(a[:1] + a[2:4]) for a, _ in BAD_NUMBERS]
)
def test_bad_numbers_are_refused_while_parsing(argv, message, data_dir, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_detect_out_to_a_folder_or_an_unwritable_place_is_a_message(data_dir, tmp_path, capsys):
    for out, says in (
        (tmp_path, "is a folder; give a file name inside it"),
        (tmp_path / "f.csv" / "x.csv", "is not a folder"),
    ):
        if says == "is not a folder":
            (tmp_path / "f.csv").write_text("a file, not a folder")
        with pytest.raises(SystemExit):
            cli.main(["detect", "d", "--out", str(out)])
        assert says in capsys.readouterr().err


def test_an_unexpected_error_prints_one_line_and_where_the_trace_is(data_dir, capsys, monkeypatch):
    # A bug, not a user's mistake (a file named like a dataset now gets its own message).
    from core import store

    def bug():
        raise OSError("disk on fire\nsecond line")

    monkeypatch.setattr(store, "list_dataset_names", bug)
    assert cli.main(["datasets"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: unexpected OSError: disk on fire (full trace in")
    trace = Path(err[0].rsplit("(full trace in ", 1)[1].rstrip(")"))
    assert "Traceback (most recent call last)" in trace.read_text()
    trace.unlink()
