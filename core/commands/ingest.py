"""``python -m core ingest``: load a behaviour log into a dataset database."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from core.commands import arguments

EPILOG = """\
examples:
  python -m core ingest movielens-100k                  # built-in default (RecBole wheel)
  python -m core ingest synthetic                       # built-in synthetic world (size small)
  python -m core ingest world --synthetic tiny --seed 3
  python -m core ingest ml1m --movielens ~/data/ml-1m   # ml-100k, ml-1m, ml-latest, ml-25m, ml-32m
  python -m core ingest shop --events events.csv --items items.parquet \\
      --user-col customer --item-col sku --timestamp-col time --title-col name

Events default to columns user_id,item_id,timestamp[,rating][,event_type] (timestamp as a unix
epoch in s, ms, us or ns, detected from its magnitude or given with --timestamp-unit, or ISO
8601, between 1970 and next year); items to item_id,title[,genres][,description] with '|'-separated genres.
An import is atomic: if anything is wrong, the existing dataset is left untouched.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "ingest",
        help="import a behaviour log into data/NAME.duckdb",
        description="Import a behaviour log into a dataset database (data/NAME.duckdb), "
        "validating every row first.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "name", type=arguments.dataset_name, help="dataset name (movielens-100k and synthetic are built in)"
    )
    src = p.add_mutually_exclusive_group()
    src.add_argument("--events", type=Path, help="events file (CSV or Parquet)")
    src.add_argument("--movielens", type=Path, metavar="FOLDER", help="a MovieLens folder")
    src.add_argument(
        "--synthetic",
        metavar="SIZE",
        type=arguments.synthetic_size,
        help="generate the synthetic world: tiny, small, medium, large, huge or a user count",
    )
    p.add_argument("--items", type=Path, help="items file (CSV or Parquet), with --events")
    p.add_argument("--seed", type=arguments.seed, default=0, help="random_state of the synthetic world")
    cols = p.add_argument_group("column mapping (generic import)")
    for canonical, default in (
        ("user", "user_id"),
        ("item", "item_id"),
        ("timestamp", "timestamp"),
        ("rating", "rating"),
        ("event-type", "event_type"),
    ):
        cols.add_argument(
            f"--{canonical}-col",
            default=default,
            metavar="NAME",
            help=f"events column holding the {canonical.replace('-', ' ')} (default {default})",
        )
    for canonical, default in (
        ("items-id", "item_id"),
        ("title", "title"),
        ("genres", "genres"),
        ("description", "description"),
    ):
        cols.add_argument(
            f"--{canonical}-col",
            default=default,
            metavar="NAME",
            help=f"items column holding the {canonical.replace('items-', 'item ')} (default {default})",
        )
    cols.add_argument(
        "--delimiter",
        default=",",
        type=arguments.non_empty_text,
        help="CSV delimiter of both files (default ',')",
    )
    cols.add_argument(
        "--genre-separator",
        default="|",
        type=arguments.non_empty_text,
        help="separator inside genres (default '|')",
    )
    cols.add_argument(
        "--timestamp-unit",
        choices=("s", "ms", "us", "ns"),
        help="unit of numeric timestamps (default: detected from their magnitude)",
    )
    p.add_argument(
        "--drop-unknown-items",
        action="store_true",
        help="drop events whose item is not in the items file (default: error)",
    )
    p.add_argument(
        "--drop-duplicates",
        action="store_true",
        help="keep the first of events with the same user, item and timestamp (default: error)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core import ingest, store
    from core.errors import ShiftError, Terminated

    started = time.perf_counter()
    # A one-line status that rewrites itself; piped output gets only the summary line.
    bar = tqdm(total=None, bar_format="{desc}", leave=False, disable=not sys.stderr.isatty())

    def progress(step: str) -> None:
        bar.set_description_str(f"{args.name}: {step}")

    options = store.ImportOptions(
        drop_unknown_items=args.drop_unknown_items,
        drop_duplicates=args.drop_duplicates,
        genre_separator=args.genre_separator,
        timestamp_unit=args.timestamp_unit,
    )
    try:
        if args.events is not None:
            if args.items is None:
                raise ShiftError("--events needs --items (the catalogue with titles)")
            events = store.TableSource(
                args.events,
                delimiter=args.delimiter,
                columns={
                    "user_id": args.user_col,
                    "item_id": args.item_col,
                    "timestamp": args.timestamp_col,
                    "rating": args.rating_col,
                    "event_type": args.event_type_col,
                },
            )
            items = store.TableSource(
                args.items,
                delimiter=args.delimiter,
                columns={
                    "item_id": args.items_id_col,
                    "title": args.title_col,
                    "genres": args.genres_col,
                    "description": args.description_col,
                },
            )
            report = ingest.ingest_files(args.name, events, items, options, progress)
        elif args.movielens is not None:
            report = ingest.ingest_movielens_folder(args.name, args.movielens, progress, options)
        elif args.synthetic is not None or args.name == "synthetic":
            size = args.synthetic or "small"
            with tqdm(total=None, unit="users", desc="generating", disable=not sys.stderr.isatty()) as gen:

                def on_chunk(done: int, total: int) -> None:
                    gen.total = total
                    gen.n = done
                    gen.refresh()

                report = ingest.ingest_synthetic(args.name, size, args.seed, progress, on_chunk)
        elif args.name == "movielens-100k":
            progress("fetching the RecBole wheel")
            report = ingest.ingest_movielens_100k(args.name, progress)
        else:
            raise ShiftError(
                f"{args.name!r} is not a built-in dataset ({', '.join(ingest.BUILTIN)}); "
                "give --events/--items, --movielens FOLDER or --synthetic SIZE"
            )
    except (KeyboardInterrupt, Terminated) as stop:
        # The import builds in a temporary file and swaps it in last, so nothing changed.
        print(f"interrupted; {args.name} unchanged", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    finally:
        bar.close()
    took = time.perf_counter() - started
    print(
        f"{args.name}: {report.n_events:,} events, {report.n_users:,} users, "
        f"{report.n_items:,} items in {took:.1f} s -> {store.dataset_path(args.name)}"
    )
    if report.timestamps:
        print(f"timestamps read as {report.timestamps}")
    if report.dropped_unknown_items:
        print(f"dropped {report.dropped_unknown_items:,} events of items not in the items file")
    if report.dropped_duplicates:
        print(f"dropped {report.dropped_duplicates:,} duplicate events")
    return 0
