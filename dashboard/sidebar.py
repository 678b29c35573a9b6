"""The shared selection: dataset, detector, ε and user, chosen in the sidebar.

The router (``app.py``, :func:`dashboard.navigation.route`) builds it once per run, before
the page runs, which is Streamlit's way to share widgets across pages with ``st.navigation``
(widgets drawn by the entrypoint belong to no page). The page reads it as a frozen
:class:`Selection` (:func:`dashboard.navigation.selection`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import urlencode

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
    fitting: data.FitStatus | None = None  # set while the detector's fit is being built


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


# --------------------------------------------------------------------------- links
#
# A link reproduces a view: the query string carries the page, dataset, detector, ε (or the
# false-alarm rate it was set by), user, change point and list length. It is read once, on
# a session's first run (before any widget exists, so every value goes through the same
# validation as a click), and written again on every run from what the run showed.

LINK_KEYS = ("page", "dataset", "detector", "eps", "fa", "user", "cp", "k")
_LOADED = "_link_loaded"
_WARNINGS = "_link_warnings"
_PENDING = "_link_pending"  # link values that need the dataset's users (user, cp)
_PARAMS = "_link_params"  # what this run shows, written to the query string
LINK_OPEN = "_link_open"  # session-state key of the "Link to this view" expander's state


def load_link(pages: dict[str, str]) -> str | None:
    """Apply the link's values to the session (its first run only); returns the page the
    link names when it differs from nothing known (the router switches there)."""
    state = st.session_state
    if state.get(_LOADED):
        return None
    state[_LOADED] = True
    q = {k: st.query_params.get(k) for k in LINK_KEYS}
    warnings: list[str] = []
    names = data.dataset_names()
    name = q["dataset"]
    if name is not None and name not in names:
        warnings.append(
            f"The link names dataset {text.md_code(name)}, which is not here"
            + (f" (available: {', '.join(text.md_code(n) for n in names)})." if names else ".")
            + " Showing another dataset instead: pick one in the sidebar."
        )
        name = None
    if name is not None:
        state["dataset"] = name
    name = state.get("dataset") or (data.DEFAULT_DATASET if data.DEFAULT_DATASET in names else None)
    detector = q["detector"]
    if detector is not None and detector not in data.detector_names():
        warnings.append(
            f"The link names detector {text.md_code(detector)}, which does not exist; showing the default "
            f"detector {text.md_code(data.default_detector())}."
        )
        detector = None
    if name is not None:
        if detector is not None:
            state[f"detector:{name}"] = detector
        detector = state.get(f"detector:{name}", data.default_detector())
        for key, value in (("eps", q["eps"]), ("fa", q["fa"])):
            if value is None:
                continue
            try:
                number = float(value)
                if not math.isfinite(number) or number < 0:
                    raise ValueError
            except ValueError:
                warnings.append(f"The link's {key} value {text.md_code(value)} is not a number ≥ 0; ignored.")
                continue
            if key == "eps":
                state[f"eps:{name}:{detector}"] = number
                state["threshold_mode"] = MODES[0]
            else:
                state[f"_rate:{name}:{detector}"] = min(number, MAX_RATE)
                state["threshold_mode"] = MODES[1]
        state[_PENDING] = {"dataset": name, "user": q["user"], "cp": q["cp"]}
    if q["k"] is not None:
        try:
            state["k"] = min(max(int(q["k"]), K_RANGE[0]), K_RANGE[1])
        except ValueError:
            warnings.append(f"The link's list length {text.md_code(q['k'])} is not a whole number; ignored.")
    page = q["page"]
    if page is not None and page not in pages:
        warnings.append(f"The link names page {text.md_code(page)}, which does not exist.")
        page = None
    state[_WARNINGS] = warnings
    return page


def link_warnings() -> list[str]:
    """Warnings about the link this session opened (shown until the selection changes)."""
    return st.session_state.get(_WARNINGS, [])


def clear_link_warnings() -> None:
    st.session_state[_WARNINGS] = []


def link(**values: object) -> None:
    """Add values a page chose (``cp``, ``k``) to this run's link."""
    params = st.session_state.setdefault(_PARAMS, {})
    for key, value in values.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = str(value)


