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
from core.results.base import as_stated
from dashboard import data, links, text, views
from dashboard.links import FDR_RANGE, MAX_RATE, MODES, clear_link_warnings, link

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
    fitting: data.FitStatus | None = None  # set while the detector's fit is being built
    # a big dataset whose stored results are missing, stale or damaged: why (the commands to
    # run are on the page, actions.require_encoded)
    not_stored: str | None = None


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
    link(dataset=name)
    _choose_features(name)
    if data.stored_item_matrix(name) is None:
        return Selection(name)  # pages offer the encode button (actions.require_encoded)
    detector, status = _choose_detector(name)
    if not status.ready:
        return Selection(name, encoded=True, detector=detector, fitting=status)
    not_stored = _why_not_stored(name, detector)
    if not_stored is not None:
        return Selection(name, encoded=True, detector=detector, not_stored=not_stored)
    threshold, false_alarms = _threshold_controls(name, detector)
    user = None
    if with_user:
        user = _choose_user(name, ranked=data.user_ranking(name, detector)["user_id"].tolist())
        link(user=user)
    return Selection(
        name,
        encoded=True,
        detector=detector,
        threshold=threshold,
        false_alarms=false_alarms,
        online=data.is_online(name, detector),
        user=user,
    )


FEATURE_LABELS = {"pretrained": "pretrained", "finetuned": "fine-tuned on this log"}


def _choose_features(name: str) -> None:
    """Item features: the pretrained language model, or the one fine-tuned on this log (offered
    when ``python -m core finetune NAME`` and ``encode NAME --model finetuned`` have run)."""
    key = f"features:{name}"
    if data.finetuned_model(name) is None:
        st.session_state[key] = "pretrained"
        return
    st.session_state.setdefault(key, "pretrained")
    st.session_state["_widget_" + key] = st.session_state[key]
    chosen = st.sidebar.radio(
        "Item features",
        list(FEATURE_LABELS),
        format_func=FEATURE_LABELS.get,
        key="_widget_" + key,
        on_change=_remember,
        args=(key,),
        horizontal=True,
        help="How each item's text becomes a vector: all-MiniLM-L6-v2 as shipped, or fine-tuned on which "
        "items this log's users consume together (bench/RESULTS.md says what it changes).",
    )
    link(model=chosen if chosen != "pretrained" else None)


def _why_not_stored(name: str, detector: str) -> str | None:
    """Why a big dataset cannot be shown yet (its pages read what ``detect`` stored, and an
    upload stores nothing), else None."""
    from core.artefacts.results import NotPrecomputed

    if not data.precomputed(name):
        return None
    try:
        data.threshold_scale(name, detector)  # reads the stored summary (cached once readable)
    except NotPrecomputed as err:
        return str(err)
    return None


def _choose_dataset() -> str | None:
    names = data.dataset_names()
    if not names:
        return None
    state = st.session_state
    if "dataset" not in state:
        state["dataset"] = data.DEFAULT_DATASET if data.DEFAULT_DATASET in names else names[0]
    if state["dataset"] not in names:
        links.warn(
            f"Dataset {text.md_code(state['dataset'])} is no longer here; showing {text.md_code(names[0])}."
        )
        state["dataset"] = names[0]
    state["_widget_dataset"] = state["dataset"]
    name = st.sidebar.selectbox(
        "Dataset",
        names,
        key="_widget_dataset",
        on_change=_remember_and_clear,
        args=("dataset",),
        help="Built-in MovieLens-100K, the synthetic world, or any imported dataset.",
    )
    return name


def _remember_and_clear(key: str) -> None:
    _remember(key)
    clear_link_warnings()


def _choose_detector(name: str) -> tuple[str, data.FitStatus]:
    """The detector selector, and whether its fit can be read now (else it is being built in
    the background, and the page shows its progress)."""
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
        help=f"How a change is scored. Default: {data.default_detector()} (the best on the benchmark of "
        "spliced real users). Every detector is fitted once per dataset.",
    )
    link(detector=detector)
    status = data.fit_status(name, detector)
    if not status.ready and not status.running and status.error is None:
        if data.fits_in_foreground(name):
            status = data.FitStatus(True)  # fitted in this run, in well under 2 s
        else:
            data.start_fit(name, detector)
            status = data.fit_status(name, detector)
    return detector, status


