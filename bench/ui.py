"""Dashboard speed on MovieLens-100K: a slider move, and a cold start.

1. ``slider``: server-side time from an ε-slider change to a finished rerun of the User
   timeline page, measured with Streamlit's AppTest (the script run in this process,
   including building and serialising every element; no browser, no network). The page
   is warmed once (fitted detector, queries), then the slider is set to 20 different
   thresholds and each rerun is timed. Target: median <= 200 ms.
2. ``cold``: a fresh ``streamlit run app.py`` process with the disk caches warm (item
   embeddings, projection, fitted detector), opened in headless Chromium on the timeline
   page: time from launching the process to the first Plotly chart drawn in the browser.
   Target: <= 5 s (issue 12: <= 1.5x a one-chart Streamlit app measured the same way).
3. ``warm``: on one server already serving the dashboard: a new browser session opening the
   timeline (to its first chart; target <= 2 s), a page switch through the sidebar (click to
   the next page's content drawn and the run finished, and for Projection its map drawn;
   target <= 1 s) and a dataset switch
   in the sidebar (to the new dataset's counts; target <= 3 s). The server has opened the
   timeline once before, so each page's first switch also pays what that page is the first
   to load in the process (the recommender, the map); the pages are then switched through a
   second time. The one-chart app's new session is measured the same way (the framework's
   floor for that row). Each step also reports Chromium's main-thread busy time
   (``TaskDuration`` of the DevTools Performance domain), so what the browser spends is told
   apart from what the server does.

    .venv/bin/python -m bench.ui [--dataset movielens-100k] [--runs 20]

Run ``python -m core encode/project movielens-100k`` and open the app once before, so
the caches are warm (the script warms the detector fit itself).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def slider(dataset: str, runs: int) -> dict:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.session_state["dataset"] = dataset
    t0 = time.perf_counter()
    at.switch_page("pages/timeline.py").run()
    first = time.perf_counter() - t0
    assert not at.exception, at.exception
    detector = at.session_state[f"detector:{dataset}"]
    user = at.session_state[f"user:{dataset}"]
    key = f"_widget_eps:{dataset}:{detector}"
    # the ε control's positions (a select_slider over ε values) from 20% to 80% of its length
    options = [float(o) for o in at.sidebar.select_slider(key=key).options]
    picks = np.linspace(0.2 * (len(options) - 1), 0.8 * (len(options) - 1), runs).round().astype(int)
    times, counts = [], []
    for value in (options[i] for i in picks):
        at.sidebar.select_slider(key=key).set_value(value)
        t0 = time.perf_counter()
        at.run()
        times.append(time.perf_counter() - t0)
        assert not at.exception, at.exception
        counts.append(next(m.value for m in at.metric if m.label == "Change points"))
    return {
        "first_run_s": first,
        "median_ms": 1000 * statistics.median(times),
        "min_ms": 1000 * min(times),
        "max_ms": 1000 * max(times),
        "runs": runs,
        "user": user,
        "detector": detector,
        "change_point_counts": sorted(set(counts), key=int),
    }


PAGES = ("overview", "tour", "timeline", "recommendations", "projection", "evaluation")


def first(dataset: str) -> dict:
    """After ``make data`` (every detector's fit stored): server-side seconds of the first visit
    of every page in a fresh process state (Streamlit's caches emptied: what a server that has
    served nothing pays), and of the first switch to every detector on a server that has shown
    the default one (AppTest: the script run, building and serialising every element)."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from core.detectors import DEFAULT, detector_names

    def fresh(page: str) -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.session_state["dataset"] = dataset
        if page != "overview":
            at.switch_page(f"pages/{page}.py")
        return at

    visits = {}
    for page in PAGES:
        st.cache_data.clear()
        st.cache_resource.clear()
        at = fresh(page)
        t0 = time.perf_counter()
        at.run()
        visits[page] = time.perf_counter() - t0
        assert not at.exception, at.exception
    switches = {}
    st.cache_data.clear()
    st.cache_resource.clear()
    at = fresh("timeline")
    at.run()  # the server has shown the default detector
    key = f"_widget_detector:{dataset}"
    for detector in detector_names():
        if detector == DEFAULT:
            continue
        t0 = time.perf_counter()
        at.sidebar.selectbox(key=key).set_value(detector).run()
        switches[detector] = time.perf_counter() - t0
        assert not at.exception, at.exception
        at.sidebar.selectbox(key=key).set_value(DEFAULT).run()
    return {"first_visit_s": visits, "first_switch_s": switches}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(app: Path | None = None, env: dict | None = None, port: int | None = None, log=None):
    """``streamlit run`` of the dashboard (or ``app``) on a free local port, headless:
    (process, base URL); its output goes to ``log`` (an open file; default: discarded). The
    caller terminates the process; :func:`wait_healthy` waits for it."""
    port = port or _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(app or ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT if log else subprocess.DEVNULL,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    """Poll Streamlit's health endpoint until it answers ``ok``."""
    end = time.monotonic() + timeout
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=1) as r:
                if r.read() == b"ok":
                    return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"{url} not healthy after {timeout:.0f} s") from None
            time.sleep(0.05)


