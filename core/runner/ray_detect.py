"""Score a population's users on a Ray cluster, one task per partition of users.

1. The events are exported once as Parquet partitioned by a hash of the user id
   (:func:`core.store.partitions.export_partitions`), under ``<dataset>.cache/partitions/``
   or a ``scratch`` URI every worker can read (``s3://…``, ``gs://…``, a shared mount).
   The export is kept, keyed by the dataset's content version and the partition count,
   so a second run exports nothing.
2. The fitted detector and the item features go to the object store once (``ray.put``);
   one task per partition reads its users' events, scores them with
   :func:`core.detectors.population.score_users` and writes its scores and candidate peaks
   as Parquet beside the export.
3. This process reads the results back into one result in the dataset's user order: the
   same arrays the local engine computes.

The fitted detector travels to the workers through Ray's own serialisation, in memory
only; nothing here stores a pickle (the fit is stored as arrays by core.artefacts).
"""

from __future__ import annotations

import json
import math
import shutil
import time
import uuid

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core import store
from core.detectors.base import ChangePoints, Detector, DetectorResult
from core.detectors.population import score_users
from core.errors import ShiftError
from core.runner.ray_session import init_ray

# Events per partition at least this many parts: one task per partition, and a partition's
# events, sorted, are a worker's memory (plus one scoring chunk).
PARTITION_EVENTS = 2_000_000
_DONE = "_export.json"  # written last: an export without it is incomplete and redone


def partition_count(n_events: int, cluster_cpus: int) -> int:
    """Two partitions per CPU (balance), more when partitions would exceed PARTITION_EVENTS."""
    return max(2 * max(cluster_cpus, 1), math.ceil(n_events / PARTITION_EVENTS), 1)


def _filesystem(dataset: str, scratch: str | None) -> tuple[pafs.FileSystem, str]:
    if scratch:
        return pafs.FileSystem.from_uri(scratch)
    return pafs.LocalFileSystem(), str(store.cache_dir(dataset) / "partitions")


def export_once(dataset: str, n_partitions: int, scratch: str | None = None) -> tuple[pafs.FileSystem, str]:
    """(filesystem, folder) of the dataset's events partitioned into ``n_partitions``, exported
    now unless an export of this content version and partition count is there."""
    from core.artefacts import dataset_version

    fs, root = _filesystem(dataset, scratch)
    version = dataset_version(dataset)
    folder = f"{root}/{version}-p{n_partitions}"
    marker = {"dataset_version": version, "partitions": n_partitions}
    try:
        with fs.open_input_stream(f"{folder}/{_DONE}") as fh:
            if json.loads(fh.read()) == marker:
                return fs, folder
    except (OSError, ValueError):
        pass  # absent, unreadable or of another export: export again
    if not scratch:  # exports of earlier versions of a local dataset are dead weight
        shutil.rmtree(root, ignore_errors=True)
    with store.connect(dataset) as con:
        store.export_partitions(con, fs, f"{folder}/events", n_partitions)
    with fs.open_output_stream(f"{folder}/{_DONE}") as fh:
        fh.write(json.dumps(marker).encode())
    return fs, folder


def score_partition(
    det: Detector, items: np.ndarray, fs: pafs.FileSystem, source: str, results: str, part: int
) -> int:
    """Score the users of one partition; write ``scores/<part>.parquet`` and
    ``candidates/<part>.parquet`` (keys: user_idx, event_index) under ``results``; return
    the partition's event count."""
    table = pq.read_table(source, filesystem=fs, columns=["user_idx", "seq", "item_idx"])
    user = table.column("user_idx").to_numpy().astype(np.int64)
    order = np.lexsort((table.column("seq").to_numpy(), user))
    user, item_idx = user[order], table.column("item_idx").to_numpy()[order]
    users, starts, counts = np.unique(user, return_index=True, return_counts=True)
    offsets = np.append(starts, len(user)).astype(np.int64)
    result = score_users(det, offsets, item_idx, items)
    event_index = np.arange(len(user), dtype=np.int64) - np.repeat(starts, counts)
    pq.write_table(
        pa.table({"user_idx": user, "event_index": event_index, "score": result.scores}),
        f"{results}/scores/{part}.parquet",
        filesystem=fs,
    )
    c = result.candidates
    pq.write_table(
        pa.table(
            {
                "user_idx": users[c.user].astype(np.int64),
                "event_index": c.event_index,
                "score": c.score,
                "alert_index": c.alert_index,
            }
        ),
        f"{results}/candidates/{part}.parquet",
        filesystem=fs,
    )
    return len(user)


