"""Ingest throughput: the validated, atomic import next to DuckDB's bare CREATE TABLE AS.

Generates the synthetic world (default 200,000 users × ~50 events ≈ 10M events) to Parquet,
writes the same events as CSV, then times, in one run and on the same files:
  bare    CREATE TABLE events AS SELECT * FROM read_parquet/read_csv(file)  (no checks)
  import  core.store.build_dataset: every check of the importer, per-user ordering, atomic swap
Usage: python -m bench.ingest [--users 200000] [--repeat 2] [--workdir /tmp/ingest-bench]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time
from pathlib import Path

import duckdb

from core import store, synthetic
from core.store import TableSource


def bare(path: Path, db: Path, reader: str) -> float:
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    con.execute(f"CREATE TABLE events AS SELECT * FROM {reader}(?)", [str(path)])
    con.execute("CHECKPOINT")
    con.close()
    return time.perf_counter() - started


def validated(events: Path, items: Path, db: Path) -> float:
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    store.build_dataset(db, "bench", "bench", TableSource(events), TableSource(items))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ingest-bench"))
    args = parser.parse_args()
    work = args.workdir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    files = synthetic.write_world(args.users, work / "src")
    print(
        f"generated {files.n_events:,} events of {files.n_users:,} users in "
        f"{time.perf_counter() - started:.1f} s"
    )
    csv_events = work / "events.csv"
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT * FROM read_parquet(?)) TO '"
        + str(csv_events).replace("'", "''")
        + "' (HEADER, DELIMITER ',')",
        [str(files.events)],
    )
    con.close()
    rows = []
    for label, path, reader in (("Parquet", files.events, "read_parquet"), ("CSV", csv_events, "read_csv")):
        t_bare = [bare(path, work / "bare.duckdb", reader) for _ in range(args.repeat)]
        t_ours = [validated(path, files.items, work / "ours.duckdb") for _ in range(args.repeat)]
        b, o = statistics.median(t_bare), statistics.median(t_ours)
        rows.append((label, b, o))
        print(
            f"{label:8} bare {b:6.2f} s ({files.n_events / b / 1e6:5.2f} M events/s)   "
            f"validated import {o:6.2f} s ({files.n_events / o / 1e6:5.2f} M events/s)   ratio {o / b:4.2f}x"
        )
    print("\n| source | events | bare CREATE TABLE AS | validated import | ratio |\n|---|---|---|---|---|")
    for label, b, o in rows:
        print(
            f"| {label} | {files.n_events:,} | {b:.2f} s ({files.n_events / b / 1e6:.2f} M/s) | "
            f"{o:.2f} s ({files.n_events / o / 1e6:.2f} M/s) | {o / b:.2f}× |"
        )
    print(f"(median of {args.repeat}; cores: {os.cpu_count()})")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