def _threshold_controls(name: str, detector: str) -> tuple[float, float]:
    """The ε slider, also settable as false alarms per 1,000 events.

    ε is the one state: switching the mode shows the rate at the current ε and changes
    nothing; only moving the rate slider (or a link's rate) sets ε from the rate.
    """
    state = st.session_state
    scale = data.threshold_scale(name, detector)
    eps_key = f"eps:{name}:{detector}"
    if eps_key not in state:
        state[eps_key] = scale.default
    state[eps_key] = _on_grid(state[eps_key], scale)
    links.check_eps(name, detector, state[eps_key], scale.low, scale.high)

    source = views.calibration_words(name, detector)
    # ε as a false discovery rate needs the detector's empirical null (the default has one)
    modes = MODES if data.has_empirical_null(name, detector) else MODES[:2]
    if state.get("threshold_mode") not in modes:
        state["threshold_mode"] = MODES[0]
    mode = st.sidebar.radio(
        "Set the threshold as",
        modes,
        key="threshold_mode",
        horizontal=True,
        help="ε is the score a change must reach. The false-alarm rate sets ε for you: the lowest ε whose "
        f"rate of false alarms, measured on {source}, is at most that.",
    )
    rate = math.nan
    if mode == MODES[0]:
        state["_widget_" + eps_key] = state[eps_key]
        # Positions spread over the users' strongest scores (each step flags about as many users
        # more or fewer), and the current ε, so that one from a link or another mode is shown as is.
        threshold = st.sidebar.select_slider(
            "ε",
            options=sorted({*scale.grid, state[eps_key]}),
            format_func=text.eps,  # as ε is printed everywhere else (1.35, 1.5, 0.0124)
            key="_widget_" + eps_key,
            on_change=_remember,
            args=(eps_key,),
            help="ε (epsilon) is the threshold: a change point is a peak of the shift score at or above ε. "
            "Higher ε: fewer, surer changes. The control's steps are spread over the users' highest "
            "scores, so each moves the number of users flagged by about as much.",
        )
        link(eps=text.eps(threshold))
    elif mode == MODES[1]:
        threshold, rate = _rate_slider(name, detector, eps_key, source)
    else:
        threshold = _fdr_slider(name, detector, eps_key)
    false_alarms = data.false_alarms_at(name, detector, threshold)
    st.sidebar.caption(
        f"At ε = {text.eps(threshold)}: about {false_alarms:.2f} false alarms per 1,000 events "
        f"(measured on {source})."
        + (
            f" You asked for at most {rate:.2f}; the nearest measured rate at or below it is {false_alarms:.2f}."
            if math.isfinite(rate) and abs(false_alarms - rate) >= 0.005
            else ""
        )
    )
    return float(threshold), false_alarms


def _on_grid(value: float, scale: data.ThresholdScale) -> float:
    """``value`` inside the ε control's range, to three significant digits (as ε is printed and
    a link carries it, so a link reproduces it). Clamped before it is rounded: a link's ε of
    1e308 must not be carried as is (rounding it through a step raised OverflowError)."""
    wanted = min(max(float(value), scale.low), scale.high)
    return float(min(max(as_stated(wanted), scale.low), scale.high))


def _rate_slider(name: str, detector: str, eps_key: str, source: str) -> tuple[float, float]:
    """The threshold set as a false-alarm rate: (ε, the rate asked for)."""
    state = st.session_state
    rate_key, apply_key = f"_rate:{name}:{detector}", f"_rate_apply:{name}:{detector}"
    synced_key = f"_rate_eps:{name}:{detector}"  # the ε the rate slider shows the rate of
    asked_key = f"_rate_asked:{name}:{detector}"  # the rate ε was last set from (NaN: set elsewhere)
    if state.pop(apply_key, False):  # the rate slider moved, or a link gave a rate: ε follows it
        state[asked_key] = float(state[rate_key])
        try:
            state[eps_key] = _on_grid(
                data.threshold_for_rate(name, detector, state[asked_key]),
                data.threshold_scale(name, detector),
            )
        except ShiftError as err:
            st.sidebar.error(text.md_escape(err), icon=":material/error:")
        state[synced_key] = state[eps_key]
    elif state.get(synced_key) != state[eps_key]:  # ε was set elsewhere: show its rate, keep ε
        state[rate_key] = float(min(round(data.false_alarms_at(name, detector, state[eps_key]), 1), MAX_RATE))
        state[synced_key], state[asked_key] = state[eps_key], math.nan
    rate = st.sidebar.slider(
        "Expected false alarms per 1,000 events",
        0.0,
        MAX_RATE,
        step=0.1,
        key=rate_key,
        on_change=lambda: state.__setitem__(apply_key, True),
        help=f"Measured on {source}. ε is set to the lowest value whose measured rate is at most this.",
    )
    link(fa=f"{rate:g}")
    threshold = state[eps_key]
    st.sidebar.caption(f"ε = {text.eps(threshold)}")
    return float(threshold), state.get(asked_key, math.nan)


