"""User timeline: one user's shift score with ε, change points, genre composition and events."""

import numpy as np
import streamlit as st

from core.errors import ShiftError
from dashboard import actions, charts, data, downstream, links, navigation, sidebar, text, views

selection = navigation.selection()
st.title("User timeline")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
user, detector = selection.user, selection.detector

events = data.user_events(name, user)
detected = data.user_detection(name, detector, selection.threshold, user)
signal, cps = detected.scores, detected.change_points
state = data.user_state(name, detector, selection.threshold, user)
truth = data.ground_truth(name)
truth_idx = truth.loc[truth["user_id"] == user, "event_index"].astype(int).tolist()

probability = data.user_probabilities(name, detector)
real = probability.get(str(user)) if probability is not None else None
cols = st.columns(5 if real is not None and np.isfinite(real) else 4)
cols[0].metric("Events", f"{len(events):,}")
cols[1].metric(
    "Change points",
    len(cps),
    help=f"Peaks of the {detector} shift score at or above ε. " + text.TERMS["change point"],
)
cols[2].metric("Strongest score", f"{np.nanmax(signal):.3g}" if np.isfinite(signal).any() else "—")
if truth_idx:
    cols[3].metric("Planted change points", ", ".join(map(str, truth_idx)))
if real is not None and np.isfinite(real):
    cols[-1].metric(
        "Chance the change is real",
        f"{real:.0%}",
        help="The probability that this user's strongest change is beyond everyday drift (1 - local false "
        "discovery rate), judged against how this dataset's users usually drift; it does not depend on ε.",
    )

if state.too_short:
    links.check_change_point(name, user, None, f"a change point of user {text.md_escape(user)}")
    st.info(
        f"User {text.md_escape(user)} has {len(events)} events: too short for {detector} to score "
        f"(the shortest history it scored here has {state.min_events} events). No shift can be "
        "detected for this user; the events are listed below.",
        icon=":material/hourglass_empty:",
    )
    st.dataframe(
        events.assign(categories=[text.joined(c) for c in events["categories"]])[
            ["seq", "title", "categories", "rating", "ts"]
        ],
        hide_index=True,
        key="events_table",
        column_config={"seq": "event", "ts": st.column_config.DatetimeColumn("time")},
    )
    navigation.end_page()

x_axis = st.radio("x-axis", ["event index", "date"], horizontal=True, key="timeline_x")
index = np.arange(len(events))
if x_axis == "date":
    x = events["ts"].to_numpy()
    # Markers take ISO strings: Plotly cannot place annotations at numpy datetimes.
    to_x = lambda i: str(np.datetime_as_string(x[min(int(i), len(x) - 1)], unit="s"))  # noqa: E731
    if views.user_backfilled(events):
        st.caption(
            f"Most of user {text.md_escape(user)}'s events carry one day's date (entered in one sitting, a "
            "back-fill order), not consumption dates: read shifts in event order."
        )
else:
    x = index
    to_x = int

change_x = [to_x(i) for i in cps["event_index"]]
alert_x = [to_x(i) for i in cps["alert_index"]] if selection.online else []
extra = None
if detector != "linear" and st.toggle(
    "Also show |wᵀΔf| (the linear rule)",
    value=False,
    help="|wᵀΔf|: how far the user's recent mean moved along the direction the linear rule learned to "
    "separate shifts from noise.",
):
    linear = data.fit_status(name, "linear")
    if not linear.ready and not data.fits_in_foreground(name):
        data.start_fit(name, "linear")
        st.caption(
            "|wᵀΔf| appears once the linear rule is fitted on this dataset (running in the background)."
        )
    else:
        try:
            extra = ("|wᵀΔf|", data.user_scores(name, "linear", user))
        except ShiftError as err:
            st.caption(f"|wᵀΔf| unavailable: {text.md_escape(err)}")
first, last = state.scored
unscored = [(to_x(0), to_x(first))] if first > 0 else []
if last < len(events) - 1:
    unscored.append((to_x(last), to_x(len(events) - 1)))
cp_list = cps["event_index"].astype(int).tolist()


