"""Any behaviour log as a source: events and items as CSV or Parquet, columns mapped by the caller."""

from __future__ import annotations

from core import store
from core.store import ImportOptions, ImportReport, TableSource


def ingest_files(
    name: str, events: TableSource, items: TableSource, options: ImportOptions | None = None, progress=None
) -> ImportReport:
    """Any behaviour log: events and items as CSV or Parquet, columns mapped by the caller."""
    source = f"files {events.label} + {items.label}"
    return store.build_dataset(
        store.dataset_path(name), name, source, events, items, options=options, progress=progress
    )
