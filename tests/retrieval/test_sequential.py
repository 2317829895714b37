"""Tests of the SASRec-style sequential candidate source (tiny synthetic data)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import SMALL_SEQUENTIAL

from llmrec.errors import ConfigError, InvalidInputError
from llmrec.retrieval import RetrievalContext
from llmrec.retrieval.models import SequentialSource

N_CYCLES, CYCLE, DIM = 5, 10, 16
N_ITEMS = N_CYCLES * CYCLE
SMALL = SMALL_SEQUENTIAL


def _walks(seed: int = 0, users: int = 120, length: int = 16, noise: float = 0.1):
    """Users walk one cycle (item i -> the next item of its cycle) with random slips."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(users):
        cycle = int(rng.integers(N_CYCLES))
        pos = int(rng.integers(CYCLE))
        seq = []
        for step in range(length):
            # Slips never touch the last two steps, so the last item is predictable.
            if step < length - 2 and rng.random() < noise:
                seq.append(int(rng.integers(N_ITEMS)))
            else:
                seq.append(cycle * CYCLE + pos)
            pos = (pos + 1) % CYCLE
        out.append(seq)
    return out


def _vectors(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(N_ITEMS, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _ctx(history_newest_first, n_rows: int, exclude=()) -> RetrievalContext:
    rows = np.asarray(history_newest_first, dtype=np.int64)
    return RetrievalContext(
        None,
        None,
        rows,
        np.ones(len(rows), np.float32),
        np.asarray(exclude, dtype=np.int64),
        n_rows=n_rows,
        profile_rows=rows,
    )


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # The models here are tiny: extra threads only add synchronization (and slow down
    # badly when the cores are shared with other processes).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data():
    walks = _walks()
    train = [w[:-1] for w in walks]
    return walks, train, _vectors()


@pytest.fixture(scope="module")
def fitted(data):
    _, train, vectors = data
    return SequentialSource(seed=0, **SMALL).fit(train, vectors)


def _recall_at(scores_fn, walks, k: int = 5) -> float:
    hits = 0
    for walk in walks:
        top = scores_fn(walk[:-1])[:k]
        hits += walk[-1] in top
    return hits / len(walks)


def test_learns_planted_sequences_better_than_popularity(data, fitted):
    walks, train, _ = data
    test_walks = _walks(seed=1, users=100)
    counts = np.bincount([r for seq in train for r in seq], minlength=N_ITEMS)
    popular = list(np.argsort(-counts, kind="stable"))

    def model_top(history):
        ctx = _ctx(history[::-1], N_ITEMS)
        return list(fitted.propose(ctx, 5))

    recall = _recall_at(model_top, test_walks)
    pop_recall = _recall_at(lambda h: popular, test_walks)
    assert recall >= 0.8
    assert recall > pop_recall + 0.5


def test_propose_and_score_share_one_forward_and_respect_exclusions(fitted):
    ctx = _ctx([3, 2, 1], N_ITEMS, exclude=[4])
    rows = fitted.propose(ctx, 10)
    assert 4 not in rows and len(rows) == 10
    assert "sequential" in ctx.memo
    scores = fitted.score(ctx, rows)
    assert scores.dtype == np.float32
    assert np.all(np.diff(scores) <= 1e-6)  # proposals come best first
    assert scores[0] == pytest.approx(0.0) and np.all(scores >= -2.0) and np.all(scores <= 0)
    # An excluded row gets the floor; rows out of range too.
    assert fitted.score(ctx, np.array([4, 10_000])).tolist() == [-2.0, -2.0]


def test_same_seed_identical_different_seed_differs(data, fitted):
    _, train, vectors = data
    again = SequentialSource(seed=0, **SMALL).fit(train, vectors)
    for key, value in fitted.net.state_dict().items():
        assert torch.equal(value, again.net.state_dict()[key]), key
    ctx_a, ctx_b = _ctx([5, 4, 3], N_ITEMS), _ctx([5, 4, 3], N_ITEMS)
    assert np.array_equal(
        fitted.score(ctx_a, np.arange(N_ITEMS)), again.score(ctx_b, np.arange(N_ITEMS))
    )
    other = SequentialSource(seed=1, **{**SMALL, "epochs": 2}).fit(train, vectors)
    first = SequentialSource(seed=0, **{**SMALL, "epochs": 2}).fit(train, vectors)
    assert not torch.equal(other.net.residual, first.net.residual)
    assert not torch.equal(other.net.proj.weight, first.net.proj.weight)


def test_early_stopping_keeps_best_epoch(data):
    walks, train, vectors = data
    # Targets already in the history cannot be recommended; the walks are long enough
    # to repeat items, so keep the pairs whose target is new.
    valid = [(w[:-1], w[-1]) for w in walks if w[-1] not in w[:-1]]
    assert len(valid) >= 10
    source = SequentialSource(seed=0, **{**SMALL, "epochs": 30, "patience": 3})
    source.fit(train, vectors, valid=valid)
    metrics = [h["ndcg@10"] for h in source.history]
    assert source.best_epoch == 1 + int(np.argmax(metrics))
    assert source._validate([(np.asarray(h), t) for h, t in valid]) == pytest.approx(max(metrics))


def test_without_validation_training_stops_at_unvalidated_epochs(data):
    walks, train, vectors = data
    options = {**SMALL, "hidden": 8, "epochs": 12, "unvalidated_epochs": 4, "members": 1}
    source = SequentialSource(seed=0, **options).fit(train, vectors)
    assert len(source.history) == 4 and source.best_epoch == 4
    # With validation pairs the cap is ``epochs`` (patience large enough not to stop).
    valid = [(w[:-1], w[-1]) for w in walks if w[-1] not in w[:-1]]
    source = SequentialSource(seed=0, **{**options, "patience": 50}).fit(
        train, vectors, valid=valid
    )
    assert len(source.history) == 12


def test_a_save_from_before_unvalidated_epochs_and_members_loads_as_it_was(tmp_path, data):
    _, train, vectors = data
    one = SequentialSource(seed=0, **{**SMALL, "hidden": 8, "epochs": 3, "members": 1})
    config = one.fit(train, vectors).save(tmp_path / "seq")
    del config["unvalidated_epochs"], config["members"], config["best_epochs"]
    loaded = SequentialSource.load(tmp_path / "seq", config, device="cpu")
    assert loaded.unvalidated_epochs == loaded.epochs == 3 and loaded.members == 1
    histories = [w[:-1] for w in train[:5]]
    np.testing.assert_array_equal(loaded.logits(histories), one.logits(histories))


def test_members_average_the_log_softmax_of_networks_seeded_in_turn(tmp_path, data):
    walks, train, vectors = data
    options = {**SMALL, "hidden": 8, "epochs": 4}
    pair = SequentialSource(seed=5, **{**options, "members": 2}).fit(train, vectors)
    first = SequentialSource(seed=5, **{**options, "members": 1}).fit(train, vectors)
    second = SequentialSource(seed=6, **{**options, "members": 1}).fit(train, vectors)
    assert len(pair.nets) == 2 and pair.best_epochs == (4, 4)
    assert [h["member"] for h in pair.history] == [0] * 4 + [1] * 4
    histories = [w[:-1] for w in walks[:8]]

    def log_softmax(source):
        return torch.log_softmax(torch.from_numpy(source.logits(histories)), dim=1).numpy()

    expected = (log_softmax(first) + log_softmax(second)) / 2
    np.testing.assert_allclose(pair.logits(histories), expected, atol=1e-4)
    # Both members survive a save.
    loaded = SequentialSource.load(tmp_path / "pair", pair.save(tmp_path / "pair"))
    np.testing.assert_allclose(loaded.logits(histories), pair.logits(histories), atol=1e-5)
    assert loaded.best_epochs == (4, 4)


def test_save_load_identical_scores(tmp_path, fitted):
    config = fitted.save(tmp_path / "seq")
    assert (tmp_path / "seq" / "weights.safetensors").is_file()
    import json

    json.dumps(config)
    loaded = SequentialSource.load(tmp_path / "seq", config, device="cpu")
    rows = np.arange(N_ITEMS)
    assert np.array_equal(
        fitted.score(_ctx([7, 6, 5], N_ITEMS), rows), loaded.score(_ctx([7, 6, 5], N_ITEMS), rows)
    )
    # An unfitted source round-trips too.
    empty = SequentialSource(device="cpu", show_progress=False)
    config = empty.save(tmp_path / "empty")
    assert not SequentialSource.load(tmp_path / "empty", config).fitted


def test_update_items_scores_new_rows_from_text(tmp_path, fitted):
    config = fitted.save(tmp_path / "seq")
    source = SequentialSource.load(tmp_path / "seq", config, device="cpu")
    # A copy of item 12's text at a new row scores close to item 12's text-only score.
    twin = N_ITEMS + 2
    source.update_items(np.array([twin]), source.text[12:13].numpy().copy())
    assert source.n_rows == twin + 1
    ctx = _ctx([11, 10], twin + 1)
    scores = source.score(ctx, np.array([twin, 12]))
    assert np.isfinite(scores).all()
    logits = source.user_scores(ctx)
    assert np.isinf(logits[N_ITEMS])  # a row never registered is not scored
    table = source._item_tables()[0]
    text_only = source.net.proj(source.text[12:13])
    assert torch.allclose(table[twin], text_only[0], atol=1e-6)
    # Across contexts the twin's scores follow item 12's more closely than any other
    # item's.
    profiles = np.array(
        [
            source.score(_ctx(history[::-1], twin + 1), np.arange(twin + 1))
            for history in _walks(seed=2, users=60)
        ]
    )
    columns = profiles[:, [*range(N_ITEMS), twin]]
    with np.errstate(invalid="ignore", divide="ignore"):  # an item may always score -2
        corr = np.nan_to_num(np.corrcoef(columns.T)[-1, :N_ITEMS], nan=-1.0)
    assert int(np.argmax(corr)) == 12
    assert corr[12] > 0.6
    # Without text init a new row cannot be scored.
    plain = SequentialSource(seed=0, text_init=False, **{**SMALL, "epochs": 1})
    plain.fit([[0, 1, 2]], _vectors())
    plain.update_items(np.array([N_ITEMS]), _vectors()[:1])
    assert plain.score(_ctx([1], N_ITEMS + 1), np.array([N_ITEMS])).tolist() == [-2.0]
    # Removed rows are no longer proposed.
    source.remove_rows(np.array([twin]))
    assert twin not in source.propose(_ctx([11, 10], twin + 1), 60)


def test_unfitted_source_is_harmless():
    source = SequentialSource(device="cpu", show_progress=False)
    ctx = _ctx([1, 2], 10)
    assert source.propose(ctx, 5).tolist() == []
    assert source.score(ctx, np.array([0, 1, 2])).tolist() == [0.0, 0.0, 0.0]
    source.update_items(np.array([3]), np.ones((1, 4), np.float32))  # no-op before fit
    # A fitted source with an empty history proposes nothing and scores the floor.
    source = SequentialSource(seed=0, **{**SMALL, "epochs": 1}).fit([[0, 1, 2]], _vectors())
    assert source.propose(_ctx([], N_ITEMS), 5).tolist() == []


def test_bad_inputs_raise():
    vectors = _vectors()
    source = SequentialSource(**{**SMALL, "epochs": 1})
    with pytest.raises(InvalidInputError, match="50"):
        source.fit([[0, 1], [2, N_ITEMS]], vectors)
    with pytest.raises(InvalidInputError, match="-1"):
        source.fit([[0, -1]], vectors)
    bad = vectors.copy()
    bad[7, 3] = np.nan
    with pytest.raises(InvalidInputError, match="row 7"):
        source.fit([[0, 1]], bad)
    with pytest.raises(InvalidInputError, match=r"\(50,\)"):
        source.fit([[0, 1]], vectors[:, 0])
    with pytest.raises(InvalidInputError, match="valid"):
        source.fit([[0, 1]], vectors, valid=[([0], N_ITEMS + 3)])
    with pytest.raises(InvalidInputError, match="live"):
        source.fit([[0, 1]], vectors, live=np.ones(3, dtype=bool))
    for key, value in (
        ("max_len", 0),
        ("max_len", -3),
        ("hidden", 0),
        ("epochs", 1.5),
        ("dropout", 1.0),
        ("lr", 0),
    ):
        with pytest.raises(ConfigError, match=key):
            SequentialSource(**{key: value})
    with pytest.raises(ConfigError, match="divisible"):
        SequentialSource(hidden=30, heads=4)
    assert issubclass(InvalidInputError, ConfigError)


def test_registered_and_is_a_candidate_source():
    from llmrec.registry import get_backend
    from llmrec.retrieval import CandidateSource

    assert get_backend("models", "sequential") is SequentialSource
    assert isinstance(SequentialSource(device="cpu"), CandidateSource)


def test_rows_outside_live_are_never_scored(data):
    _, train, vectors = data
    live = np.ones(N_ITEMS, dtype=bool)
    live[[3, 4]] = False
    source = SequentialSource(seed=0, **{**SMALL, "epochs": 3}).fit(train, vectors, live=live)
    ctx = _ctx([2, 1], N_ITEMS)
    assert not {3, 4} & set(source.propose(ctx, N_ITEMS).tolist())
    assert source.score(ctx, np.array([3, 4])).tolist() == [-2.0, -2.0]
