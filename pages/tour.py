"""Tour: one dataset walked through in plain words, for a product manager.

How many users shifted (and how sure that is), the three clearest shifts, what changed for
each, and what they are recommended now. Every number comes from the same data edge as
the other pages.
"""

from urllib.parse import urlencode

import streamlit as st

from core import headline as core_headline
from dashboard import actions, charts, data, downstream, navigation, text, views

selection = navigation.selection()
st.title("A tour of this dataset")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
detector, eps = selection.detector, selection.threshold
info = data.info(name)
summary = data.population_summary(name, detector, eps)

st.header("1. How many people changed their interests?", divider="gray")
st.markdown(
    f"{text.md_code(name)} holds **{summary.n_users:,} users** and {int(info.get('n_events', 0)):,} events."
)
# One sentence per topic, in core.headline.ORDER: the count of users beyond everyday drift
# slots in when the detection issue's empirical null lands.
said = views.headline(name, detector, eps)
for topic in core_headline.ORDER:
    if topic in said:
        st.markdown(said[topic])
st.caption(
    f"Threshold ε = {text.eps(eps)}: the sidebar changes it (a higher ε flags fewer, surer shifts) and the "
    "detector that scores the changes."
)

cps = data.change_points(name, detector, eps)
if len(cps) == 0:
    st.info("At this threshold nobody shifted. Lower ε in the sidebar to see weaker shifts.")
    navigation.end_page()

st.header("2. Where did they go?", divider="gray")
moves = data.category_moves(name, detector, eps)
if len(moves):
    top_moves = moves.head(3)
    lines = [
        f"- **{core_headline.users(n)}** moved from **{text.md_escape(left)}** to **{text.md_escape(joined)}**"
        for left, joined, n in zip(top_moves["from"], top_moves["to"], top_moves["users"])
    ]
    chart, words = st.columns([3, 2])
    chart.plotly_chart(
        charts.moves_bars(moves, f"The most common moves of the {int(moves['users'].sum()):,} shifted users"),
        key="tour_moves",
    )
    words.markdown("The most common moves:\n" + "\n".join(lines))
    words.caption(
        "Per shifted user: the category whose share of their events fell most and the one that rose most "
        "around their clearest change. The Overview page has the full table; Projection draws it on a map."
    )
else:
    st.markdown("The shifted users' categories did not change: their shifts are within the same categories.")

st.header("3. The three clearest shifts", divider="gray")
clearest = cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id").head(3)
for n, r in enumerate(clearest.itertuples(), start=1):
    user, cp = str(r.user_id), int(r.event_index)
    n_events = len(data.user_items(name, user))
    neighbours = tuple(sorted(int(c) for c in cps.loc[cps["user_id"].astype(str) == user, "event_index"]))
    why = downstream.explanation(name, user, cp, neighbours)
    st.subheader(f"{n}. User {text.md_escape(user)}")
    st.markdown(
        f"After {cp} of their {n_events} events, their taste changed: **{text.md_escape(why.summary)}**."
    )
    picture, lists = st.columns([2, 3])
    picture.plotly_chart(
        charts.before_after(why.categories, "Their categories, before and after"),
        key=f"tour_before_after_{n}",
    )
    before = why.representative_before["title"].head(3).tolist()
    after = why.representative_after["title"].head(3).tolist()
    left, right = lists.columns(2)
    left.markdown("Typical before:\n" + "\n".join(f"- {text.md_escape(t)}" for t in before))
    right.markdown("Typical after:\n" + "\n".join(f"- {text.md_escape(t)}" for t in after))
    recs = downstream.recommendations(name, user, cp, 5, detector, neighbours)
    now = recs.lists["now"]["title"].head(5).tolist()
    lists.markdown(
        "**Recommended now** (their recent taste first, older interests down-weighted):\n"
        + "\n".join(f"{i}. {text.md_escape(t)}" for i, t in enumerate(now, start=1))
    )
    query = urlencode({"dataset": name, "user": user, "detector": detector, "eps": text.eps(eps), "cp": cp})
    lists.markdown(f"[Open the timeline of user {text.md_escape(user)}](/timeline?{query})")

st.header("4. What to do with this", divider="gray")
st.markdown(
    "- Users who shifted are poorly served by recommendations built on their whole history: the **now** "
    "lists above follow their recent taste instead.\n"
    "- The **User timeline** page shows any user's shift score and what changed; the **Recommendations** page "
    "compares the lists before and after a change.\n"
    "- Move ε in the sidebar: higher means fewer, surer shifts."
)
