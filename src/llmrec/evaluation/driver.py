"""Asking a recommender for every scored user of a split, and the predictions file.

A predictions file is JSON lines ``{"user_id": "196", "items": ["50", ...]}``, best first.
"""

from __future__ import annotations

import copy
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from llmrec._validate import check_bool, check_int
from llmrec.datasets import Dataset
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.evaluation.metrics import DEFAULT_KS, EvaluationResult, check_ks, evaluate_predictions
from llmrec.evaluation.split import LeaveOneOutSplit, leave_one_out
from llmrec.storage.io import atomic_file, check_path
from llmrec.types import Event, Recommendation

__all__ = [
    "FAST_EPOCHS",
    "RecommendFn",
    "estimate_fit_seconds",
    "evaluate",
    "limit_epochs",
    "read_predictions",
    "write_predictions",
]

#: Epochs each epoch-trained model gets under ``llmrec evaluate --fast``.
FAST_EPOCHS = 5

#: ``recommender(user_id, history, exclude, k) -> item ids, best first``.
RecommendFn = Callable[[str, list[str], set[str], int], Sequence[Any]]


def write_predictions(
    path: str | os.PathLike[str], predictions: Mapping[str, Sequence[Any]]
) -> None:
    """Write ``{user_id: [item_id, ...]}`` as JSON lines, atomically (see
    :func:`~llmrec.storage.io.atomic_file`)."""
    with atomic_file(check_path(path)) as f:
        for user, items in predictions.items():
            record = {"user_id": str(user), "items": [str(i) for i in items]}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_predictions(path: str | os.PathLike[str]) -> dict[str, list[str]]:
    """Read a JSON lines predictions file into ``{user_id: [item_id, ...]}``.

    Raises:
        InvalidInputError: A line is not a ``{"user_id", "items"}`` object, or a user
            appears twice (the message names the file and line).
    """
    predictions: dict[str, list[str]] = {}
    with open(check_path(path), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                user, items = record["user_id"], record["items"]
                if not isinstance(items, list):
                    raise TypeError("items must be a list")
            except (ValueError, KeyError, TypeError) as exc:
                raise InvalidInputError(
                    f"{path}:{number}: not a predictions record ({exc})"
                ) from None
            user = str(user)
            if user in predictions:
                raise InvalidInputError(f"{path}:{number}: user {user!r} appears twice")
            predictions[user] = [str(i) for i in items]
    return predictions


def _as_ids(result: Any, user: str) -> list[str]:
    if result is None or isinstance(result, (str, bytes)):
        raise InvalidInputError(
            f"recommender returned {result!r:.80} for user {user!r}; expected a list of item ids"
        )
    return [r.item_id if isinstance(r, Recommendation) else str(r) for r in result]


def _is_pipeline(recommender: Any) -> bool:
    from llmrec.pipeline import Pipeline

    return isinstance(recommender, Pipeline)


class _PipelineRecommender:
    """Adapts a Pipeline to ``recommend_history_batch`` (its profiles hold the history)."""

    def __init__(
        self,
        pipeline: Any,
        split: LeaveOneOutSplit,
        split_name: str,
        fit: bool,
        seed: int | None,
        show_progress: bool,
    ) -> None:
        if check_bool(fit, "fit", error=InvalidInputError):
            events = [
                Event(user_id=e.user_id, item_id=e.item_id, kind="click", timestamp=e.timestamp)
                for e in split.events_for(split_name)
            ]
            pipeline.fit(events, seed=seed, show_progress=show_progress)
        self.pipeline = pipeline

    def recommend_history_batch(
        self, user_ids: list[str], histories: list[list[str]], excludes: list[set[str]], k: int
    ) -> list[list[str]]:
        known = [u for u in user_ids if u in self.pipeline.profiles]
        lists = dict(zip(known, self.pipeline.recommend_batch(known, k, generate=False)))
        return [[r.item_id for r in lists.get(u, ())] for u in user_ids]


def evaluate(
    recommender: RecommendFn | Any,
    dataset_or_split: Dataset | LeaveOneOutSplit | Sequence[Event],
    split_name: str = "test",
    k: int = 20,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    subset: str = "all",
    batch_size: int = 256,
    show_progress: bool = True,
    item_vectors: Mapping[str, np.ndarray] | None = None,
    fit: bool = True,
    seed: int | None = None,
) -> tuple[EvaluationResult, dict[str, list[str]]]:
    """Ask a recommender for every scored user of a split and score the lists.

    The recommender is one of:

    * a :class:`~llmrec.Pipeline`: unless ``fit=False`` it is first fitted (in place) on
      :meth:`LeaveOneOutSplit.events_for` the split, every event entering as a click as
      the protocol treats all interactions as positives; each user's list then comes from
      ``recommend_batch(..., generate=False)`` with seen items excluded;
    * an object with ``recommend_history_batch(user_ids, histories, excludes, k)``
      returning one list per user (called with up to ``batch_size`` users at a time);
    * an object with ``recommend_history(user_id, history, exclude, k)``;
    * a callable ``recommender(user_id, history, exclude, k)``.

    ``history`` is the user's chronological item list the split allows
    (:meth:`LeaveOneOutSplit.history`), ``exclude`` the set of items that will not count
    (:meth:`LeaveOneOutSplit.excluded`), and the answer is ``k`` item ids best first
    (objects with an ``item_id`` attribute, such as Recommendations, are accepted). The
    recommender must be fitted on :meth:`LeaveOneOutSplit.events_for` of the same split
    beforehand; apart from a Pipeline with ``fit=True``, this function trains nothing.

    Example::

        data = llmrec.datasets.load_movielens("ml-100k")
        pipe = llmrec.Pipeline.from_catalog(data.items, llm="template")
        result, _ = evaluate(pipe, data)
        print(result.format_table())

    Args:
        recommender: See above.
        dataset_or_split: A split, or a dataset / events to split with
            :func:`leave_one_out`.
        split_name: ``"valid"`` or ``"test"``.
        k: Items asked per user; at least ``max(ks)``.
        ks: Metric cut-offs.
        subset: Users to score: ``"all"`` or ``"no-ties"``.
        batch_size: Users per call of ``recommend_history_batch``.
        show_progress: Show a tqdm bar.
        item_vectors: Optional item vectors for ``intra_list_diversity``.
        fit: For a Pipeline: fit it on the split's events first.
        seed: For a Pipeline with ``fit=True``: the seed passed to ``Pipeline.fit``.

    Returns:
        ``(result, predictions)`` with predictions ``{user_id: [item_id, ...]}``.

    Raises:
        ConfigError: ``recommender`` is none of the above.
        InvalidInputError: Bad ``k``, ``ks``, ``batch_size``, split name or subset, or a
            recommender answer that is not a list.
    """
    ks = check_ks(ks)
    k = check_int(k, "k", low=max(ks), error=InvalidInputError)
    batch_size = check_int(batch_size, "batch_size", low=1, error=InvalidInputError)
    split = (
        dataset_or_split
        if isinstance(dataset_or_split, LeaveOneOutSplit)
        else leave_one_out(dataset_or_split)
    )
    users = list(split.targets(split_name, subset))
    if _is_pipeline(recommender):
        recommender = _PipelineRecommender(recommender, split, split_name, fit, seed, show_progress)
    start = time.perf_counter()
    predictions = _ask(recommender, split, users, split_name, k, batch_size, show_progress)
    seconds = time.perf_counter() - start
    result = evaluate_predictions(
        split, predictions, split_name, ks, subset, item_vectors=item_vectors
    )
    result.stats["predict_seconds"] = seconds
    result.stats["users_per_second"] = len(users) / seconds if seconds > 0 else float("inf")
    return result, predictions


def _ask(
    recommender: Any,
    split: LeaveOneOutSplit,
    users: list[str],
    split_name: str,
    k: int,
    batch_size: int,
    show_progress: bool,
) -> dict[str, list[str]]:
    """Each user's answer from ``recommender`` (see :func:`evaluate` for its forms)."""
    batch_fn = getattr(recommender, "recommend_history_batch", None)
    single_fn = getattr(recommender, "recommend_history", None)
    if single_fn is None and callable(recommender):
        single_fn = recommender
    if batch_fn is None and single_fn is None:
        raise ConfigError(
            f"recommender {type(recommender).__name__} is not callable and has no "
            "recommend_history / recommend_history_batch method"
        )
    predictions: dict[str, list[str]] = {}
    with tqdm(
        total=len(users), desc=f"evaluate {split_name}", unit="user", disable=not show_progress
    ) as bar:
        if batch_fn is None:
            for user in users:
                answer = single_fn(
                    user,
                    split.history(user, split_name),  # type: ignore[misc]
                    split.excluded(user, split_name),
                    k,
                )
                predictions[user] = _as_ids(answer, user)
                bar.update(1)
            return predictions
        for offset in range(0, len(users), batch_size):
            chunk = users[offset : offset + batch_size]
            answers = list(
                batch_fn(
                    chunk,
                    [split.history(u, split_name) for u in chunk],
                    [split.excluded(u, split_name) for u in chunk],
                    k,
                )
            )
            if len(answers) != len(chunk):
                raise InvalidInputError(
                    f"recommend_history_batch returned {len(answers)} lists for {len(chunk)} users"
                )
            for user, answer in zip(chunk, answers, strict=True):
                predictions[user] = _as_ids(answer, user)
            bar.update(len(chunk))
    return predictions


def limit_epochs(pipeline: Any, epochs: int) -> dict[str, tuple[int, int]]:
    """Cap the training epochs of every trainable model of ``pipeline`` that has an
    ``epochs`` setting (the sequential model; EASE has none), in place.

    Returns:
        ``{model name: (epochs before, epochs after)}`` for each model changed.
    """
    epochs = check_int(epochs, "epochs", low=1, error=InvalidInputError)
    changed = {}
    for name, model in pipeline.retriever.models.items():
        before = getattr(model, "epochs", None)
        if isinstance(before, int) and before > epochs:
            model.epochs = epochs
            changed[name] = (before, epochs)
    return changed


def estimate_fit_seconds(
    pipeline: Any,
    split: LeaveOneOutSplit,
    split_name: str = "test",
    *,
    sample_users: int = 48,
    seed: int = 0,
) -> dict[str, float]:
    """Estimate, before fitting, how long :func:`evaluate` trains each model of ``pipeline``.

    Each trainable model is copied and timed here, on this machine: a model with an
    ``epochs`` setting trains one epoch (with validation, as in the ranker's held-out pass)
    on ``sample_users`` users' histories, scaled by the split's events over the sample's
    and by its epochs -- an upper bound, as early stopping may end sooner; any other model
    (EASE, whose cost grows with the catalog, not the users) is fitted once on the sample,
    twice when :meth:`Pipeline.fit` refits it on every event. The profile replay and the
    ranker's pass are not included (seconds on ML-100K). The pipeline is not changed.

    Returns:
        ``{model name: estimated seconds}``; empty when the pipeline has no trainable model.
    """
    sample_users = check_int(sample_users, "sample_users", low=2, error=InvalidInputError)
    catalog = pipeline.catalog
    histories = {
        user: [catalog.row(i) for i in split.history(user, split_name) if i in catalog]
        for user in split.users
    }
    histories = {u: rows for u, rows in histories.items() if len(rows) >= 2}
    if not histories or not pipeline.retriever.models:
        return {}
    users = sorted(histories)
    rng = np.random.default_rng(seed)
    chosen = [users[i] for i in rng.choice(len(users), min(sample_users, len(users)), False)]
    sample = [histories[u][:-1] for u in chosen]
    valid = [(histories[u][:-1], histories[u][-1]) for u in chosen]
    scale = sum(map(len, histories.values())) / sum(len(h) + 1 for h in sample)
    vectors, live = pipeline.retriever.item_vectors, pipeline.retriever.live
    out = {}
    for name, model in pipeline.retriever.models.items():
        probe = copy.deepcopy(model)
        probe.show_progress = False
        epochs = getattr(model, "epochs", None)
        if isinstance(epochs, int):
            probe.epochs = 1
        started = time.perf_counter()
        probe.fit(sample, vectors, valid=valid, live=live)
        seconds = time.perf_counter() - started
        if isinstance(epochs, int):
            out[name] = seconds * scale * epochs
        else:
            out[name] = seconds * (2 if getattr(model, "refit_on_all", False) else 1)
    return out
