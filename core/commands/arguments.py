"""Argument types shared by every command: each refuses a bad value with an argparse message.

``type=`` functions run while argparse parses, so a bad number ends in the usual
``error: argument --k: …`` line (exit 2) before any data is loaded.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path

SEED_MAX = 2**32 - 1  # numpy and UMAP accept seeds below 2**32


def _number(text: str, kind: type) -> float | int:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def finite_float(text: str) -> float:
    """A finite number (no nan, no inf).

    >>> finite_float("0.5")
    0.5
    >>> finite_float("nan")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: 'nan' is not a finite number
    """
    return _number(text, float)


def float_in_range(
    low: float, high: float | None = None, *, low_open: bool = False
) -> Callable[[str], float]:
    """A finite number in [low, high] ((low, high] with ``low_open``)."""

    def parse(text: str) -> float:
        value = _number(text, float)
        if (value <= low if low_open else value < low) or (high is not None and value > high):
            bound = f"({low:g}" if low_open else f"[{low:g}"
            top = f"{high:g}]" if high is not None else "∞)"
            raise argparse.ArgumentTypeError(f"{text!r} is outside {bound}, {top}")
        return value

    parse.__name__ = "number"
    return parse


def int_in_range(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer in [low, high]."""

    def parse(text: str) -> int:
        value = _number(text, int)
        if value < low or (high is not None and value > high):
            if high is None:
                raise argparse.ArgumentTypeError(f"{text!r} must be at least {low}")
            raise argparse.ArgumentTypeError(f"{text!r} must be between {low} and {high}")
        return value

    parse.__name__ = "integer"
    return parse


positive_float = float_in_range(0.0, low_open=True)
positive_int = int_in_range(1)
non_negative_int = int_in_range(0)
seed = int_in_range(0, SEED_MAX)


def non_empty_text(text: str) -> str:
    """A string of at least one character (an empty separator would split every character)."""
    if text == "":
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def detector_name(text: str) -> str:
    """A detector name; an empty one is refused rather than read as "the default"."""
    if not text.strip():
        from core.detectors import DEFAULT, detector_names

        raise argparse.ArgumentTypeError(
            f"{text!r} names no detector: give one of {', '.join(detector_names())}, or leave "
            f"--detector out for the default ({DEFAULT})"
        )
    return text.strip()


def name_list(text: str) -> list[str]:
    """Comma-separated names, none of them empty.

    >>> name_list("best_split, two_window")
    ['best_split', 'two_window']
    >>> name_list(",")
    Traceback (most recent call last):
    argparse.ArgumentTypeError: ',' names nothing: give comma-separated names
    """
    names = [n.strip() for n in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"{text!r} names nothing: give comma-separated names")
    return names


def synthetic_size(text: str) -> str:
    """A synthetic world size: a name (tiny … huge) or a user count in range."""
    from core import synthetic
    from core.errors import ShiftError

    try:
        synthetic.parse_size(text)
    except ShiftError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def dataset_name(text: str) -> str:
    from core.errors import ShiftError
    from core.store import check_name

    try:
        return check_name(text)
    except ShiftError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def output_file(text: str) -> Path:
    """A file path that can be written: not a folder, inside a folder this user may write to,
    and never a dataset's database nor a file of a dataset's cache."""
    path = Path(text)
    _refuse_store_owned(path)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; give a file name inside it")
    parent = _existing_ancestor(path.parent)
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{parent} is not a folder")
    if not os.access(path if path.exists() else parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be written (permission denied)")
    return path


def output_folder(text: str) -> Path:
    """A folder path that can be written (created if missing), outside datasets and caches."""
    path = Path(text)
    _refuse_store_owned(path)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file; give a folder")
    parent = _existing_ancestor(path)
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{parent} is not a folder")
    if not os.access(parent, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text} cannot be written (permission denied)")
    return path


def _refuse_store_owned(path: Path) -> None:
    from core.store import store_owned

    reason = store_owned(path)
    if reason:
        raise argparse.ArgumentTypeError(f"{reason}; writing there would destroy it: give a path outside")


def distinct_outputs(**outputs: Path | None) -> None:
    """Refuse two options naming one file (the second write would replace the first).

    >>> distinct_outputs(out=Path("a.csv"), users=Path("./a.csv"))
    Traceback (most recent call last):
    core.errors.ShiftError: --out and --users name the same file a.csv; give each its own
    """
    from core.errors import ShiftError

    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        key = path.resolve()
        if key in seen:
            raise ShiftError(f"--{seen[key]} and --{option} name the same file {path}; give each its own")
        seen[key] = option


def _existing_ancestor(path: Path) -> Path:
    path = path if str(path) else Path(".")
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def add_engine_options(p: argparse.ArgumentParser, workers: bool = False) -> None:
    """``--engine local|ray`` and ``--address`` (and ``--workers`` for the local engine)."""
    p.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: this machine (default); ray: a Ray cluster, a local one started here unless "
        "--address or RAY_ADDRESS names one",
    )
    p.add_argument(
        "--address",
        type=non_empty_text,
        metavar="ADDR",
        help="Ray cluster address (ray://head:10001, or head:6379 on a cluster node; default RAY_ADDRESS)",
    )
    if workers:
        p.add_argument(
            "--workers",
            type=int_in_range(1, 256),
            default=1,
            metavar="N",
            help="local engine: score users on N processes (default 1)",
        )


def add_model_option(p: argparse.ArgumentParser) -> None:
    """``--model pretrained|finetuned|PATH``: which encoder gives the item vectors."""
    p.add_argument(
        "--model",
        type=non_empty_text,
        default=None,
        metavar="MODEL",
        help="item features from: pretrained (all-MiniLM-L6-v2 as shipped, the default), finetuned "
        "(this dataset's model from 'python -m core finetune NAME') or PATH, a local Hugging Face "
        "encoder folder (./finetuned for a folder of that name)",
    )
