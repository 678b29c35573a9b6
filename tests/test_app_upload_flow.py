"""AppTest of the upload story in the browser: the app switches to an imported dataset, and
import errors speak in the form's terms (never command-line flags)."""

from streamlit.testing.v1 import AppTest

from tests.test_app_overview import EVENTS_CSV, ITEMS_CSV, _StubEncoder, _upload


def _empty_overview(app: str) -> AppTest:
    at = AppTest.from_file(app, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_after_an_import_the_app_shows_the_new_dataset(world_copy):
    at = AppTest.from_file(world_copy.app, default_timeout=120)
    at.session_state["dataset"] = "synthetic"
    at.run()
    at.session_state["encoder"] = _StubEncoder()
    _upload(at, ("ev.csv", EVENTS_CSV), name="fresh-upload")
    assert not at.exception, at.exception
    assert at.sidebar.selectbox(key="_widget_dataset").value == "fresh-upload"
    assert at.success[0].value.startswith("Imported 2 events of 1 users")
    assert {m.label: m.value for m in at.metric}["Events"] == "2"
    assert at.query_params["dataset"] == "fresh-upload"


def test_import_errors_name_form_options_not_command_line_flags(data_dir, dashboard_app):
    twice = b"user_id,item_id,timestamp\na,i1,1700000000\na,i1,1700000000\n"
    at = _upload(_empty_overview(dashboard_app), ("dup.csv", twice))
    message = at.error[0].value
    assert "--" not in message.replace("\\-", "-")
    assert "Options for messy files" in message
    # Ticking the option the message names imports the file.
    at.session_state["encoder"] = _StubEncoder()
    at.checkbox(key="upload_drop_duplicates").check()
    _upload(at, ("dup.csv", twice), items=("items.csv", ITEMS_CSV))
    assert not at.error, [e.value for e in at.error]
    assert at.success[0].value.startswith("Imported 1 events")


def test_the_map_is_built_from_a_button_with_progress(world_copy, monkeypatch):
    from core.artefacts import projection_path
    from dashboard import data, jobs

    built = []
    monkeypatch.setattr(jobs, "_build_projection", lambda name: lambda say: built.append(name))  # UMAP: ~30 s
    projection_path("synthetic").unlink(missing_ok=True)
    at = AppTest.from_file(world_copy.app, default_timeout=120)
    at.session_state["dataset"] = "synthetic"
    at.switch_page("pages/projection.py").run()
    next(b for b in at.button if b.label == "Build the map").click().run()
    assert not at.exception, at.exception
    jobs.board().get(("projection", "synthetic")).thread.join(timeout=30)
    assert built == ["synthetic"]
    assert data.task_status("projection", "synthetic").done


def test_the_benchmark_runs_from_a_button(world_copy, monkeypatch):
    from dashboard import data, jobs

    def fake(name):
        return lambda say: say("splicing users…")

    monkeypatch.setattr(jobs, "_run_benchmark", fake)
    at = AppTest.from_file(world_copy.app, default_timeout=120)
    at.session_state["dataset"] = "shifts"
    at.switch_page("pages/evaluation.py").run()
    next(b for b in at.button if b.label == "Run the benchmark").click().run()
    assert not at.exception, at.exception
    jobs.board().get(("benchmark", "shifts")).thread.join(timeout=30)
    assert data.task_status("benchmark", "shifts").message == "splicing users…"
