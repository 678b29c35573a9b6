"""The only package that speaks SQL. Everything else asks it for frames and arrays."""

from core.store.connection import (
    cache_dir,
    check_name,
    connect,
    cursor,
    data_dir,
    dataset_exists,
    dataset_path,
    list_dataset_names,
    store_owned,
)
from core.store.content_version import content_version
from core.store.importer import ImportOptions, ImportReport, TableSource, build_dataset
from core.store.partitions import export_partitions
from core.store.queries import (
    EventArrays,
    category_counts,
    dataset_info,
    load_event_arrays,
    load_ground_truth,
    load_items,
    load_user_events,
    load_user_items,
    load_user_labels,
    load_users,
    user_exists,
)
from core.store.samples import event_windows, sample_users, shift_free_positions, user_histories
from core.store.user_index import user_index

__all__ = [
    "EventArrays",
    "ImportOptions",
    "ImportReport",
    "TableSource",
    "build_dataset",
    "cache_dir",
    "category_counts",
    "check_name",
    "connect",
    "content_version",
    "cursor",
    "data_dir",
    "dataset_exists",
    "dataset_info",
    "dataset_path",
    "event_windows",
    "export_partitions",
    "list_dataset_names",
    "load_event_arrays",
    "load_ground_truth",
    "load_items",
    "load_user_events",
    "load_user_items",
    "load_user_labels",
    "load_users",
    "sample_users",
    "shift_free_positions",
    "store_owned",
    "user_exists",
    "user_histories",
    "user_index",
]
