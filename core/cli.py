"""The ``python -m core`` command line.

Each subcommand lives in ``core/commands/<name>.py`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func``; modules there are found automatically. Heavy
imports (torch, sklearn) happen inside the commands, so ``--help`` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import core.commands
from core.errors import ShiftError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core",
        description="Find where users' interests change in recommender-system logs: ingest logs "
        "into DuckDB, encode item texts with a pretrained language model, detect shifts, "
        "evaluate detectors on ground truth and show recommendations before and after.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in sorted(m.name for m in pkgutil.iter_modules(core.commands.__path__)):
        importlib.import_module(f"core.commands.{module}").register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ShiftError as err:
        # Expected failures (bad files, unknown names) get a message, not a traceback.
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