BASELINE_APP = """
import numpy as np
import plotly.graph_objects as go
import streamlit as st

st.metric("Events", 1)
st.plotly_chart(go.Figure(go.Scatter(x=np.arange(100), y=np.random.default_rng(0).random(100))))
"""


def cold(dataset: str, app: Path | None = None) -> dict:
    """Process start -> first chart; ``app`` replaces the dashboard (the framework's floor)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # The browser is started first: its own start-up is not the dashboard's.
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        t0 = time.perf_counter()
        proc, url = start_server(app)
        try:
            wait_healthy(url, proc)
            healthy = time.perf_counter() - t0
            page.goto(f"{url}/" + ("" if app else f"timeline?dataset={dataset}"))
            page.locator('[data-testid="stMetric"]').first.wait_for(timeout=120_000)
            first_element = time.perf_counter() - t0
            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
            done = time.perf_counter() - t0
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            browser.close()
    return {
        "process_to_first_chart_s": done,
        "process_to_healthy_s": healthy,
        "process_to_first_metric_s": first_element,
    }


def _busy(page):
    """A function returning Chromium's main-thread busy seconds for ``page`` so far (scripts,
    layout, style, painting), from the DevTools Performance domain."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def busy() -> float:
        metrics = cdp.send("Performance.getMetrics")["metrics"]
        return next(m["value"] for m in metrics if m["name"] == "TaskDuration")

    return busy


def _finished(page, timeout: float = 120_000) -> None:
    """Wait until Streamlit reports no script running (its status widget is gone)."""
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )


def _n_users(name: str) -> int:
    from core import store

    with store.connect(name, read_only=True) as con:
        return int(store.dataset_info(con)["n_users"])


# (sidebar link, text that shows the page is there, wait for a Plotly chart too). Projection is
# the only page switched to from a page without charts, so a chart drawn then is its item map.
SWITCHES = [
    ("Overview", "users shifted at", False),
    ("Recommendations", "Before ∩ after", False),
    ("Projection", "User path", True),
    ("Evaluation", "Planted truth", False),
    ("User timeline", "Composition window", False),
    ("Tour", "The three clearest shifts", False),
]


