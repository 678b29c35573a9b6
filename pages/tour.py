"""Tour: one dataset walked through in plain words, for a product manager.

How many users shifted (and how sure that is), the three clearest shifts, what changed for
each, and what they are recommended now. Every number comes from the same data edge as
the other pages.
"""

from urllib.parse import urlencode

import streamlit as st

from dashboard import actions, data, navigation, text

selection = navigation.selection()
st.title("A tour of this dataset")
name = actions.require_dataset(selection)
actions.require_encoded(selection)
detector, eps = selection.detector, selection.threshold
info = data.info(name)
summary = data.population_summary(name, detector, eps)

st.header("1. How many people changed what they watch?", divider="gray")
share = summary.n_shifted / max(summary.n_scorable, 1)
st.markdown(
    f"{text.md_code(name)} holds **{summary.n_users:,} users** and {int(info.get('n_events', 0)):,} events. "
    f"**{summary.n_scorable:,}** of the users have a history long enough to judge. "
    f"Of those, **{summary.n_shifted:,} ({share:.0%})** changed their interests strongly enough to pass "
    "the threshold at some point."
)
rates = data.false_alarm_rates(name, detector, eps)
if rates.null == "real" and rates.sample == "all":
    st.markdown(
        f"How sure is that? On held-aside real histories of this dataset, where every alarm counts as false, "
        f"the detector flags about **{summary.expected_false:,.0f}** users ({rates.users:.0%}) at this setting: "
        f"about as many as the {summary.n_shifted:,} here. Real users drift all the time, so read them as the "
        f"users whose interests moved the most, a change about {rates.users:.0%} of this log's users show. "
        "With no labels, no count of shifts beyond that everyday drift can be given; a higher ε keeps only "
        "the strongest."
    )
elif rates.null == "real":
    unchanged = " (those its ground truth marks as unchanged)" if rates.sample == "shift-free" else ""
    st.markdown(
        f"How sure is that? On held-aside real histories of this dataset{unchanged}, where every alarm counts as "
        f"false, the detector flags about **{summary.expected_false:,.0f}** users at this setting. So roughly "
        f"**{max(summary.n_shifted - summary.expected_false, 0):,.0f}** of the {summary.n_shifted:,} are real shifts."
    )
else:
    st.markdown(
        f"How sure is that? This detector's threshold was set on histories shuffled into random order, "
        f"where it would flag about **{summary.expected_false:,.0f}** users. Real histories drift on their "
        f"own (sign-up back-fill, seasons), so real false alarms run several times higher (on MovieLens-100K "
        f"controls, 8.6 per 1,000 events against 1 stated): read the {summary.n_shifted:,} as an upper "
        "bound. "
        + (
            f"This dataset has too few users to measure the rate on its real histories ({summary.calibration_fallback})."
            if summary.calibration_fallback
            else f"The {text.md_code('best_split')} detector states the rate measured on real histories."
        )
    )
if summary.n_recent is not None:
    st.markdown(
        f"A further **{summary.n_recent:,}** users seem to be changing right now (too recent to be sure)."
    )
st.caption(
    f"Setting: detector {text.md_code(detector)}, threshold ε = {text.eps(eps)} (the sidebar changes both; "
    "a higher ε flags fewer, surer shifts)."
)

cps = data.change_points(name, detector, eps)
if len(cps) == 0:
    st.info("At this threshold nobody shifted. Lower ε in the sidebar to see weaker shifts.")
    navigation.end_page()

st.header("2. Where did they go?", divider="gray")
moves = data.category_moves(name, detector, eps)
top_moves = moves.head(3)
lines = [
    f"- **{users:,}** {'user' if users == 1 else 'users'} moved from **{text.md_escape(left)}** to **{text.md_escape(joined)}**"
    for left, joined, users in zip(top_moves["from"], top_moves["to"], top_moves["users"])
]
st.markdown("The most common moves:\n" + "\n".join(lines))
st.caption("The Overview page has the full table; the Projection page draws it as flows.")

st.header("3. The three clearest shifts", divider="gray")
clearest = cps.sort_values("score", ascending=False, kind="stable").drop_duplicates("user_id").head(3)
for n, r in enumerate(clearest.itertuples(), start=1):
    user, cp = str(r.user_id), int(r.event_index)
    events = data.user_events(name, user)
    neighbours = tuple(sorted(int(c) for c in cps.loc[cps["user_id"].astype(str) == user, "event_index"]))
    why = data.explanation(name, user, cp, neighbours)
    st.subheader(f"{n}. User {text.md_escape(user)}")
    st.markdown(
        f"After {cp} of their {len(events)} events, their taste changed: **{text.md_escape(why.summary)}**."
    )
    before = why.representative_before["title"].head(3).tolist()
    after = why.representative_after["title"].head(3).tolist()
    left, right = st.columns(2)
    left.markdown("Typical before:\n" + "\n".join(f"- {text.md_escape(t)}" for t in before))
    right.markdown("Typical after:\n" + "\n".join(f"- {text.md_escape(t)}" for t in after))
    recs = data.recommendations(name, user, cp, 5, detector, neighbours)
    now = recs.lists["now"]["title"].head(5).tolist()
    st.markdown(
        "**Recommended now** (their recent taste first, older interests down-weighted):\n"
        + "\n".join(f"{i}. {text.md_escape(t)}" for i, t in enumerate(now, start=1))
    )
    query = urlencode({"dataset": name, "user": user, "detector": detector, "eps": text.eps(eps), "cp": cp})
    st.markdown(f"[Open the timeline of user {text.md_escape(user)}](/timeline?{query})")

st.header("4. What to do with this", divider="gray")
st.markdown(
    "- Users who shifted are poorly served by recommendations built on their whole history: the **now** "
    "lists above follow their recent taste instead.\n"
    "- The **User timeline** page shows any user's shift score and what changed; the **Recommendations** page "
    "compares the lists before and after a change.\n"
    "- Move ε in the sidebar: higher means fewer, surer shifts."
)
