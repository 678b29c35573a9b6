"""AppTest of links and honest states: a link reproduces a view (every parameter), unknown
values warn instead of being silently replaced, and the timeline says what it cannot see."""

import json

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

NAME, SHIFTS = "synthetic", "shifts"  # the datasets of the dashboard world (conftest.py)


def _open(app: str, **params: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.query_params.update(params)
    at.run()
    assert not at.exception, at.exception
    return at


def _warnings(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def _eps_candidates(stub_matrix, user: str, dataset: str = SHIFTS) -> np.ndarray:
    """two_window's candidate peaks of ``user`` (the detector the link below names)."""
    from core import store
    from core.detectors import make_detector

    with store.connect(dataset) as con:
        items, ev = store.load_items(con), store.load_event_arrays(con)
    det = make_detector("two_window").fit(stub_matrix(items)[ev.item_idx], ev.offsets, ev.rating)
    k = list(ev.user_ids).index(user)
    mine = det.candidates_.where(det.candidates_.user == k)
    return dict(zip(mine.event_index.tolist(), mine.score.tolist()))


def test_a_link_with_every_parameter_reproduces_the_view_and_is_written_back(world, stub_matrix):
    peaks = _eps_candidates(stub_matrix, "u3")
    eps = float(f"{min(peaks[i] for i in world.shifts_planted) * 0.9:.3g}")
    link = {
        "page": "recommendations",
        "dataset": SHIFTS,
        "detector": "two_window",
        "eps": str(eps),
        "user": "u3",
        "cp": "60",
        "k": "7",
    }
    at = _open(world.app, **link)
    assert not _warnings(at)
    assert at.title[0].value == "Recommendations before and after a shift"
    assert at.sidebar.selectbox(key="_widget_dataset").value == SHIFTS
    assert at.sidebar.selectbox(key=f"_widget_detector:{SHIFTS}").value == "two_window"
    slider = at.sidebar.select_slider(key=f"_widget_eps:{SHIFTS}:two_window")
    assert slider.value == eps  # shown as the link gave it, not moved to the nearest position
    assert at.sidebar.selectbox(key=f"_widget_user:{SHIFTS}").value == "u3"
    assert at.selectbox(key=f"_cp_choice:{SHIFTS}:u3").value.startswith("detected at event 60 ")
    assert at.slider(key="_widget_k").value == 7
    assert all(m.value.endswith(" of 7") for m in at.metric if "∩" in m.label)
    # Written back: the same parameters (ε as printed), so copying the URL reopens this view.
    written = dict(at.query_params)
    assert written == {**link, "eps": f"{slider.value:.3g}"}
    # The link itself is drawn once its expander is opened (a toggle reruns the page).
    from dashboard.links import LINK_OPEN

    assert not at.code
    at.session_state[LINK_OPEN] = True
    at.run()
    assert not at.exception, at.exception
    assert dict(at.query_params) == written
    assert any(
        str(c.value).endswith("/recommendations?" + "&".join(f"{k}={v}" for k, v in written.items()))
        for c in at.code
    )


def test_a_false_alarm_link_sets_the_threshold_mode(world):
    from core.detectors import DEFAULT

    at = _open(world.app, dataset=NAME, fa="2", page="overview")
    assert at.sidebar.radio(key="threshold_mode").value == "false alarms per 1,000 events"
    assert at.sidebar.slider(key=f"_rate:{NAME}:{DEFAULT}").value == 2.0
    assert at.query_params["fa"] == "2"
    assert "eps" not in at.query_params


def test_changes_are_written_to_the_link(world):
    at = _open(world.app, dataset=NAME, page="timeline", user="30")
    at.sidebar.selectbox(key=f"_widget_user:{NAME}").set_value("2").run()
    assert at.query_params["user"] == "2"
    at.sidebar.selectbox(key=f"_widget_detector:{NAME}")  # present on every page
    assert at.query_params["page"] == "timeline"


def test_unknown_user_warns_and_never_substitutes_silently(world):
    at = _open(world.app, dataset=NAME, page="timeline", user="no-such-user")
    assert any("no-such-user" in w and "not in dataset" in w for w in _warnings(at))
    shown = at.sidebar.selectbox(key=f"_widget_user:{NAME}").value
    assert any(f"showing user `{shown}`" in w for w in _warnings(at))


def test_unknown_dataset_and_detector_warn(world):
    at = _open(world.app, dataset="no-such-data", detector="nope", page="overview")
    warnings = " ".join(_warnings(at))
    assert "no\\-such\\-data" in warnings or "no-such-data" in warnings
    assert "not here" in warnings
    assert "nope" in warnings and "does not exist" in warnings
    # Choosing a dataset dismisses the warnings.
    box = at.sidebar.selectbox(key="_widget_dataset")
    box.set_value(NAME if box.value == SHIFTS else SHIFTS).run()
    assert not _warnings(at)


def _timeline(app: str, user: str, dataset: str = NAME, detector: str | None = None) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.session_state[f"user:{dataset}"] = user
    at.session_state["dataset"] = dataset
    if detector:
        at.session_state[f"detector:{dataset}"] = detector
    at.switch_page("pages/timeline.py").run()
    assert not at.exception, at.exception
    return at


def _spec(at: AppTest) -> dict:
    chart = [c for c in at.get("plotly_chart") if "timeline" in c.proto.id][0]
    return json.loads(chart.proto.spec)


def test_unscored_edges_are_shaded_with_a_note(world):
    at = _timeline(world.app, "30")
    rects = [s for s in _spec(at)["layout"]["shapes"] if s["type"] == "rect"]
    assert len(rects) == 2 and rects[0]["x0"] == 0
    assert any("are not scored" in c.value for c in at.caption)


def test_a_user_without_change_gets_no_explanation(world):
    at = _timeline(world.app, "u0", SHIFTS)  # one genre throughout
    assert not any(m.value.startswith("**What changed") for m in at.markdown)
    assert any("nothing to explain" in c.value for c in at.caption)


def test_a_user_with_a_change_gets_its_explanation(world):
    at = _timeline(world.app, "30")
    assert any(m.value.startswith("**What changed at event 28") for m in at.markdown)
    assert at.query_params["cp"] == "28"


def test_suppressed_peaks_are_marked_with_their_reason(world, stub_matrix):
    # Peak picking (two_window) keeps one peak within h events; the weaker ones are marked.
    from core import store
    from core.detectors import make_detector

    with store.connect(NAME) as con:
        items, ev = store.load_items(con), store.load_event_arrays(con)
    det = make_detector("two_window").fit(stub_matrix(items)[ev.item_idx], ev.offsets, ev.rating)
    # A user with a local maximum of the score that peak picking dropped (a stronger score
    # lies within h events): at ε = 0 it is above ε but not a change point.
    user = None
    for k, uid in enumerate(ev.user_ids):
        s = np.nan_to_num(det.scores_[ev.offsets[k] : ev.offsets[k + 1]], nan=-np.inf)
        local = {
            i for i in range(1, len(s) - 1) if np.isfinite(s[i]) and s[i] > s[i - 1] and s[i] >= s[i + 1]
        }
        if local - set(det.candidates_.where(det.candidates_.user == k).event_index.tolist()):
            user = str(uid)
            break
    assert user is not None
    at = _timeline(world.app, user, detector="two_window")
    at.sidebar.select_slider(key=f"_widget_eps:{NAME}:two_window").set_value(0.0).run()
    spec = _spec(at)
    crosses = [t for t in spec["data"] if t.get("name") == "peak above ε, not a change point"]
    assert crosses
    table = at.dataframe[0].value  # the reasons (the events table comes last)
    assert len(table) and table["reason"].str.contains("minimum distance").all()


def test_a_too_short_user_says_so_instead_of_an_empty_chart(world_copy):
    from core import store

    # A dataset with one scorable user and one of 12 events (two windows of 20 do not fit).
    folder = world_copy.folder / "short_src"
    folder.mkdir()
    items = pd.DataFrame(
        {
            "item_id": [f"i{j}" for j in range(24)],
            "title": [f"T {j}" for j in range(24)],
            "genres": ["Horror"] * 12 + ["Sports"] * 12,
        }
    )
    rows = [("long", f"i{j % 12 + (12 if j >= 40 else 0)}", 1_700_000_000 + j) for j in range(80)]
    rows += [("tiny", f"i{j}", 1_700_000_000 + j) for j in range(12)]
    items.to_csv(folder / "items.csv", index=False)
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(folder / "events.csv", index=False)
    store.build_dataset(
        store.dataset_path("short"),
        "short",
        "test",
        store.TableSource(folder / "events.csv"),
        store.TableSource(folder / "items.csv"),
    )
    from tests.conftest import write_stub_embeddings

    write_stub_embeddings("short")
    at = _timeline(world_copy.app, "tiny", "short")
    assert any("too short" in i.value for i in at.info)
    assert not [c for c in at.get("plotly_chart") if "timeline" in c.proto.id]
    assert len(at.dataframe[-1].value) == 12
    # The headline counts who could be scored.
    at.switch_page("pages/overview.py").run()
    assert any("1 user (50%) has too few events to judge" in m.value for m in at.markdown)


def test_a_detector_without_a_fit_is_fitted_in_the_background(world_copy, monkeypatch):
    from dashboard import jobs

    monkeypatch.setattr(jobs, "FOREGROUND_FIT_EVENTS", 0)  # treat the tiny world as a big log
    # world_copy shares the world's content version: a zscore fit another test left in this
    # process's caches would be served at once, with no background fit to show.
    import streamlit as st

    st.cache_resource.clear()
    st.cache_data.clear()  # the job board (a resource) with it: no fit is known to be ready
    at = _timeline(world_copy.app, "30")
    at.sidebar.selectbox(key=f"_widget_detector:{NAME}").set_value("zscore").run()
    assert not at.exception, at.exception
    bars = at.get("progress")
    assert bars and "Fitting detector zscore" in bars[0].proto.text
    # The sidebar stays usable meanwhile: it still offers the detectors.
    assert at.sidebar.selectbox(key=f"_widget_detector:{NAME}").value == "zscore"
    for job in list(jobs.board().jobs.values()):
        job.thread.join(timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert (
        "(zscore)"
        in json.loads([c for c in at.get("plotly_chart") if "timeline" in c.proto.id][0].proto.spec)[
            "layout"
        ]["title"]["text"]
    )


# ------------------------------------------------------------------ issue 21: links and modes


def _subheader(at: AppTest) -> str:
    return at.subheader[0].value


def test_switching_the_threshold_mode_leaves_eps_and_the_count_unchanged(world):
    from core.detectors import DEFAULT

    key = f"_widget_eps:{NAME}:{DEFAULT}"
    at = _open(world.app, dataset=NAME, page="overview")
    slider = at.sidebar.select_slider(key=key)
    # An ε off the rate slider's 0.1 grid: reading ε back from a rounded rate moved it.
    wanted = slider.value * 1.37
    eps = min((float(o) for o in slider.options), key=lambda o: abs(o - wanted))
    assert eps != slider.value
    slider.set_value(eps).run()
    assert at.sidebar.select_slider(key=key).value == eps
    count = _subheader(at)
    at.sidebar.radio(key="threshold_mode").set_value("false alarms per 1,000 events").run()
    assert not at.exception, at.exception
    assert _subheader(at) == count
    assert f"ε = {eps:.3g}" in [c.value for c in at.sidebar.caption]
    at.sidebar.radio(key="threshold_mode").set_value("ε (score)").run()
    assert at.sidebar.select_slider(key=key).value == eps and _subheader(at) == count
    # Moving the rate slider does set ε from the rate.
    at.sidebar.radio(key="threshold_mode").set_value("false alarms per 1,000 events").run()
    at.sidebar.slider(key=f"_rate:{NAME}:{DEFAULT}").set_value(0.0).run()
    caption = next(c.value for c in at.sidebar.caption if c.value.startswith("ε = "))
    assert float(caption.removeprefix("ε = ")) > eps


def test_out_of_range_link_values_are_clamped_with_a_warning(world):
    from core.detectors import DEFAULT

    at = _open(world.app, dataset=NAME, page="overview", eps="1e308")  # raised OverflowError
    high = float(at.sidebar.select_slider(key=f"_widget_eps:{NAME}:{DEFAULT}").options[-1])
    assert at.sidebar.select_slider(key=f"_widget_eps:{NAME}:{DEFAULT}").value == high
    assert any("1e+308" in w and f"using ε = {high:.3g}" in w for w in _warnings(at)), _warnings(at)
    at = _open(world.app, dataset=NAME, page="overview", eps="1e9")
    assert any("1e+09" in w and f"using ε = {high:.3g}" in w for w in _warnings(at)), _warnings(at)

    at = _open(world.app, dataset=NAME, page="overview", fa="999")
    assert at.sidebar.slider(key=f"_rate:{NAME}:{DEFAULT}").value == 20.0
    assert any("999" in w and "using 20 per 1,000 events" in w for w in _warnings(at)), _warnings(at)

    at = _open(world.app, dataset=NAME, page="recommendations", user="30", k="500")
    assert at.slider(key="_widget_k").value == 30
    assert any("500" in w and "showing 30" in w for w in _warnings(at)), _warnings(at)


def test_both_eps_and_a_rate_in_a_link_say_which_was_used(world):
    from core.detectors import DEFAULT

    at = _open(world.app, dataset=NAME, page="overview", eps="2", fa="3")
    assert at.sidebar.radio(key="threshold_mode").value == "ε (score)"
    assert at.sidebar.select_slider(key=f"_widget_eps:{NAME}:{DEFAULT}").value == 2.0
    assert any("both ε" in w and "using ε" in w for w in _warnings(at)), _warnings(at)


def test_a_change_point_the_user_lacks_warns_with_what_is_shown(world):
    at = _open(world.app, dataset=NAME, page="timeline", user="30", cp="9999")
    assert any(m.value.startswith("**What changed at event 28") for m in at.markdown)
    assert any("9999" in w and "showing event 28 instead" in w for w in _warnings(at)), _warnings(at)
    at = _open(world.app, dataset=NAME, page="recommendations", user="30", cp="9999")
    assert any("9999" in w and "showing event 28 instead" in w for w in _warnings(at)), _warnings(at)


def test_the_projection_link_keeps_its_change_point(world_copy, stub_matrix, stub_projection):
    from core import embeddings

    stub_projection(SHIFTS, embeddings.cached_item_matrix(SHIFTS))  # writes a map
    world = world_copy
    peaks = _eps_candidates(stub_matrix, "u3")
    eps = float(f"{min(peaks[i] for i in world.shifts_planted) * 0.9:.3g}")
    strongest = max(world.shifts_planted, key=peaks.get)
    other = next(i for i in world.shifts_planted if i != strongest)
    link = {"page": "projection", "dataset": SHIFTS, "detector": "two_window", "eps": str(eps)}
    at = _open(world.app, **link, user="u3", cp=str(other))
    assert not _warnings(at)
    assert at.selectbox(key=f"projection_cp:{SHIFTS}:u3").value == other
    assert at.query_params["cp"] == str(other)
    # Another pick is written back.
    at.selectbox(key=f"projection_cp:{SHIFTS}:u3").set_value(strongest).run()
    assert at.query_params["cp"] == str(strongest)


def _expanders(at: AppTest) -> list[str]:
    return [e.label for e in at.expander]


def test_pages_that_end_early_keep_the_link_and_the_glossary(world_copy):
    # u0 of the hand-made log never changes: Recommendations has no change point to show.
    at = _open(world_copy.app, dataset=SHIFTS, page="recommendations", user="u0")
    assert any("no detected change point" in i.value for i in at.info)
    assert "Link to this view" in _expanders(at) and "What the words mean" in _expanders(at)
    assert at.query_params["user"] == "u0"


def test_a_page_that_offers_a_task_keeps_the_link_and_the_glossary(world):
    # Evaluation without a stored benchmark ends at its "Run the benchmark" offer.
    at = _open(world.app, dataset=NAME, page="evaluation")
    assert any(b.label == "Run the benchmark" for b in at.button)
    assert "Link to this view" in _expanders(at) and "What the words mean" in _expanders(at)
