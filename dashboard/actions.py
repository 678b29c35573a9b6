"""What a page does on an explicit request: import uploaded files, encode a dataset's items.

Both run only on a click (a form submit, a button); a page request itself never imports
or encodes.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import streamlit as st

from core.errors import ShiftError
from dashboard import data, navigation, text
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


# The upload form's words for the importer's options; messages written for the CLI name its
# flags, which a web user does not have, so they are reworded into these (form_terms).
FORM_LABELS = {
    "drop_unknown_items": "Drop events of items missing from the items file",
    "drop_duplicates": "Drop repeated events (keep the first)",
    "timestamp_unit": "Timestamp unit",
    "genre_separator": "Category separator in the items file",
}
UNIT_LABELS = {
    None: "detect",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
}
_FLAG_TERMS = {
    "pass --drop-duplicates": f"tick “{FORM_LABELS['drop_duplicates']}” under “Options for messy files”",
    "pass --drop-unknown-items": f"tick “{FORM_LABELS['drop_unknown_items']}” under “Options for messy files”",
    "give --timestamp-unit": f"choose a “{FORM_LABELS['timestamp_unit']}” under “Options for messy files”",
    "--genre-separator": f"“{FORM_LABELS['genre_separator']}”",
}


def form_terms(message: str) -> str:
    """An importer message with every command-line flag replaced by the form's words."""
    for flag, words in _FLAG_TERMS.items():
        message = message.replace(flag, words)
    return re.sub(r"--[a-z][a-z-]+", "the upload form's options", message)


def import_options(drop_unknown: bool, drop_duplicates: bool, unit: str | None, separator: str):
    """The importer's options from the form's fields (core.store.ImportOptions)."""
    return data.import_options(
        drop_unknown_items=drop_unknown,
        drop_duplicates=drop_duplicates,
        timestamp_unit=unit,
        genre_separator=separator,
    )


def import_uploads(
    name: str,
    events: Upload,
    items: Upload,
    delimiter: str = ",",
    replace: bool = False,
    options=None,
) -> ImportReport:
    """Run uploaded files through the same validated, atomic importer as the CLI.

    An existing dataset of that name is replaced only with ``replace``. Without it the name
    is checked once here (a quick answer) and again by the import's swap itself, which
    creates the dataset only if the name is still free (``ImportOptions.replace_existing``):
    of two sessions uploading under one new name, the second is told it was just taken.
    Messages name the uploads by their own names, never by where the server keeps them.
    """
    data.check_dataset_name(name)
    options = dataclasses.replace(options or data.import_options(), replace_existing=replace)
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
            return data.ingest_uploaded(name, saved[0], saved[1], delimiter, options)
        except ShiftError as err:
            message = form_terms(str(err))
            if tmp not in message and message == str(err):
                raise
            # Some messages quote the database engine, which names the file it read.
            for path, label in saved:
                message = message.replace(str(path), label)
            raise type(err)(message.replace(tmp, "upload")) from None


_FLASH = "_flash"


def flash(message: str) -> None:
    """A success message shown once, on the next run (a switch reruns the page)."""
    st.session_state[_FLASH] = message


def show_flash() -> None:
    message = st.session_state.pop(_FLASH, None)
    if message:
        st.success(message, icon=":material/check_circle:")


def switch_dataset(name: str) -> None:
    """Make ``name`` the selected dataset of every page, and rerun so the sidebar shows it."""
    data.dataset_names(fresh=True)
    st.session_state["dataset"] = name
    st.rerun()


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
        navigation.end_page()  # the link and the glossary are still drawn
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
        navigation.end_page()  # the link and the glossary are still drawn
    if selection.not_stored is not None:
        show_what_to_run(selection.dataset, selection.detector, selection.not_stored)
        navigation.end_page()  # the link and the glossary are still drawn
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
    navigation.end_page()  # the link and the glossary are still drawn


@st.fragment(run_every=1.0)
def show_what_to_run(name: str, detector: str, why: str) -> None:
    """A big dataset (an upload over the in-memory limit, say) before ``detect`` stored its
    results: the commands that make it viewable, in place of an error box."""
    from core import limits
    from core.detectors import DEFAULT

    detect = f"python -m core detect {name}" + ("" if detector == DEFAULT else f" --detector {detector}")
    st.info(
        f"{text.md_code(name)} has more than {limits.MAX_EVENTS_IN_MEMORY:,} events, too many to fit "
        "a detector here: its pages show what the command line computed and stored. Run, in this "
        f"project's folder, {text.md_code(f'python -m core encode {name}')} then "
        f"{text.md_code(detect)}, and reload this page.",
        icon=":material/terminal:",
    )
    st.caption(text.md_escape(why))


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


def offer_task(kind: str, name: str, button: str, what: str) -> None:
    """A button that starts a set-up task (the item map, the benchmark) in the background,
    and its progress while it runs; the page reruns when it is done. Stops the page."""
    status = data.task_status(kind, name)
    if status is not None and status.running:
        task_progress(kind, name)
        navigation.end_page()  # the link and the glossary are still drawn
    if status is not None and status.error:
        st.error(f"The last attempt failed: {text.md_escape(status.error)}", icon=":material/error:")
    elif status is not None and status.done:
        # Finished, yet the page still lacks the result (another process removed it?).
        st.warning("The last run finished but left no result here; run it again.", icon=":material/warning:")
    st.info(what, icon=":material/info:")
    st.button(button, key=f"task:{kind}:{name}", type="primary", on_click=data.start_task, args=(kind, name))
    navigation.end_page()  # the link and the glossary are still drawn


@st.fragment(run_every=1.0)
def task_progress(kind: str, name: str) -> None:
    status = data.task_status(kind, name)
    if status is None or not status.running:
        st.rerun()  # finished (or failed): the page shows the result or the error
    with st.status(f"Working on {name}: {status.elapsed:.0f} s so far", expanded=True):
        st.write(text.md_escape(status.message))
        st.caption("Pages stay usable meanwhile; this one updates by itself when the work is done.")
