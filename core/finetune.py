"""Contrastive fine-tuning of the item encoder on the log's own co-consumption.

The method the product implements says the language model is pretrained, then fine-tuned on
the users' behaviour so its features carry taste, not only wording. A frozen sentence encoder
puts "Scream (1996)" next to "Scream of Stone (1991)"; users put it next to other horror.
The fine-tune teaches that: two items one user consumed within ``window`` events of each
other are a positive pair, every other item of the batch a negative (multiple-negatives
ranking loss, in-batch softmax over cosine similarities, both directions). The model stays
a text encoder, so a new item with no history still gets a sensible vector, which
collaborative factors alone cannot give.

Only the users the benchmarks may train on are used (:func:`training_users`: the
calibration half of :func:`core.user_split.split_users`, seed 0), so the benchmark's
test users' histories never reach the model.

Why not ``SentenceTransformer.fit``: it needs the ``datasets``/``accelerate`` stack, seeds
the global RNG and re-tokenises every text on every step. Here each item text is tokenised
once, a batch encodes each distinct item once, the word-embedding table is frozen (half the
weights: the optimiser step halves, and tokens never seen in training keep their pretrained
vectors), and randomness comes from ``random_state`` only (a forked torch RNG). Same seed and
thread count on a CPU → the same model: two of three reruns of the MovieLens-100K default were
bit-identical, the third (bf16 kernels on a quieter box) agreed to a vector cosine of 0.99998.

>>> import numpy as np
>>> from core.store import EventArrays
>>> ev = EventArrays(np.array(["a", "b"]), np.array([0, 4, 8]), np.array([0, 1, 2, 3, 4, 5, 4, 6], np.int32),
...                  np.zeros(8, "datetime64[us]"), np.ones(8, np.float32))
>>> co_consumption_pairs(ev, np.array(["a"]), window=1, n_pairs=10, random_state=0).tolist()
[[0, 1], [1, 2], [2, 3]]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from core.encoder import padded_batch
from core.errors import ShiftError
from core.store import EventArrays

Progress = Callable[[int, int], None]
# Files of a sentence-transformers folder that describe pooling/normalisation, copied from the
# base model so the fine-tune loads exactly as its base does (core.encoder reads them).
_SBERT_FILES = ("modules.json", "sentence_bert_config.json", "config_sentence_transformers.json")
_SBERT_FOLDERS = ("1_Pooling", "2_Normalize")


@dataclass(frozen=True)
class FinetuneParams:
    """Settings of one fine-tune; all of them go into the stored model's manifest.

    The defaults fit the dev box's bar (MovieLens-100K in under 5 minutes on 2 CPU cores):
    titles are short, so 32 tokens truncate almost nothing (inference keeps the model's own
    maximum length).
    """

    pairs: int = 6000  # co-consumption pairs drawn per epoch
    epochs: int = 1
    batch_size: int = 64  # pairs per step: 63 in-batch negatives for each positive
    learning_rate: float = 2e-4  # only the top layers learn: higher than a full fine-tune's 2e-5-5e-5
    window: int = 3  # a positive pair is two items at most this many events apart
    max_length: int = 32  # tokens per text during training
    scale: float = 20.0  # softmax temperature 1/scale over cosines (sentence-transformers' default)
    train_layers: int = 2  # the top transformer layers that learn; the rest stay as pretrained
    seed: int = 0
    split_seed: int = 0  # the benchmark's split: only its calibration users are trained on

    def check(self) -> FinetuneParams:
        for key in ("pairs", "epochs", "batch_size", "window", "max_length", "train_layers"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ShiftError(f"fine-tune {key} must be a positive integer, got {value!r}")
        if self.batch_size < 2:
            raise ShiftError("fine-tune batch size must be at least 2 (the batch holds the negatives)")
        if not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise ShiftError(f"fine-tune learning rate must be positive, got {self.learning_rate!r}")
        return self

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingReport:
    """What a fine-tune did: for the command's summary and the stored manifest."""

    n_training_users: int
    n_pairs: int
    steps: int
    seconds: float
    pairs_per_second: float
    first_loss: float
    last_loss: float
    device: str
    precision: str
    losses: list[float] = field(default_factory=list)


def training_users(user_ids: np.ndarray, split_seed: int = 0) -> np.ndarray:
    """The users a fine-tune may read: the calibration half of the benchmarks' split."""
    from core.user_split import split_users

    return split_users(user_ids, 0.5, split_seed)[0]


def co_consumption_pairs(
    events: EventArrays, users: np.ndarray, window: int, n_pairs: int, random_state: int = 0
) -> np.ndarray:
    """(n, 2) item_idx pairs: an event of one of ``users`` and a later event of the same user
    at most ``window`` events on, of another item. All such pairs when there are at most
    ``n_pairs``; else ``n_pairs`` drawn without replacement, seeded."""
    keep = np.flatnonzero(np.isin(events.user_ids, users))
    starts = []
    for d in range(1, window + 1):
        for k in keep:
            lo, hi = events.offsets[k], events.offsets[k + 1]
            if hi - lo > d:
                starts.append((np.arange(lo, hi - d), d))
    if not starts:
        return np.empty((0, 2), np.int64)
    first = np.concatenate([s for s, _ in starts])
    second = np.concatenate([s + d for s, d in starts])
    pairs = np.stack([events.item_idx[first], events.item_idx[second]], axis=1).astype(np.int64)
    pairs = pairs[pairs[:, 0] != pairs[:, 1]]
    if len(pairs) > n_pairs:
        rng = np.random.default_rng(random_state)
        pairs = pairs[np.sort(rng.choice(len(pairs), n_pairs, replace=False))]
    return pairs


