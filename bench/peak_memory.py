"""Run a command and report the peak memory of its whole process tree.

``/usr/bin/time -v`` reports the largest single process; a process pool or a local Ray is
several processes, whose memory adds up. This samples every process of the tree twice a
second and sums their PSS (proportional set size: pages shared copy-on-write between a
parent and its forked workers are split between them, not counted once per process).

Usage: python -m bench.peak_memory -- python -m core detect huge --workers 2 --out cp.csv
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        kids = []
        for t in tasks:
            kids += [int(c) for c in (t / "children").read_text().split()]
        return kids
    except OSError:
        return []


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def main() -> int:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    started = time.perf_counter()
    proc = subprocess.Popen(argv)
    peak, peak_procs = 0, 0
    while proc.poll() is None:
        pids = _tree(proc.pid)
        total = sum(_pss_kb(p) for p in pids)
        if total > peak:
            peak, peak_procs = total, len(pids)
        time.sleep(0.5)
    wall = time.perf_counter() - started
    print(
        f"peak_memory: wall {wall:.1f} s, peak PSS of the process tree {peak / 1024**2:.2f} GiB "
        f"({peak_procs} processes at the peak), exit {proc.returncode}",
        file=sys.stderr,
    )
    return proc.returncode


if __name__ == "__main__":
    raise SystemExit(main())
