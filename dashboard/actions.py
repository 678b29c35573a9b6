"""What a page does on an explicit request: import uploaded files, encode a dataset's items.

Both run only on a click (a form submit, a button); a page request itself never imports
or encodes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import streamlit as st

from core.errors import ShiftError
from dashboard import data, text
from dashboard.sidebar import Selection

if TYPE_CHECKING:
    from core.store import ImportReport

# Session-state key for the encoder the buttons use instead of the shared language model:
# tests put a small stub there, a deployment could put a remote encoder.
ENCODER_KEY = "encoder"


class Upload(Protocol):
    """What st.file_uploader hands a page: the user's file name and the bytes."""

    name: str

    def getvalue(self) -> bytes: ...


def import_uploads(
    name: str, events: Upload, items: Upload, delimiter: str = ",", replace: bool = False
) -> ImportReport:
    """Run uploaded files through the same validated, atomic importer as the CLI.

    An existing dataset of that name is replaced only with ``replace``; messages name the
    uploads by their own names, never by where the server keeps them.
    """
    data.check_dataset_name(name)
    if not replace and name in data.dataset_names(fresh=True):
        raise ShiftError(
            f"a dataset named {name!r} exists already: choose another name, or confirm that "
            "the upload replaces it"
        )
    with tempfile.TemporaryDirectory() as tmp:
        saved = []
        for upload in (events, items):
            # The upload's own name is only a label in messages; the file on disk gets a
            # fixed name with the upload's suffix so that Parquet and CSV are told apart.
            suffix = ".parquet" if upload.name.lower().endswith((".parquet", ".pq")) else ".csv"
            path = Path(tmp) / f"{len(saved)}{suffix}"
            path.write_bytes(upload.getvalue())
            saved.append((path, upload.name))
        try:
            return data.ingest_uploaded(name, saved[0], saved[1], delimiter)
        except ShiftError as err:
            message = str(err)
            if tmp not in message:
                raise
            # Some messages quote the database engine, which names the file it read.
            for path, label in saved:
                message = message.replace(str(path), label)
            raise type(err)(message.replace(tmp, "upload")) from None


def fresh_name(taken: list[str], stem: str = "upload") -> str:
    """The first of ``upload-1``, ``upload-2``, … that names no dataset yet."""
    return next(f"{stem}-{i}" for i in range(1, len(taken) + 2) if f"{stem}-{i}" not in taken)


def encoder():
    """The encoder buttons use: an injected one (``st.session_state[ENCODER_KEY]``) or the
    shared language model."""
    return st.session_state.get(ENCODER_KEY) or data.shared_encoder()


def encode_with_progress(name: str) -> None:
    """Encode a dataset's items, driving an ``st.progress`` bar. Only ever run on a click."""
    bar = st.progress(0.0, text="Encoding item texts…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(total, 1), text=f"Encoding item texts… {done:,} of {total:,}")

    data.encode_dataset(name, encoder(), progress)
    bar.empty()


def require_dataset(selection: Selection) -> str:
    """The selected dataset, or stop the page with the commands that make one."""
    if selection.dataset is None:
        warn_no_dataset()
        st.stop()
    return selection.dataset


def warn_no_dataset() -> None:
    st.warning(
        f"No datasets under {text.md_code(data.data_folder())}. Create the default one with "
        "`python -m core ingest movielens-100k`, or upload files on the Overview page."
    )


def require_encoded(selection: Selection) -> None:
    """Continue only if the dataset's items are encoded and the detector's fit is ready;
    else offer a button that encodes them, or show the background fit's progress, and stop
    the page (the sidebar stays usable)."""
    if selection.encoded and selection.fitting is not None:
        fit_progress(selection.dataset, selection.detector)
        st.stop()
    if selection.encoded:
        return
    name = selection.dataset
    st.info(
        f"The items of {text.md_code(name)} have not been encoded yet. Encode them here, or run "
        f"{text.md_code(f'python -m core encode {name}')} once; vectors are cached, so this happens once.",
        icon=":material/info:",
    )
    # The click is kept in session state (a callback), not in the button's return value,
    # which the rerun of a page run without app.py (sidebar._route_through_app) would drop.
    flag = f"encode_requested:{name}"
    st.button(
        "Encode items now",
        key=f"encode:{name}",
        type="primary",
        on_click=st.session_state.__setitem__,
        args=(flag, True),
    )
    if st.session_state.pop(flag, False):
        encode_with_progress(name)
        st.rerun()
    st.stop()


@st.fragment(run_every=1.0)
def fit_progress(name: str, detector: str) -> None:
    """A background fit's progress, refreshed every second; reruns the page when it is done."""
    status = data.fit_status(name, detector)
    if status.ready:
        st.rerun()
    if status.error is not None:
        st.error(f"Fitting {detector} failed: {text.md_escape(status.error)}", icon=":material/error:")
        return
    if not status.running:  # a run of another session may have started it a moment ago
        data.start_fit(name, detector)
        status = data.fit_status(name, detector)
    share = min(status.elapsed / max(status.expected, 1e-9), 0.95)
    st.progress(
        share,
        text=f"Fitting detector {detector} on every user of {name} (once; it is stored for every later "
        f"visit): {status.elapsed:.0f} s so far, roughly {status.expected:.0f} s in all. The sidebar stays "
        "usable: pick another detector to look at meanwhile.",
    )
