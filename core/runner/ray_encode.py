"""Encode item texts on a Ray cluster with Ray Data: an actor pool of encoders, GPU actors
when the cluster has GPUs.

:class:`RayEncoder` has the encoder interface :func:`core.artefacts.encode_items` uses
(``model_id``, ``dim``, ``load``, ``encode``), so the embeddings cache decides what is
missing exactly as on one machine and only the missing texts travel to the cluster. Each
actor loads its own copy of the model once (Ray's actor pattern for ``map_batches``); rows
carry their position, so the vectors come back in the order of the texts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from core.encoder import Encoder, Progress
from core.runner.ray_session import init_ray

# Texts per Ray Data batch: an actor encodes it in forward passes of the encoder's batch size.
BATCH_TEXTS = 1024


class _EncodeBatch:
    """One Ray Data actor: holds a loaded encoder and encodes the batches it is given."""

    def __init__(self, encoder, device: str | None) -> None:
        # This actor's copy of the encoder: the cluster decides the device, and a CPU actor
        # owns one core (Ray gave it num_cpus=1), so torch gets one thread.
        if hasattr(encoder, "device"):
            encoder.device = device
        if device == "cpu" and hasattr(encoder, "num_threads"):
            encoder.num_threads = 1
        self.encoder = encoder.load()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors = self.encoder.encode([str(t) for t in batch["text"]])
        return {"row": batch["row"], "vector": vectors}


class RayEncoder:
    """Encodes with copies of ``encoder`` (unloaded; its settings travel) on Ray actors.

    ``address``: cluster to connect to (default ``RAY_ADDRESS``, else a local Ray);
    ``actors``: encoder actors (default one per GPU, or one per CPU without GPUs).
    """

    def __init__(self, encoder: Encoder, address: str | None = None, actors: int | None = None) -> None:
        self.encoder = encoder
        self.address = address
        self.actors = actors

    @property
    def model_id(self) -> str:
        return self.encoder.model_id

    @property
    def dim(self) -> int:
        return self.encoder.dim

    def load(self) -> RayEncoder:
        """Connect to Ray (the models load in the actors, not here); returns self."""
        ray = init_ray(self.address)
        resources = ray.cluster_resources()
        self.gpus_ = int(resources.get("GPU", 0))
        self.device_ = f"ray: {self.gpus_} GPU actors" if self.gpus_ else "ray: CPU actors"
        self.precision_ = getattr(self.encoder, "precision", "?")
        self.n_actors_ = self.actors or (self.gpus_ or max(1, int(resources.get("CPU", 1))))
        return self

    def encode(self, texts: Sequence[str], progress: Progress | None = None) -> np.ndarray:
        """Unit vectors (len(texts), dim) float32 in the order of ``texts``."""
        import ray

        self.load()
        texts = list(texts)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if progress:
            progress(0, len(texts))
        if not texts:
            return out
        actors = min(self.n_actors_, -(-len(texts) // BATCH_TEXTS))
        # Ray Data reports its progress as INFO log lines; the caller's progress() is the report.
        ray.data.DataContext.get_current().enable_progress_bars = False
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        ds = ray.data.from_items([{"row": i, "text": t} for i, t in enumerate(texts)])
        ds = ds.map_batches(
            _EncodeBatch,
            fn_constructor_kwargs={"encoder": self.encoder, "device": "cuda" if self.gpus_ else "cpu"},
            batch_size=BATCH_TEXTS,
            batch_format="numpy",
            concurrency=actors,
            num_gpus=1 if self.gpus_ else 0,
            num_cpus=1,
        )
        done = 0
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            out[batch["row"]] = batch["vector"]
            done += len(batch["row"])
            if progress:
                progress(done, len(texts))
        return out
