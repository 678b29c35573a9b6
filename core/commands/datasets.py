"""``python -m core datasets``: the datasets under the data folder, with their counts."""

from __future__ import annotations

import argparse
import sys


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "datasets",
        help="list datasets and their counts",
        description="List every dataset under the data folder.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from core import store
    from core.errors import DatasetUnreadable

    names = store.list_dataset_names()
    if not names:
        print(f"no datasets under {store.data_dir()}; try: python -m core ingest movielens-100k")
        return 0
    header = f"{'name':<24}{'users':>10}{'items':>10}{'events':>13}  {'truth':<6}source"
    print(header)
    unreadable = []
    for name in names:
        try:
            con = store.connect(name)
        except DatasetUnreadable as err:  # listed, and reported after the others
            unreadable.append(str(err))
            print(f"{name:<24}{'(not readable: see below)':>33}")
            continue
        try:
            info = store.dataset_info(con)
        finally:
            con.close()
        print(
            f"{name:<24}{info.get('n_users', 0):>10,}{info.get('n_items', 0):>10,}"
            f"{info.get('n_events', 0):>13,}  {'yes' if info.get('has_ground_truth') else 'no':<6}"
            f"{info.get('source', '')}"
        )
    for message in unreadable:
        print(f"error: {message}", file=sys.stderr)
    return 2 if unreadable else 0
