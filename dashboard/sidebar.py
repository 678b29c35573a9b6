"""The shared selection: dataset, detector, ε and user, chosen in the sidebar.

The router (``app.py``, :func:`dashboard.navigation.route`) builds it once per run, before
the page runs, which is Streamlit's way to share widgets across pages with ``st.navigation``
(widgets drawn by the entrypoint belong to no page). The page reads it as a frozen
:class:`Selection` (:func:`dashboard.navigation.selection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import streamlit as st

from core.errors import ShiftError
from dashboard import data, text

_SHARED = "_selection"  # session-state key: the selection of the current run, read once


@dataclass(frozen=True)
class Selection:
    """What the sidebar chose for this run. Detection fields are set only when the dataset's
    items are encoded (``encoded``); ``user`` only on pages about one user."""

    dataset: str | None
    encoded: bool = False
    detector: str = ""
    threshold: float = math.nan
    false_alarms: float = math.nan  # expected per 1,000 events at ``threshold``
    online: bool = False  # online detectors raise their alarm after the change
    user: str | None = None


def share(selection: Selection) -> None:
    """Hand ``selection`` to the page that runs next in this run (the router only)."""
    st.session_state[_SHARED] = selection


def take() -> Selection | None:
    """The selection shared in this run, once (None if the router did not run)."""
    return st.session_state.pop(_SHARED, None)


def _remember(key: str) -> None:
    # Widget state is dropped when a run does not draw that widget (the user picker is only
    # on some pages), so the choice is copied into a plain session key that survives.
    st.session_state[key] = st.session_state[f"_widget_{key}"]


def build(with_user: bool) -> Selection:
    """Draw the sidebar's choosers and return the selection (``app.py``, once per run)."""
    name = _choose_dataset()
    if name is None:
        return Selection(None)
    if data.stored_item_matrix(name) is None:
        return Selection(name)  # pages offer the encode button (actions.require_encoded)
    detector, threshold, false_alarms = _detection_controls(name)
    user = None
    if with_user:
        user = _choose_user(name, ranked=data.user_ranking(name, detector)["user_id"].tolist())
    return Selection(
        name,
        encoded=True,
        detector=detector,
        threshold=threshold,
        false_alarms=false_alarms,
        online=data.is_online(name, detector),
        user=user,
    )


def _choose_dataset() -> str | None:
    names = data.dataset_names()
    if not names:
        return None
    state = st.session_state
    if "dataset" not in state:
        wanted = st.query_params.get("dataset")
        default = data.DEFAULT_DATASET if data.DEFAULT_DATASET in names else names[0]
        state["dataset"] = wanted if wanted in names else default
    if state["dataset"] not in names:
        state["dataset"] = names[0]
    state["_widget_dataset"] = state["dataset"]
    name = st.sidebar.selectbox(
        "Dataset",
        names,
        key="_widget_dataset",
        on_change=_remember,
        args=("dataset",),
        help="Built-in MovieLens-100K, the synthetic world, or any imported dataset.",
    )
    st.query_params["dataset"] = name
    return name


def _detection_controls(name: str) -> tuple[str, float, float]:
    """Detector selector and the ε slider, also settable as false alarms per 1,000 events."""
    state = st.session_state
    names = data.detector_names()
    det_key = f"detector:{name}"
    if det_key not in state or state[det_key] not in names:
        state[det_key] = data.default_detector()
    state["_widget_" + det_key] = state[det_key]
    detector = st.sidebar.selectbox(
        "Detector",
        names,
        key="_widget_" + det_key,
        on_change=_remember,
        args=(det_key,),
        help=f"Default: {data.default_detector()} (chosen on the ground-truth benchmark).",
    )
    scale = data.threshold_scale(name, detector)
    eps_key = f"eps:{name}:{detector}"
    if eps_key not in state:
        state[eps_key] = scale.default
    state[eps_key] = float(min(max(round(state[eps_key] / scale.step) * scale.step, scale.low), scale.high))

    mode = st.sidebar.radio(
        "Set the threshold as",
        ["ε (score)", "false alarms per 1,000 events"],
        key="threshold_mode",
        horizontal=True,
    )
    if mode.startswith("ε"):
        state["_widget_" + eps_key] = state[eps_key]
        threshold = st.sidebar.slider(
            "ε",
            scale.low,
            scale.high,
            step=scale.step,
            key="_widget_" + eps_key,
            on_change=_remember,
            args=(eps_key,),
            help="A change point is a score peak at or above ε.",
        )
    else:
        rate = st.sidebar.slider(
            "Expected false alarms per 1,000 events",
            0.0,
            20.0,
            value=float(min(round(data.false_alarms_at(name, detector, state[eps_key]), 1), 20.0)),
            step=0.1,
            key=f"_rate:{name}:{detector}",
            help="Measured on shuffled histories (no shift by construction).",
        )
        try:
            threshold = state[eps_key] = float(min(data.threshold_for_rate(name, detector, rate), scale.high))
        except ShiftError as err:
            st.error(text.md_escape(err), icon=":material/error:")
            threshold = state[eps_key]
        st.sidebar.caption(f"ε = {threshold:.4g}")
    false_alarms = data.false_alarms_at(name, detector, threshold)
    st.sidebar.caption(
        f"At ε = {threshold:.4g}: about {false_alarms:.2f} false alarms per 1,000 events "
        "(measured on shuffled histories)."
    )
    return detector, float(threshold), false_alarms


def _choose_user(name: str, ranked: list[str]) -> str:
    """User picker (type to search by id) and a "next most shifted user" button."""
    ids = data.users(name)["user_id"].tolist()
    state = st.session_state
    key = f"user:{name}"
    if key not in state:
        wanted = st.query_params.get("user")
        state[key] = wanted if wanted in ids else (ranked[0] if ranked else ids[0])
    if state[key] not in ids:
        state[key] = ids[0]
    if ranked:

        def next_shifted() -> None:
            current = state[key]
            pos = ranked.index(current) + 1 if current in ranked else 0
            state[key] = ranked[pos % len(ranked)]

        st.sidebar.button("Next most shifted user", on_click=next_shifted, icon=":material/skip_next:")
    state["_widget_" + key] = state[key]
    user = st.sidebar.selectbox(
        "User",
        ids,
        key="_widget_" + key,
        on_change=_remember,
        args=(key,),
        help="Type to search by user id.",
    )
    st.query_params["user"] = user
    return user


def select_user(name: str, user_id: str) -> None:
    """Select a user for every page (tables that open a user's timeline call this)."""
    st.session_state[f"user:{name}"] = str(user_id)