def _fdr_slider(name: str, detector: str, eps_key: str) -> float:
    """The threshold set as a false discovery rate: the lowest ε at which at most that share of
    the flagged users may be everyday drift (the empirical null's estimate); returns ε."""
    state = st.session_state
    fdr_key, apply_key = f"_fdr:{name}:{detector}", f"_fdr_apply:{name}:{detector}"
    synced_key = f"_fdr_eps:{name}:{detector}"  # the ε the slider shows the FDR of
    if state.pop(apply_key, False):  # the slider moved, or a link gave an FDR: ε follows it
        try:
            state[eps_key] = _on_grid(
                data.threshold_for_fdr(name, detector, float(state[fdr_key])),
                data.threshold_scale(name, detector),
            )
        except ShiftError as err:
            st.sidebar.error(text.md_escape(err), icon=":material/error:")
        state[synced_key] = state[eps_key]
    elif state.get(synced_key) != state[eps_key]:  # ε was set elsewhere: show its FDR, keep ε
        at = data.fdr_at(name, detector, state[eps_key])
        state[fdr_key] = float(min(max(round(at, 2), FDR_RANGE[0]), FDR_RANGE[1]))
        state[synced_key] = state[eps_key]
    q = st.sidebar.slider(
        "At most this share of the flagged users may be chance",
        FDR_RANGE[0],
        FDR_RANGE[1],
        step=0.01,
        format="%.2f",
        key=fdr_key,
        on_change=lambda: state.__setitem__(apply_key, True),
        help="A false discovery rate: ε is set to the lowest value at which, by the estimate of how this "
        "dataset's users usually drift, at most this share of the users flagged changed by chance.",
    )
    link(fdr=f"{q:g}")
    threshold = state[eps_key]
    st.sidebar.caption(
        f"ε = {text.eps(threshold)}: about {data.fdr_at(name, detector, threshold):.0%} of the flagged users "
        "may be chance."
    )
    return float(threshold)


# Users a picker lists at most. A selectbox of a million ids is a 10 MB message and tens of
# seconds in the browser (50M-event world); past this, it lists the most shifted users and
# any other user is typed.
PICKER_LIMIT = 10_000


def _choose_user(name: str, ranked: list[str]) -> str:
    """User picker (type to search by id) and a "next most shifted user" button."""
    big = int(data.info(name).get("n_users") or 0) > PICKER_LIMIT
    ids = (
        list(ranked[:PICKER_LIMIT]) or data.users(name)["user_id"].head(PICKER_LIMIT).tolist()
        if big
        else data.users(name)["user_id"].tolist()
    )
    if big:
        ids = _typed_user(name, ids) + ids
        known = lambda u: u in ids or data.user_exists(name, u)  # noqa: E731
    else:
        known = ids.__contains__
    state = st.session_state
    key = f"user:{name}"
    pending = state.get(links.PENDING) or {}
    if pending.get("dataset") == name and pending.get("user") is not None:
        wanted = str(pending["user"])
        state.pop(links.PENDING)
        if known(wanted):
            state[key] = wanted
            if pending.get("cp") is not None:
                state[f"cp:{name}:{wanted}"] = str(pending["cp"])
                links.ask_change_point(name, wanted, pending["cp"])
        else:
            fallback = ranked[0] if ranked else ids[0]
            links.warn(
                f"User {text.md_code(wanted)} from the link is not in dataset {text.md_code(name)}; "
                f"showing user {text.md_code(fallback)} (the most shifted) instead."
            )
            state[key] = fallback
    if key not in state:
        state[key] = ranked[0] if ranked else ids[0]
    if not known(state[key]):
        state[key] = ids[0]
    if state[key] not in ids:  # a big dataset's user from a link, a click or the text box
        ids.insert(0, state[key])
    if ranked:

        def next_shifted() -> None:
            current = state[key]
            pos = ranked.index(current) + 1 if current in ranked else 0
            state[key] = ranked[pos % len(ranked)]
            clear_link_warnings()

        st.sidebar.button("Next most shifted user", on_click=next_shifted, icon=":material/skip_next:")
    state["_widget_" + key] = state[key]
    user = st.sidebar.selectbox(
        "User",
        ids,
        key="_widget_" + key,
        on_change=_remember_and_clear,
        args=(key,),
        help="Type to search by user id.",
    )
    return user


def _typed_user(name: str, listed: list[str]) -> list[str]:
    """A big dataset's box for any user id (the picker lists only the most shifted); the
    typed user, when it exists and is not listed, heads the picker's options."""
    typed = st.sidebar.text_input(
        "Or type any user id",
        key=f"_typed_user:{name}",
        help=f"The picker lists the {len(listed):,} most shifted users; this dataset has more.",
    ).strip()
    if not typed:
        return []
    if not data.user_exists(name, typed):
        st.sidebar.warning(
            f"No user {text.md_code(typed)} in {text.md_code(name)}.", icon=":material/person_off:"
        )
        return []
    if st.session_state.get(f"_typed_seen:{name}") != typed:  # a new id typed: select it once
        st.session_state[f"_typed_seen:{name}"] = typed
        st.session_state[f"user:{name}"] = typed
        clear_link_warnings()
    return [] if typed in listed else [typed]


def select_user(name: str, user_id: str) -> None:
    """Select a user for every page (tables that open a user's timeline call this)."""
    st.session_state[f"user:{name}"] = str(user_id)


def chosen_change_point(name: str, user: str) -> int | None:
    """The change point this user's pages show (a click on a peak, a link, a pick)."""
    value = st.session_state.get(f"cp:{name}:{user}")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def choose_change_point(name: str, user: str, event_index: int | None) -> None:
    st.session_state[f"cp:{name}:{user}"] = None if event_index is None else int(event_index)
