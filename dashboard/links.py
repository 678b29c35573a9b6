"""Links that reproduce a view: what the query string carries, how a link is read back, and
the "Link to this view" control.

A link carries the page, dataset, detector, ε (or the false-alarm rate it was set by), user,
change point and list length. It is read once, on a session's first run, before any widget
exists, so every value goes through the same checks as a click; a value outside its range is
clamped and a warning says what was used instead (a link must never silently show another
view than the one it names). Every run writes the query string again from what it showed.

The sidebar (:mod:`dashboard.sidebar`) applies what needs the dataset (the ε range, the
user); it reports back through :func:`warn` and the checks below.
"""

from __future__ import annotations

import math
from urllib.parse import urlencode

import streamlit as st

from dashboard import data, text

LINK_KEYS = ("page", "dataset", "detector", "model", "eps", "fa", "fdr", "user", "cp", "k")
# The ranges the sidebar's and pages' controls offer; a link's value outside them is clamped.
MODES = ("ε (score)", "false alarms per 1,000 events", "share of flagged that may be chance")
FDR_RANGE = (0.01, 0.5)  # a false discovery rate a link or the slider may ask for
MAX_RATE = 20.0
K_RANGE = (5, 30)

_LOADED = "_link_loaded"
_WARNINGS = "_link_warnings"
PENDING = "_link_pending"  # link values that need the dataset's users (user, cp)
_EPS_ASKED = "_link_eps_asked"  # (dataset, detector, ε) a link asked for: checked against the range
_CP_ASKED = "_link_cp_asked"  # (dataset, user, change point) a link asked for
_PARAMS = "_link_params"  # what this run shows, written to the query string
LINK_OPEN = "_link_open"  # session-state key of the "Link to this view" expander's state


def _number(value: str) -> float | None:
    """A link's number ≥ 0 (any size: clamping comes later), or None."""
    try:
        number = float(value)
    except ValueError:
        return None
    return number if not math.isnan(number) and number >= 0 else None


def load_link(pages: dict[str, str]) -> str | None:
    """Apply the link's values to the session (its first run only); returns the page the
    link names, if any (the router switches there)."""
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
    if name is not None and q["model"] is not None:
        if q["model"] in ("pretrained", "finetuned") and (
            q["model"] == "pretrained" or data.finetuned_model(name)
        ):
            state[f"features:{name}"] = q["model"]
        else:
            warnings.append(
                f"The link asks for item features {text.md_code(q['model'])}, which {text.md_code(name)} does "
                "not have; showing the pretrained ones."
            )
    if name is not None:
        if detector is not None:
            state[f"detector:{name}"] = detector
        detector = state.get(f"detector:{name}", data.default_detector())
        _load_threshold(state, name, detector, q["eps"], q["fa"], warnings, q["fdr"])
        state[PENDING] = {"dataset": name, "user": q["user"], "cp": q["cp"]}
    if q["k"] is not None:
        try:
            k = int(q["k"])
        except ValueError:
            warnings.append(f"The link's list length {text.md_code(q['k'])} is not a whole number; ignored.")
        else:
            state["k"] = min(max(k, K_RANGE[0]), K_RANGE[1])
            if state["k"] != k:
                warnings.append(
                    f"The link's list length {text.md_code(q['k'])} is outside {K_RANGE[0]}–{K_RANGE[1]}; "
                    f"showing {state['k']}."
                )
    page = q["page"]
    if page is not None and page not in pages:
        warnings.append(f"The link names page {text.md_code(page)}, which does not exist.")
        page = None
    state[_WARNINGS] = warnings
    return page


def _load_threshold(
    state, name: str, detector: str, eps: str | None, fa: str | None, warnings: list, fdr: str | None = None
) -> None:
    """ε, the false-alarm rate or the false discovery rate from a link. ε wins over either rate
    (it is the exact view; a rate maps to ε through the calibration), a false-alarm rate over a
    false discovery rate, and the warning says so."""
    if eps is not None and fa is not None:
        warnings.append(
            f"The link gives both ε ({text.md_code(eps)}) and a false-alarm rate ({text.md_code(fa)}); "
            "using ε, the rate is ignored."
        )
        fa = None
    if fdr is not None and (eps is not None or fa is not None):
        warnings.append(
            f"The link gives a false discovery rate ({text.md_code(fdr)}) and "
            f"{'ε' if eps is not None else 'a false-alarm rate'}; using the latter, the false discovery rate "
            "is ignored."
        )
        fdr = None
    if fdr is not None:
        number = _number(fdr)
        if number is None:
            warnings.append(
                f"The link's false discovery rate {text.md_code(fdr)} is not a number ≥ 0; ignored."
            )
        else:
            used = min(max(number, FDR_RANGE[0]), FDR_RANGE[1])
            if used != number:
                warnings.append(
                    f"The link's false discovery rate {text.md_code(fdr)} is outside "
                    f"{FDR_RANGE[0]:g}–{FDR_RANGE[1]:g}; using {used:g}."
                )
            state[f"_fdr:{name}:{detector}"] = used
            state[f"_fdr_apply:{name}:{detector}"] = True  # ε follows it on the first run
            state["threshold_mode"] = MODES[2]
    for key, value in (("ε", eps), ("false-alarm rate", fa)):
        if value is None:
            continue
        number = _number(value)
        if number is None:
            warnings.append(f"The link's {key} {text.md_code(value)} is not a number ≥ 0; ignored.")
        elif key == "ε":
            state[f"eps:{name}:{detector}"] = number
            state[_EPS_ASKED] = (name, detector, number)
            state["threshold_mode"] = MODES[0]
        else:
            rate = min(number, MAX_RATE)
            if rate != number:
                warnings.append(
                    f"The link's false-alarm rate {text.md_code(value)} is above the most the slider offers; "
                    f"using {MAX_RATE:g} per 1,000 events."
                )
            state[f"_rate:{name}:{detector}"] = rate
            state[f"_rate_apply:{name}:{detector}"] = True  # ε follows the rate on the first run
            state["threshold_mode"] = MODES[1]


def check_eps(name: str, detector: str, used: float, low: float, high: float) -> None:
    """Warn once when the ε a link asked for was clamped to the slider's range (the sidebar
    calls this with the ε it uses)."""
    asked = st.session_state.get(_EPS_ASKED)
    if asked is None or asked[:2] != (name, detector):
        return
    st.session_state.pop(_EPS_ASKED)
    if asked[2] > high or asked[2] < low:
        warn(
            f"The link's ε {text.md_code(f'{asked[2]:g}')} is outside this detector's range "
            f"({text.eps(low)}–{text.eps(high)}); using ε = {text.eps(used)}."
        )


def ask_change_point(name: str, user: str, change_point: str) -> None:
    """Remember the change point a link named for ``user`` (checked by the page that shows it)."""
    st.session_state[_CP_ASKED] = (name, str(user), str(change_point))


def check_change_point(name: str, user: str, used: int | None, valid: str) -> None:
    """Warn once when the change point a link named is not one the page can show;
    ``valid`` says what the page offers ("a change point of this user at this ε")."""
    asked = st.session_state.get(_CP_ASKED)
    if asked is None or asked[:2] != (name, str(user)):
        return
    st.session_state.pop(_CP_ASKED)
    if str(used) != asked[2]:
        warn(
            f"The link's change point {text.md_code(asked[2])} is not {valid}; "
            + (f"showing event {used} instead." if used is not None else "showing none.")
        )


def warn(message: str) -> None:
    """Add a warning about the link this session opened (the router shows them atop the page)."""
    st.session_state.setdefault(_WARNINGS, []).append(message)


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
