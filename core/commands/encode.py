"""``python -m core encode``: encode a dataset's item texts into the cached item matrix."""

from __future__ import annotations

import argparse

from core.commands import arguments

EPILOG = """\
examples:
  python -m core encode movielens-100k                      # default model, best precision here
  python -m core encode movielens-100k --precision fp32     # exact fp32
  python -m core encode shop --model ~/models/e5-small-v2   # any local Hugging Face encoder folder
  python -m core encode movielens-100k --model finetuned    # the model of 'python -m core finetune NAME'

Vectors are cached in data/NAME.cache/embeddings/, one file per model; a second run encodes
nothing, and a changed item text re-encodes only that item.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "encode",
        help="encode item texts with the language model (cached)",
        description="Encode every item text of a dataset with a local pretrained sentence encoder "
        "(default all-MiniLM-L6-v2), reusing cached vectors.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", help="dataset name")
    arguments.add_model_option(p)
    p.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="auto: fp16 on CUDA, bf16 on a CPU that supports it, else fp32 (default auto)",
    )
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when present)")
    p.add_argument(
        "--batch-size",
        type=arguments.positive_int,
        default=128,
        metavar="N",
        help="texts per batch (default 128)",
    )
    arguments.add_engine_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core import store
    from core.artefacts import encode_items, encoder_for
    from core.encoder import resolve_device
    from core.errors import ShiftError
    from core.runner.ray_session import shutdown_ray

    if args.address and args.engine != "ray":
        raise ShiftError("--address names a Ray cluster: add --engine ray")
    if args.batch_size < 1:
        raise ShiftError(f"--batch-size must be at least 1, got {args.batch_size}")
    store.check_name(args.name)
    if not store.dataset_exists(args.name):
        # Fail before loading the model: the message is the same, the wait is not.
        store.connect(args.name).close()
    encoder = encoder_for(
        args.name,
        args.model,
        device=args.device,
        precision=args.precision,
        batch_size=args.batch_size,
        verify_id=True,  # vectors are stored under its id: hash the weights, never trust the memo
    )
    if args.engine == "local" and (args.device is not None or args.precision != "auto"):
        # Checked before the cache is read: a wrong --device is refused even when nothing needs encoding.
        resolve_device(args.device, args.precision)
    elif args.device is not None:
        raise ShiftError(
            "--device is for --engine local; on Ray every actor takes a GPU when the cluster has one"
        )
    if args.engine == "ray":
        from core.runner.ray_encode import RayEncoder

        # The cache logic stays here; only the texts it lacks are encoded on the cluster.
        encoder = RayEncoder(encoder, address=args.address)
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total:
            bar = tqdm(total=total, unit="text", desc="encoding")
        if bar is not None:
            bar.n = done
            bar.refresh()

    try:
        result = encode_items(args.name, encoder, progress)
    finally:
        if bar is not None:
            bar.close()
        shutdown_ray()
    print(f"model {result.model_id}")
    print(
        f"{result.n_items:,} items, {result.n_unique_texts:,} distinct texts: "
        f"{result.n_cached:,} from the cache, {result.n_encoded:,} encoded"
    )
    if result.n_encoded:
        print(
            f"encoded at {result.items_per_second:,.1f} items/s on {encoder.device_} "
            f"({encoder.precision_}) in {result.encode_seconds:.1f} s"
        )
    return 0
