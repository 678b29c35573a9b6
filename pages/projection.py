"""Projection: the UMAP map of the items, a user's path through it, and shifts across users."""

import numpy as np
import streamlit as st

import charts
import ui
from core.projection import place
from core.trajectory import recent_mean

st.title("Projection of item embeddings")

name = ui.choose_dataset()
if name is None:
    st.stop()
detection = ui.detection_controls(name)
user = ui.choose_user(name, ranked=detection.ranked_users)
coords = ui.projection(name)
if coords is None:
    st.info(
        f"No UMAP map of `{name}` yet. Fitting UMAP takes tens of seconds, so it is a set-up step "
        f"and never runs in a page: run `python -m core project {name}`, then reload.",
        icon=":material/info:",
    )
    st.stop()

items = ui.items(name)
matrix = ui.item_matrix(name)
top_category = [c[0] if c is not None and len(c) else "(no category)" for c in items["categories"]]

user_tab, population_tab = st.tabs(["User path", "Shifts across users"])
with user_tab:
    events = ui.user_events(name, user)
    cps = detection.user_change_points(user)
    history = events["item_idx"].to_numpy()
    first_cp = int(cps["event_index"].iloc[0]) if len(cps) else None
    smooth_h = st.slider("Smoothing (events in the moving interest vector)", 1, 30, 10, key="projection_smooth")
    smooth = place(recent_mean(matrix[history], np.array([0, len(history)]), smooth_h), matrix, coords)
    colour = st.toggle("Colour items by category", value=True, key="projection_colour")
    fig = charts.item_map(coords, items["title"], top_category, colour)
    charts.add_user_path(fig, coords[history], smooth, events["title"], first_cp)
    st.plotly_chart(fig, key="projection_user")
    st.caption(
        f"User {user}: {len(events)} events coloured by order; the line is the interest vector "
        f"(mean of the last {smooth_h} items), blue before the first change point"
        + (f" (event {first_cp})" if first_cp is not None else " (none at this ε)") + ", orange after."
    )

with population_tab:
    limit = st.slider("Users shown (strongest shifts first)", 10, 1000, 300, step=10, key="projection_limit")
    shifted, before, after = ui.shift_endpoints(detection, limit)
    if len(shifted) == 0:
        st.info("No user has a change point at this ε; lower it in the sidebar.")
    else:
        labels = [f"user {u}, event {i}" for u, i in zip(shifted["user_id"], shifted["event_index"])]
        st.plotly_chart(charts.shift_arrows(before, after, labels), key="projection_population")
        moved = np.linalg.norm(after - before, axis=1)
        st.caption(f"{len(shifted)} users: interest vectors of the 20 events before (blue) and after "
                   f"(orange) each user's strongest change point; median move {np.median(moved):.2f} map units.")
