"""``python -m core project NAME``: fit and store the UMAP map of a dataset's items."""

from __future__ import annotations

import argparse

from core.commands import arguments


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "project",
        help="precompute the 2-D UMAP map of the item embeddings (for the dashboard)",
        description="Fit UMAP (cosine, fixed random_state) on the dataset's item embeddings and "
        "store the map under the dataset's cache folder, so the dashboard's Projection page is "
        "instant and identical across reruns. Encodes the items first if they are not cached.",
    )
    p.add_argument("name", help="dataset name (see: python -m core datasets)")
    p.add_argument("--random-state", type=arguments.seed, default=42, help="UMAP seed (default 42)")
    p.add_argument(
        "--n-neighbors", type=arguments.int_in_range(2), default=15, help="UMAP n_neighbors (default 15)"
    )
    p.add_argument(
        "--min-dist", type=arguments.float_in_range(0.0, 1.0), default=0.1, help="UMAP min_dist (default 0.1)"
    )
    p.add_argument(
        "--force", action="store_true", help="refit even if a map of the current item embeddings is stored"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    from core import artefacts, store

    store.check_name(args.name)
    if not store.dataset_exists(args.name):
        store.connect(args.name).close()  # raises DatasetNotFound with the ingest hint

    vectors = artefacts.item_matrix(args.name)  # encodes items not yet cached (a set-up step)
    wanted = [args.n_neighbors, args.min_dist, args.random_state]
    if not args.force and artefacts.stored_params(args.name, vectors) == wanted:
        print(
            f"a map of the current item embeddings is already stored: {artefacts.projection_path(args.name)} "
            "(--force refits)"
        )
        return 0
    start = time.perf_counter()
    coords = artefacts.build_projection(
        args.name,
        vectors,
        random_state=args.random_state,
        n_neighbors=args.n_neighbors,
        min_dist=args.min_dist,
    )
    print(
        f"projected {len(coords):,} items in {time.perf_counter() - start:.1f} s -> "
        f"{artefacts.projection_path(args.name)}"
    )
    return 0
