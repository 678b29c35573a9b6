"""``python -m core finetune NAME``: fine-tune the item encoder on the dataset's co-consumption."""

from __future__ import annotations

import argparse
import resource
import sys
import time

from core.commands import arguments

EPILOG = """\
examples:
  python -m core finetune movielens-100k                    # defaults: a few minutes on 2 CPU cores
  python -m core finetune shop --pairs 50000 --epochs 2 --device cuda
  python -m core detect movielens-100k --model finetuned    # then use it: encode, detect, recommend

Two items one user consumed within --window events of each other are a positive pair; the
other items of the batch are its negatives (multiple-negatives ranking loss). Only the
benchmark's calibration half of the users is read, never its test users. The model is stored
in data/NAME.cache/finetuned/ with a manifest (base model, dataset version, parameters, code);
a rerun with the same settings trains nothing, any change retrains. Same --seed on a CPU →
the same model.
"""


def register(subparsers) -> None:
    from core.finetune import FinetuneParams

    d = FinetuneParams()
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune the language model on the log's co-consumption (contrastive)",
        description="Fine-tune all-MiniLM-L6-v2 on the dataset's behaviour: items consumed close "
        "together by one user are pulled together, the rest of the batch pushed apart. Use the "
        "result with --model finetuned on encode, detect and recommend.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("name", type=arguments.dataset_name, help="dataset name")
    p.add_argument(
        "--pairs",
        type=arguments.positive_int,
        default=d.pairs,
        metavar="N",
        help=f"co-consumption pairs per epoch (default {d.pairs:,})",
    )
    p.add_argument(
        "--epochs",
        type=arguments.positive_int,
        default=d.epochs,
        metavar="N",
        help=f"passes over the pairs (default {d.epochs})",
    )
    p.add_argument(
        "--batch-size",
        type=arguments.int_in_range(2),
        default=d.batch_size,
        metavar="N",
        help=f"pairs per step; each has the batch's other items as negatives (default {d.batch_size})",
    )
    p.add_argument(
        "--learning-rate",
        type=arguments.positive_float,
        default=d.learning_rate,
        metavar="LR",
        help=f"AdamW learning rate (default {d.learning_rate:g})",
    )
    p.add_argument(
        "--window",
        type=arguments.positive_int,
        default=d.window,
        metavar="N",
        help=f"a pair is two items at most N events apart (default {d.window})",
    )
    p.add_argument(
        "--max-length",
        type=arguments.positive_int,
        default=d.max_length,
        metavar="N",
        help=f"tokens per item text while training (default {d.max_length})",
    )
    p.add_argument(
        "--train-layers",
        type=arguments.int_in_range(1, 6),
        default=d.train_layers,
        metavar="N",
        help=f"top transformer layers that learn; the others stay pretrained (default {d.train_layers})",
    )
    p.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: CUDA when torch sees a GPU, else CPU (default auto)",
    )
    p.add_argument(
        "--seed",
        type=arguments.seed,
        default=d.seed,
        help=f"pair sampling, order and dropout (default {d.seed})",
    )
    p.add_argument("--force", action="store_true", help="train again even when a matching model is stored")
    p.add_argument(
        "--no-check",
        action="store_true",
        help="skip encoding the items and the held-out next-item check after training",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from core import artefacts, store
    from core.finetune import FinetuneParams, next_item_recall, training_users

    if not store.dataset_exists(args.name):
        store.connect(args.name).close()  # DatasetNotFound with the ingest hint, before torch loads
    params = FinetuneParams(
        pairs=args.pairs,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        window=args.window,
        max_length=args.max_length,
        train_layers=args.train_layers,
        seed=args.seed,
    ).check()
    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None and total:
            bar = tqdm(total=total, unit="pair", desc="fine-tuning", file=sys.stderr)
        if bar is not None:
            bar.n = done
            bar.refresh()

    t0 = time.perf_counter()
    try:
        model = artefacts.finetuned_model(args.name, params, args.device, progress, force=args.force)
    finally:
        if bar is not None:
            bar.close()
    r = model.report
    if model.trained_now:
        print(
            f"fine-tuned on {r['n_pairs']:,} pairs of {r['n_training_users']:,} training users, "
            f"{r['steps']} steps in {r['seconds']:.1f} s ({r['pairs_per_second']:.1f} pairs/s, {r['device']}, "
            f"{r['precision']}); loss {r['first_loss']:.3f} -> {r['last_loss']:.3f}"
        )
    else:
        print(f"up to date: {model.path} matches these settings (--force trains again)")
    print(f"model {model.path}")
    if not args.no_check:
        ev = artefacts.events(args.name)
        held_out = sorted(set(ev.user_ids.astype(str)) - set(training_users(ev.user_ids, params.split_seed)))
        before = artefacts.item_matrix(args.name)
        after = artefacts.item_matrix(args.name, artefacts.encoder_for(args.name, "finetuned"))
        print(
            f"held-out next-item recall@10 ({len(held_out):,} users never trained on): "
            f"pretrained {next_item_recall(before, ev, held_out):.3f}, "
            f"fine-tuned {next_item_recall(after, ev, held_out):.3f}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"total {time.perf_counter() - t0:.1f} s, peak memory {peak:,.0f} MB")
    return 0
