"""Issue 22: nothing a user types destroys a dataset, and no damaged cache is served.

Each case is a reproduction from the adversarial pass, failing on the code before the fix:
outputs that resolve onto a dataset or a cache, two uploads racing for one name, byte flips
in cached Parquet and ``.npz`` files, and the medium/low rows of the issue (one message, an
exit code other than 0, no trace file).
"""

from __future__ import annotations

import io
import threading

import pytest

from core import store
from core.errors import DatasetExists
from core.store import importer


class _Upload(io.BytesIO):
    """What st.file_uploader hands the page: bytes with the user's file name."""

    def __init__(self, name: str, data: bytes) -> None:
        super().__init__(data)
        self.name = name


ITEMS = b"item_id,title,genres\ni1,Alien,Sci-Fi\ni2,Heat,Crime\n"


def _events(n_users: int) -> bytes:
    rows = "".join(f"u{u},i{1 + k % 2},{1700000000 + 100 * k}\n" for u in range(n_users) for k in range(2))
    return ("user_id,item_id,timestamp\n" + rows).encode()


def test_two_uploads_under_one_new_name_cannot_both_succeed(data_dir, monkeypatch):
    from dashboard import actions

    # Hold the first upload just before its swap, run the second to completion meanwhile:
    # the interleaving that let both report "Imported" (both passed the existence check).
    arrived, release = threading.Event(), threading.Event()
    swap = importer._swap_in

    def held_swap(tmp, target, name, replace):
        if threading.current_thread().name == "first-upload":
            arrived.set()
            assert release.wait(timeout=120)
        return swap(tmp, target, name, replace)

    monkeypatch.setattr(importer, "_swap_in", held_swap)
    outcome: dict = {}

    def first() -> None:
        try:
            outcome["report"] = actions.import_uploads(
                "fresh", _Upload("a.csv", _events(1)), _Upload("i.csv", ITEMS)
            )
        except DatasetExists as err:
            outcome["error"] = err

    thread = threading.Thread(target=first, name="first-upload")
    thread.start()
    assert arrived.wait(timeout=120)
    second = actions.import_uploads("fresh", _Upload("b.csv", _events(3)), _Upload("i.csv", ITEMS))
    release.set()
    thread.join(timeout=120)

    assert second.n_users == 3
    assert "report" not in outcome
    assert "'fresh' was created a moment ago" in str(outcome["error"])
    with store.connect("fresh") as con:  # the second upload's data, untouched by the first
        assert store.dataset_info(con)["n_users"] == 3
    assert [p.name for p in data_dir.iterdir() if p.name.startswith(".")] == []


def test_a_replacing_upload_still_replaces(data_dir):
    from dashboard import actions

    actions.import_uploads("named", _Upload("a.csv", _events(1)), _Upload("i.csv", ITEMS))
    actions.import_uploads("named", _Upload("b.csv", _events(2)), _Upload("i.csv", ITEMS), replace=True)
    with store.connect("named") as con:
        assert store.dataset_info(con)["n_users"] == 2


# ---------------------------------------------------------------- outputs a command does not own


def _cli(argv, capsys) -> tuple[int, str]:
    from core import cli

    try:
        rc = cli.main(argv)
    except SystemExit as exit_:  # argparse refusals
        rc = exit_.code
    return rc, capsys.readouterr().err


def _digest(path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def two_datasets(data_dir):
    from dashboard import actions

    for name in ("base", "other"):
        actions.import_uploads(name, _Upload("e.csv", _events(2)), _Upload("i.csv", ITEMS))
    (data_dir / "base.cache" / "results").mkdir(parents=True)
    return data_dir


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["detect", "base", "--out", "{d}/base.duckdb"], "is a dataset database"),
        (["detect", "base", "--out", "{d}/other.duckdb"], "is a dataset database"),
        (["detect", "base", "--out", "{d}/new.duckdb"], "is a dataset database"),
        (["detect", "base", "--users", "{d}/base.duckdb.wal"], "is a dataset database"),
        (["detect", "base", "--out", "{d}/base.cache/results/x.csv"], "the derived files of dataset 'base'"),
        (["detect", "base", "--out", "{d}/sub/../other.duckdb"], "is a dataset database"),
        (["detect", "base", "--out", "{link}"], "is a dataset database"),
        (["detect", "base", "--out", "{hard}"], "is the database of dataset 'base' (a link to it)"),
        (["evaluate", "base", "--out", "{d}/other.cache"], "the derived files of dataset 'other'"),
        (["evaluate", "base", "--out", "{d}"], "is the data folder itself"),
    ],
    ids=[
        "own",
        "another",
        "new-name",
        "wal",
        "cache",
        "dotdot",
        "symlink",
        "hard-link",
        "eval-cache",
        "eval-data",
    ],
)
def test_outputs_never_land_on_a_dataset_or_a_cache(argv, says, two_datasets, tmp_path, capsys):
    import os

    d = two_datasets
    (d / "sub").mkdir()
    os.symlink(d / "base.duckdb", tmp_path / "link.csv")
    os.link(d / "base.duckdb", tmp_path / "hard.csv")
    before = {p.name: _digest(p) for p in d.glob("*.duckdb")}
    argv = [a.format(d=d, link=tmp_path / "link.csv", hard=tmp_path / "hard.csv") for a in argv]
    rc, err = _cli(argv, capsys)
    assert rc == 2 and says in err and "writing there would destroy it" in err, err
    assert "Traceback" not in err
    assert {p.name: _digest(p) for p in d.glob("*.duckdb")} == before
    assert not (d / "new.duckdb").exists()


def test_two_outputs_naming_one_file_are_refused(two_datasets, tmp_path, capsys):
    out = tmp_path / "x.csv"
    rc, err = _cli(["detect", "base", "--out", str(out), "--users", f"{tmp_path}/./x.csv"], capsys)
    assert rc == 2 and "--out and --users name the same file" in err, err
    assert not out.exists()
