"""Tests of llmrec.evaluation: the leave-one-out split, the metrics and the driver."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrec.datasets import Dataset, fetch_movielens_100k, load_movielens, tie_key
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.evaluation import (
    ML100K_SPLIT_FINGERPRINT,
    EvaluationResult,
    LeaveOneOutSplit,
    clean_ranking,
    evaluate,
    evaluate_predictions,
    leave_one_out,
    rank_metrics,
    read_predictions,
    write_predictions,
)
from llmrec.types import Event

REFERENCE = Path("/work/shared/eval/protocol.py")  # a developer check only; skipped if absent


def ev(user: str, item: str, ts: float) -> Event:
    return Event(user_id=user, item_id=item, kind="rate", value=4.0, timestamp=ts)


def tiny_events() -> list[Event]:
    """Users with 1, 2, 3 and 5 events; user "5" has a timestamp tie on its last two."""
    return [
        ev("1", "a", 10),
        ev("2", "b", 30), ev("2", "a", 20),
        ev("3", "c", 5), ev("3", "a", 6), ev("3", "b", 7),
        ev("5", "a", 1), ev("5", "b", 2), ev("5", "c", 3), ev("5", "d", 9.7), ev("5", "e", 9.2),
    ]  # fmt: skip


@pytest.fixture
def split() -> LeaveOneOutSplit:
    return leave_one_out(tiny_events())


# --------------------------------------------------------------------------- split
def test_split_by_event_count(split: LeaveOneOutSplit) -> None:
    assert split.users == ["1", "2", "3", "5"]
    assert split.items == ["a", "b", "c", "d", "e"]
    assert split.train["1"] == ["a"] and "1" not in split.valid and "1" not in split.test
    assert split.train["2"] == ["a"] and split.test["2"] == "b" and "2" not in split.valid
    assert (split.train["3"], split.valid["3"], split.test["3"]) == (["c"], "a", "b")
    # d (9.7) and e (9.2) share int timestamp 9: the hash decides which is last
    last_two = sorted(["d", "e"], key=lambda i: tie_key("5", i))
    assert split.train["5"] == ["a", "b", "c"]
    assert [split.valid["5"], split.test["5"]] == last_two
    assert split.subset_users("no-ties") == {"3"}


def test_history_excluded_and_events(split: LeaveOneOutSplit) -> None:
    assert split.history("3", "valid") == ["c"]
    assert split.history("3", "test") == ["c", "a"]
    assert split.excluded("3", "valid") == {"c"}
    assert split.excluded("3", "test") == {"c", "a"}
    assert split.excluded("2", "test") == {"a"}
    assert split.history("nobody", "test") == []
    train = split.train_events()
    assert {(e.user_id, e.item_id) for e in train} == {
        ("1", "a"),
        ("2", "a"),
        ("3", "c"),
        ("5", "a"),
        ("5", "b"),
        ("5", "c"),
    }
    assert [e.timestamp for e in train] == sorted(e.timestamp for e in train)
    assert all(isinstance(e, Event) for e in train)
    assert split.events_for("valid") == train
    test_input = split.events_for("test")
    assert len(test_input) == len(train) + 2  # the valid events of users 3 and 5
    with pytest.raises(InvalidInputError, match="split_name"):
        split.history("3", "train")


def test_duplicates_keep_first_and_queries_are_ignored() -> None:
    events = [
        ev("u", "x", 1),
        ev("u", "y", 2),
        ev("u", "x", 3),
        ev("u", "z", 4),
        Event(user_id="u", kind="query", text="space operas", timestamp=5),
    ]
    split = leave_one_out(events)
    assert (split.train["u"], split.valid["u"], split.test["u"]) == (["x"], "y", "z")
    assert split.items == ["x", "y", "z"]


def test_user_and_item_order_numeric_or_string() -> None:
    split = leave_one_out([ev("10", "100", 1), ev("9", "20", 1), ev("9", "3", 2)])
    assert split.users == ["9", "10"] and split.items == ["3", "20", "100"]
    split = leave_one_out([ev("b", "x", 1), ev("a10", "x", 1), ev("a9", "x", 1)])
    assert split.users == ["a10", "a9", "b"]


def test_fingerprint_by_hand(split: LeaveOneOutSplit) -> None:
    v5, t5 = split.valid["5"], split.test["5"]
    text = f"1|a||\n2|a||b\n3|c|a|b\n5|a,b,c|{v5}|{t5}\n"
    assert split.fingerprint() == hashlib.sha256(text.encode()).hexdigest()


def test_leave_one_out_accepts_a_dataset_and_rejects_nothing() -> None:
    ds = Dataset(name="t", items=[], events=tiny_events())
    assert leave_one_out(ds).fingerprint() == leave_one_out(tiny_events()).fingerprint()
    with pytest.raises(InvalidInputError):
        leave_one_out([])


# --------------------------------------------------------------------------- metrics
@pytest.mark.parametrize(
    ("rank", "expected"),
    [
        (1, {"recall@10": 1, "recall@20": 1, "ndcg@10": 1, "ndcg@20": 1, "mrr@10": 1, "mrr@20": 1}),
        (
            3,
            {
                "recall@10": 1,
                "recall@20": 1,
                "ndcg@10": 0.5,
                "ndcg@20": 0.5,
                "mrr@10": 1 / 3,
                "mrr@20": 1 / 3,
            },
        ),
        (
            11,
            {
                "recall@10": 0,
                "recall@20": 1,
                "ndcg@10": 0,
                "ndcg@20": 1 / math.log2(12),
                "mrr@10": 0,
                "mrr@20": 1 / 11,
            },
        ),
        (
            None,
            {"recall@10": 0, "recall@20": 0, "ndcg@10": 0, "ndcg@20": 0, "mrr@10": 0, "mrr@20": 0},
        ),
    ],
)
def test_rank_metrics_by_hand(rank: int | None, expected: dict[str, float]) -> None:
    ranked = [f"x{i}" for i in range(30)]
    if rank is not None:
        ranked[rank - 1] = "t"
    got = rank_metrics(ranked, "t", ks=(10, 20))
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12)


def test_rank_metrics_rejects_bad_ks() -> None:
    with pytest.raises(InvalidInputError, match="ks"):
        rank_metrics(["a"], "a", ks=(0,))
    for ks in ((True,), (), 10, "10", (10.0,)):
        with pytest.raises(InvalidInputError, match="ks"):
            rank_metrics(["a"], "a", ks=ks)  # type: ignore[arg-type]


def test_clean_ranking_counts_removals() -> None:
    counts: dict[str, int] = {}
    clean = clean_ranking(
        ["q", "a", "b", "b", "zz", "c", "d"],
        {"a"},
        {"a", "b", "c", "d", "q"},
        limit=3,
        counts=counts,
    )
    assert clean == ["q", "b", "c"]
    assert counts == {"removed_excluded": 1, "removed_duplicate": 1, "removed_unknown": 1}


def test_cleaning_happens_before_ranking(split: LeaveOneOutSplit) -> None:
    # user 3, test: target b, excluded {c, a}; user 2, test: target b, excluded {a}
    result = evaluate_predictions(
        split,
        {
            "3": ["c", "a", "c", "b", "d"],  # two excluded and a repeat of an excluded one
            "2": ["zzz", "e", "e", "b"],  # unknown id, duplicate -> b at rank 2
            "5": ["a", "b", "c", split.test["5"]],  # train items removed -> rank 1
        },
        "test",
        ks=(1, 2),
    )
    assert result.ranks == {"2": 2, "3": 1, "5": 1}
    assert result.n_users == 3
    assert result.metrics["recall@1"] == pytest.approx(2 / 3)
    assert result.metrics["recall@2"] == pytest.approx(1.0)
    assert result.metrics["ndcg@2"] == pytest.approx((1 + 1 + 1 / math.log2(3)) / 3)
    assert result.metrics["mrr@2"] == pytest.approx((1 + 1 + 0.5) / 3)
    assert result.stats["removed_excluded"] == 6
    assert result.stats["removed_unknown"] == 1
    assert result.stats["removed_duplicate"] == 1


def test_missing_users_score_zero(split: LeaveOneOutSplit) -> None:
    result = evaluate_predictions(split, {"3": ["b"]}, "test", ks=(10,))
    assert result.n_users == 3
    assert result.metrics["recall@10"] == pytest.approx(1 / 3)
    assert result.stats["missing_users"] == 2 and result.stats["short_lists"] == 1
    assert result.ranks["2"] is None
    with pytest.raises(InvalidInputError, match="violate"):
        evaluate_predictions(split, {"3": ["b"]}, "test", ks=(10,), strict=True)


def test_subsets_and_valid_split(split: LeaveOneOutSplit) -> None:
    preds = {"3": ["a"], "5": [split.valid["5"]]}
    valid = evaluate_predictions(split, preds, "valid", ks=(1,))
    assert valid.n_users == 2 and valid.metrics["recall@1"] == 1.0
    no_ties = evaluate_predictions(split, preds, "valid", ks=(1,), subset="no-ties")
    assert no_ties.n_users == 1 and no_ties.subset == "no-ties"
    with pytest.raises(InvalidInputError, match="subset"):
        evaluate_predictions(split, preds, "valid", subset="some")
    with pytest.raises(InvalidInputError, match="split_name"):
        evaluate_predictions(split, preds, "train")


def test_coverage_and_diversity(split: LeaveOneOutSplit) -> None:
    t5 = split.test["5"]  # user 5 may only be recommended d or e, minus its valid item
    preds = {"2": ["b", "c"], "3": ["d", "b"], "5": ["a", t5]}
    vectors = {
        "b": np.array([1.0, 0.0]),
        "c": np.array([0.0, 2.0]),
        "d": np.array([3.0, 0.0]),
        "e": np.array([3.0, 0.0]),
    }
    result = evaluate_predictions(split, preds, "test", ks=(1, 2), item_vectors=vectors)
    assert result.metrics["coverage@1"] == pytest.approx(len({"b", "d", t5}) / 5)
    assert result.metrics["coverage@2"] == pytest.approx(len({"b", "c", "d", t5}) / 5)
    # (b, c) orthogonal -> 1; (d, b) parallel -> 0; user 5 keeps one item -> not counted
    assert result.metrics["intra_list_diversity"] == pytest.approx(0.5)
    assert result.stats["diversity_users"] == 2
    assert "intra_list_diversity" not in evaluate_predictions(split, preds, ks=(1,)).metrics


def test_result_to_dict_and_table(split: LeaveOneOutSplit) -> None:
    result = evaluate_predictions(split, {"3": ["b"]}, "test")
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["metrics"]["recall@10"] == result["recall@10"]
    table = result.format_table()
    assert "recall" in table and "@20" in table and "coverage" in table
    assert f"{result['ndcg@10']:.4f}" in table


def test_predictions_file_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "preds.jsonl"
    write_predictions(path, {"196": ["50", 181], 7: ["1"]})
    assert path.read_text().splitlines()[0] == '{"user_id": "196", "items": ["50", "181"]}'
    assert read_predictions(path) == {"196": ["50", "181"], "7": ["1"]}
    path.write_text('{"user_id": "1", "items": ["2"]}\n\n{"user_id": "1", "items": []}\n')
    with pytest.raises(InvalidInputError, match=r"preds\.jsonl:3.*twice"):
        read_predictions(path)
    path.write_text('{"user": "1"}\n')
    with pytest.raises(InvalidInputError, match=r"preds\.jsonl:1"):
        read_predictions(path)


@settings(max_examples=60, deadline=None)
@given(
    ranked=st.lists(st.sampled_from([f"i{n}" for n in range(40)]), max_size=60),
    target=st.sampled_from([f"i{n}" for n in range(40)]),
)
def test_metric_properties(ranked: list[str], target: str) -> None:
    metrics = rank_metrics(ranked, target, ks=(10, 20))
    assert all(0.0 <= v <= 1.0 for v in metrics.values())
    assert metrics["recall@10"] <= metrics["recall@20"]
    assert metrics["ndcg@10"] <= metrics["ndcg@20"] <= metrics["recall@20"]
    assert metrics["mrr@10"] <= metrics["ndcg@10"] + 1e-12


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_evaluate_predictions_properties(seed: int) -> None:
    rng = random.Random(seed)
    events = [
        ev(f"u{u}", f"i{rng.randrange(30)}", rng.randrange(5))
        for u in range(8)
        for _ in range(rng.randrange(1, 12))
    ]
    split = leave_one_out(events)
    preds = {
        u: rng.sample(split.items + ["unknown"], k=min(25, len(split.items)))
        for u in split.users
        if rng.random() < 0.8
    }
    result = evaluate_predictions(split, preds, "test")
    assert all(0.0 <= v <= 1.0 for v in result.metrics.values())
    assert result.metrics["recall@10"] <= result.metrics["recall@20"]


# --------------------------------------------------------------------------- driver
def test_evaluate_with_a_callable(split: LeaveOneOutSplit) -> None:
    seen = {}

    def oracle(user_id, history, exclude, k):
        seen[user_id] = (list(history), set(exclude), k)
        return [split.test[user_id]]

    result, preds = evaluate(oracle, split, "test", k=20, show_progress=False)
    assert result.metrics["recall@10"] == 1.0 and result.n_users == 3
    assert preds == {u: [split.test[u]] for u in ("2", "3", "5")}
    assert seen["3"] == (["c", "a"], {"c", "a"}, 20)
    assert result.stats["predict_seconds"] >= 0


def test_evaluate_with_objects_and_events() -> None:
    class Popular:
        def recommend_history(self, user_id, history, exclude, k):
            return [i for i in ("a", "b", "c", "d", "e") if i not in exclude][:k]

    class Batched:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def recommend_history_batch(self, user_ids, histories, excludes, k):
            self.batches.append(len(user_ids))
            return [
                Popular().recommend_history(u, h, e, k)
                for u, h, e in zip(user_ids, histories, excludes, strict=True)
            ]

    single, preds = evaluate(Popular(), tiny_events(), "valid", show_progress=False)
    batched = Batched()
    multi, preds_b = evaluate(
        batched, Dataset("t", [], tiny_events()), "valid", batch_size=1, show_progress=False
    )
    assert batched.batches == [1, 1]
    assert preds == preds_b and single.metrics == multi.metrics
    assert isinstance(single, EvaluationResult) and single.split_name == "valid"


def test_evaluate_rejects_bad_arguments(split: LeaveOneOutSplit) -> None:
    with pytest.raises(ConfigError, match="recommend_history"):
        evaluate(object(), split, show_progress=False)
    with pytest.raises(InvalidInputError, match="k must"):
        evaluate(lambda *a: [], split, k=10, show_progress=False)
    with pytest.raises(InvalidInputError, match="expected a list"):
        evaluate(lambda *a: None, split, show_progress=False)
    for bad in (
        {"k": True},
        {"k": 20.0},
        {"batch_size": True},
        {"split_name": ["test"]},
        {"subset": "some"},
    ):
        with pytest.raises(InvalidInputError, match=next(iter(bad))):
            evaluate(lambda *a: [], split, show_progress=False, **bad)
    with pytest.raises(InvalidInputError, match="path must be a str or path"):
        read_predictions(None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- reference
def _load_reference():
    if not REFERENCE.is_file():
        pytest.skip(f"reference scorer {REFERENCE} is not available")
    spec = importlib.util.spec_from_file_location("_llmrec_reference_protocol", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.mark.slow
def test_agrees_with_reference_scorer_on_ml100k(tmp_path: Path) -> None:
    reference = _load_reference()
    directory = fetch_movielens_100k(tmp_path)
    split = leave_one_out(load_movielens(cache_dir=tmp_path, fetch=False))
    assert split.fingerprint() == ML100K_SPLIT_FINGERPRINT
    inter = directory / "ml-100k.inter"
    ref_split = reference.Split(str(inter) if inter.is_file() else None)
    assert ref_split.fingerprint() == ML100K_SPLIT_FINGERPRINT
    assert len(split.users) == 943 and len(split.items) == 1682
    assert len(split.subset_users("no-ties")) == 528

    rng = random.Random(20240501)
    predictions = {}
    for user in split.users:
        if rng.random() < 0.05:
            continue  # missing users
        pool = rng.sample(split.items, 25) + split.history(user, "test")[:3]
        pool += [split.valid[user], split.test[user], "not-an-item", pool[0]]
        rng.shuffle(pool)
        predictions[user] = pool
    path = tmp_path / "preds.jsonl"
    write_predictions(path, predictions)
    assert read_predictions(path) == reference.load_predictions(str(path))
    for split_name in ("valid", "test"):
        for subset in ("all", "no-ties"):
            ours = evaluate_predictions(split, read_predictions(path), split_name, subset=subset)
            theirs = reference.evaluate(
                ref_split, reference.load_predictions(str(path)), split_name, subset=subset
            )
            ref_stats = theirs.pop("_stats")
            assert ours.n_users == ref_stats["users"]
            for key, value in theirs.items():
                assert abs(ours.metrics[key] - value) <= 1e-9, (split_name, subset, key)
            assert {k: ours.stats[k] for k in ref_stats} == ref_stats
            assert ours.metrics["recall@10"] > 0
