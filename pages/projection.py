"""Projection: the UMAP map of the items, a user's path through it, and shifts across users."""

import numpy as np
import streamlit as st

from dashboard import actions, charts, data, downstream, links, navigation, sidebar, text

TABS = "projection_tab"  # session-state key of the open tab

selection = navigation.selection()
st.title("Projection of item embeddings")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
user = selection.user
coords = downstream.projection(name)
if coords is None:
    actions.offer_task(
        "projection",
        name,
        "Build the map",
        f"No map of the items of {text.md_code(name)} yet. Building it (UMAP) takes tens of seconds and runs "
        "in the background; the page shows it when it is ready. (From a terminal: "
        f"{text.md_code(f'python -m core project {name}')}.)",
    )

items = data.items(name)
top_category = [c[0] if c is not None and len(c) else "(no category)" for c in items["categories"]]

# Only the open tab is built and drawn (Streamlit reruns the page when another tab is picked):
# drawing both put three Plotly figures, the hidden ones included, into every first view of
# this page.
user_tab, population_tab = st.tabs(["User path", "Shifts across users"], key=TABS, on_change="rerun")
if user_tab.open:
    with user_tab:
        events = data.user_events(name, user)
        history = events["item_idx"].to_numpy()
        cps = data.user_detection(name, selection.detector, selection.threshold, user).change_points
        cps = cps.sort_values("score", ascending=False, kind="stable")
        left, mid, right = st.columns(3)
        labels = {
            int(r.event_index): f"event {r.event_index} (score {r.score:.3g})" for r in cps.itertuples()
        }
        # The change point shared with the other pages (a timeline click, a link), if it is
        # one of this user's at this ε; else the strongest.
        wanted = sidebar.chosen_change_point(name, user)
        cp_key = f"projection_cp:{name}:{user}"
        if wanted in labels:
            st.session_state[cp_key] = wanted
        elif st.session_state.get(cp_key) not in labels:
            st.session_state[cp_key] = next(iter(labels), None)
        links.check_change_point(
            name,
            user,
            st.session_state[cp_key],
            f"a change point of user {text.md_escape(user)} at ε = {text.eps(selection.threshold)}",
        )
        cp = left.selectbox(
            "Change point (strongest first)",
            list(labels) or [None],
            format_func=lambda i: labels.get(i, "none at this ε"),
            key=cp_key,
            on_change=lambda: sidebar.choose_change_point(name, user, st.session_state[cp_key]),
        )
        links.link(cp=cp)
        around = mid.slider(
            "Events shown either side",
            10,
            max(10, len(history)),
            min(40, max(10, len(history))),
            key="projection_window",
        )
        smooth_h = right.slider("Smoothing (events per interest vector)", 1, 30, 10, key="projection_smooth")
        lo, hi = (0, len(history)) if cp is None else (max(0, cp - around), min(len(history), cp + around))
        smooth = downstream.interest_path(name, user, smooth_h)
        colour = st.toggle("Colour items by category", value=True, key="projection_colour")
        fig = charts.item_map(coords, items["title"], top_category, colour)
        charts.add_user_path(
            fig,
            coords[history[lo:hi]],
            smooth[lo:hi],
            events["title"].iloc[lo:hi],
            None if cp is None else cp - lo,
            first_index=lo,
        )
        st.plotly_chart(fig, key="projection_user")
        st.caption(
            f"User {text.md_escape(user)}: events {lo}–{hi - 1} of {len(history)}, coloured by order; the line "
            f"is the interest vector (mean of the last {smooth_h} items) placed among its nearest items, "
            + (
                "blue before the change point and orange after it."
                if cp is not None
                else "no change point at this ε."
            )
        )

if population_tab.open:
    with population_tab:
        moves = data.category_moves(name, selection.detector, selection.threshold)
        if len(moves) == 0:
            st.info("No user has a change point at this ε; lower it in the sidebar.")
        else:
            st.plotly_chart(
                charts.category_flows(
                    moves, f"What {int(moves['users'].sum()):,} shifted users left and joined"
                ),
                key="projection_flows",
            )
            st.caption(
                "Each flow: users whose share of the left category fell most, and of the right one rose most, "
                "between the 20 events before and after their strongest change point."
            )
        limit = st.slider(
            "Users shown (strongest shifts first)", 10, 1000, 300, step=10, key="projection_limit"
        )
        shifted, before, after = downstream.shift_endpoints(
            name, selection.detector, selection.threshold, limit
        )
        if len(shifted):
            labels = [f"user {u}, event {i}" for u, i in zip(shifted["user_id"], shifted["event_index"])]
            fig = charts.shift_arrows(before, after, labels)
            charts.add_category_labels(fig, coords, top_category)
            st.plotly_chart(fig, key="projection_population")
            moved = np.linalg.norm(after - before, axis=1)
            st.caption(
                f"{len(shifted)} users on the item map, labelled with its largest categories: blue clouds are where "
                "their interest sat in the 20 events before their strongest change point, orange where it went after; "
                f"median move {np.median(moved):.2f} map units."
            )
