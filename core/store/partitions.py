"""Events exported as Parquet partitioned by a hash of the user id, for a distributed runner.

Each partition holds whole users (every event of a user lands in the same one), so a
worker can compute anything that depends on one user's history from its partition alone.
Rows carry integer keys only: ``user_idx`` (the user's position in the dataset, which is
also the CSR position the core computes on), ``seq`` (event order within the user) and
``item_idx`` (the row of the item matrix). Ids and timestamps stay on the driver, where the
results are joined back.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs

PARTITION_COLUMN = "part"

_EXPORT = """
SELECT e.user_idx, e.seq, e.item_idx, CAST(hash(u.user_id) % $parts AS INTEGER) AS part
FROM event_rows e JOIN users u USING (user_idx)
"""


def export_partitions(
    con: duckdb.DuckDBPyConnection, filesystem: pafs.FileSystem, folder: str, n_partitions: int
) -> None:
    """Write every event to ``folder`` as ``part=K/*.parquet``, K = hash(user_id) mod ``n_partitions``.

    Streamed in record batches (DuckDB -> Arrow -> Parquet), so the export holds one batch in
    memory whatever the size of the log; ``filesystem`` may be local or an object store.
    """
    # con.sql streams the result as Arrow batches (con.execute would copy every row once more).
    reader = con.sql(_EXPORT, params={"parts": int(n_partitions)}).to_arrow_reader(1_000_000)
    pads.write_dataset(
        reader,
        folder,
        format="parquet",
        filesystem=filesystem,
        partitioning=pads.partitioning(pa.schema([(PARTITION_COLUMN, pa.int32())]), flavor="hive"),
        existing_data_behavior="delete_matching",
        max_partitions=max(1024, int(n_partitions)),
    )
