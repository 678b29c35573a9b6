"""Dashboard under load: concurrent sessions moving the ε slider on one server.

One ``streamlit run app.py`` server (disk caches warm: item embeddings, the default
detector's fit), ``--sessions`` Streamlit sessions, each on the User timeline page of a
different MovieLens-100K user. All sessions move the ε slider at once, ``--moves`` times each
(the next slider step; each session waits for its previous move). Target (issue 22): rerun
median <= 1 s and p95 <= 2 s with 10 sessions on the 2-core box, and no error.

``--client browser`` (the default): headless Chromium pages on this box; a move is one key
press on the slider, timed to the last websocket frame its rerun sends that session (then no
frame for 0.4 s, and Streamlit's running indicator gone). Errors: page errors and exception
boxes. The browsers render every rerun on the same cores as the server (in a deployment each
viewer's own machine does), so this mode measures the box, not the server alone.

``--client protocol``: each session speaks the frontend's protocol over the same websocket
(``/_stcore/stream``: BackMsg ``rerun_script`` with the widgets' states, ForwardMsgs until
``script_finished``), with ``websockets`` (a Streamlit dependency); a move sends the ε widget
one step higher and is timed from the send to ``script_finished``. Every move is checked: the
page still shows the same user (picker, event count) and the chart's ε label is the new ε.
Errors: exception elements and compile errors.

Both modes print the CPU the box, the server and this process used while moving.

    .venv/bin/python -m bench.load [--client browser|protocol] [--dataset movielens-100k]
        [--sessions 10] [--moves 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

from bench.ui import CHROMIUM_ARGS, start_server, wait_healthy

CHROMIUM = "/usr/bin/chromium"
QUIET = 0.4  # seconds without a websocket frame that end a rerun
RUNNING = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int | None = None) -> float:
    """CPU seconds used so far: by process ``pid`` (user + system, from /proc), or by the whole
    box when ``pid`` is None (every core's busy time, from /proc/stat)."""
    if pid is None:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        busy = sum(fields) - fields[3] - fields[4]  # all but idle and iowait
        return busy / TICK
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def _cpu_snapshot(server_pid: int) -> tuple[float, float, float, float]:
    """(wall clock, the box's CPU seconds, the server's, this benchmark process's)."""
    return time.perf_counter(), _cpu_seconds(), _cpu_seconds(server_pid), _cpu_seconds(os.getpid())


async def _session(
    browser, url: str, user: str, moves: int, ready: asyncio.Barrier, out: dict, marks: dict
) -> None:
    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # A rerun's messages reach the browser over the session's websocket: the move ends with
    # the last frame of the burst it sets off (no frame for QUIET seconds after it).
    last_frame = [0.0]

    def on_socket(ws) -> None:
        ws.on("framereceived", lambda _frame: last_frame.__setitem__(0, time.perf_counter()))

    page.on("websocket", on_socket)
    await page.goto(f"{url}&user={user}", timeout=300_000)
    # the metric's label: the glossary's hidden list items also say "change points"
    metric = page.locator('[data-testid="stMetricLabel"]', has_text="Change points").first
    await metric.wait_for(timeout=300_000)
    await page.wait_for_function(RUNNING, timeout=300_000)
    thumb = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
    await asyncio.wait_for(ready.wait(), timeout=600)  # all sessions move together
    marks.setdefault("start", _cpu_snapshot(marks["server"]))
    times = []
    for _ in range(moves):
        await thumb.focus()
        await asyncio.sleep(QUIET)
        start = time.perf_counter()
        await page.keyboard.press("ArrowRight")
        while not (last_frame[0] > start and time.perf_counter() - last_frame[0] > QUIET):
            await asyncio.sleep(0.02)
        await page.wait_for_function(RUNNING, timeout=120_000)
        times.append(last_frame[0] - start)
    errors += [
        f"exception box: {t}" for t in await page.locator('[data-testid="stException"]').all_inner_texts()
    ]
    marks["end"] = _cpu_snapshot(marks["server"])  # the last session to finish writes last
    out[user] = {"times": times, "errors": errors}
    await page.close()


async def _run(url: str, users: list[str], moves: int, marks: dict) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ready = asyncio.Barrier(len(users))
        await asyncio.gather(*(_session(browser, url, u, moves, ready, out, marks) for u in users))
        await browser.close()
    return out


# ---- the protocol client: a Streamlit session over the websocket the browser uses ----------


class _ProtocolPage:
    """One Streamlit session spoken to the way the browser's frontend speaks to it: the
    ``/_stcore/stream`` websocket, BackMsg ``rerun_script`` out, ForwardMsgs in until
    ``script_finished``. It keeps what the frontend keeps between runs: the widgets' values (a
    widget's value set by the server, else the one it had, else its default; only widgets the
    last run drew), the query string (``page_info_changed``), the page's script hash
    (``navigation``) and the message cache (cacheable messages; their hashes are sent with each
    rerun, and ``ref_hash`` messages are resolved from it)."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self.query = ""
        self.page_hash = ""
        self.widgets: dict[str, object] = {}  # id -> WidgetState of the last run's widgets
        self.cache: dict[str, object] = {}  # hash -> ForwardMsg
        self.elements: dict[tuple, object] = {}  # the last run's elements by delta path
        self.exceptions: list[str] = []
        self.seen: dict[str, object] = {}  # the widgets of the run being read
        self.received = 0  # bytes of the last run

    def _widget(self, element) -> None:
        """Record the value the frontend would hold (and send back) for a widget element."""
        from streamlit.proto.Slider_pb2 import Slider
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        kind = element.WhichOneof("type")
        if kind not in ("slider", "selectbox", "radio", "checkbox"):
            return
        proto = getattr(element, kind)
        old = self.widgets.get(proto.id)
        state = WidgetState(id=proto.id)
        if kind == "slider" and proto.type == Slider.Type.SELECT_SLIDER:
            if proto.set_value:
                state.string_array_value.data[:] = list(proto.raw_value)
            elif old is not None:
                state = old
            else:
                state.string_array_value.data[:] = [proto.options[int(i)] for i in proto.default]
        elif kind == "slider":
            if proto.set_value:
                state.double_array_value.data[:] = list(proto.value)
            elif old is not None:
                state = old
            else:
                state.double_array_value.data[:] = list(proto.default)
        elif kind in ("selectbox", "radio"):
            if proto.set_value:
                state.string_value = proto.raw_value
            elif old is not None:
                state = old
            elif proto.HasField("default"):
                state.string_value = proto.options[proto.default]
            else:
                return  # no option chosen: the frontend sends nothing
        else:
            if proto.set_value:
                state.bool_value = proto.value
            elif old is not None:
                state = old
            else:
                state.bool_value = proto.default
        self.seen[proto.id] = state

    async def run(self, widgets: dict | None = None, page_name: str = "") -> float:
        """One rerun with the current widget values (``widgets``: id -> WidgetState, replacing
        those ids' values, as a moved widget does); seconds from the send to ``script_finished``."""
        from streamlit.proto.BackMsg_pb2 import BackMsg
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        msg = BackMsg()
        client = msg.rerun_script
        client.query_string = self.query
        client.page_script_hash = self.page_hash
        client.page_name = page_name
        for state in {**self.widgets, **(widgets or {})}.values():
            client.widget_states.widgets.add().CopyFrom(state)
        client.cached_message_hashes[:] = list(self.cache)
        self.elements, self.exceptions, self.seen, self.received = {}, [], {}, 0
        start = time.perf_counter()
        await self.ws.send(msg.SerializeToString())
        while True:
            data = await asyncio.wait_for(self.ws.recv(), timeout=300)
            self.received += len(data)
            fwd = ForwardMsg()
            fwd.ParseFromString(data)
            kind = fwd.WhichOneof("type")
            if kind == "ref_hash":
                cached = ForwardMsg()
                cached.CopyFrom(self.cache[fwd.ref_hash])
                cached.metadata.CopyFrom(fwd.metadata)
                fwd, kind = cached, cached.WhichOneof("type")
            elif fwd.metadata.cacheable and fwd.hash:
                self.cache[fwd.hash] = fwd
            if kind == "script_finished":
                elapsed = time.perf_counter() - start
                if fwd.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    self.exceptions.append("compile error")
                if fwd.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                    break
            elif kind == "navigation":
                self.page_hash = fwd.navigation.page_script_hash
            elif kind == "new_session" and not self.page_hash:
                self.page_hash = fwd.new_session.page_script_hash
            elif kind == "page_info_changed":
                self.query = fwd.page_info_changed.query_string
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                self.elements[tuple(fwd.metadata.delta_path)] = element
                if element.WhichOneof("type") == "exception":
                    self.exceptions.append(f"{element.exception.type}: {element.exception.message}")
                self._widget(element)
        self.widgets = self.seen  # the frontend drops the widgets the run did not draw
        return elapsed

    def find(self, kind: str, where) -> list:
        return [e for e in self.elements.values() if e.WhichOneof("type") == kind and where(getattr(e, kind))]

    def view(self) -> dict:
        """What the page shows that a move must keep (the user, its event count) or change (ε):
        the user picker's value, the Events metric, the timeline chart's ε label, the ε widget."""
        import json

        from streamlit.proto.Slider_pb2 import Slider

        users = [w for i, w in self.widgets.items() if "_widget_user:" in i]
        events = self.find("metric", lambda m: m.label == "Events")
        charts = self.find("plotly_chart", lambda c: "timeline_chart" in c.id)
        sliders = self.find("slider", lambda s: "_widget_eps:" in s.id)
        labels = (
            [
                a.get("text", "")
                for a in json.loads(charts[0].plotly_chart.spec)["layout"].get("annotations", [])
            ]
            if charts
            else []
        )
        eps = None
        if sliders:
            proto, state = sliders[0].slider, self.widgets[sliders[0].slider.id]
            if proto.type == Slider.Type.SELECT_SLIDER:
                eps = float(state.string_array_value.data[0])
            else:
                eps = float(state.double_array_value.data[0])
        return {
            "user": users[0].string_value if users else None,
            "events": events[0].metric.body if events else None,
            "chart_eps": [t.removeprefix("ε = ") for t in labels if t.startswith("ε = ")],
            "eps": eps,
            "eps_slider": sliders[0].slider if sliders else None,
        }

    def moved(self):
        """The ε widget's state one step higher (one step lower at the top of its range), as the
        frontend sends it for an arrow key: (WidgetState, the ε it asks for)."""
        from streamlit.proto.Slider_pb2 import Slider
        from streamlit.proto.WidgetStates_pb2 import WidgetState

        proto = self.view()["eps_slider"]
        state = WidgetState(id=proto.id)
        current = self.widgets[proto.id]
        if proto.type == Slider.Type.SELECT_SLIDER:
            options = list(proto.options)
            at = options.index(current.string_array_value.data[0])
            at = at + 1 if at + 1 < len(options) else at - 1
            state.string_array_value.data[:] = [options[at]]
            return state, float(options[at])
        value = current.double_array_value.data[0]
        value = value + proto.step if value + proto.step <= proto.max + 1e-12 else value - proto.step
        state.double_array_value.data[:] = [value]
        return state, value


async def _protocol_session(
    url: str, query: str, user: str, moves: int, ready: asyncio.Barrier, out: dict, marks: dict
) -> None:
    from websockets.asyncio.client import connect

    from dashboard.text import eps as eps_text

    errors: list[str] = []
    ws_url = url.replace("http://", "ws://", 1) + "/_stcore/stream"
    async with connect(ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=300) as ws:
        page = _ProtocolPage(ws)
        page.query = f"{query}&user={user}"
        await page.run(page_name="timeline")
        errors += page.exceptions
        # A detector fit being built (a stale stored fit) shows its progress first: rerun each
        # second until the timeline is drawn, as the page's progress fragment makes the browser do.
        deadline = time.perf_counter() + 600
        while not page.view()["chart_eps"] and time.perf_counter() < deadline and not page.exceptions:
            await asyncio.sleep(1.0)
            await page.run()
            errors += page.exceptions
        first = page.view()
        assert first["user"] == user and first["chart_eps"] and first["eps_slider"] is not None, (
            f"session of user {user}: the timeline did not open ({first})"
        )
        await asyncio.wait_for(ready.wait(), timeout=600)  # all sessions move together
        marks.setdefault("start", _cpu_snapshot(marks["server"]))
        times, sizes = [], []
        for _ in range(moves):
            before = page.view()
            state, wanted = page.moved()
            times.append(await page.run({state.id: state}))
            sizes.append(page.received)
            errors += page.exceptions
            after = page.view()
            # The move must have shown the same user at the new ε: a client that lost the user
            # or the move must not report a fast time.
            assert after["user"] == user and after["events"] == first["events"], (
                f"user {user}: the page now shows user {after['user']} ({after['events']} events)"
            )
            assert after["eps"] != before["eps"] and abs(after["eps"] - wanted) <= 1e-6 * abs(wanted), (
                f"user {user}: asked for ε {wanted}, the slider shows {after['eps']} (was {before['eps']})"
            )
            assert after["chart_eps"] == [eps_text(after["eps"])], (
                f"user {user}: ε {after['eps']} on the slider, the chart's label says {after['chart_eps']}"
            )
    marks["end"] = _cpu_snapshot(marks["server"])  # the last session to finish writes last
    out[user] = {"times": times, "errors": errors, "bytes": sizes}


async def _run_protocol(url: str, query: str, users: list[str], moves: int, marks: dict) -> dict:
    out: dict = {}
    ready = asyncio.Barrier(len(users))
    await asyncio.gather(*(_protocol_session(url, query, u, moves, ready, out, marks) for u in users))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--moves", type=int, default=10)
    parser.add_argument(
        "--client",
        choices=("browser", "protocol"),
        default="browser",
        help="browser: headless Chromium pages (they render every rerun on this box's cores); "
        "protocol: the frontend's websocket protocol spoken from this process (no rendering)",
    )
    args = parser.parse_args()
    print(f"client: {args.client}; {os.cpu_count()} cores; uptime: {_uptime()}", flush=True)
    proc, url = start_server()
    try:
        wait_healthy(url, proc, timeout=60)
        # Users with long histories, so every session's chart is of real size.
        users = [str(u) for u in (405, 655, 13, 450, 276, 416, 537, 303, 234, 393)[: args.sessions]]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        marks = {"server": proc.pid}
        if args.client == "browser":
            out = asyncio.run(_run(f"{url}/timeline?dataset={args.dataset}", users, args.moves, marks))
        else:
            out = asyncio.run(_run_protocol(url, f"dataset={args.dataset}", users, args.moves, marks))
        wall = time.perf_counter() - started
        times = sorted(t * 1000 for r in out.values() for t in r["times"])
        errors = [e for r in out.values() for e in r["errors"]]
        p90 = times[int(0.9 * (len(times) - 1))] if times else float("nan")
        p95 = times[int(0.95 * (len(times) - 1))] if times else float("nan")
        print(
            f"{args.client} client, {len(out)} concurrent sessions x {args.moves} ε moves on {args.dataset}: "
            f"rerun median {statistics.median(times):.0f} ms, p90 {p90:.0f} ms, p95 {p95:.0f} ms, max "
            f"{max(times):.0f} ms over {len(times)} moves; {len(errors)} errors {errors[:3]}; wall {wall:.0f} s; "
            f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
        sizes = [b for r in out.values() for b in r.get("bytes", [])]
        if sizes:
            print(f"websocket bytes per rerun (as received): median {statistics.median(sizes) / 1000:.0f} kB")
        # Where the time goes while the sessions move: the box's CPU split between the server
        # (every rerun's script, serialisation and websocket writes), this process (Playwright's
        # driver, or the protocol client's decoding) and the rest (the headless Chromium
        # processes rendering each rerun in browser mode; anything else running on the box).
        (w0, box0, srv0, me0), (w1, box1, srv1, me1) = marks["start"], marks["end"]
        box, srv, me = box1 - box0, srv1 - srv0, me1 - me0
        n = max(len(times), 1)
        rest = "browsers, Playwright and the rest" if args.client == "browser" else "the rest of the box"
        print(
            f"CPU while moving ({w1 - w0:.0f} s wall, {os.cpu_count()} cores = {(w1 - w0) * os.cpu_count():.0f} "
            f"core-seconds): box {box:.1f} s; server {srv:.1f} s ({1000 * srv / n:.0f} ms per move); "
            f"this process {me:.1f} s ({1000 * me / n:.0f} ms per move); {rest} {box - srv - me:.1f} s "
            f"({1000 * (box - srv - me) / n:.0f} ms per move)"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _uptime() -> str:
    with open("/proc/loadavg") as f:
        return "load average " + ", ".join(f.read().split()[:3])


if __name__ == "__main__":
    main()
