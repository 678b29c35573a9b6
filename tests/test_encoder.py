"""The real all-MiniLM-L6-v2 encoder: agreement with sentence-transformers, semantics, options."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.encoder import Encoder, default_model_path
from core.errors import ShiftError

pytestmark = pytest.mark.slow

TEXTS = [
    "Star Wars (1977). Action, Adventure, Romance, Sci-Fi, War",
    "Toy Story (1995). Animation, Children's, Comedy",
    "Sleepless in Seattle (1993). Comedy, Romance",
    "x",
    "",
    "Der Himmel über Berlin (1987) — Wings of Desire. Drama, Romance, Fantasy; 日本語のタイトル",
    "a very long description " * 80,  # past max_seq_length (256 tokens): truncated as ST does
    "Heat (1995). Action, Crime, Thriller",
]


@pytest.fixture(scope="module")
def fp32():
    return Encoder(precision="fp32", batch_size=3).load()


def test_fp32_matches_sentence_transformers(fp32):
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(default_model_path()), device="cpu").encode(TEXTS)
    ours = fp32.encode(TEXTS)
    assert ours.shape == (len(TEXTS), 384) and ours.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    cos = (ours * reference).sum(1) / np.linalg.norm(reference, axis=1)
    assert cos.min() >= 0.9999, cos


def test_batching_and_order_do_not_change_vectors(fp32):
    one_batch = Encoder(precision="fp32", batch_size=64).encode(TEXTS)
    np.testing.assert_allclose(fp32.encode(TEXTS), one_batch, atol=1e-5)
    reversed_ = fp32.encode(TEXTS[::-1])[::-1]
    np.testing.assert_allclose(reversed_, one_batch, atol=1e-5)


def test_sci_fi_is_nearer_sci_fi_than_romance(fp32):
    film = fp32.encode(
        [
            "Blade Runner (1982). Film-Noir, Sci-Fi",
            "2001: A Space Odyssey (1968). Drama, Mystery, Sci-Fi, Thriller",
            "Sleepless in Seattle (1993). Comedy, Romance",
        ]
    )
    assert film[0] @ film[1] > film[0] @ film[2]
    plot = fp32.encode(
        [
            "A starship crew explores a distant galaxy and meets alien life",
            "Astronauts on a space station fight a rogue robot",
            "Two strangers fall in love during a summer in Paris",
        ]
    )
    assert plot[0] @ plot[1] > plot[0] @ plot[2]


def test_progress_and_empty_input(fp32):
    seen = []
    fp32.encode(TEXTS[:5], progress=lambda done, total: seen.append((done, total)))
    assert seen == [(0, 5), (3, 5), (5, 5)]
    assert fp32.encode([]).shape == (0, 384)


def test_auto_precision_on_this_cpu_and_identity(fp32):
    enc = Encoder(device="cpu").load()
    assert enc.precision_ in ("fp32", "bf16")
    assert enc.model_id == fp32.model_id and enc.model_id.startswith(
        "sentence-transformers/all-MiniLM-L6-v2@"
    )
    assert enc.dim == 384
    cos = (enc.encode(TEXTS[:3]) * fp32.encode(TEXTS[:3])).sum(1)
    assert cos.min() >= 0.999


def test_another_local_model_folder_gets_its_own_id(tmp_path, fp32):
    # A copy of the model with a different config is a different model to the cache.
    src = default_model_path()
    copy = tmp_path / "my-encoder"
    copy.mkdir()
    for path in src.iterdir():
        (copy / path.name).symlink_to(path)
    (copy / "config.json").unlink()
    config = json.loads((src / "config.json").read_text())
    config["note"] = "fine-tuned elsewhere"
    (copy / "config.json").write_text(json.dumps(config))
    other = Encoder(model_path=copy, precision="fp32")
    assert other.model_id.startswith("my-encoder@") and other.model_id != fp32.model_id
    np.testing.assert_allclose(other.encode(TEXTS[:2]), fp32.encode(TEXTS[:2]), atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_path": "/no/such/folder"}, "does not exist"),
        ({"precision": "int4"}, "precision 'int4'"),
        ({"precision": "fp16", "device": "cpu"}, "fp16 needs a CUDA GPU"),
        ({"batch_size": 0}, "batch size"),
        ({"device": "gpu0"}, "not a torch device"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, message):
    with pytest.raises(ShiftError, match=message):
        Encoder(**kwargs).load()


def test_folder_without_a_model_is_a_clear_error(tmp_path):
    with pytest.raises(ShiftError, match="no config.json"):
        Encoder(model_path=tmp_path).load()


def test_non_text_input_is_a_clear_error(fp32):
    with pytest.raises(ShiftError, match="text 1 is NoneType"):
        fp32.encode(["ok", None])


def test_weights_digest_is_memoised_on_disk(data_dir, monkeypatch):
    # New dashboard processes read the digest instead of hashing 90 MB of weights again.
    from core import encoder

    # digests an earlier test's encode verified in this process are served without the memo
    monkeypatch.setattr(encoder, "_VERIFIED", {})
    encoder._folder_digest.cache_clear()
    first = encoder.model_id_for()
    memo = json.loads((data_dir / ".model-digests.json").read_text())
    assert list(memo["digests"].values()) == [first.rsplit("@", 1)[1]]
    # Read back, not hashed again (reads trust a memo whose checksum matches).
    encoder._folder_digest.cache_clear()
    monkeypatch.setattr(encoder, "_VERIFIED", {})
    monkeypatch.setattr(encoder, "_hash_and_remember", lambda *a: "cafecafecafe")
    assert encoder.model_id_for() == first
    encoder._folder_digest.cache_clear()


def test_a_wrong_digest_in_the_memo_is_not_trusted(data_dir, monkeypatch):
    # Issue 22: a wrong digest in data/.model-digests.json was taken as the model's id, so
    # vectors would be filed (and served) under another model's id.
    from core import encoder

    monkeypatch.setattr(encoder, "_VERIFIED", {})  # as above: no earlier test's verified digest
    encoder._folder_digest.cache_clear()
    first = encoder.model_id_for()
    path = data_dir / ".model-digests.json"
    memo = json.loads(path.read_text())
    edited = {**memo, "digests": dict.fromkeys(memo["digests"], "cafecafecafe")}
    path.write_text(json.dumps(edited))  # edited by hand: the checksum no longer matches
    encoder._folder_digest.cache_clear()
    assert encoder.model_id_for() == first  # rebuilt: hashed again
    assert json.loads(path.read_text()) == memo
    # Checksum recomputed too: reads trust it, but encode (verify_id) hashes the weights itself.
    entries = dict.fromkeys(memo["digests"], "cafecafecafe")
    path.write_text(json.dumps({"digests": entries, "checksum": encoder._memo_checksum(entries)}))
    encoder._folder_digest.cache_clear()
    monkeypatch.setattr(encoder, "_VERIFIED", {})
    assert encoder.Encoder(verify_id=True).model_id == first
    assert json.loads(path.read_text()) == memo  # and corrected the memo
    assert encoder.model_id_for() == first
    encoder._folder_digest.cache_clear()
