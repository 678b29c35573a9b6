"""Dashboard under load: concurrent browser sessions moving the ε slider on one server.

One ``streamlit run app.py`` server (disk caches warm: item embeddings, the default
detector's fit), ``--sessions`` headless Chromium pages, each a separate Streamlit session
on the User timeline page of a different MovieLens-100K user. All sessions move the ε slider
at once, ``--moves`` times each (one key press: the next slider step); a move is timed from
the key press to the last websocket frame its rerun sends that session (then no frame for
0.4 s, and Streamlit's running indicator gone). Errors: page errors and exception boxes. Target (reliability issue): median rerun <= 500 ms and no error, with
10 sessions on the 2-core box.

    .venv/bin/python -m bench.load [--dataset movielens-100k] [--sessions 10] [--moves 10]
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


async def _session(browser, url: str, user: str, moves: int, ready: asyncio.Barrier, out: dict) -> None:
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
    await page.get_by_text("Change points").first.wait_for(timeout=300_000)
    await page.wait_for_function(RUNNING, timeout=300_000)
    thumb = page.locator('[data-testid="stSidebar"] [data-testid="stSlider"] input[type="range"]').first
    await asyncio.wait_for(ready.wait(), timeout=600)  # all sessions move together
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
    out[user] = {"times": times, "errors": errors}
    await page.close()


async def _run(url: str, users: list[str], moves: int) -> dict:
    from playwright.async_api import async_playwright

    out: dict = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        ready = asyncio.Barrier(len(users))
        await asyncio.gather(*(_session(browser, url, u, moves, ready, out) for u in users))
        await browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="movielens-100k")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--moves", type=int, default=10)
    args = parser.parse_args()
    proc, url = start_server()
    try:
        wait_healthy(url, proc, timeout=60)
        # Users with long histories, so every session's chart is of real size.
        users = [str(u) for u in (405, 655, 13, 450, 276, 416, 537, 303, 234, 393)[: args.sessions]]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        out = asyncio.run(_run(f"{url}/timeline?dataset={args.dataset}", users, args.moves))
        wall = time.perf_counter() - started
        times = sorted(t * 1000 for r in out.values() for t in r["times"])
        errors = [e for r in out.values() for e in r["errors"]]
        p90 = times[int(0.9 * (len(times) - 1))] if times else float("nan")
        p95 = times[int(0.95 * (len(times) - 1))] if times else float("nan")
        print(
            f"{len(out)} concurrent sessions x {args.moves} ε moves on {args.dataset}: rerun median "
            f"{statistics.median(times):.0f} ms, p90 {p90:.0f} ms, p95 {p95:.0f} ms, max {max(times):.0f} ms over "
            f"{len(times)} moves; {len(errors)} errors {errors[:3]}; wall {wall:.0f} s; load average "
            f"{load_before:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