def gather(fs: pafs.FileSystem, results: str, offsets: np.ndarray) -> DetectorResult:
    """The partitions' results as one result in user order (CSR ``offsets`` of the dataset)."""
    scores_t = pq.read_table(f"{results}/scores", filesystem=fs)
    cand_t = pq.read_table(f"{results}/candidates", filesystem=fs)
    rows = offsets[scores_t.column("user_idx").to_numpy()] + scores_t.column("event_index").to_numpy()
    scores = np.full(int(offsets[-1]), np.nan)
    scores[rows] = scores_t.column("score").to_numpy()
    cu, ci = cand_t.column("user_idx").to_numpy(), cand_t.column("event_index").to_numpy()
    order = np.lexsort((ci, cu))
    candidates = ChangePoints(
        cu[order].astype(np.int64),
        ci[order].astype(np.int64),
        cand_t.column("score").to_numpy()[order].astype(np.float64),
        cand_t.column("alert_index").to_numpy()[order].astype(np.int64),
    )
    return DetectorResult(scores, np.asarray(offsets, np.int64), candidates)


class RayScorer:
    """Scores users on Ray (a :data:`core.detectors.population.Scorer`).

    ``address``: a cluster to connect to (default ``RAY_ADDRESS``, else a local Ray);
    ``scratch``: a URI every worker reads and writes (default: the dataset's cache folder,
    which a local Ray and a cluster with a shared mount see); ``num_cpus``: CPUs of a local Ray.
    After a call, ``timings_`` holds the seconds of each stage (for bench/ray_scaling.py).
    """

    def __init__(self, address: str | None = None, scratch: str | None = None, num_cpus: int | None = None):
        self.address = address
        self.scratch = scratch
        self.num_cpus = num_cpus

    def __call__(
        self, det: Detector, events: store.EventArrays, items: np.ndarray, dataset: str
    ) -> DetectorResult:
        clock = time.perf_counter()
        ray = init_ray(self.address, self.num_cpus)
        n_parts = partition_count(int(events.offsets[-1]), int(ray.cluster_resources().get("CPU", 1)))
        fs, folder = export_once(dataset, n_parts, self.scratch)
        self.timings_ = {"connect + export": time.perf_counter() - clock}
        clock = time.perf_counter()
        results = f"{folder}/results-{uuid.uuid4().hex[:12]}"
        try:
            for kind in ("scores", "candidates"):
                fs.create_dir(f"{results}/{kind}")
            task = ray.remote(num_cpus=1)(score_partition)
            det_ref, items_ref = ray.put(det), ray.put(np.ascontiguousarray(items))
            source = f"{folder}/events"
            parts = [
                info.base_name
                for info in fs.get_file_info(pafs.FileSelector(source))
                if info.type == pafs.FileType.Directory
            ]
            refs = [
                task.remote(det_ref, items_ref, fs, f"{source}/{p}", results, int(p.split("=")[-1]))
                for p in parts
            ]
            n_scored, n_events = sum(ray.get(refs)), int(events.offsets[-1])
            self.timings_["tasks"] = time.perf_counter() - clock
            clock = time.perf_counter()
            if n_scored != n_events:
                raise ShiftError(
                    f"{dataset}: the Ray workers scored {n_scored:,} events but the dataset has "
                    f"{n_events:,}; the partition export under {folder} is damaged: delete it and rerun"
                )
            gathered = gather(fs, results, events.offsets)
            self.timings_["gather"] = time.perf_counter() - clock
            return gathered
        finally:
            fs.delete_dir(results)
