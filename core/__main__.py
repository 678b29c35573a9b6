"""``python -m core``: the command line."""

from core.cli import run

run()
