"""Work the dashboard runs in the background, and what each viewer is told about it.

Fitting a detector (MovieLens-100K: 17–125 s on two cores), building the item map (UMAP) and
running the benchmark take too long for a page run, so a button or a first visit starts them
in a background thread while pages show their progress; the result lands on disk, where the
pages read it. One :class:`JobBoard` per server process (``st.cache_resource``) runs each job
once, however many viewers ask for it: two viewers of one dataset never fit it twice. What a
viewer is *told* is per session: the rebuild notices of the dataset on its screen that it has
not been shown yet (``st.session_state``), so no viewer takes another's notice away.

The threads call ``core`` only (no Streamlit element, no session state): they need no
script-run context.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import streamlit as st

from core.errors import ShiftError

# Small logs are fitted in the run that asks (well under the 2 s an interaction may take).
FOREGROUND_FIT_EVENTS = 20_000
# Rough fitting seconds per 100,000 events on two cores (MovieLens-100K, bench runs): only to
# draw a progress bar, which never claims to be done before the fit is.
_FIT_SECONDS_PER_100K = {"kernel_cpd": 125.0, "kernel_cpd_raw": 125.0, "isolation_forest": 60.0}
TASKS = ("projection", "benchmark")


@dataclass
class Job:
    """One background job: its thread, a progress message, and the error it ended with."""

    started: float
    thread: threading.Thread | None = None
    message: str = "starting…"
    error: str | None = None
    finished: float | None = None

    @property
    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()


@dataclass(frozen=True)
class FitStatus:
    """Whether a detector's fit on a dataset can be read now, or is being built."""

    ready: bool
    running: bool = False
    elapsed: float = 0.0  # seconds since the background fit started
    expected: float = 0.0  # a rough estimate of its duration, seconds
    error: str | None = None


@dataclass(frozen=True)
class TaskStatus:
    running: bool
    done: bool = False
    elapsed: float = 0.0
    message: str = ""
    error: str | None = None


@dataclass
class JobBoard:
    """The server's background jobs by key, and the fits known to be ready (a memo: a fit,
    once stored, stays valid for that dataset version)."""

    jobs: dict[tuple, Job] = field(default_factory=dict)
    ready: set[tuple] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: tuple) -> Job | None:
        with self.lock:
            return self.jobs.get(key)

    def start(self, key: tuple, work: Callable[[Callable[[str], None]], None]) -> Job:
        """Run ``work(say)`` in a thread under ``key`` unless one runs already; an error it
        raises is kept as the job's error (shown on the page; a job that failed is not restarted
        by itself), a bug's trace also goes to the server's log."""
        with self.lock:
            job = self.jobs.get(key)
            if job is not None and job.running:
                return job
            job = self.jobs[key] = Job(time.monotonic())

        def say(message: str) -> None:
            job.message = message

        def run() -> None:
            try:
                work(say)
            except ShiftError as err:
                job.error = str(err)
            except Exception as err:
                # A bug: the page says so (instead of restarting a job that dies every second and
                # showing "0 s so far"), and the trace goes to the server's log as usual.
                job.error = f"an unexpected {type(err).__name__} ({err}); the server's log has the details"
                raise
            finally:
                job.finished = time.monotonic()

        job.thread = threading.Thread(target=run, name="-".join(map(str, key)), daemon=True)
        job.thread.start()
        return job


@st.cache_resource(show_spinner=False)
def board() -> JobBoard:
    """The server process's job board (one per process, shared by every session)."""
    return JobBoard()


def fit_status(
    name: str, version: str, detector: str, n_events: int, is_stored: Callable[[], bool]
) -> FitStatus:
    """Ready (known, or stored on disk: ``is_stored()``), running in the background, or failed."""
    jobs, key = board(), ("fit", name, version, detector)
    if key in jobs.ready:
        return FitStatus(True)
    expected = max(3.0, _FIT_SECONDS_PER_100K.get(detector, 30.0) * n_events / 100_000)
    job = jobs.get(key)
    if job is not None and job.running:
        return FitStatus(False, True, time.monotonic() - job.started, expected)
    if job is not None and job.error is not None:
        return FitStatus(False, False, 0.0, expected, job.error)
    if is_stored():
        jobs.ready.add(key)
        return FitStatus(True)
    return FitStatus(False, False, 0.0, expected)


def mark_ready(name: str, version: str, detector: str) -> None:
    board().ready.add(("fit", name, version, detector))


def start_fit(name: str, version: str, detector: str, model_id: str | None = None) -> None:
    """Fit ``detector`` on ``name`` (item vectors of ``model_id``; None: the pretrained model) in
    a background thread (no-op if one runs already); the fit is stored on disk, where
    :func:`fit_status` and the next page run find it."""
    from core.artefacts import cached_item_matrix, fitted_detector

    def work(say: Callable[[str], None]) -> None:
        matrix = cached_item_matrix(name, model_id)  # core's reader: no Streamlit cache in a thread
        if matrix is None:
            raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
        fitted_detector(name, detector, matrix)

    board().start(("fit", name, version, detector), work)


def task_status(kind: str, name: str) -> TaskStatus | None:
    """The state of the last ``kind`` task started on ``name`` in this process (None: none)."""
    job = board().get((kind, name))
    if job is None:
        return None
    end = time.monotonic() if job.running or job.finished is None else job.finished
    return TaskStatus(
        job.running, not job.running and job.error is None, end - job.started, job.message, job.error
    )


def start_task(kind: str, name: str) -> Job:
    """Start building ``kind`` ("projection": the item map; "benchmark": the spliced-user
    evaluation of every detector) for ``name`` in the background (no-op while one runs)."""
    if kind not in TASKS:
        raise ValueError(f"unknown task {kind!r}")
    return board().start(
        (kind, name), _build_projection(name) if kind == "projection" else _run_benchmark(name)
    )


def _build_projection(name: str) -> Callable[[Callable[[str], None]], None]:
    def work(say: Callable[[str], None]) -> None:
        from core.artefacts import build_projection, cached_item_matrix

        matrix = cached_item_matrix(name)
        if matrix is None:
            raise ShiftError(f"the items of {name!r} are not encoded yet: encode them first")
        say(f"fitting the map of {len(matrix):,} items (UMAP)…")
        build_projection(name, matrix)
        say("done")

    return work


def _run_benchmark(name: str) -> Callable[[Callable[[str], None]], None]:
    def work(say: Callable[[str], None]) -> None:
        from core import store
        from core.benchmark.detection import run_evaluation
        from core.benchmark.report import write_evaluation

        result = run_evaluation(name, None, target=1.0, random_state=0, progress=say)
        write_evaluation(result, store.cache_dir(name) / "evaluation")
        say("done")

    return work


def watch_notices() -> None:
    """Where this viewer's rebuild notices start: call at the top of every run (a new viewer
    is not told of rebuilds that happened before it arrived)."""
    from core.derived_files import last_rebuild_notice

    st.session_state.setdefault("_rebuild_notices_seen", last_rebuild_notice())


def rebuild_notices(name: str) -> list[str]:
    """Stored artefacts of ``name`` found damaged or out of date and rebuilt since this viewer
    was last told (core.derived_files), in words with no server path; other datasets' notices
    and other viewers' are left alone."""
    from core.derived_files import rebuild_notices_after

    watch_notices()
    notices, latest = rebuild_notices_after(st.session_state["_rebuild_notices_seen"], name)
    st.session_state["_rebuild_notices_seen"] = latest
    return notices
