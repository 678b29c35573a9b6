"""The fine-tune: its pairs, its users, its determinism, its stored model and the CLI around it.

A tiny BERT (2 layers, 32 dimensions, random weights, all-MiniLM-L6-v2's tokenizer) stands in
for the base model so every test runs in seconds; the product path uses the real model
(bench/finetune.py measures it).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from core.benchmark.splices import split_users
from core.encoder import Encoder, default_model_path
from core.errors import ShiftError
from core.finetune import (
    ContrastiveFinetune,
    FinetuneParams,
    co_consumption_pairs,
    next_item_recall,
    training_users,
)
from core.store import EventArrays

TINY = FinetuneParams(pairs=48, batch_size=8, learning_rate=1e-3, max_length=16, train_layers=1)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: on a shared box two spinning OpenMP threads made a 60-step tiny
    fine-tune take 73 s instead of 2 s. Restored after the module."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, one_torch_thread):
    """A 2-layer random BERT saved as a sentence-transformers folder (mean pooling, normalised)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        BertModel(config).save_pretrained(folder, safe_serialization=True)
    base = default_model_path()
    AutoTokenizer.from_pretrained(str(base), local_files_only=True).save_pretrained(folder)
    for name in ("modules.json", "sentence_bert_config.json"):
        shutil.copy2(base / name, folder / name)
    shutil.copytree(base / "1_Pooling", folder / "1_Pooling")
    return folder


def _events(histories: dict[str, list[int]]) -> EventArrays:
    users = np.array(list(histories))
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in histories.values()])]).astype(np.int64)
    idx = np.concatenate([np.asarray(h, np.int32) for h in histories.values()])
    return EventArrays(
        users, offsets, idx, np.zeros(len(idx), "datetime64[us]"), np.ones(len(idx), np.float32)
    )


TEXTS = [f"{kind} film number {i}" for kind in ("horror", "comedy", "western") for i in range(8)]


def _pairs(n: int = 48) -> np.ndarray:
    # three tastes: users consume within one kind (items 0-7, 8-15, 16-23)
    rng = np.random.default_rng(0)
    hist = {f"u{u}": list(rng.integers(0, 8, 10) + 8 * (u % 3)) for u in range(12)}
    return co_consumption_pairs(_events(hist), np.array(list(hist)), 2, n, random_state=0)


def test_pairs_lie_within_the_window_of_one_training_user_and_skip_repeats():
    ev = _events({"a": [0, 1, 1, 2, 3], "b": [5, 6, 7], "c": [8, 9]})
    pairs = co_consumption_pairs(ev, np.array(["a", "c"]), window=2, n_pairs=100)
    assert sorted(map(tuple, pairs.tolist())) == sorted(
        [(0, 1), (1, 2), (2, 3), (0, 1), (1, 2), (1, 3), (8, 9)]
    )
    assert not ({5, 6, 7} & set(pairs.reshape(-1).tolist()))  # user b is not a training user


def test_pairs_are_sampled_without_replacement_and_seeded():
    ev = _events({"a": list(range(40))})
    first = co_consumption_pairs(ev, np.array(["a"]), window=3, n_pairs=10, random_state=1)
    again = co_consumption_pairs(ev, np.array(["a"]), window=3, n_pairs=10, random_state=1)
    assert len(first) == 10 and len({tuple(p) for p in first.tolist()}) == 10
    assert np.array_equal(first, again)


def test_training_users_are_the_benchmark_calibration_half_never_its_test_users():
    ids = np.array([f"user{i}" for i in range(101)])
    train = training_users(ids)
    calibration, test = split_users(ids, 0.5, 0)
    assert np.array_equal(train, calibration)
    assert not set(train) & set(test)


def test_next_item_recall_counts_the_next_item_among_the_nearest():
    vectors = (
        np.eye(4, dtype=np.float32) + np.array([[0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]]) * 0.5
    )
    ev = _events({"a": [0, 1, 2, 3]})  # 0->1 close, 1->2 far, 2->3 close
    assert next_item_recall(vectors, ev, np.array(["a"]), k=1) == pytest.approx(2 / 3)


def test_params_are_checked_with_a_message():
    with pytest.raises(ShiftError, match="batch size must be at least 2"):
        FinetuneParams(batch_size=1).check()
    with pytest.raises(ShiftError, match="learning rate must be positive"):
        FinetuneParams(learning_rate=0.0).check()


def _train(base, params: FinetuneParams, tmp_path, tag: str) -> np.ndarray:
    ft = ContrastiveFinetune(base, params, "cpu").fit(TEXTS, _pairs(params.pairs))
    folder = ft.save(tmp_path / tag)
    return Encoder(folder, device="cpu", precision="fp32").encode(TEXTS)


