"""Recommendations: before, after and now lists side by side around one change point."""

import streamlit as st

from core.errors import ShiftError
from dashboard import actions, data, navigation, text

selection = navigation.selection()
st.title("Recommendations before and after a shift")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
user = selection.user
events = data.user_events(name, user)
n = len(events)
if n < 2:
    st.info(f"User {text.md_escape(user)} has {n} event(s): a change point needs events on both sides.")
    st.stop()

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
labels = [label for label, _ in choices] + ["another event index…"]
picked = st.selectbox(
    "Change point",
    labels,
    key=f"_cp_choice:{name}:{user}",
    help="Detected change points at the current ε (strongest first), then planted ones.",
)
if picked == labels[-1]:
    default = choices[0][1] if choices else n // 2
    change_point = st.slider(
        "First event after the change (event index)", 1, n - 1, min(max(default, 1), n - 1)
    )
    source = "given"
else:
    change_point = dict(choices)[picked]
    source = selection.detector if picked.startswith("detected") else "planted"
if not choices:
    st.caption("No change point detected for this user at the current threshold; pick an event index.")

k = st.slider("List length (K)", 5, 30, 10)
try:
    recs = data.recommendations(name, user, change_point, k, source)
    why = data.explanation(name, user, change_point)
except ShiftError as err:
    st.error(text.md_escape(err), icon=":material/error:")
    st.stop()

st.markdown(f"**What changed at event {change_point}:** {text.md_escape(why.summary)}")

before, after, now = (set(recs.lists[p]["item_idx"]) for p in ("before", "after", "now"))
cols = st.columns(3)
cols[0].metric("Before ∩ after", f"{len(before & after)} of {k}")
cols[1].metric("After ∩ now", f"{len(after & now)} of {k}")
cols[2].metric("Before ∩ now", f"{len(before & now)} of {k}")

titles = {
    "before": ":blue[Before] · profile before the change",
    "after": ":orange[After] · profile since the change",
    "now": ":green[Now] · after, older interests down-weighted",
}
for col, policy in zip(st.columns(3), ("before", "after", "now")):
    col.markdown(f"**{titles[policy]}**")
    col.dataframe(recs.lists[policy][["rank", "title", "categories"]], hide_index=True, key=f"list_{policy}")

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
