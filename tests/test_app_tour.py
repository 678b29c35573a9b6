"""AppTest of the Tour: a dataset in plain words (how many shifted, the clearest three, what
changed, what they are recommended now)."""

from streamlit.testing.v1 import AppTest


def _tour(app: str, dataset: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state["dataset"] = dataset
    at.switch_page("pages/tour.py").run()
    assert not at.exception, at.exception
    return at


def test_the_tour_walks_a_dataset_in_plain_words(world):
    at = _tour(world.app, "synthetic")
    texts = " ".join(m.value for m in at.markdown)
    assert "changed their interests strongly enough to pass" in texts
    assert " moved from " in texts
    headers = [h.value for h in at.header]
    assert headers[:3] == [
        "1. How many people changed what they watch?",
        "2. Where did they go?",
        "3. The three clearest shifts",
    ]
    assert len(at.subheader) == 3 and all(
        s.value.startswith(f"{i}. User ") for i, s in enumerate(at.subheader, 1)
    )
    assert texts.count("**Recommended now**") == 3
    assert texts.count("their taste changed") == 3


def test_the_tour_without_shifts_says_so(world):
    at = AppTest.from_file(world.app, default_timeout=120)
    at.session_state["dataset"] = "synthetic"
    at.switch_page("pages/tour.py").run()
    from core.detectors import DEFAULT

    slider = at.sidebar.slider(key=f"_widget_eps:synthetic:{DEFAULT}")
    slider.set_value(slider.max).run()
    assert not at.exception, at.exception
    assert any("nobody shifted" in i.value for i in at.info)
    assert not at.subheader


def test_the_tour_never_calls_a_shuffled_rate_the_real_one(world):
    # The default on the 40-user world is calibrated on shuffled histories (too few users for
    # real ones), which understate real false alarms: the Tour reads its count as an upper
    # bound instead of subtracting the shuffled estimate, and says why.
    at = _tour(world.app, "synthetic")
    texts = " ".join(m.value for m in at.markdown)
    assert "shuffled into random order" in texts and "as an upper bound" in texts
    assert "too few users to measure the rate on its real histories" in texts
    assert "are real shifts" not in texts