def warm(dataset: str, other: str = "synthetic", app: Path | None = None) -> dict:
    """New session, page switch and dataset switch on a server that is already warm
    (``app``: only the new session, of that app instead of the dashboard)."""
    from playwright.sync_api import sync_playwright

    proc, url = start_server(app)
    out: dict = {}
    try:
        wait_healthy(url, proc)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                # Warm the server: the timeline once (the detector's fit, the Plotly bundle).
                path = "" if app else f"timeline?dataset={dataset}"
                first = browser.new_page(viewport={"width": 1400, "height": 1200})
                first.goto(f"{url}/{path}")
                first.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=600_000)
                _finished(first, 600_000)
                first.close()
                sessions, busy_s = [], []
                for _ in range(3):
                    page = browser.new_page(viewport={"width": 1400, "height": 1200})
                    busy = _busy(page)
                    t0 = time.perf_counter()
                    page.goto(f"{url}/{path}")
                    page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
                    sessions.append(time.perf_counter() - t0)
                    busy_s.append(busy())
                    _finished(page)
                    if len(sessions) < 3:
                        page.close()
                out["new_session_s"] = statistics.median(sessions)
                out["new_session_browser_busy_s"] = statistics.median(busy_s)
                if app:
                    return out
                busy = _busy(page)
                for round_ in ("page_switch", "page_switch_again"):
                    switches, busy_switch = {}, {}
                    for link, ready, chart in SWITCHES:
                        b0, t0 = busy(), time.perf_counter()
                        page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link).click()
                        page.get_by_text(ready, exact=False).first.wait_for(timeout=120_000)
                        if chart:
                            page.locator(".js-plotly-plot .main-svg").first.wait_for(timeout=120_000)
                        _finished(page)
                        switches[link] = time.perf_counter() - t0
                        busy_switch[link] = busy() - b0
                    out[f"{round_}_s"], out[f"{round_}_browser_busy_s"] = switches, busy_switch
                # Dataset switch on the Overview page: to the other dataset's user count.
                page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Overview").click()
                page.get_by_text("users shifted at", exact=False).first.wait_for(timeout=120_000)
                _finished(page)
                times = []
                users = {name: _n_users(name) for name in (dataset, other)}
                for target in (other, dataset, other):
                    box = page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first
                    t0 = time.perf_counter()
                    box.click()
                    page.get_by_role("option", name=target, exact=True).click()
                    # Done when the headline names the new dataset's user count.
                    page.get_by_text(f" of {users[target]:,} users shifted at", exact=False).first.wait_for(
                        timeout=300_000
                    )
                    _finished(page, 300_000)
                    times.append(time.perf_counter() - t0)
                out["dataset_switch_s"] = times
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--only", choices=["warm", "first"], help="run only this measurement")
    args = parser.parse_args()
    print(f"load average at the start {_load()}")
    if args.only == "first":
        f = first(args.dataset)
        print(
            f"first visit of each page, server side ({args.dataset}, AppTest, caches emptied): "
            + ", ".join(f"{k} {v:.2f} s" for k, v in f["first_visit_s"].items())
        )
        print(
            "first switch to each detector from the default, server side: "
            + ", ".join(f"{k} {v:.2f} s" for k, v in f["first_switch_s"].items())
        )
        print(f"load average at the end {_load()}")
        return
    if args.only == "warm":
        _print_warm(warm(args.dataset))
        print(f"load average at the end {_load()}")
        return
    s = slider(args.dataset, args.runs)
    print(
        f"slider -> rerun of the timeline page ({args.dataset}, user {s['user']}, {s['detector']}, AppTest): "
        f"median {s['median_ms']:.0f} ms over {s['runs']} thresholds (min {s['min_ms']:.0f}, max {s['max_ms']:.0f}); "
        f"change-point counts seen {s['change_point_counts']}; first run in this process {s['first_run_s']:.1f} s"
    )
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline.py"
        baseline.write_text(BASELINE_APP, encoding="utf-8")
        b = cold(args.dataset, baseline)
        bw = warm(args.dataset, app=baseline)
    print(
        f"cold start of a one-metric, one-chart Streamlit app (the framework's floor, same measurement): "
        f"{b['process_to_first_chart_s']:.2f} s (healthy {b['process_to_healthy_s']:.2f} s, "
        f"first metric {b['process_to_first_metric_s']:.2f} s)"
    )
    print(
        f"warm server of the one-chart app: new session -> first chart {bw['new_session_s']:.2f} s "
        f"(median of 3; browser busy {bw['new_session_browser_busy_s']:.2f} s)"
    )
    c = cold(args.dataset)
    _print_warm(warm(args.dataset))
    print(
        f"cold start (new streamlit process, warm disk caches) -> first chart in Chromium: "
        f"{c['process_to_first_chart_s']:.2f} s (server healthy after {c['process_to_healthy_s']:.2f} s, "
        f"first metric after {c['process_to_first_metric_s']:.2f} s) = "
        f"{c['process_to_first_chart_s'] / b['process_to_first_chart_s']:.2f}x the one-chart app"
    )
    print(f"load average at the end {_load()}")


def _load() -> str:
    return f"{', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) on {os.cpu_count()} cores"


def _print_warm(w: dict) -> None:
    print(
        f"warm server: new session -> first chart {w['new_session_s']:.2f} s (median of 3; browser busy "
        f"{w['new_session_browser_busy_s']:.2f} s)"
    )
    for key, label in (
        ("page_switch", "page switches"),
        ("page_switch_again", "page switches, second round"),
    ):
        busy = w[f"{key}_browser_busy_s"]
        print(
            f"{label} (browser busy): "
            + ", ".join(f"{k} {v:.2f} s ({busy[k]:.2f})" for k, v in w[f"{key}_s"].items())
        )
    print("dataset switches " + ", ".join(f"{v:.2f} s" for v in w["dataset_switch_s"]))


if __name__ == "__main__":
    main()
