"""MovieLens as a source: the built-in MovieLens-100K (from RecBole's wheel) and MovieLens folders.

This module only knows where the files are and how their columns are named; the import
itself is ``core.store.build_dataset``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

from core import store
from core.errors import DataError, ShiftError
from core.store import ImportOptions, ImportReport, TableSource

RECBOLE_VERSION = "1.2.1"
_RECBOLE_ML100K = "recbole/dataset_example/ml-100k/ml-100k"


def downloads_dir() -> Path:
    """Downloaded sources, shared by every data folder (tests use their own data folders)."""
    path = Path(
        os.environ.get("SHIFT_DOWNLOADS_DIR", Path(__file__).resolve().parents[2] / "data" / "downloads")
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


def fetch_recbole_wheel() -> Path:
    """The RecBole wheel from the package index: it ships MovieLens-100K. Never installed."""
    folder = downloads_dir()
    found = sorted(folder.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if found:
        return found[0]
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--no-deps",
        f"recbole=={RECBOLE_VERSION}",
        "-d",
        str(folder),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(folder.glob(f"recbole-{RECBOLE_VERSION}-*.whl"))
    if done.returncode != 0 or not found:
        raise ShiftError(
            f"could not download recbole=={RECBOLE_VERSION} with pip: {done.stderr.strip()[-500:]}"
        )
    return found[0]


def ingest_movielens_100k(name: str = "movielens-100k", progress=None) -> ImportReport:
    """MovieLens-100K from RecBole's atomic files (``.inter`` and ``.item``)."""
    wheel = fetch_recbole_wheel()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with zipfile.ZipFile(wheel) as zf:
            for suffix in ("inter", "item"):
                (tmp / f"ml-100k.{suffix}").write_bytes(zf.read(f"{_RECBOLE_ML100K}.{suffix}"))
        raw = pd.read_csv(
            tmp / "ml-100k.item", sep="\t", dtype=str, keep_default_na=False, encoding="latin-1"
        )
        items = pd.DataFrame(
            {
                "item_id": raw["item_id:token"],
                "title": [
                    _with_year(t, y) for t, y in zip(raw["movie_title:token_seq"], raw["release_year:token"])
                ],
                "genres": raw["class:token_seq"].str.split().str.join("|"),
            }
        )
        items.to_parquet(tmp / "items.parquet", index=False)
        events = TableSource(
            tmp / "ml-100k.inter",
            delimiter="\t",
            display_name="ml-100k.inter",
            columns={
                "user_id": "user_id:token",
                "item_id": "item_id:token",
                "rating": "rating:float",
                "timestamp": "timestamp:float",
            },
        )
        return store.build_dataset(
            store.dataset_path(name),
            name,
            f"MovieLens-100K (recbole=={RECBOLE_VERSION} wheel)",
            events,
            TableSource(tmp / "items.parquet", display_name="ml-100k.item"),
            progress=progress,
        )


def _with_year(title: str, year: str) -> str:
    return f"{title} ({year})" if year and year.isdigit() else title


def ingest_movielens_folder(
    name: str, folder: Path, progress=None, options: ImportOptions | None = None
) -> ImportReport:
    """The standard MovieLens layouts: ml-100k, ml-1m, ml-latest(-small), ml-25m, ml-32m."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError("not a folder", file=str(folder))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if (folder / "ratings.csv").exists() and (folder / "movies.csv").exists():
            events, items = _latest_layout(folder, tmp)
            source = f"MovieLens folder {folder.name} (ratings.csv, movies.csv)"
        elif (folder / "ratings.dat").exists() and (folder / "movies.dat").exists():
            events, items = _ml1m_layout(folder, tmp)
            source = f"MovieLens folder {folder.name} (ratings.dat, movies.dat)"
        elif (folder / "u.data").exists() and (folder / "u.item").exists():
            events, items = _ml100k_layout(folder, tmp)
            source = f"MovieLens folder {folder.name} (u.data, u.item)"
        else:
            raise DataError(
                "no MovieLens layout found: expected ratings.csv + movies.csv (ml-latest, "
                "ml-25m, ml-32m), ratings.dat + movies.dat (ml-1m) or u.data + u.item (ml-100k)",
                file=str(folder),
            )
        return store.build_dataset(
            store.dataset_path(name), name, source, events, items, options=options, progress=progress
        )


def _latest_layout(folder: Path, tmp: Path) -> tuple[TableSource, TableSource]:
    events = TableSource(folder / "ratings.csv", columns={"user_id": "userId", "item_id": "movieId"})
    items = TableSource(folder / "movies.csv", columns={"item_id": "movieId"})
    tags_file = folder / "tags.csv"
    if tags_file.exists():
        movies = pd.read_csv(folder / "movies.csv", dtype=str, keep_default_na=False)
        tags = pd.read_csv(tags_file, dtype=str, keep_default_na=False)
        # The most used tags of a movie describe it; rare ones are mostly noise.
        top = (
            tags.assign(tag=tags["tag"].str.strip().str.lower())
            .groupby(["movieId", "tag"])
            .size()
            .rename("n")
            .reset_index()
            .sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
            .groupby("movieId")
            .head(8)
            .groupby("movieId")["tag"]
            .agg(lambda t: "tags: " + ", ".join(t))
        )
        movies["description"] = movies["movieId"].map(top).fillna("")
        movies.rename(columns={"movieId": "item_id"}).to_parquet(tmp / "movies.parquet", index=False)
        items = TableSource(tmp / "movies.parquet", display_name="movies.csv")
    return events, items


def _ml1m_layout(folder: Path, tmp: Path) -> tuple[TableSource, TableSource]:
    events = TableSource(
        folder / "ratings.dat",
        delimiter="::",
        header=False,
        names=["user_id", "item_id", "rating", "timestamp"],
        encoding="latin-1",
    )
    movies = pd.read_csv(
        folder / "movies.dat",
        sep="::",
        engine="python",
        header=None,
        names=["item_id", "title", "genres"],
        dtype=str,
        encoding="latin-1",
        keep_default_na=False,
    )
    movies.to_parquet(tmp / "movies.parquet", index=False)
    return events, TableSource(tmp / "movies.parquet", display_name="movies.dat")


_ML100K_GENRES = [
    "unknown",
    "Action",
    "Adventure",
    "Animation",
    "Children's",
    "Comedy",
    "Crime",
    "Documentary",
    "Drama",
    "Fantasy",
    "Film-Noir",
    "Horror",
    "Musical",
    "Mystery",
    "Romance",
    "Sci-Fi",
    "Thriller",
    "War",
    "Western",
]


def _ml100k_layout(folder: Path, tmp: Path) -> tuple[TableSource, TableSource]:
    events = TableSource(
        folder / "u.data", delimiter="\t", header=False, names=["user_id", "item_id", "rating", "timestamp"]
    )
    raw = pd.read_csv(
        folder / "u.item", sep="|", header=None, dtype=str, encoding="latin-1", keep_default_na=False
    )
    flags = raw.iloc[:, 5 : 5 + len(_ML100K_GENRES)]
    genres = [
        "|".join(g for g, f in zip(_ML100K_GENRES, row) if f == "1") for row in flags.itertuples(index=False)
    ]
    pd.DataFrame({"item_id": raw[0], "title": raw[1], "genres": genres}).to_parquet(
        tmp / "items.parquet", index=False
    )
    return events, TableSource(tmp / "items.parquet", display_name="u.item")
