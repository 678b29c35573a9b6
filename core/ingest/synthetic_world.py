"""The synthetic world as a source: generated to Parquet in a temporary folder, then imported."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pandas as pd

from core import store
from core.store import ImportReport, TableSource
from core.store.temp_files import sweep_stale_temp_files, synthetic_temp_prefix


def ingest_synthetic(
    name: str,
    size: str | int = "small",
    random_state: int = 0,
    progress=None,
    on_chunk=None,
    chunk_users: int | None = None,
) -> ImportReport:
    """Generate the synthetic world to Parquet, then import it like any other log."""
    from core import synthetic

    folder = store.data_dir()
    # Named after this process, so the next import can sweep it if this one is killed.
    sweep_stale_temp_files(folder)
    with tempfile.TemporaryDirectory(prefix=synthetic_temp_prefix(), dir=folder) as tmp:
        files = synthetic.write_world(
            size, Path(tmp), random_state, progress=on_chunk, chunk_users=chunk_users or synthetic.CHUNK_USERS
        )
        truth = pd.read_parquet(files.truth)
        labels = pd.read_parquet(files.labels)
        return store.build_dataset(
            store.dataset_path(name),
            name,
            f"synthetic world (size {size}, random_state {random_state})",
            TableSource(files.events),
            TableSource(files.items),
            ground_truth=truth,
            user_labels=labels,
            progress=progress,
        )