def _clicked() -> None:
    """A click on a change point's marker selects it (the markers carry their event index;
    other points, the score's hover points, carry none and are ignored)."""
    chart = st.session_state.get("timeline_chart")
    for point in chart.selection.points if chart else []:
        index = point.get("customdata")
        index = index[0] if isinstance(index, list) and index else index
        if isinstance(index, int | float) and int(index) in cp_list:
            sidebar.choose_change_point(name, user, int(index))
            return


chosen = sidebar.chosen_change_point(name, user)
if chosen not in cp_list:
    chosen = int(cps.sort_values("score", ascending=False).iloc[0]["event_index"]) if cp_list else None
links.check_change_point(
    name,
    user,
    chosen,
    f"a change point of user {text.md_escape(user)} at ε = {text.eps(selection.threshold)}",
)


def _on_line(i: int, fallback: float) -> float:
    """A change point's marker sits on the drawn line: the score at its event."""
    value = signal[int(i)] if 0 <= int(i) < len(signal) else np.nan
    return float(value) if np.isfinite(value) else float(fallback)


st.plotly_chart(
    charts.timeline(
        x,
        signal,
        selection.threshold,
        change_x,
        detector,
        alert_x=alert_x,
        truth_x=[to_x(i) for i in truth_idx],
        extra=extra,
        x_title=x_axis,
        change_y=[_on_line(r.event_index, r.score) for r in cps.itertuples()],
        change_index=cp_list,
        change_score=cps["score"].tolist(),
        unscored=unscored,
        suppressed=[(to_x(r.event_index), r.score, r.reason) for r in state.suppressed.itertuples()],
        selected_x=None if chosen is None else to_x(chosen),
        recent_x=None if state.recent is None else to_x(state.recent),
    ),
    key="timeline_chart",
    on_select=_clicked,
    selection_mode="points",
)
notes = []
if unscored:
    notes.append(
        f"Grey: events {'0–' + str(first - 1) if first > 0 else ''}"
        f"{' and ' if first > 0 and last < len(events) - 1 else ''}"
        f"{str(last + 1) + '–' + str(len(events) - 1) if last < len(events) - 1 else ''} are not scored: "
        f"{detector} needs enough events on both sides of a change."
    )
if len(state.suppressed):
    notes.append(
        f"Grey crosses: {len(state.suppressed)} peak(s) at or above ε that are not change points "
        "(hover for the reason)."
    )
if truth_idx:
    notes.append("Wide green bands: planted (true) change points.")
if notes:
    st.caption(" ".join(notes))
if len(state.suppressed):
    with st.expander(f"Why {len(state.suppressed)} peak(s) above ε are not change points"):
        st.dataframe(
            state.suppressed,
            hide_index=True,
            key="suppressed_table",
            column_config={"event_index": "event", "score": st.column_config.NumberColumn(format="%.3g")},
        )

if chosen is not None:
    links.link(cp=chosen)
    labels = {
        int(r.event_index): f"event {r.event_index} (score {text.eps(r.score)})" for r in cps.itertuples()
    }
    chosen = st.selectbox(
        "Change point to explain (or click its marker)",
        cp_list,
        index=cp_list.index(chosen),
        format_func=labels.get,
        key=f"timeline_cp:{user}:{chosen}",
    )
    sidebar.choose_change_point(name, user, chosen)
    links.link(cp=chosen)
    why = downstream.explanation(name, user, chosen, tuple(sorted(int(c) for c in cp_list)))
    st.markdown(f"**What changed at event {chosen}:** {text.md_escape(why.summary)}")
else:
    st.caption(
        "No change point at this ε, so there is nothing to explain; lower ε in the sidebar to see weaker shifts."
    )

window = st.slider("Composition window (events)", 1, 50, 10, key="composition_window")
shares = data.composition(name, user, window)
st.plotly_chart(charts.composition(shares, x, change_x, x_title=x_axis), key="composition_chart")

table = events.assign(
    segment=data.segments(len(events), cps["event_index"].tolist()),
    categories=[text.joined(c) for c in events["categories"]],
)[["seq", "segment", "title", "categories", "rating", "ts"]]
st.dataframe(
    table,
    hide_index=True,
    key="events_table",
    column_config={"seq": "event", "ts": st.column_config.DatetimeColumn("time")},
)
