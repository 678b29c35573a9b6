"""A corpus of bad and awkward inputs, each through ``python -m core ingest`` (in process).

Every rejected case asserts the exit code, the file, column and row the message names,
and that the dataset it tried to replace is byte-identical afterwards. Accepted awkward
cases (BOM, CRLF, emoji ids, …) go to another name and check what was stored; the kept
dataset is still compared byte for byte.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core import cli, store

ITEMS = [
    ["item_id", "title", "genres"],
    ["10", "Alien (1979)", "Horror|Sci-Fi"],
    ["20", "Heat (1995)", "Action"],
]
GOOD_EVENTS = [["user_id", "item_id", "timestamp"], ["u1", "10", "1600000000"], ["u1", "20", "1600000100"]]


def events(*rows, header=("user_id", "item_id", "timestamp")) -> list[list]:
    return [list(header), *[list(r) for r in rows]]


@dataclass
class Case:
    id: str
    events: list[list] | bytes | None = None  # rows (header first), raw CSV bytes, or None: good events
    items: list[list] | bytes | None = None
    args: tuple[str, ...] = ()
    rc: int = 2
    where: tuple[str | None, str | None, int | None] | None = None  # file, column, row in the message
    says: str = ""  # a part of the message
    stored: dict = field(default_factory=dict)  # accepted: what the store holds
    formats: tuple[str, ...] = ("csv", "parquet")


CASES = [
    # Timestamps: units by magnitude, out of range, not finite, empty, unparseable.
    Case(
        "epoch-ms",
        events(("u1", "10", 1600000000000), ("u1", "20", 1600000100000)),
        rc=0,
        says="unix milliseconds",
        stored={"first_ts": "2020-09-13 12:26:40"},
    ),
    Case(
        "epoch-us",
        events(("u1", "10", 1600000000000000), ("u1", "20", 1600000100000000)),
        rc=0,
        says="unix microseconds",
        stored={"first_ts": "2020-09-13 12:26:40"},
    ),
    Case(
        "epoch-ns",
        events(("u1", "10", 1600000000000000000), ("u1", "20", 1600000100000000000)),
        rc=0,
        says="unix nanoseconds",
        stored={"first_ts": "2020-09-13 12:26:40"},
    ),
    Case(
        "epoch-1e20",
        events(("u1", "10", 1600000000.0), ("u1", "20", 1e20)),
        where=("e", "timestamp", 2),
        says="'1e+20' is out of range as unix seconds",
    ),
    Case(
        "epoch-nan",
        events(("u1", "10", 1600000000.0), ("u1", "20", float("nan"))),
        where=("e", "timestamp", 2),
        says="is not a finite number",
    ),
    Case(
        "epoch-inf",
        events(("u1", "10", 1600000000.0), ("u1", "20", float("inf"))),
        where=("e", "timestamp", 2),
        says="is not a finite number",
    ),
    Case(
        "before-1970",
        events(("u1", "10", 1600000000), ("u1", "20", -86400)),
        where=("e", "timestamp", 2),
        says="1969-12-31 00:00:00; timestamps must fall between 1970-01-01",
    ),
    Case(
        "far-future-iso",
        events(("u1", "10", "2020-01-01T00:00:00"), ("u1", "20", "2999-01-01T00:00:00")),
        where=("e", "timestamp", 2),
        says="is 2999-01-01 00:00:00",
    ),
    Case(
        "forced-unit-wrong",
        events(("u1", "10", 1600000000000), ("u1", "20", 1600000100000)),
        args=("--timestamp-unit", "s"),
        where=("e", "timestamp", 1),
        says="read as unix seconds is 52671",
    ),
    Case(
        "empty-timestamp",
        events(("u1", "10", "2020-01-01"), ("u1", "20", "")),
        where=("e", "timestamp", 2),
        says="empty timestamp",
    ),
    Case(
        "unparseable-timestamp",
        events(("u1", "10", "2020-01-01"), ("u1", "20", "soon")),
        where=("e", "timestamp", 2),
        says="cannot parse 'soon'",
    ),
    # Ids, ratings, items.
    Case(
        "empty-user",
        events(("u1", "10", 1600000000), ("", "20", 1600000001)),
        where=("e", "user_id", 2),
        says="empty user id",
    ),
    Case(
        "rating-nan",
        events(
            ("u1", "10", 1600000000, 4.0),
            ("u1", "20", 1600000001, float("nan")),
            header=("user_id", "item_id", "timestamp", "rating"),
        ),
        where=("e", "rating", 2),
        says="is not a finite number",
    ),
    Case(
        "unknown-item",
        events(("u1", "10", 1600000000), ("u1", "99", 1600000001)),
        where=("e", "item_id", 2),
        says="item '99' is not in the items file",
    ),
    Case(
        "duplicate-event",
        events(("u1", "10", 1600000000), ("u1", "10", 1600000000)),
        where=("e", "timestamp", 2),
        says="duplicate event",
    ),
    Case("header-only", events(), where=("e", None, None), says="has a header but no rows"),
    Case(
        "duplicate-item-other-title",
        items=[*ITEMS, ["10", "Aliens (1986)", "Action"]],
        where=("i", "item_id", 3),
        says="item id '10' appears again (first at row 1)",
    ),
    Case(
        "title-100kb",
        items=[ITEMS[0], ["10", "A" * 100_000, "Horror"], ITEMS[2]],
        rc=0,
        stored={"title_length": 100_000},
    ),
    Case(
        "emoji-ids",
        events(("🙂-user", "10", 1600000000), ("🙂-user", "20", 1600000001)),
        rc=0,
        stored={"user_id": "🙂-user"},
    ),
    Case(
        "quote-ids",
        events(('o\'neil "q"', "10", 1600000000), ('o\'neil "q"', "20", 1600000001)),
        rc=0,
        stored={"user_id": 'o\'neil "q"'},
    ),
    # CSV only: encodings, line ends, quoting, ragged rows, bytes.
    Case(
        "bom-crlf",
        b"\xef\xbb\xbfuser_id,item_id,timestamp\r\nu1,10,1600000000\r\nu1,20,1600000001\r\n",
        rc=0,
        stored={"n_events": 2},
        formats=("csv",),
    ),
    Case(
        "quoted-newline-title",
        items=b'item_id,title\n10,"Alien\n(1979)"\n20,Heat\n',
        rc=0,
        stored={"title": "Alien\n(1979)"},
        formats=("csv",),
    ),
    Case(
        "latin-1",
        b"user_id,item_id,timestamp\nu1,10,1600000000\nJos\xe9,20,1600000001\n",
        where=("e", None, 2),
        says="is not UTF-8",
        formats=("csv",),
    ),
    Case(
        "nul-byte",
        b"user_id,item_id,timestamp\nu1,10,1600000000\nu1,20,16000\x0000001\n",
        where=("e", "timestamp", 2),
        says="cannot parse",
        formats=("csv",),
    ),
    Case(
        "ragged-long",
        b"user_id,item_id,timestamp\nu1,10,1600000000\nu1,20,1600000001,9\n",
        where=("e", None, 2),
        says="has 4 fields where the header has 3",
        formats=("csv",),
    ),
    Case(
        "ragged-short",
        b"user_id,item_id,timestamp\nu1,10,1600000000\nu1,20\n",
        where=("e", None, 2),
        says="has 2 fields where the header has 3",
        formats=("csv",),
    ),
    Case(
        "ragged-late",
        ("user_id,item_id,timestamp\n" + "u1,10,1600000000\n" * 3000 + "u1,20,1,2\n").encode(),
        where=("e", None, 3001),
        says="has 4 fields",
        formats=("csv",),
    ),
    Case("empty-file", b"", where=("e", None, None), says="the file is empty", formats=("csv",)),
    Case(
        "semicolons",
        b"user_id;item_id;timestamp\nu1;10;1600000000\n",
        where=("e", "user_id", None),
        says="looks ';'-delimited",
        formats=("csv",),
    ),
    Case(
        "empty-delimiter",
        args=("--delimiter", ""),
        rc=2,
        says="argument --delimiter: must not be empty",
        formats=("csv",),
    ),
    Case(
        "empty-genre-separator",
        args=("--genre-separator", ""),
        rc=2,
        says="argument --genre-separator: must not be empty",
        formats=("csv",),
    ),
    # Parquet only: broken files and wrong column types.
    Case(
        "truncated-parquet",
        "truncate",
        where=("e", None, None),
        says="cannot be read as PARQUET",
        formats=("parquet",),
    ),
    Case(
        "parquet-bool-timestamp",
        pd.DataFrame({"user_id": ["u1"], "item_id": ["10"], "timestamp": [True]}),
        where=("e", "timestamp", 1),
        says="cannot parse 'true'",
        formats=("parquet",),
    ),
    Case(
        "parquet-text-rating",
        pd.DataFrame({"user_id": ["u1"], "item_id": ["10"], "timestamp": [1600000000], "rating": ["five"]}),
        where=("e", "rating", 1),
        says="cannot parse 'five' as a number",
        formats=("parquet",),
    ),
    Case(
        "parquet-float-item-ids",
        pd.DataFrame({"user_id": ["u1"], "item_id": [10.0], "timestamp": [1600000000]}),
        where=("e", "item_id", 1),
        says="item '10.0' is not in the items file",
        formats=("parquet",),
    ),
    Case(
        "parquet-timestamp-type-too-late",
        pd.DataFrame({"user_id": ["u1"], "item_id": ["10"], "timestamp": pd.to_datetime(["2200-01-01"])}),
        where=("e", "timestamp", 1),
        says="is 2200-01-01 00:00:00",
        formats=("parquet",),
    ),
    # Issue 22: an odd epoch unit, named time zones, an import that would leave nothing.
    Case(
        "epoch-seconds-among-ms",
        events(("u1", "10", 1600000000000), ("u1", "20", 1600000100000), ("u2", "10", 1600000000)),
        where=("e", "timestamp", 3),
        says="timestamp '1600000000' looks like unix seconds among unix milliseconds (read as those it is "
        "1970-01-19 12:26:40)",
    ),
    Case(
        "named-time-zone",
        events(("u1", "10", "2020-06-01 12:00:00 America/New_York"), ("u1", "20", "2020-06-02 12:00:00 UTC")),
        rc=0,
        stored={"first_ts": "2020-06-01 16:00:00"},
    ),
    Case(
        "unknown-time-zone",
        events(("u1", "10", "2020-06-01 12:00:00"), ("u1", "20", "2020-06-01 12:00:00 Mars/Olympus")),
        where=("e", "timestamp", 2),
        says="cannot parse '2020-06-01 12:00:00 Mars/Olympus'",
    ),
    Case(
        "gzip-compressed-csv",
        gzip.compress(b"user_id,item_id,timestamp\nu1,10,1600000000\n", mtime=0),
        where=("e", None, None),
        says="is gzip-compressed; decompress it first",
        formats=("csv",),
    ),
    Case(
        "every-event-dropped",
        events(("u1", "99", 1600000000), ("u2", "98", 1600000000)),
        args=("--drop-unknown-items",),
        where=("e", None, None),
        says="every event was dropped (2 events of items not in the items file), which would leave 'keep' empty",
    ),
    # Issue 22, low rows: a column named twice (the first was read silently), a list where one id
    # belongs (it became the id '[1, 2]'), a problem in the header reported as "row 0".
    Case(
        "duplicate-column",
        events(("u1", "10", 1600000000, "u9"), header=("user_id", "item_id", "timestamp", "user_id")),
        where=("e", "user_id", None),
        says="named 2 times among the file's columns: 'user_id' (column 1), 'user_id' (column 4); rename",
    ),
    Case(
        "duplicate-column-other-case",
        items=[["item_id", "title", "Title"], ["10", "Alien", "x"], ["20", "Heat", "y"]],
        where=("i", "title", None),
        says="'title' (column 2), 'Title' (column 3)",
    ),
    Case(
        "parquet-list-user-ids",
        pd.DataFrame(
            {"user_id": [None, [1, 2]], "item_id": ["10", "20"], "timestamp": [1600000000, 1600000100]}
        ),
        where=("e", "user_id", 2),
        says="holds BIGINT[] values, not one value per row",
        formats=("parquet",),
    ),
    Case(
        "parquet-list-item-ids",
        items=pd.DataFrame({"item_id": [["10"], ["20"]], "title": ["Alien", "Heat"]}),
        where=("i", "item_id", 1),
        says="holds VARCHAR[] values",
        formats=("parquet",),
    ),
    Case(
        "not-utf8-header",
        b"user_id,item_id,timestamp\xe9\nu1,10,1600000000\n",
        where=("e", None, None),
        says="header line: is not UTF-8",
        formats=("csv",),
    ),
]
PARAMS = [pytest.param(case, fmt, id=f"{case.id}-{fmt}") for case in CASES for fmt in case.formats]


def _write(folder: Path, stem: str, content, fmt: str) -> Path:
    path = folder / f"{stem}.{fmt}"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, pd.DataFrame):
        content.to_parquet(path, index=False)
    elif fmt == "csv":
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(
            [[repr(v) if isinstance(v, float) and v != v else v for v in row] for row in content]
        )
        path.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        # pyarrow directly: pandas would store NaN as null, and the NaN cases need a real NaN.
        header, *rows = content
        columns = list(zip(*rows)) if rows else [[] for _ in header]
        arrays = [pa.array(list(values), type=None if rows else pa.string()) for values in columns]
        pq.write_table(pa.Table.from_arrays(arrays, names=list(header)), path)  # a name may repeat
    return path


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = cli.main(argv)
    except SystemExit as exit_:  # argparse refusals
        rc = exit_.code
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture
def kept(data_dir, tmp_path, capsys):
    """A dataset named 'keep' imported from good files: every case may try to replace it."""
    good = tmp_path / "good"
    good.mkdir()
    rc, _, err = _run(
        [
            "ingest",
            "keep",
            "--events",
            str(_write(good, "e", GOOD_EVENTS, "csv")),
            "--items",
            str(_write(good, "i", ITEMS, "csv")),
        ],
        capsys,
    )
    assert rc == 0, err
    return store.dataset_path("keep")


@pytest.mark.parametrize(("case", "fmt"), PARAMS)
def test_bad_input_corpus(case: Case, fmt: str, kept: Path, tmp_path, capsys):
    before = _digest(kept)
    folder = tmp_path / "case"
    folder.mkdir()
    if isinstance(case.events, str):  # "truncate"
        full = _write(folder, "full", GOOD_EVENTS, "parquet").read_bytes()
        events_path = folder / "e.parquet"
        events_path.write_bytes(full[: len(full) // 2])
    else:
        events_path = _write(folder, "e", case.events if case.events is not None else GOOD_EVENTS, fmt)
    items_path = _write(folder, "i", case.items if case.items is not None else ITEMS, fmt)
    name = "keep" if case.rc else "other"
    rc, out, err = _run(
        ["ingest", name, "--events", str(events_path), "--items", str(items_path), *case.args], capsys
    )
    assert rc == case.rc, err
    text = out + err
    assert case.says in text
    if case.rc:
        assert "Traceback" not in text
        assert len(err.strip().splitlines()) == 1 if "argument" not in err else True
    if case.where:
        file, column, row = case.where
        message = err.strip().splitlines()[-1]
        label = {"e": events_path.name, "i": items_path.name}[file]
        assert message.startswith(f"error: {label}"), message
        if column:
            assert f"column '{column}'" in message
        if row is not None:
            assert f"row {row}:" in message
        else:
            assert "row " not in message.split(":")[0]
    assert _digest(kept) == before
    assert sorted(p.name for p in kept.parent.iterdir() if p.name.startswith(".")) == []
    if case.rc == 0:
        _check_stored(case.stored)


def _check_stored(expected: dict) -> None:
    con = store.connect("other")
    users = store.load_users(con)
    items = store.load_items(con)
    for key, value in expected.items():
        if key == "first_ts":
            assert str(users["first_ts"].min()) == value
        elif key == "title_length":
            assert items["title"].str.len().max() == value
        elif key == "title":
            assert value in items["title"].tolist()
        elif key == "user_id":
            assert users["user_id"].tolist() == [value]
        elif key == "n_events":
            assert store.dataset_info(con)["n_events"] == value


def test_the_corpus_has_at_least_forty_cases():
    assert len(PARAMS) >= 40


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda p: p / "missing.csv", "file not found"),
        (lambda p: p, "is a folder, not a file"),
        (lambda p: _loop(p), "is a symbolic link loop"),
        (lambda p: _dangling(p), "symbolic link to a missing file"),
        (lambda p: _globbed(p), "are not read (paths are taken literally"),
    ],
    ids=["missing", "folder", "symlink-loop", "dangling-symlink", "glob-characters"],
)
def test_paths_are_regular_files_read_literally(make, says, kept, tmp_path, capsys):
    before = _digest(kept)
    items = _write(tmp_path, "items", ITEMS, "csv")
    rc, _, err = _run(["ingest", "keep", "--events", str(make(tmp_path)), "--items", str(items)], capsys)
    assert rc == 2 and says in err and "Traceback" not in err
    assert _digest(kept) == before


def _loop(folder: Path) -> Path:
    link = folder / "loop.csv"
    os.symlink(link, link)
    return link


def _dangling(folder: Path) -> Path:
    link = folder / "dangling.csv"
    os.symlink(folder / "nowhere.csv", link)
    return link


def _globbed(folder: Path) -> Path:
    # Two files match "ev*.csv"; DuckDB would read both.
    _write(folder, "ev1", GOOD_EVENTS, "csv")
    _write(folder, "ev2", GOOD_EVENTS, "csv")
    return folder / "ev*.csv"
