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


# ---------------------------------------------------------------- damaged caches are never served


class _Encoder:
    """A deterministic stand-in for the language model, counting what it encodes."""

    model_id, dim = "stub@00000000000a", 8

    def __init__(self) -> None:
        self.n_encoded = 0

    def load(self):
        return self

    def encode(self, texts, progress=None):
        import numpy as np

        self.n_encoded += len(texts)
        rng = np.random.default_rng(len(self.model_id))
        base = rng.normal(size=(64, self.dim)).astype(np.float32)
        return np.stack([base[sum(map(ord, t)) % 64] for t in texts])


def _flip(path, needle: bytes) -> None:
    """Invert ``needle``'s bytes where they sit in ``path``: the file still decodes, to other values."""
    raw = bytearray(path.read_bytes())
    at = raw.find(needle)
    assert at > 0, "the value is not stored verbatim"
    raw[at : at + len(needle)] = bytes(b ^ 0x5A for b in needle)
    path.write_bytes(bytes(raw))


def test_flipped_bytes_in_the_embeddings_cache_are_re_encoded_not_served(data_dir):
    from core import embeddings
    from dashboard import actions

    actions.import_uploads("base", _Upload("e.csv", _events(2)), _Upload("i.csv", ITEMS))
    first = embeddings.encode_items("base", _Encoder())
    path = embeddings.cache_path("base", _Encoder.model_id)
    _flip(path, first.matrix[0].tobytes())
    assert embeddings.cached_item_matrix("base", _Encoder.model_id) is None
    enc = _Encoder()
    again = embeddings.encode_items("base", enc)
    assert (again.n_cached, enc.n_encoded) == (0, first.n_unique_texts)
    assert (again.matrix == first.matrix).all()
    assert (embeddings.cached_item_matrix("base", _Encoder.model_id) == first.matrix).all()


def test_an_npz_member_rewritten_with_a_valid_zip_is_refused(tmp_path):
    import zipfile

    import numpy as np

    from core.derived_files import InvalidArtefact, Manifest, load_npz, save_npz

    path = save_npz(tmp_path / "fit.npz", Manifest("fit", "v1"), {"scores": np.arange(5.0)})
    # A zip member's CRC catches a flipped byte; a member replaced whole (CRC recomputed) is
    # what only the checksum in the file catches.
    forged = tmp_path / "forged.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(forged, "w") as dst:
        for entry in src.namelist():
            data = src.read(entry)
            if entry == "scores.npy":
                data = data.replace(np.float64(3.0).tobytes(), np.float64(-2e24).tobytes())
            dst.writestr(entry, data)
    assert load_npz(path)[1]["scores"][3] == 3.0
    with pytest.raises(InvalidArtefact, match="does not match its checksum"):
        load_npz(forged)


@pytest.fixture
def detected(world_copy):
    from core.cli import main

    assert main(["detect", "synthetic", "--out", "/dev/null"]) == 0
    from core.detectors import DEFAULT

    (folder,) = (world_copy.folder / "synthetic.cache" / "results").glob(f"{DEFAULT}-*")
    return folder


@pytest.mark.parametrize("file", ["scores.parquet", "change_points.parquet", "users.parquet"])
@pytest.mark.parametrize("how", ["value", "middle-byte"])
def test_damaged_stored_results_are_refused_and_detect_rewrites_them(detected, file, how, capsys):
    import numpy as np
    import pyarrow.parquet as pq

    from core import artefacts
    from core.artefacts.results import NotPrecomputed
    from core.cli import main

    path = detected / file
    before = artefacts.user_table("synthetic"), artefacts.stored_user_signal("synthetic", "30").score
    if how == "value":  # a score that decodes to another number
        column = "max_score" if file == "users.parquet" else "score"
        values = pq.read_table(path, columns=[column]).column(column).to_numpy()
        _flip(path, np.float64(values[np.isfinite(values)][-1]).tobytes())
    else:  # wherever it lands: a value, a length, compressed bytes
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    with pytest.raises(NotPrecomputed, match=r"are damaged .*run: python -m core detect synthetic"):
        artefacts.user_table("synthetic")
    with pytest.raises(NotPrecomputed, match="are damaged"):
        artefacts.stored_user_signal("synthetic", "30")
    # detect checks every file it relies on, not only summary.json, and rewrites the damaged one.
    assert main(["detect", "synthetic", "--out", "/dev/null"]) == 0
    capsys.readouterr()
    assert artefacts.user_table("synthetic").equals(before[0])
    np.testing.assert_array_equal(artefacts.stored_user_signal("synthetic", "30").score, before[1])


# ---------------------------------------------------------------- text from data stays text

# GFM's autolink literal patterns (mdast-util-gfm-autolink-literal), which Streamlit's
# Markdown runs on text after resolving backslash escapes.
_GFM_URL = r"(?i)(https?://|www(?=\.))([-.\w]+)"
_GFM_EMAIL = r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)"


