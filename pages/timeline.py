"""User timeline: one user's shift score with ε, change points, genre composition and events."""

import numpy as np
import streamlit as st

from core.errors import ShiftError
from dashboard import actions, charts, data, navigation, text

selection = navigation.selection()
st.title("User timeline")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
user, detector = selection.user, selection.detector

events = data.user_events(name, user)
detected = data.user_detection(name, detector, selection.threshold, user)
signal, cps = detected.scores, detected.change_points
truth = data.ground_truth(name)
truth_idx = truth.loc[truth["user_id"] == user, "event_index"].astype(int).tolist()

cols = st.columns(4)
cols[0].metric("Events", f"{len(events):,}")
cols[1].metric("Change points", len(cps), help=f"Score peaks of {detector} at or above ε")
cols[2].metric("Strongest score", f"{np.nanmax(signal):.3g}" if np.isfinite(signal).any() else "—")
if truth_idx:
    cols[3].metric("Planted change points", ", ".join(map(str, truth_idx)))

x_axis = st.radio("x-axis", ["event index", "date"], horizontal=True, key="timeline_x")
index = np.arange(len(events))
if x_axis == "date":
    x = events["ts"].to_numpy()
    # Markers take ISO strings: Plotly cannot place annotations at numpy datetimes.
    to_x = lambda i: str(np.datetime_as_string(x[min(int(i), len(x) - 1)], unit="s"))  # noqa: E731
    if "movielens" in str(data.info(name).get("source", "")).lower():
        st.caption(
            "MovieLens timestamps are mostly one sign-up session (a back-fill order), not "
            "consumption dates: read shifts in event order."
        )
else:
    x = index
    to_x = int

change_x = [to_x(i) for i in cps["event_index"]]
alert_x = [to_x(i) for i in cps["alert_index"]] if selection.online else []
extra = None
if detector != "linear" and st.toggle("Also show |wᵀΔf| (the linear rule)", value=False):
    try:
        extra = ("|wᵀΔf|", data.user_scores(name, "linear", user))
    except ShiftError as err:
        st.caption(f"|wᵀΔf| unavailable: {text.md_escape(err)}")
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
    ),
    key="timeline_chart",
)
if truth_idx:
    st.caption("Wide green bands: planted (true) change points.")

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