def write_link(page: str, slot, path: str) -> None:
    """Put this run's view into the query string and draw the copy-link control; ``path``
    is the page's URL path ("" for the default page, which Streamlit serves at the root)."""
    params = {"page": page, **st.session_state.pop(_PARAMS, {})}
    ordered = {k: params[k] for k in LINK_KEYS if k in params}
    if dict(st.query_params) != ordered:
        st.query_params.from_dict(ordered)
    base = st.context.url or ""
    # st.context.url ends with the page's path; the link names the page in its query.
    root = base.rstrip("/").removesuffix(f"/{page}") if base else ""
    url = f"{root}/{path}?{urlencode(ordered)}"
    # The link is drawn only while its expander is open (Streamlit tracks the expander's state
    # and reruns when it is toggled): a code block loads the browser's syntax highlighter, 1.5 MB
    # of JavaScript that every page's first view paid for a closed expander (bench/ui.py: about
    # 0.4 s of a new session's first chart on two busy cores).
    with slot.container():
        box = st.expander("Link to this view", icon=":material/link:", key=LINK_OPEN, on_change="rerun")
        if box.open:
            with box:
                st.code(url, language=None, wrap_lines=True)
                st.caption(
                    "Copy it with the button at the code's top right; it opens this page as you see it."
                )


def build(with_user: bool) -> Selection:
    """Draw the sidebar's choosers and return the selection (``app.py``, once per run)."""
    name = _choose_dataset()
    if name is None:
        return Selection(None)
    link(dataset=name)
    if data.stored_item_matrix(name) is None:
        return Selection(name)  # pages offer the encode button (actions.require_encoded)
    detector, status = _choose_detector(name)
    if not status.ready:
        return Selection(name, encoded=True, detector=detector, fitting=status)
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


MODES = ("ε (score)", "false alarms per 1,000 events")
MAX_RATE = 20.0
K_RANGE = (5, 30)


def _choose_dataset() -> str | None:
    names = data.dataset_names()
    if not names:
        return None
    state = st.session_state
    if "dataset" not in state:
        state["dataset"] = data.DEFAULT_DATASET if data.DEFAULT_DATASET in names else names[0]
    if state["dataset"] not in names:
        state.setdefault(_WARNINGS, []).append(
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
    """The ε slider, also settable as false alarms per 1,000 events."""
    state = st.session_state
    scale = data.threshold_scale(name, detector)
    eps_key = f"eps:{name}:{detector}"
    if eps_key not in state:
        state[eps_key] = scale.default
    state[eps_key] = float(min(max(round(state[eps_key] / scale.step) * scale.step, scale.low), scale.high))

    source = data.false_alarm_rates(name, detector, state[eps_key]).source
    mode = st.sidebar.radio(
        "Set the threshold as",
        MODES,
        key="threshold_mode",
        horizontal=True,
        help="ε is the score a change must reach. The false-alarm rate sets ε for you: the ε at which "
        f"{source} (every alarm there counted as false) raise about that many alarms.",
    )
    if mode == MODES[0]:
        state["_widget_" + eps_key] = state[eps_key]
        threshold = st.sidebar.slider(
            "ε",
            scale.low,
            scale.high,
            step=scale.step,
            format="%.3g",  # as text.eps prints ε everywhere else (1.35, 1.5, 0.0124)
            key="_widget_" + eps_key,
            on_change=_remember,
            args=(eps_key,),
            help="ε (epsilon) is the threshold: a change point is a peak of the shift score at or above ε. "
            "Higher ε: fewer, surer changes.",
        )
        link(eps=text.eps(threshold))
    else:
        rate_key = f"_rate:{name}:{detector}"
        if rate_key not in state:
            state[rate_key] = float(
                min(round(data.false_alarms_at(name, detector, state[eps_key]), 1), MAX_RATE)
            )
        rate = st.sidebar.slider(
            "Expected false alarms per 1,000 events",
            0.0,
            MAX_RATE,
            step=0.1,
            key=rate_key,
            help=f"Measured on {source}, where every alarm counts as false. ε is set to the lowest value "
            "whose measured rate is at most this.",
        )
        link(fa=f"{rate:g}")
        try:
            threshold = state[eps_key] = float(min(data.threshold_for_rate(name, detector, rate), scale.high))
        except ShiftError as err:
            st.sidebar.error(text.md_escape(err), icon=":material/error:")
            threshold = state[eps_key]
        st.sidebar.caption(f"ε = {text.eps(threshold)}")
    false_alarms = data.false_alarms_at(name, detector, threshold)
    st.sidebar.caption(
        f"At ε = {text.eps(threshold)}: about {false_alarms:.2f} false alarms per 1,000 events "
        f"(measured on {source})."
        + (
            f" You asked for at most {rate:.2f}; the nearest measured rate at or below it is {false_alarms:.2f}."
            if mode != MODES[0] and abs(false_alarms - rate) >= 0.005
            else ""
        )
    )
    return float(threshold), false_alarms


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
    pending = state.get(_PENDING) or {}
    if pending.get("dataset") == name and pending.get("user") is not None:
        wanted = str(pending["user"])
        state.pop(_PENDING)
        if known(wanted):
            state[key] = wanted
            if pending.get("cp") is not None:
                state[f"cp:{name}:{wanted}"] = str(pending["cp"])
        else:
            fallback = ranked[0] if ranked else ids[0]
            state.setdefault(_WARNINGS, []).append(
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
