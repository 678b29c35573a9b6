"""The encoder's CUDA check on a lent GPU machine that has torch but none of our packages.

The GPU machine cannot reach a package index and a carried folder is limited to 64 MiB, so
this prepares one here and runs from it there:

  prepare DIR  (here, on the CPU) writes DIR/model (all-MiniLM-L6-v2 with fp16 weights,
               ~45 MB: the CUDA path runs in fp16 anyway), DIR/texts.json (all MovieLens-100K
               item texts + 10,000 synthetic titles, as bench.encoder uses) and
               DIR/reference.npy (CPU fp32 vectors of every text, from the original fp32
               weights) — the truth the GPU vectors are compared with.
  run DIR      (there) encodes the texts with core.encoder.Encoder on CUDA (precision auto =
               fp16), and sentence-transformers on CUDA with its defaults when installed;
               prints items/s and the cosine of every vector to its CPU fp32 reference.
Usage: python -m bench.gpu_carry prepare .gpu   |   python -m bench.gpu_carry run .gpu
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def prepare(folder: Path) -> None:
    from transformers import AutoModel

    from bench.encoder import movielens_texts, synthetic_titles
    from core.encoder import Encoder, default_model_path

    folder.mkdir(parents=True, exist_ok=True)
    src = default_model_path()
    model_dir = folder / "model"
    shutil.rmtree(model_dir, ignore_errors=True)
    shutil.copytree(
        src, model_dir, ignore=shutil.ignore_patterns("*.safetensors", "*.bin", "onnx", "openvino", "*.onnx")
    )
    AutoModel.from_pretrained(str(src), local_files_only=True).half().save_pretrained(
        model_dir, safe_serialization=True
    )
    texts = movielens_texts() + synthetic_titles(10_000)
    (folder / "texts.json").write_text(json.dumps(texts))
    started = time.perf_counter()
    reference = Encoder(precision="fp32").encode(texts)
    print(f"reference: {len(texts):,} texts on CPU fp32 in {time.perf_counter() - started:.1f} s")
    np.save(folder / "reference.npy", reference.astype(np.float16))  # cosines stay exact to ~1e-5
    size = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    print(f"{folder}: {size / 2**20:.1f} MiB")


def _timed(encode, texts, torch) -> tuple[np.ndarray, float]:
    encode(texts[:512])  # warm-up: kernels, allocator
    torch.cuda.synchronize()
    best, vectors = float("inf"), None
    for _ in range(3):
        started = time.perf_counter()
        vectors = np.asarray(encode(texts))
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return vectors, len(texts) / best


def run(folder: Path) -> int:
    import torch

    from core.encoder import Encoder

    if not torch.cuda.is_available():
        print("no CUDA device visible to torch", torch.__version__)
        return 1
    texts = json.loads((folder / "texts.json").read_text())
    reference = np.load(folder / "reference.npy").astype(np.float32)  # stored as fp16 to fit the carry
    print(f"{len(texts):,} texts; {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    rows = []
    for batch in (128, 512):
        enc = Encoder(model_path=folder / "model", device="cuda", batch_size=batch).load()
        vectors, rate = _timed(enc.encode, texts, torch)
        cos = (vectors * reference).sum(1)
        rows.append((f"core.encoder cuda {enc.precision_} batch {batch}", rate, cos))
        del enc
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        SentenceTransformer = None
    if SentenceTransformer is not None:
        st = SentenceTransformer(str(folder / "model"), device="cuda")
        vectors, rate = _timed(lambda t: st.encode(t, convert_to_numpy=True), texts, torch)
        rows.append(
            (
                "sentence-transformers cuda defaults (fp16 weights as loaded)",
                rate,
                (vectors / np.linalg.norm(vectors, axis=1, keepdims=True) * reference).sum(1),
            )
        )
    ok = True
    for label, rate, cos in rows:
        print(
            f"{label}: {rate:,.0f} items/s; cos to CPU fp32: min {cos.min():.6f}, median {np.median(cos):.6f}"
        )
        ok &= bool(cos.min() >= 0.999) or label.startswith("sentence")
    print("PASS" if ok else "FAIL: a vector below cos 0.999")
    return 0 if ok else 1


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("prepare", "run"):
        sys.exit(__doc__)
    sys.exit(prepare(Path(sys.argv[2])) if sys.argv[1] == "prepare" else run(Path(sys.argv[2])))
