"""Item co-consumption factors (core.co_consumption) and their stored file (core.artefacts.items)."""

import numpy as np
import pytest

from core.co_consumption import CO_FACTORS, item_factors, with_co


def _two_groups(seed=0):
    """Every user consumes popular items 0-9 half the time, and otherwise items 10-24 or items
    25-39 (two groups of users, never both); items 40-44 nobody consumes."""
    rng = np.random.default_rng(seed)
    hist = [
        np.where(rng.random(30) < 0.5, rng.integers(0, 10, 30), rng.integers(10, 25, 30) + 15 * (u % 2))
        for u in range(200)
    ]
    offsets = np.concatenate([[0], np.cumsum([len(h) for h in hist])]).astype(np.int64)
    return np.concatenate(hist).astype(np.int64), offsets


def test_items_consumed_together_get_close_factors_and_unseen_items_none():
    item_idx, offsets = _two_groups()
    f = item_factors(item_idx, offsets, n_items=45, k=4)
    assert f.shape == (45, 4) and f.dtype == np.float32
    assert np.allclose(f[40:], 0.0)  # no user: no factor
    assert np.allclose(np.linalg.norm(f[:40], axis=1), 1.0, atol=1e-5)
    # the first factor past popularity splits the two groups' items
    first = item_factors(item_idx, offsets, n_items=45, k=1)[:, 0]
    a, b = np.sign(first[10:25]), np.sign(first[25:40])
    assert len(set(a)) == 1 and len(set(b)) == 1 and a[0] == -b[0], first
    cos = f[10:40] @ f[10:40].T
    same = np.add.outer(np.arange(30) // 15, np.arange(30) // 15) != 1
    assert cos[same].mean() > 0.5 > 0.0 > cos[~same].mean(), (cos[same].mean(), cos[~same].mean())
    again = item_factors(item_idx, offsets, n_items=45, k=4)
    assert np.array_equal(f, again)  # seeded: the same log gives the same factors


def test_with_co_appends_the_block_as_the_last_columns():
    item_idx, offsets = _two_groups()
    vectors = np.random.default_rng(1).normal(size=(45, 6)).astype(np.float32)
    out = with_co(vectors, item_idx, offsets, k=4)
    assert out.shape == (45, 10)
    assert np.array_equal(out[:, :6], vectors)
    assert np.array_equal(out[:, 6:], item_factors(item_idx, offsets, 45, 4))


def test_the_factors_are_stored_per_dataset_version_and_rebuilt_when_the_log_changes(data_dir, monkeypatch):
    import core.co_consumption
    from core import artefacts, store
    from core.artefacts.items import CO_FILE
    from core.cli import main
    from tests.conftest import write_stub_embeddings

    assert main(["ingest", "co", "--synthetic", "60", "--seed", "1"]) == 0
    write_stub_embeddings("co")
    calls = []
    real = core.co_consumption.item_factors

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(core.co_consumption, "item_factors", counted)
    emb = artefacts.item_features("co", "embedding")
    both = artefacts.item_features("co", "embedding+co")
    assert both.shape == (len(emb), emb.shape[1] + CO_FACTORS)
    assert np.array_equal(both[:, : emb.shape[1]], emb)
    ev = artefacts.events("co")
    assert np.array_equal(both[:, emb.shape[1] :], real(ev.item_idx, ev.offsets, len(emb)))
    assert (store.cache_dir("co") / CO_FILE).exists() and len(calls) == 1
    assert (
        np.array_equal(artefacts.item_features("co", "embedding+co"), both) and len(calls) == 1
    )  # read back
    # another log under the same name: the stored factors are stale and computed anew
    assert main(["ingest", "co", "--synthetic", "60", "--seed", "2"]) == 0
    write_stub_embeddings("co")
    artefacts.item_features("co", "embedding+co")
    assert len(calls) == 2


@pytest.mark.parametrize("kind", ["embedding+co"])
def test_the_default_detector_asks_for_the_co_consumption_block(kind):
    from core.detectors import DEFAULT, make_detector

    det = make_detector(DEFAULT)
    assert det.features == kind and det.n_co == CO_FACTORS and not det.use_co  # the log decides


def test_an_item_matrix_without_the_block_is_refused_not_misread():
    """The default reads its last 16 columns as co-consumption factors: a matrix of text vectors
    alone would have its last text columns read as factors, so it is refused, saying how to
    build the right one."""
    from core.detectors import DEFAULT, make_detector
    from core.errors import ShiftError

    item_idx, offsets = _two_groups()
    text = np.random.default_rng(2).normal(size=(45, 48)).astype(np.float32)
    with pytest.raises(ShiftError, match="with_co"):
        make_detector(DEFAULT).fit(text[item_idx], offsets)
    det = make_detector(DEFAULT).fit(with_co(text, item_idx, offsets)[item_idx], offsets)
    assert det.n_co == CO_FACTORS
