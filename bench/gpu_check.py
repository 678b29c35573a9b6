"""CUDA path of the encoder: agreement with CPU fp32 per vector, and items/s, on the same texts.

Meant for a short run on a lent GPU machine (well under 2 minutes). Texts: the MovieLens-100K
item texts when that dataset is ingested, plus 10,000 synthetic titles (bench.encoder's
generator), so it also runs on a bare checkout. It reports:
  * CUDA auto (fp16) and CUDA fp32 items/s on all texts (after a warm-up batch),
  * sentence-transformers on CUDA with its defaults, same texts, for scale,
  * cosine of every CUDA vector to the CPU fp32 vector of the same text (CPU side on a
    subset, --cpu-texts, to keep the run short), min and median.
Usage: python -m bench.gpu_check [--cpu-texts 2000] [--synthetic 10000]
Exits 1 when CUDA is missing or any cosine falls below 0.999.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np


def _rate(encode, texts: list[str]) -> tuple[np.ndarray, float]:
    import torch

    torch.cuda.synchronize()
    started = time.perf_counter()
    vectors = encode(texts)
    torch.cuda.synchronize()
    return vectors, len(texts) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cpu-texts", type=int, default=2000, help="texts also encoded on CPU fp32 (default 2000)"
    )
    parser.add_argument("--synthetic", type=int, default=10_000, help="synthetic titles (default 10,000)")
    args = parser.parse_args(argv)

    import torch

    from bench.encoder import movielens_texts, synthetic_titles
    from core.encoder import Encoder, default_model_path

    if not torch.cuda.is_available():
        print("no CUDA device visible to torch", torch.__version__)
        return 1
    texts = movielens_texts() + synthetic_titles(args.synthetic)
    print(f"{len(texts):,} texts; GPU {torch.cuda.get_device_name(0)}; torch {torch.__version__}")
    rows = {}
    for label, precision in (("cuda auto", "auto"), ("cuda fp32", "fp32")):
        enc = Encoder(device="cuda", precision=precision, batch_size=256).load()
        enc.encode(texts[:256])  # warm-up: kernels, allocator
        rows[label] = (*_rate(enc.encode, texts), enc.precision_)
        print(f"{label:<10} ({enc.precision_}): {rows[label][1]:,.0f} items/s", flush=True)
        del enc
        torch.cuda.empty_cache()

    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(default_model_path()), device="cuda")
    st.encode(texts[:256])
    _, st_rate = _rate(st.encode, texts)
    print(f"st cuda defaults: {st_rate:,.0f} items/s", flush=True)
    del st

    subset = np.random.default_rng(0).choice(len(texts), size=min(args.cpu_texts, len(texts)), replace=False)
    started = time.perf_counter()
    cpu = Encoder(device="cpu", precision="fp32").encode([texts[i] for i in subset])
    print(f"cpu fp32 reference: {len(subset):,} texts in {time.perf_counter() - started:.1f} s")
    ok = True
    for label, (vectors, rate, precision) in rows.items():
        cos = (vectors[subset] * cpu).sum(1)
        ok &= bool(cos.min() >= 0.999)
        print(
            f"{label} ({precision}) vs cpu fp32: cos min {cos.min():.6f}, median {np.median(cos):.6f}; "
            f"{rate:,.0f} items/s = {rate / st_rate:.2f}x st cuda defaults"
        )
    print("PASS" if ok else "FAIL: a vector below cos 0.999")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