@pytest.mark.parametrize(
    "value",
    [
        "[g](https://evil.example/gm)",
        "https://evil.example/gm",
        "see www.evil.example now",
        "HTTP://EVIL.EXAMPLE",
        "mail boss@evil.example",
        "<a href='https://evil.example'>x</a>",
    ],
)
def test_text_from_data_is_never_a_link(value):
    import re

    from dashboard.text import md_escape

    shown = re.sub(r"\\(.)", r"\1", md_escape(value))  # what the renderer sees after escapes
    assert not re.search(_GFM_URL, shown) and not re.search(_GFM_EMAIL, shown)
    assert shown.replace("\u2060", "") == value  # and it still reads as itself


def test_csv_exports_neutralise_spreadsheet_formulas(tmp_path):
    import pandas as pd

    from core.commands.detect import _write

    frame = pd.DataFrame(
        {
            "user_id": ['=HYPERLINK("https://evil.example","x")', "@SUM(A1)", "+1+1", "-2", "u7"],
            "score": [-1.5] * 5,
        }
    )
    _write(frame, tmp_path / "cp.csv")
    written = pd.read_csv(tmp_path / "cp.csv", dtype={"user_id": str})
    assert written.user_id.tolist() == [
        '\'=HYPERLINK("https://evil.example","x")',
        "'@SUM(A1)",
        "'+1+1",
        "-2",
        "u7",
    ]
    assert (written.score == -1.5).all()


# ---------------------------------------------------------------- one message, exit code not 0, no trace


@pytest.fixture
def no_trace_file(monkeypatch):
    from core import cli

    def fail(err):
        raise AssertionError(f"a trace file was written for {err!r}")

    monkeypatch.setattr(cli, "_write_trace", fail)


def test_a_foreign_file_named_like_a_dataset_does_not_hide_the_others(two_datasets, no_trace_file, capsys):
    (two_datasets / "x.duckdb").write_text("not a database")
    rc, err = _cli(["datasets"], capsys)
    assert rc == 2 and "x.duckdb is not a readable dataset database" in err and "move the file away" in err
    rc, err = _cli(["detect", "x"], capsys)
    assert rc == 2 and "is not a readable dataset database" in err, err


def test_the_good_datasets_are_still_listed(two_datasets, capsys):
    from core import cli

    (two_datasets / "x.duckdb").write_text("not a database")
    assert cli.main(["datasets"]) == 2
    out = capsys.readouterr().out
    assert "base" in out and "other" in out and "not readable" in out


@pytest.mark.parametrize(
    ("setting", "says"),
    [("file", "is a file, not a folder"), ("under-file", "cannot be made")],
)
def test_a_bad_data_folder_setting_gets_a_message(
    setting, says, tmp_path, monkeypatch, no_trace_file, capsys
):
    (tmp_path / "f").write_text("x")
    monkeypatch.setenv(
        "SHIFT_DATA_DIR", str(tmp_path / "f" if setting == "file" else tmp_path / "f" / "data")
    )
    rc, err = _cli(["datasets"], capsys)
    assert rc == 2 and says in err and "set SHIFT_DATA_DIR" in err, err


def test_an_empty_detector_list_is_refused(two_datasets, no_trace_file, capsys):
    rc, err = _cli(["evaluate", "base", "--detectors", ""], capsys)
    assert rc == 2 and "names nothing" in err, err


def test_a_closed_pipe_ends_with_a_message(two_datasets, monkeypatch, no_trace_file, capsys):
    import sys

    from core import cli

    class ClosedPipe(io.StringIO):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    rc = cli.main(["datasets"])
    monkeypatch.undo()
    assert rc == 141
    assert "the output was closed before it was all written" in capsys.readouterr().err


def test_a_file_where_the_cache_folder_belongs_gets_a_message(two_datasets):
    import shutil

    from core.errors import ShiftError

    shutil.rmtree(two_datasets / "base.cache")
    (two_datasets / "base.cache").write_text("x")
    with pytest.raises(
        ShiftError, match=r"base\.cache is a file, but it is where the derived files of 'base' belong"
    ):
        store.cache_dir("base")


def test_a_folder_where_a_derived_file_belongs_gets_a_message(tmp_path):
    import numpy as np

    from core.derived_files import Manifest, save_npz
    from core.errors import ShiftError

    (tmp_path / "fit.npz").mkdir()
    with pytest.raises(ShiftError, match=r"fit\.npz is a folder where a derived file belongs"):
        save_npz(tmp_path / "fit.npz", Manifest("fit", "v1"), {"x": np.zeros(2)})


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["detect", "base", "--detector", ""], "argument --detector: '' names no detector"),
        (["detect", "base", "--detector", " "], "argument --detector: ' ' names no detector"),
        (
            ["recommend", "base", "--user", "u0", "--detector", ""],
            "argument --detector: '' names no detector",
        ),
        (["evaluate", "base", "--detectors", " "], "argument --detectors: ' ' names nothing"),
    ],
    ids=["detect", "detect-blank", "recommend", "evaluate"],
)
def test_an_empty_detector_name_is_refused_not_read_as_the_default(
    argv, says, two_datasets, no_trace_file, capsys
):
    rc, err = _cli(argv, capsys)
    last = err.strip().splitlines()[-1]
    assert rc == 2 and says in last, err
    assert "--detectors" in argv or "leave --detector out for the default (best_split)" in last


