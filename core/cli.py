"""The ``python -m core`` command line.

Each subcommand lives in ``core/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``; modules there are found automatically. Heavy
imports (torch, sklearn) happen inside the commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib
import os
import pkgutil
import signal
import sys
import tempfile
import threading
import traceback

import core.commands
from core.errors import ShiftError, Terminated


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Find where users' interests change in recommender-system logs: ingest logs "
        "into DuckDB, encode item texts with a pretrained language model, detect shifts, "
        "evaluate detectors on ground truth and show recommendations before and after.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in sorted(m.name for m in pkgutil.iter_modules(core.commands.__path__)):
        command = importlib.import_module(f"core.commands.{module}")
        if hasattr(command, "register"):  # helpers (arguments.py) sit beside the commands
            command.register(subparsers)
    return parser


def run() -> None:
    """``python -m core``: run ``main`` and exit, Ctrl-C and SIGTERM answered until the very end.

    After the command the interpreter still tears down (atexit callbacks, Ray's shutdown,
    unloading torch), which takes a second after ``encode``; a Ctrl-C then ended in "Exception
    ignored … KeyboardInterrupt" or, once Python had restored the default handler, killed the
    process by the signal (exit -2, no message). Now it is one line and exit 130 (143), and
    while the interpreter unloads its modules, when no Python handler can run any more, the
    signals are ignored: the command has finished, and its exit code stands.
    """
    atexit.register(_ignore_stop_signals)  # registered first, so it runs after every other callback
    try:
        code = main()
    except KeyboardInterrupt:  # before main's handlers, or while one printed its message
        code = _stopped(signal.SIGINT)
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, _stop_now)
            signal.signal(signal.SIGTERM, _stop_now)
    sys.exit(code)


_STOPPED = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}


def _stopped(signum: int) -> int:
    message, code = _STOPPED[signum]
    print(message, file=sys.stderr)
    return code


def _stop_now(signum, frame) -> None:
    # The command's output is complete; flush it, say why, and leave without the rest of the
    # teardown (the user asked to stop).
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    message, code = _STOPPED[signum]
    with contextlib.suppress(OSError):
        os.write(2, f"{message}\n".encode())
    os._exit(code)


def _ignore_stop_signals() -> None:
    # Python restores the default action of signals that have a Python handler before it unloads
    # modules, so a Ctrl-C there would kill the process silently; an ignored signal stays ignored.
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with _sigterm_raises_terminated():
        try:
            return int(args.func(args) or 0)
        except ShiftError as err:
            # Expected failures (bad files, unknown names) get a message, not a traceback.
            print(f"error: {err}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            # The reader of our output went away (``detect … | head -1``): nothing is wrong with
            # the data. Point stdout at /dev/null so the interpreter's final flush is quiet.
            devnull = os.open(os.devnull, os.O_WRONLY)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(devnull, sys.stdout.fileno())
            print(
                "error: the output was closed before it was all written (a pipe ended early)", file=sys.stderr
            )
            return 141  # 128 + SIGPIPE, as a shell reports a command ended by a closed pipe
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Terminated:
            print("terminated", file=sys.stderr)
            return 143
        except Exception as err:  # noqa: BLE001 - the last resort: one line, the trace in a file
            trace = _write_trace(err)
            print(
                f"error: unexpected {type(err).__name__}: {_one_line(err)} (full trace in {trace})",
                file=sys.stderr,
            )
            return 1


@contextlib.contextmanager
def _sigterm_raises_terminated():
    """While a command runs, SIGTERM raises ``Terminated`` so clean-up runs and the exit is 143."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return

    def terminate(signum, frame):
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else "(no message)"


def _write_trace(err: BaseException) -> str:
    fd, path = tempfile.mkstemp(prefix="interest-shift-error-", suffix=".txt")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(f"python -m core {' '.join(sys.argv[1:])}\n\n")
        fh.write("".join(traceback.format_exception(err)))
    return path
