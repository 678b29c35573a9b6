"""The ``python -m core`` command line.

Each subcommand lives in ``core/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``; modules there are found automatically. Heavy
imports (torch, sklearn) happen inside the commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
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
