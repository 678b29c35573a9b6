"""Encoder throughput: core.encoder.Encoder next to sentence-transformers' defaults, same texts.

Texts: every MovieLens-100K item text (from data/movielens-100k.duckdb when ingested) plus
10,000 synthetic product and film titles made here with a seeded generator. In one process,
round by round (the order alternates so drifting machine load hits both sides alike):
  st     SentenceTransformer(path).encode(texts)                 (its defaults: batch 32, fp32)
  ours   Encoder().encode(texts)                                 (auto precision, length-sorted)
then reports items/s of each, their ratio per round, and the cosine of every vector of ours
to the same text's sentence-transformers vector (min, median).
Usage: python -m bench.encoder [--repeat 2] [--synthetic 10000] [--precision auto]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np

BRANDS = (
    "Voltix",
    "Novatek",
    "Sonara",
    "Pixelon",
    "Arcwave",
    "Lumora",
    "Zentra",
    "Kestrel",
    "Halden",
    "Brightfield",
    "Nordhaus",
    "Maple & Finch",
    "Orion",
    "Tidewater",
    "Copperline",
    "Aurelia",
)
PRODUCTS = {
    "Electronics": (
        "Wireless Noise-Cancelling Headphones",
        "4K Ultra HD Smart TV",
        "Bluetooth Speaker",
        "Mechanical Keyboard",
        "USB-C Charging Hub",
        "Action Camera",
        "Smartwatch",
        "Portable SSD",
        "Gaming Mouse",
        "E-Reader",
        "Mesh Wi-Fi Router",
        "Drone",
    ),
    "Home & Kitchen": (
        "Cast Iron Skillet",
        "Linen Duvet Cover",
        "Espresso Machine",
        "Ceramic Dinner Plate Set",
        "Bamboo Cutting Board",
        "Velvet Throw Pillow",
        "Stand Mixer",
        "Air Fryer",
        "Oak Bookshelf",
        "Wool Area Rug",
        "Glass Food Storage Set",
        "Rattan Basket",
    ),
    "Sports & Outdoors": (
        "Trail Running Shoes",
        "Yoga Mat",
        "Insulated Water Bottle",
        "Camping Tent",
        "Carbon Road Bike Helmet",
        "Adjustable Dumbbells",
        "Hiking Backpack",
        "Climbing Harness",
        "Sleeping Bag",
        "Kayak Paddle",
    ),
    "Beauty": (
        "Vitamin C Serum",
        "Hydrating Face Cream",
        "Matte Lipstick",
        "Argan Hair Oil",
        "Mineral Sunscreen SPF 50",
        "Charcoal Face Mask",
        "Eyeshadow Palette",
    ),
    "Books": (
        "Hardcover Cookbook",
        "Illustrated Field Guide to Birds",
        "Mystery Novel",
        "Travel Guide to Japan",
        "Science Fiction Anthology",
        "Biography of a Jazz Legend",
        "Children's Picture Book",
    ),
}
VARIANTS = {
    "Electronics": ("Black", "White", "2nd Generation", "Pro", "1 TB", "65-inch"),
    "Home & Kitchen": ("Sage Green", "Queen Size", "Set of 4", "Stainless Steel", "Natural", "12-inch"),
    "Sports & Outdoors": ("Men's", "Women's", "Large", "32 oz", "2-Person", "Navy"),
    "Beauty": ("30 ml", "Travel Size", "Fragrance Free", "Limited Edition", "Rose"),
    "Books": ("Paperback", "Hardcover", "Second Edition", "Illustrated", "Large Print"),
}
SPECS = {
    "Electronics": ("40h battery", "Bluetooth 5.3", "fast charging", "water resistant", "with carrying case"),
    "Home & Kitchen": ("dishwasher safe", "machine washable", "BPA free", "oven safe to 500F", "handmade"),
    "Sports & Outdoors": (
        "lightweight",
        "water resistant",
        "breathable mesh",
        "BPA free",
        "with carry strap",
    ),
    "Beauty": ("vegan", "cruelty free", "for sensitive skin", "paraben free", "dermatologist tested"),
    "Books": ("signed by the author", "with maps", "bestseller", "book club pick", "with recipes"),
}
ADJ = (
    "Silent",
    "Crimson",
    "Last",
    "Hidden",
    "Broken",
    "Golden",
    "Midnight",
    "Forgotten",
    "Electric",
    "Distant",
    "Wild",
    "Iron",
    "Glass",
    "Burning",
    "Frozen",
    "Secret",
    "Lonely",
    "Endless",
)
NOUN = (
    "Harbor",
    "Empire",
    "Garden",
    "Frontier",
    "Signal",
    "Orchard",
    "Protocol",
    "Kingdom",
    "Echo",
    "Horizon",
    "Letters",
    "Tide",
    "Machine",
    "River",
    "City",
    "Planet",
    "Summer",
    "Witness",
)
GENRES = (
    "Action",
    "Adventure",
    "Animation",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
)
PEOPLE = (
    "a retired detective",
    "two estranged sisters",
    "a young engineer",
    "an exiled queen",
    "a small-town teacher",
    "a crew of smugglers",
    "a grieving father",
    "an ambitious chef",
)
PLOTS = (
    "uncovers a conspiracy",
    "searches for a lost child",
    "falls in love across a border",
    "fights to save the family farm",
    "is stranded on a dying space station",
    "plans one last heist",
)


def synthetic_titles(n: int, random_state: int = 0) -> list[str]:
    """``n`` distinct, varied item texts: products with specs, films with years, genres, plots."""
    rng = np.random.default_rng(random_state)
    pick = lambda seq: seq[int(rng.integers(len(seq)))]  # noqa: E731
    texts: set[str] = set()
    while len(texts) < n:
        if rng.random() < 0.5:
            category = pick(tuple(PRODUCTS))
            text = f"{pick(BRANDS)} {pick(PRODUCTS[category])}, {pick(VARIANTS[category])}"
            if rng.random() < 0.6:
                text += f" ({pick(SPECS[category])}, {pick(SPECS[category])})"
            text += f". {category}"
        else:
            title = pick(
                (
                    f"The {pick(ADJ)} {pick(NOUN)}",
                    f"{pick(NOUN)} of the {pick(ADJ)} {pick(NOUN)}",
                    f"{pick(ADJ)} {pick(NOUN)}: Part {int(rng.integers(2, 5))}",
                    f"Return to the {pick(NOUN)}",
                )
            )
            genres = ", ".join(sorted({pick(GENRES) for _ in range(int(rng.integers(1, 4)))}))
            text = f"{title} ({int(rng.integers(1950, 2025))}). {genres}"
            if rng.random() < 0.35:
                text += f". {pick(PEOPLE).capitalize()} {pick(PLOTS)}."
        texts.add(text)
    return sorted(texts, key=lambda _: rng.random())


def movielens_texts() -> list[str]:
    from core import store

    if not store.dataset_exists("movielens-100k"):
        print(
            "note: movielens-100k is not ingested (python -m core ingest movielens-100k); synthetic titles only"
        )
        return []
    con = store.connect("movielens-100k")
    try:
        return store.load_items(con)["text"].tolist()
    finally:
        con.close()


def machine_notes() -> str:
    import torch

    with open("/proc/cpuinfo") as fh:
        cpu = next(
            (line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")),
            platform.processor(),
        )
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, load average {load}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=2, help="rounds (default 2)")
    parser.add_argument("--synthetic", type=int, default=10_000, help="synthetic titles (default 10,000)")
    parser.add_argument("--precision", default="auto", help="our encoder's precision (default auto)")
    parser.add_argument("--batch-size", type=int, default=128, help="our encoder's batch size (default 128)")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from core.encoder import Encoder, default_model_path

    texts = movielens_texts() + synthetic_titles(args.synthetic)
    print(f"{len(texts):,} texts, mean {np.mean([len(t) for t in texts]):.0f} characters")
    print("machine:", machine_notes())
    st = SentenceTransformer(str(default_model_path()), device="cpu")
    ours = Encoder(device="cpu", precision=args.precision, batch_size=args.batch_size).load()
    print(f"ours: {ours.precision_} on {ours.device_}, batch {ours.batch_size}; st: defaults")
    st.encode(texts[:64])  # warm-up of both, untimed
    ours.encode(texts[:64])

    rates: dict[str, list[float]] = {"st": [], "ours": []}
    vectors = {}
    for r in range(args.repeat):
        for side in ("st", "ours") if r % 2 == 0 else ("ours", "st"):
            started = time.perf_counter()
            vectors[side] = st.encode(texts) if side == "st" else ours.encode(texts)
            rates[side].append(len(texts) / (time.perf_counter() - started))
        print(
            f"round {r + 1}: st {rates['st'][-1]:.1f} items/s, ours {rates['ours'][-1]:.1f} items/s, "
            f"ratio {rates['ours'][-1] / rates['st'][-1]:.2f}x",
            flush=True,
        )
    ref = vectors["st"] / np.linalg.norm(vectors["st"], axis=1, keepdims=True)
    cos = (vectors["ours"] * ref).sum(1)
    ratios = [o / s for o, s in zip(rates["ours"], rates["st"], strict=True)]
    print(f"st   median {statistics.median(rates['st']):.1f} items/s")
    print(f"ours median {statistics.median(rates['ours']):.1f} items/s")
    print(
        f"ratio per round {', '.join(f'{x:.2f}x' for x in ratios)}; median {statistics.median(ratios):.2f}x"
    )
    print(
        f"cosine ours vs st: min {cos.min():.6f}, median {np.median(cos):.6f}, "
        f"below 0.999: {(cos < 0.999).sum()}"
    )
    print("load average after:", " ".join(f"{x:.1f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