def test_same_seed_gives_the_same_vectors_and_another_seed_does_not(tiny_base, tmp_path):
    a = _train(tiny_base, TINY, tmp_path, "a")
    b = _train(tiny_base, TINY, tmp_path, "b")
    c = _train(tiny_base, FinetuneParams(**{**TINY.to_dict(), "seed": 1}), tmp_path, "c")
    assert (a * b).sum(axis=1).min() >= 0.9999
    assert not np.allclose(a, c, atol=1e-6)


def test_training_pulls_co_consumed_items_together(tiny_base, tmp_path):
    before = Encoder(tiny_base, device="cpu", precision="fp32").encode(TEXTS)
    params = FinetuneParams(**{**TINY.to_dict(), "epochs": 10, "train_layers": 2})
    ft = ContrastiveFinetune(tiny_base, params, "cpu").fit(TEXTS, _pairs())
    after = Encoder(ft.save(tmp_path / "m"), device="cpu", precision="fp32").encode(TEXTS)
    kind = np.repeat(np.arange(3), 8)
    same = kind[:, None] == kind[None, :]

    def margin(v: np.ndarray) -> float:  # mean cosine within a taste minus across tastes
        s = v @ v.T
        return float(s[same].mean() - s[~same].mean())

    assert margin(after) > margin(before) + 0.05
    assert ft.report_.last_loss < ft.report_.first_loss
    assert ft.report_.steps == 10 * 6  # 48 pairs in batches of 8, ten epochs


def test_the_saved_folder_has_no_pickles_and_loads_like_its_base(tiny_base, tmp_path):
    ft = ContrastiveFinetune(tiny_base, TINY, "cpu").fit(TEXTS, _pairs())
    folder = ft.save(tmp_path / "m")
    assert (folder / "model.safetensors").exists() and not list(folder.rglob("*.bin"))
    assert json.loads((folder / "modules.json").read_text()) == json.loads(
        (tiny_base / "modules.json").read_text()
    )


def test_fewer_than_two_pairs_is_an_error(tiny_base):
    with pytest.raises(ShiftError, match="only 1 co-consumption pairs"):
        ContrastiveFinetune(tiny_base, TINY, "cpu").fit(TEXTS, np.array([[0, 1]]))


# --- the stored model and the CLI ------------------------------------------------------------


@pytest.fixture
def tiny_world(data_dir, tiny_base, monkeypatch):
    """The tiny synthetic world, fine-tuned from the tiny base (patched in as the default)."""
    from core.ingest import ingest_synthetic

    monkeypatch.setattr("core.artefacts.finetuned.default_model_path", lambda: tiny_base)
    ingest_synthetic("tiny", "tiny", random_state=0)
    return "tiny"


def test_the_model_is_stored_served_and_retrained_when_its_settings_change(tiny_world):
    from core import artefacts

    assert artefacts.finetuned_model_path(tiny_world) is None
    with pytest.raises(ShiftError, match="run: python -m core finetune tiny"):
        artefacts.encoder_for(tiny_world, "finetuned")
    first = artefacts.finetuned_model(tiny_world, TINY, "cpu")
    assert first.trained_now and first.report["n_training_users"] > 0
    manifest = json.loads((first.path / "manifest.json").read_text())["manifest"]
    assert manifest["params"]["pairs"] == TINY.pairs and "base_model" in manifest["params"]
    again = artefacts.finetuned_model(tiny_world, TINY, "cpu")
    assert not again.trained_now
    assert artefacts.finetuned_model_path(tiny_world) == first.path
    other = artefacts.finetuned_model(tiny_world, FinetuneParams(**{**TINY.to_dict(), "seed": 3}), "cpu")
    assert other.trained_now
    assert artefacts.encoder_for(tiny_world, "finetuned").model_path == first.path
    assert artefacts.finetuned_model_id(tiny_world) != Encoder(None).model_id


def test_cli_finetune_then_detect_and_encode_with_the_finetuned_model(tiny_world, tmp_path, capsys):
    from core.cli import main

    args = [
        "finetune",
        tiny_world,
        "--pairs",
        "48",
        "--batch-size",
        "8",
        "--max-length",
        "16",
        "--train-layers",
        "1",
        "--device",
        "cpu",
        "--no-check",  # the check encodes the items with the real model too: slow for a unit test
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fine-tuned on 48 pairs" in out and "held-out" not in out
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert main(["encode", tiny_world, "--model", "finetuned"]) == 0
    out = capsys.readouterr().out
    assert "model all-MiniLM-L6-v2-finetuned@" in out and " 0 from the cache" in out
    assert main(["encode", tiny_world, "--model", "finetuned"]) == 0
    assert " 0 encoded" in capsys.readouterr().out  # cached per model id
    cp = tmp_path / "cp.csv"
    assert main(["detect", tiny_world, "--model", "finetuned", "--out", str(cp)]) == 0
    assert cp.read_text().startswith("user_id,timestamp,score")


def test_cli_model_finetuned_without_a_model_says_what_to_run(tiny_world, capsys):
    from core.cli import main

    assert main(["detect", tiny_world, "--model", "finetuned"]) == 2
    assert "run: python -m core finetune tiny" in capsys.readouterr().err
