"""The dashboard on a big dataset (issue 14): time to the first Overview and the server's memory.

A real ``streamlit run app.py`` (bench/ui.py's :func:`~bench.ui.start_server`), opened in
headless Chromium: the Overview of ``--dataset`` first (time from the page request to its
headline, "N of M users shifted at ε", drawn; and from launching the process), then the
Timeline, Recommendations, Projection and Tour of the same dataset, each in a new browser
session (a page request with ``?dataset=``), each timed to its marker text and to the end of
its script run. While it runs, a thread samples the resident memory of the Streamlit process
and its children every 0.1 s (``/proc/PID/status`` VmRSS, summed; psutil is not installed);
each page reports the peak seen while it was open, and the process's VmHWM (the kernel's
high-water mark, which catches peaks between samples) is read at the end.

Budgets (issue 14): 5M events (``--synthetic large``): first Overview <= 10 s, RSS <= 2 GB;
50M events (``huge``): opens, and stays <= 3 GB.

    SHIFT_DATA_DIR=$PWD/data .venv/bin/python -m bench.big_dashboard --dataset large [--sweep 8] [--json out.json]

``--sweep N`` then opens the Overview at N thresholds from half to twice the calibrated
default (a link with ``eps=``, a new session each): every threshold is a new cache entry, the
lowest the most change points; its peak is what "stays <= 3 GB" is checked against.

The dataset must be imported, encoded and detected (``python -m core ingest/encode/detect``;
``project`` for the Projection's map) before: the server must not fit anything for it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.ui import CHROMIUM_ARGS, _finished, start_server, wait_healthy

# (URL path, text that shows the page's main content is drawn)
PAGES = {
    "overview": ("", "users shifted at"),
    "timeline": ("timeline", "Composition window"),
    "recommendations": ("recommendations", "Before ∩ after"),
    "projection": ("projection", "Shifts across users"),
    "tour": ("tour", "What to do with this"),
}
_END = "What the words mean"
# An uncaught exception, or an error box a page drew instead of its content.
_FAILED = '[data-testid="stException"], [data-testid="stAlertContentError"]'


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat's parent ids)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _status_kb(pid: int, key: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass
class MemorySampler:
    """Samples the summed VmRSS of a process tree in a thread; peaks per phase (label)."""

    pid: int
    interval: float = 0.1
    phase: str = "start"
    peaks: dict[str, int] = field(default_factory=dict)  # kB
    last: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def sample(self) -> int:
        kb = sum(_status_kb(p, "VmRSS") for p in [self.pid, *_children(self.pid)])
        self.last = kb
        self.peaks[self.phase] = max(self.peaks.get(self.phase, 0), kb)
        return kb

    def run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _open(page, url: str, marker: str, timeout_ms: float) -> dict:
    """Request ``url`` in ``page``; seconds to ``marker`` drawn (or a failure) and to the end of
    the script run, and the text of any exception or error box."""
    t0 = time.perf_counter()
    page.goto(url)
    page.wait_for_function(
        "([marker, failed]) => document.body.innerText.includes(marker) || !!document.querySelector(failed)",
        arg=[marker, _FAILED],
        timeout=timeout_ms,
    )
    drawn = time.perf_counter() - t0
    # The router draws the glossary after the page's script returns (dashboard.navigation.route):
    # the end of the run. Streamlit's status widget alone was seen gone mid-run.
    page.wait_for_function(
        "([end, failed]) => document.body.innerText.includes(end) || !!document.querySelector(failed)",
        arg=[_END, _FAILED],
        timeout=timeout_ms,
    )
    _finished(page, timeout_ms)
    done = time.perf_counter() - t0
    errors = list(dict.fromkeys(e.inner_text()[:300] for e in page.locator(_FAILED).all()))
    ok = marker in page.locator("body").inner_text()
    return {"drawn_s": drawn if ok else None, "done_s": done, "errors": errors}


def run(
    dataset: str,
    pages: list[str],
    timeout_s: float = 600.0,
    log: Path | None = None,
    shots: Path | None = None,
    sweep: int = 0,
) -> dict:
    from playwright.sync_api import sync_playwright

    out: dict = {"dataset": dataset, "load_before": os.getloadavg(), "pages": {}}
    with sync_playwright() as p, open(log or os.devnull, "w", encoding="utf-8") as server_log:
        # The browser is started first: its own start-up is not the dashboard's.
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        t_launch = time.perf_counter()
        proc, url = start_server(log=server_log)
        try:
            with MemorySampler(proc.pid) as mem:
                wait_healthy(url, proc)
                out["healthy_s"] = time.perf_counter() - t_launch
                out["rss_idle_mb"] = mem.sample() / 1024
                for name in pages:
                    path, marker = PAGES[name]
                    mem.phase = name
                    page = browser.new_page(viewport={"width": 1400, "height": 1200})
                    t_page = time.perf_counter()
                    print(f"opening {name}…", file=sys.stderr, flush=True)
                    result = _open(page, f"{url}/{path}?dataset={dataset}", marker, timeout_s * 1000)
                    if name == "overview" and "launch_to_overview_s" not in out and result["drawn_s"]:
                        out["launch_to_overview_s"] = t_page - t_launch + result["drawn_s"]
                    mem.sample()
                    result["rss_peak_mb"] = mem.peaks.get(name, 0) / 1024
                    result["rss_after_mb"] = mem.last / 1024
                    out["pages"][name] = result
                    if shots is not None:  # to look at what was drawn
                        shots.mkdir(parents=True, exist_ok=True)
                        page.screenshot(path=shots / f"{dataset}-{name}.png", full_page=True)
                    page.close()
                # "Stays": the Overview at other thresholds (each a new session through a link,
                # each a new cache entry: the most change points at the lowest ε).
                if sweep:
                    from core.artefacts import population_summary

                    default = population_summary(dataset).default_threshold
                    mem.phase = "sweep"
                    times = []
                    for factor in np.linspace(0.5, 2.0, sweep):
                        page = browser.new_page(viewport={"width": 1400, "height": 1200})
                        eps = f"{default * factor:.3g}"
                        r = _open(
                            page,
                            f"{url}/?dataset={dataset}&eps={eps}",
                            PAGES["overview"][1],
                            timeout_s * 1000,
                        )
                        times.append((eps, r["done_s"], r["errors"]))
                        page.close()
                    out["sweep"] = {"runs": times, "rss_peak_mb": mem.peaks.get("sweep", 0) / 1024}
                # "Stays": the memory a while after the last page, with every session closed.
                mem.phase = "settled"
                time.sleep(5)
                out["rss_settled_mb"] = mem.sample() / 1024
                out["rss_peak_mb"] = max(mem.peaks.values()) / 1024
                out["vm_hwm_mb"] = _status_kb(proc.pid, "VmHWM") / 1024
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            browser.close()
    out["load_after"] = os.getloadavg()
    return out


def report(r: dict) -> str:
    lines = [
        f"dataset {r['dataset']}: server healthy {r['healthy_s']:.1f} s after launch, idle RSS "
        f"{r['rss_idle_mb']:.0f} MB; load average before {r['load_before'][0]:.2f} / "
        f"{r['load_before'][1]:.2f} / {r['load_before'][2]:.2f}, after {r['load_after'][0]:.2f} / "
        f"{r['load_after'][1]:.2f} / {r['load_after'][2]:.2f} on {os.cpu_count()} cores"
    ]
    for name, p in r["pages"].items():
        drawn = "NOT drawn" if p["drawn_s"] is None else f"drawn {p['drawn_s']:.2f} s"
        lines.append(
            f"  {name:<16} {drawn}, run done {p['done_s']:.2f} s, RSS peak {p['rss_peak_mb']:.0f} MB "
            f"(after {p['rss_after_mb']:.0f} MB)" + (f"; ERRORS: {p['errors']}" if p["errors"] else "")
        )
    if "sweep" in r:
        runs = ", ".join(f"ε {e}: {t:.1f} s" + (" ERROR" if err else "") for e, t, err in r["sweep"]["runs"])
        lines.append(
            f"  Overview at {len(r['sweep']['runs'])} thresholds ({runs}): RSS peak {r['sweep']['rss_peak_mb']:.0f} MB"
        )
    if "launch_to_overview_s" in r:
        lines.append(f"  process launch -> Overview headline {r['launch_to_overview_s']:.2f} s")
    lines.append(
        f"  peak RSS (0.1 s samples, process tree) {r['rss_peak_mb']:.0f} MB; VmHWM of the server "
        f"{r['vm_hwm_mb']:.0f} MB; settled {r['rss_settled_mb']:.0f} MB"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", default="large")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated, Overview first")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per page")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--log", type=Path, help="the server's output (tracebacks) goes here")
    parser.add_argument("--shots", type=Path, help="a full-page screenshot of each page goes here")
    parser.add_argument(
        "--sweep",
        type=int,
        default=0,
        help="then open the Overview at this many thresholds (0.5-2x the default)",
    )
    args = parser.parse_args()
    pages = [p for p in args.pages.split(",") if p]
    result = run(args.dataset, pages, args.timeout, args.log, args.shots, args.sweep)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
