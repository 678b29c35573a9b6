"""AppTest of the Recommendations page: before/after/now lists around a change point."""

from collections import Counter

from streamlit.testing.v1 import AppTest

NAME = "synthetic"  # the generated dataset of the dashboard world (conftest.py)
USER = "30"  # abrupt shift at event 28 of 55 in the tiny world


def _recommendations(app: str, user: str = USER) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = NAME
    at.session_state[f"user:{NAME}"] = user
    at.switch_page("pages/recommendations.py").run()
    assert not at.exception, at.exception
    return at


def _lists(at: AppTest) -> dict:
    # Tables in page order: before, after, now, category shares, 2 x representative items, history.
    return {key: at.dataframe[i].value for i, key in enumerate(("before", "after", "now"))}


def _history(at: AppTest):
    return at.dataframe[-1].value


def _main_category(table) -> str:
    return Counter(c.split(", ")[0] for c in table["categories"]).most_common(1)[0][0]


def test_lists_follow_the_planted_shift(world):
    from core import store

    with store.connect(NAME) as con:
        truth = store.load_ground_truth(con).query("user_id == @USER").iloc[0]
        seen = set(store.load_user_events(con, USER)["title"])
    at = _recommendations(world.app)
    choice = at.selectbox(key=f"_cp_choice:{NAME}:{USER}")
    assert choice.value == f"detected at event {truth.event_index} (score {choice.value.split('score ')[1]}"
    lists = _lists(at)
    assert _main_category(lists["before"]) == truth.from_category
    assert _main_category(lists["after"]) == truth.to_category
    assert _main_category(lists["now"]) == truth.to_category
    for table in lists.values():
        assert len(table) == 10
        assert not set(table["title"]) & seen  # seen items are never recommended
    summary = next(m.value for m in at.markdown if m.value.startswith("**What changed"))
    assert truth.from_category.split()[0] in summary and truth.to_category.split()[0] in summary
    overlap = {m.label: m.value for m in at.metric}
    n = len(set(lists["before"]["title"]) & set(lists["after"]["title"]))
    assert overlap["Before ∩ after"] == f"{n} of 10"
    history = _history(at)
    assert (history["segment"] == "before").sum() == truth.event_index


def test_planted_and_manual_change_points_and_list_length(world):
    at = _recommendations(world.app)
    choice = at.selectbox(key=f"_cp_choice:{NAME}:{USER}")
    assert "planted at event 28" in choice.options
    choice.set_value("another event index…").run()
    at.slider[0].set_value(10).run()
    assert not at.exception, at.exception
    assert next(m.value for m in at.markdown if m.value.startswith("**What changed")).startswith(
        "**What changed at event 10:**"
    )
    assert (_history(at)["segment"] == "before").sum() == 10
    at.slider[1].set_value(5).run()
    assert all(len(t) == 5 for t in _lists(at).values())


def test_explanation_and_lists_stay_between_the_neighbouring_change_points(world):
    # u3 of the hand-made log: Horror, Sci-Fi, Cooking, Sports in 30-event blocks. At the
    # change at event 60 the explanation compares Sci-Fi (30-59) with Cooking (60-89), never
    # everything before with everything after (which would bring in Horror and Sports).
    # two_window: its change points on u3 are exactly the planted ones.
    at = AppTest.from_file(world.app, default_timeout=120)
    at.session_state["dataset"] = world.shifts
    at.session_state[f"detector:{world.shifts}"] = "two_window"
    at.session_state[f"user:{world.shifts}"] = "u3"
    at.switch_page("pages/recommendations.py").run()
    assert not at.exception, at.exception
    choice = at.selectbox(key=f"_cp_choice:{world.shifts}:u3")
    detected = [o for o in choice.options if o.startswith("detected at event ")]
    assert sorted(int(o.split()[3]) for o in detected) == sorted(world.shifts_planted)
    choice.set_value(next(o for o in detected if o.startswith("detected at event 60 "))).run()
    assert not at.exception, at.exception
    summary = next(m.value for m in at.markdown if m.value.startswith("**What changed"))
    assert "Sci\\-Fi 100% → 0%" in summary and "Cooking 0% → 100%" in summary, summary  # Markdown-escaped
    assert "Horror" not in summary and "Sports" not in summary, summary