def next_item_recall(
    item_vectors: np.ndarray,
    events: EventArrays,
    users: np.ndarray,
    k: int = 10,
    max_queries: int = 5000,
    random_state: int = 0,
) -> float:
    """Share of consecutive event pairs of ``users`` (held-out users) whose next item is among
    the ``k`` items closest to the current one (the current item excluded): did the features
    learn what follows what, on users the fine-tune never saw."""
    pairs = co_consumption_pairs(events, users, window=1, n_pairs=max_queries, random_state=random_state)
    if not len(pairs):
        return float("nan")
    v = np.asarray(item_vectors, np.float32)
    v = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    hits = 0
    for lo in range(0, len(pairs), 1000):
        p = pairs[lo : lo + 1000]
        sims = v[p[:, 0]] @ v.T
        sims[np.arange(len(p)), p[:, 0]] = -np.inf
        target = sims[np.arange(len(p)), p[:, 1]]
        hits += int(((sims > target[:, None]).sum(axis=1) < k).sum())
    return hits / len(pairs)


def resolve_device(device: str) -> str:
    """'auto' → 'cuda' when torch sees a GPU, else 'cpu'; 'cuda' without a GPU is refused."""
    import torch

    if device not in ("auto", "cpu", "cuda"):
        raise ShiftError(f"device {device!r} is not one of auto, cpu, cuda")
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ShiftError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu or auto")
    return device


