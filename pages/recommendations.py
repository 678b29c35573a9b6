"""Recommendations: before, after and now lists side by side around one change point."""

import streamlit as st

from core.errors import ShiftError
from dashboard import actions, data, downstream, links, navigation, sidebar, text

selection = navigation.selection()
st.title("Recommendations before and after a shift")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
user = selection.user
events = data.user_events(name, user)
n = len(events)
if n < 2:
    st.info(f"User {text.md_escape(user)} has {n} event(s): a change point needs events on both sides.")
    navigation.end_page()

# Change points to explain/recommend around: detected ones (strongest first: the default is
# the clearest shift), then planted ones.
detected = data.user_detection(name, selection.detector, selection.threshold, user).change_points
choices = [
    (f"detected at event {r.event_index} (score {r.score:.3g})", int(r.event_index))
    for r in detected.sort_values("score", ascending=False, kind="stable").itertuples()
]
truth = data.ground_truth(name)
choices += [
    (f"planted at event {int(i)}", int(i)) for i in truth.loc[truth["user_id"] == user, "event_index"]
]
NONE = "no change point: pick one to compare"
labels = [label for label, _ in choices] + ["another event index…"]
if not choices:
    labels.insert(0, NONE)
choice_key = f"_cp_choice:{name}:{user}"
wanted = sidebar.chosen_change_point(name, user)  # from the timeline or a link
if wanted is not None and choice_key not in st.session_state:
    by_index = {i: label for label, i in reversed(choices)}
    if wanted in by_index:
        st.session_state[choice_key] = by_index[wanted]
    elif 0 < wanted < n:
        st.session_state[choice_key] = labels[-1]
        st.session_state[f"_cp_manual:{name}:{user}"] = wanted
picked = st.selectbox(
    "Change point",
    labels,
    key=choice_key,
    help="Detected change points at the current ε (strongest first), then planted ones, or any event "
    "index you want to compare before and after.",
)
VALID_CP = f"a change point or an event of user {text.md_escape(user)} (1–{n - 1})"
if picked == NONE:
    links.check_change_point(name, user, None, VALID_CP)
    too_short = data.user_state(name, selection.detector, selection.threshold, user).too_short
    st.info(
        (
            f"User {text.md_escape(user)} has {n} events: too few for {text.md_escape(selection.detector)} to "
            "find a change in, at any ε. Pick an event index above to compare the lists before and after it "
            "anyway."
        )
        if too_short
        else f"User {text.md_escape(user)} has no detected change point at ε = {text.eps(selection.threshold)}"
        + (" and no planted one" if len(truth) else "")
        + ": there is no shift to explain. Lower ε in the sidebar, or pick an event index above to compare "
        "the lists before and after it anyway.",
        icon=":material/info:",
    )
    navigation.end_page()
manual = picked == labels[-1]
if manual:
    default = choices[0][1] if choices else n // 2
    manual_key = f"_cp_manual:{name}:{user}"
    st.session_state.setdefault(manual_key, min(max(default, 1), n - 1))
    change_point = st.slider("First event after the change (event index)", 1, n - 1, key=manual_key)
    source = "given"
else:
    change_point = dict(choices)[picked]
    source = selection.detector if picked.startswith("detected") else "planted"
sidebar.choose_change_point(name, user, change_point)
links.link(cp=change_point)
links.check_change_point(name, user, change_point, VALID_CP)

# Kept in a plain key (widget state is dropped on pages that do not draw the slider).
st.session_state.setdefault("k", 10)
st.session_state["_widget_k"] = st.session_state["k"]
k = st.slider(
    "List length (K)",
    *links.K_RANGE,
    key="_widget_k",
    on_change=lambda: st.session_state.__setitem__("k", st.session_state["_widget_k"]),
    help="How many items each list shows.",
)
links.link(k=k)
try:
    # Bounded by the user's other change points at this ε, as in the CLI's `recommend`.
    neighbours = data.user_change_point_indices(name, selection.detector, selection.threshold, user)
    recs = downstream.recommendations(name, user, change_point, k, source, neighbours)
    why = recs.explanation
except ShiftError as err:
    st.error(text.md_escape(err), icon=":material/error:")
    navigation.end_page()

st.markdown(f"**What changed at event {change_point}:** {text.md_escape(why.summary)}")
if manual:
    st.caption("An event index you chose: a comparison of before and after it, not a detected change.")

before, after, now = (set(recs.lists[p]["item_idx"]) for p in ("before", "after", "now"))
cols = st.columns(3)
cols[0].metric("Before ∩ after", f"{len(before & after)} of {k}", help="Items in both lists (∩: in both).")
cols[1].metric("After ∩ now", f"{len(after & now)} of {k}", help="Items in both lists (∩: in both).")
cols[2].metric("Before ∩ now", f"{len(before & now)} of {k}", help="Items in both lists (∩: in both).")
if (sample := downstream.recommender_sample(name)) is not None:
    st.caption(
        f"Items watched together were counted over a random sample of {sample[0]:,} of the {sample[1]:,} "
        "users (this dataset is too big to count them all in the dashboard)."
    )

titles = {
    "before": ":blue[Before]",
    "after": ":orange[After]",
    "now": ":green[Now]",
}
helps = {
    "before": "From the profile before the change.",
    "after": "From the profile since the change.",
    "now": "From the profile since the change, older interests down-weighted.",
}
for col, policy in zip(st.columns(3), ("before", "after", "now")):
    col.markdown(f"**{titles[policy]}**", help=helps[policy])
    # Narrow columns at 1,024 px: the rank takes little room and the title most of it.
    col.dataframe(
        recs.lists[policy][["rank", "title", "categories"]],
        hide_index=True,
        key=f"list_{policy}",
        column_config={
            "rank": st.column_config.NumberColumn("#", width=32),
            "title": st.column_config.TextColumn("title", width="medium"),
            "categories": st.column_config.TextColumn("categories", width="small"),
        },
    )
    share = recs.rising_share.get(policy, float("nan"))
    if share == share and why.rising_categories:  # NaN: nothing rose at this change
        col.caption(
            f"{share:.0%} of this list in what rose ({text.md_escape(', '.join(map(str, why.rising_categories)))}); "
            f"the segment after the change: {recs.consumed_rising_share:.0%}."
        )

left, right = st.columns(2)
with left:
    st.markdown("**Category shares, before → after**")
    table = why.categories.assign(
        share_before=lambda d: (100 * d["share_before"]).round(1),
        share_after=lambda d: (100 * d["share_after"]).round(1),
        change=lambda d: (100 * d["change"]).round(1),
    )
    st.dataframe(
        table,
        hide_index=True,
        key="category_shares",
        column_order=["category", "share_before", "share_after", "change"],
        column_config={"share_before": "before %", "share_after": "after %", "change": "change (points)"},
    )
with right:
    st.markdown("**Most representative items**")
    st.markdown(":blue[Before]")
    st.dataframe(why.representative_before[["title", "similarity"]], hide_index=True, key="repr_before")
    st.markdown(":orange[After]")
    st.dataframe(why.representative_after[["title", "similarity"]], hide_index=True, key="repr_after")

st.markdown("**Seen history**")
history = events.assign(
    segment=["before" if i < change_point else "after" for i in range(n)],
    categories=[text.joined(c) for c in events["categories"]],
)[["seq", "segment", "title", "categories", "rating", "ts"]]
st.dataframe(
    history,
    hide_index=True,
    key="history",
    column_config={"seq": "event", "ts": st.column_config.DatetimeColumn("time")},
)
