"""Getting behaviour logs into the store: built-in datasets, MovieLens folders, any CSV/Parquet.

One module per kind of source; every source ends in the same validated, atomic import
(``core.store.build_dataset``).
"""

from core.ingest.files import ingest_files
from core.ingest.movielens import (
    RECBOLE_VERSION,
    downloads_dir,
    fetch_recbole_wheel,
    ingest_movielens_100k,
    ingest_movielens_folder,
)
from core.ingest.synthetic_world import ingest_synthetic

BUILTIN = ("movielens-100k", "synthetic")

__all__ = [
    "BUILTIN",
    "RECBOLE_VERSION",
    "downloads_dir",
    "fetch_recbole_wheel",
    "ingest_files",
    "ingest_movielens_100k",
    "ingest_movielens_folder",
    "ingest_synthetic",
]