class ContrastiveFinetune:
    """Fine-tunes a local sentence encoder on item pairs (fit), then saves it (save).

    Parameters
    ----------
    base_path : the pretrained model folder (all-MiniLM-L6-v2 by default, see core.encoder).
    params : :class:`FinetuneParams`.
    device : "auto", "cpu" or "cuda".
    """

    def __init__(self, base_path: str | Path, params: FinetuneParams, device: str = "auto") -> None:
        self.base_path = base_path
        self.params = params
        self.device = device

    def fit(
        self, texts: list[str], pairs: np.ndarray, progress: Progress | None = None
    ) -> ContrastiveFinetune:
        """Train on ``pairs`` (item_idx into ``texts``); learned state: ``model_``, ``tokenizer_``, ``report_``.

        Only the top ``params.train_layers`` transformer layers learn; the embeddings and the
        layers below stay as pretrained, so their output for each distinct item is computed
        once (inference mode) and every step runs only the top layers, forward and backward.
        On two CPU cores that is about 3x more pairs per minute than training every layer.
        """
        import torch
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        from core.encoder import _cpu_has_bf16

        p = self.params.check()
        if len(pairs) < 2:
            raise ShiftError(
                f"only {len(pairs)} co-consumption pairs among the training users; a fine-tune needs at least 2 "
                "(users with two or more different items)"
            )
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hf_logging.disable_progress_bar()
        device = torch.device(resolve_device(self.device))
        bf16 = (device.type == "cpu" and _cpu_has_bf16()) or (
            device.type == "cuda" and torch.cuda.is_bf16_supported()
        )
        t0 = time.perf_counter()
        self.tokenizer_ = AutoTokenizer.from_pretrained(str(self.base_path), local_files_only=True)
        items, local = np.unique(pairs.reshape(-1), return_inverse=True)
        local = local.reshape(pairs.shape)
        rng = np.random.default_rng(p.seed)
        # a last batch of one pair has no negative and is skipped
        total_steps = (-(-len(pairs) // p.batch_size) - (len(pairs) % p.batch_size == 1)) * p.epochs
        losses: list[float] = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(p.seed)  # dropout's RNG, forked: the caller's global state is untouched
            model = AutoModel.from_pretrained(str(self.base_path), local_files_only=True).to(device)
            layers = model.encoder.layer
            if not 1 <= p.train_layers <= len(layers):
                raise ShiftError(f"train_layers must be between 1 and {len(layers)}, got {p.train_layers}")
            model.requires_grad_(False)
            top = layers[len(layers) - p.train_layers :]
            top.requires_grad_(True)
            hidden, lengths = self._frozen_hidden(model, [texts[i] for i in items], device, bf16)
            top.train()
            trainable = [w for w in top.parameters()]
            optimiser = torch.optim.AdamW(trainable, lr=p.learning_rate, weight_decay=0.01)
            warmup = max(1, total_steps // 10)
            schedule = torch.optim.lr_scheduler.LambdaLR(
                optimiser,
                lambda s: min((s + 1) / warmup, max(0.0, (total_steps - s) / max(1, total_steps - warmup))),
            )
            done = 0
            if progress:
                progress(0, len(pairs) * p.epochs)
            for _ in range(p.epochs):
                order = rng.permutation(len(pairs))
                for start in range(0, len(order), p.batch_size):
                    batch = local[order[start : start + p.batch_size]]
                    if len(batch) < 2:
                        continue
                    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                        loss = self._loss(top, hidden, lengths, batch, device)
                    optimiser.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                    optimiser.step()
                    schedule.step()
                    losses.append(float(loss.detach()))
                    done += len(batch)
                    if progress:
                        progress(done, len(pairs) * p.epochs)
        seconds = time.perf_counter() - t0
        self.model_ = model.eval()
        self.report_ = TrainingReport(
            n_training_users=0,
            n_pairs=int(len(pairs)),
            steps=len(losses),
            seconds=seconds,
            pairs_per_second=len(pairs) * p.epochs / seconds if seconds > 0 else float("nan"),
            first_loss=float(np.mean(losses[:10])) if losses else float("nan"),
            last_loss=float(np.mean(losses[-10:])) if losses else float("nan"),
            device=str(device),
            precision="bf16 autocast" if bf16 else "fp32",
            losses=[round(x, 5) for x in losses],
        )
        return self

    def _frozen_hidden(self, model, texts: list[str], device, bf16: bool):
        """Output of the frozen layers for each text: (n, max_length, d) padded, and lengths."""
        import torch

        p = self.params
        ids = self.tokenizer_(texts, truncation=True, max_length=p.max_length)["input_ids"]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        width = int(lengths.max())
        below = len(model.encoder.layer) - p.train_layers
        dtype = torch.bfloat16 if bf16 else torch.float32
        hidden = torch.zeros((len(texts), width, model.config.hidden_size), dtype=dtype, device=device)
        pad_id = self.tokenizer_.pad_token_id or 0
        order = np.argsort(-lengths, kind="stable")
        model.eval()
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for start in range(0, len(texts), 128):
                rows = order[start : start + 128]
                input_ids, mask = padded_batch(ids, lengths, rows, pad_id)
                w = input_ids.shape[1]
                out = model(
                    input_ids=torch.from_numpy(input_ids).to(device),
                    attention_mask=torch.from_numpy(mask).to(device),
                    output_hidden_states=True,
                )
                hidden[torch.from_numpy(rows).to(device), :w] = out.hidden_states[below].to(dtype)
        return hidden.clone(), lengths  # clone: a tensor made under inference_mode cannot enter autograd

    def _loss(self, top, hidden, lengths: np.ndarray, batch: np.ndarray, device):
        """Symmetric multiple-negatives ranking loss of one batch of (anchor, positive) pairs.

        Each distinct item runs through the trained layers once. A candidate that is the same
        item as the true positive (a popular item twice in one batch) or as the anchor is
        masked: it is not a negative.
        """
        import torch

        items, inverse = np.unique(batch.reshape(-1), return_inverse=True)
        inverse = inverse.reshape(batch.shape)
        width = int(lengths[items].max())
        rows = torch.from_numpy(items).to(device)
        h = hidden[rows, :width].float()
        keep = torch.from_numpy(np.arange(width)[None, :] < lengths[items][:, None]).to(device)
        # The additive mask BERT's attention takes (eager and SDPA alike): 0 to attend, -inf-ish to skip.
        additive = torch.zeros(keep.shape, dtype=h.dtype, device=device).masked_fill(
            ~keep, torch.finfo(h.dtype).min
        )
        additive = additive[:, None, None, :]
        for layer in top:
            out = layer(h, attention_mask=additive)
            h = out[0] if isinstance(out, tuple) else out
        m = keep.unsqueeze(-1).to(h.dtype)
        vectors = torch.nn.functional.normalize((h.float() * m).sum(1) / m.sum(1).clamp(min=1e-9), dim=1)
        a, b = inverse[:, 0], inverse[:, 1]
        sims = self.params.scale * vectors[torch.from_numpy(a)] @ vectors[torch.from_numpy(b)].T
        labels = torch.arange(len(batch), device=device)
        loss = 0.0
        # anchor -> positives (rows of sims), then positive -> anchors (rows of sims.T)
        for logits, own, other in ((sims, b, a), (sims.T, a, b)):
            not_negative = (own[None, :] == own[:, None]) | (own[None, :] == other[:, None])
            np.fill_diagonal(not_negative, False)
            logits = logits.masked_fill(torch.from_numpy(not_negative).to(device), float("-inf"))
            loss = loss + 0.5 * torch.nn.functional.cross_entropy(logits, labels)
        return loss

    def save(self, folder: Path) -> Path:
        """Write the model as a local Hugging Face folder (safetensors, no pickles) with the
        base model's pooling files, loadable by :class:`core.encoder.Encoder`."""
        import shutil

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(folder, safe_serialization=True)
        self.tokenizer_.save_pretrained(folder)
        base = Path(self.base_path)
        for name in _SBERT_FILES:
            if (base / name).exists():
                shutil.copy2(base / name, folder / name)
        for name in _SBERT_FOLDERS:
            if (base / name).is_dir():
                shutil.copytree(base / name, folder / name, dirs_exist_ok=True)
        return folder