# A command that ends normally, then the signal lands while Python tears down: in an atexit
# callback (torch and Ray register theirs while a command runs) or while modules are unloaded.
_LATE_SIGNAL = """
import atexit, os, signal, sys
from core import cli
from core.commands import datasets

listed = datasets.run

class Teardown:
    def __del__(self):  # runs while the interpreter unloads modules, after every atexit callback
        os.kill(os.getpid(), signal.{signal})

def run(args):
    code = listed(args)
    if "{when}" == "atexit":
        atexit.register(lambda: os.kill(os.getpid(), signal.{signal}))
    else:
        sys.modules["teardown"] = type(sys)("teardown")
        sys.modules["teardown"].kept = Teardown()
    return code

datasets.run = run
sys.argv[1:] = ["datasets"]
cli.run()
"""


@pytest.mark.parametrize(
    ("signal", "when", "code", "line"),
    [
        ("SIGINT", "atexit", 130, "interrupted"),
        ("SIGTERM", "atexit", 143, "terminated"),
        ("SIGINT", "unloading", 0, None),
    ],
    ids=["ctrl-c-at-exit", "sigterm-at-exit", "ctrl-c-while-unloading"],
)
def test_a_signal_after_the_command_ends_with_one_line(signal, when, code, line, two_datasets):
    import subprocess
    import sys

    script = _LATE_SIGNAL.format(signal=signal, when=when)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    # Before: "Exception ignored in atexit callback … KeyboardInterrupt" and exit 0, or killed by
    # the signal (-2) with no message once Python had put back the default handler.
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().splitlines() == ([line] if line else []), done.stderr
    assert "base" in done.stdout and "other" in done.stdout  # the command's output is all there


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--device", "gpu0"], "device 'gpu0' is not a torch device (cpu, cuda, cuda:1, …)"),
        (["--device", "mps"], "device 'mps': only cpu and cuda are supported"),
        (["--device", "cuda:99"], "CUDA GPU"),
        (["--device", "cpu", "--precision", "fp16"], "precision fp16 needs a CUDA GPU; on a CPU use bf16"),
        (["--device", "cpu", "--engine", "ray"], "--device is for --engine local"),
    ],
    ids=["not-a-device", "unsupported", "no-such-gpu", "fp16-on-cpu", "ray"],
)
def test_a_bad_device_is_refused_even_when_nothing_needs_encoding(
    argv, says, two_datasets, monkeypatch, no_trace_file, capsys
):
    import types

    import core.artefacts

    def all_cached(name, encoder, progress=None):  # every text already in the cache: no model load
        return types.SimpleNamespace(model_id="m@0", n_items=2, n_unique_texts=2, n_cached=2, n_encoded=0)

    monkeypatch.setattr(core.artefacts, "encode_items", all_cached)
    rc, err = _cli(["encode", "base", *argv], capsys)
    assert rc == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert _cli(["encode", "base", "--device", "cpu", "--precision", "fp32"], capsys)[0] == 0


def test_detect_on_a_dataset_without_events_gets_a_message(two_datasets, no_trace_file, capsys):
    import duckdb

    from core.store.content_version import stamp_content_version

    # What an import that dropped every event left before such imports were refused.
    con = duckdb.connect(str(two_datasets / "base.duckdb"))
    con.execute("DELETE FROM event_rows; DELETE FROM users; UPDATE datasets SET n_users = 0, n_events = 0")
    stamp_content_version(con)
    con.close()
    rc, err = _cli(["detect", "base", "--out", "/dev/null"], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert "dataset 'base' has no events" in err and "import it again: python -m core ingest base" in err


def test_a_big_upload_says_what_to_run_instead_of_an_error_box(world_copy, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from core import limits
    from tests.test_app_overview import EVENTS_CSV, _StubEncoder, _upload

    # Above the in-memory limit pages read what `detect` stored, and an upload stores nothing:
    # every page showed "NotPrecomputed: no stored detection results" in an exception box.
    monkeypatch.setattr(limits, "MAX_EVENTS_IN_MEMORY", 1)
    at = AppTest.from_file(world_copy.app, default_timeout=120)
    at.session_state["dataset"] = "synthetic"
    at.run()
    at.session_state["encoder"] = _StubEncoder()
    _upload(at, ("ev.csv", EVENTS_CSV), name="big-upload")
    for page in ("overview", "timeline", "tour", "recommendations", "projection", "evaluation"):
        at.switch_page(f"pages/{page}.py").run()
        assert not at.exception and not at.error, (page, at.exception, [e.value for e in at.error])
        said = [i.value for i in at.info if "python -m core detect" in i.value]
        assert len(said) == 1, (page, [i.value for i in at.info])
        assert "`python -m core encode big-upload` then `python -m core detect big-upload`" in said[0]
