"""Fitting a pipeline on historical events: the held-out pass that trains the ranker, the
refit of the sources on every event, and the replay that rebuilds the profiles.

Positive events (:attr:`llmrec.Event.is_positive`) are the only training rows and the only
held-out targets, so the ranker learns to predict exactly what the sources learn from.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from llmrec.pipeline import _changes, _scoring
from llmrec.profile import ProfileStore
from llmrec.ranking import Ranker
from llmrec.types import Event

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = ["fit", "held_out", "positive_rows"]

logger = logging.getLogger(__name__)

#: Fewest users with a held-out event for the ranker to be trained.
MIN_RANKER_USERS = 10
#: Fewest events a user needs for their last positive one to be held out.
MIN_USER_EVENTS = 3


def positive_rows(events: Sequence[Event], row_of: Callable[[str], int]) -> dict[str, list[int]]:
    """Each user's positive item rows, in event order: the sources' training rows."""
    per_user: dict[str, list[int]] = {}
    for event in events:
        if event.is_positive:
            per_user.setdefault(event.user_id, []).append(row_of(event.item_id))
    return per_user


def held_out(events: Sequence[Event]) -> dict[int, Event]:
    """Index -> event of each user's last positive event, for users with at least
    :data:`MIN_USER_EVENTS` events: the ranker's targets."""
    last_index: dict[str, int] = {}
    count: dict[str, int] = {}
    for n, event in enumerate(events):
        count[event.user_id] = count.get(event.user_id, 0) + 1
        if event.is_positive:
            last_index[event.user_id] = n
    return {n: events[n] for user, n in last_index.items() if count[user] >= MIN_USER_EVENTS}


def _empty_store(pipe: Pipeline) -> ProfileStore:
    profiles = pipe.profiles
    return ProfileStore(
        profiles.dim, half_life=profiles.half_life, max_history=profiles.max_history
    )


def _replay(
    pipe: Pipeline,
    store: ProfileStore,
    events: Sequence[Event],
    vectors: Mapping[str, np.ndarray],
    show_progress: bool,
) -> None:
    from tqdm.auto import tqdm

    for event in tqdm(
        events,
        desc="replaying events",
        unit="event",
        disable=not show_progress or len(events) < 10_000,
    ):
        _changes.apply_event(pipe, store, event, vectors.get(event.text) if event.text else None)


def _ranker_rows(
    pipe: Pipeline, store: ProfileStore, targets: Sequence[Event], show_progress: bool
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per target user: the candidates' features and whether each is the held-out item."""
    from tqdm.auto import tqdm

    xs, ys = [], []
    for target in tqdm(targets, desc="training ranker", unit="user", disable=not show_progress):
        if target.user_id not in store:
            continue
        profile = store.get(target.user_id)
        rows, x = _scoring.score_candidates(pipe, profile, None, True, None, 1)
        if not len(rows):
            continue
        xs.append(x)
        ys.append((rows == pipe.catalog.row(target.item_id)).astype(np.float64))
    return xs, ys


def _fit_ranker(
    pipe: Pipeline,
    events: list[Event],
    vectors: Mapping[str, np.ndarray],
    ranker_users: int,
    seed: int,
    show_progress: bool,
) -> bool:
    """Train the sources on all but each user's last positive event, then the ranker on
    those held-out events. Returns whether the held-out pass ran."""
    held = held_out(events)
    if len(held) < MIN_RANKER_USERS:
        logger.info(
            "too few users with history (%d) to train the ranker; keeping weights", len(held)
        )
        return False
    prefix = [e for n, e in enumerate(events) if n not in held]
    prefix_rows = positive_rows(prefix, pipe.catalog.row)
    valid = [
        (prefix_rows[e.user_id], pipe.catalog.row(e.item_id))
        for e in held.values()
        if e.user_id in prefix_rows
    ]
    pipe.retriever.fit(list(prefix_rows.values()), valid=valid, models="all")
    store = _empty_store(pipe)
    _replay(pipe, store, prefix, vectors, show_progress)
    targets = sorted(held.values(), key=lambda e: e.user_id)
    if len(targets) > ranker_users:
        rng = np.random.default_rng(seed)
        targets = [
            targets[i] for i in sorted(rng.choice(len(targets), ranker_users, replace=False))
        ]
    xs, ys = _ranker_rows(pipe, store, targets, show_progress)
    if not xs:
        return True
    x, y = np.concatenate(xs), np.concatenate(ys)
    if y.sum() == 0:
        logger.info("no held-out item reached the candidates; keeping ranker weights")
        return True
    weight = np.where(y > 0, (len(y) - y.sum()) / y.sum(), 1.0)
    pipe.ranker.fit(x, y, sample_weight=weight)
    logger.info(
        "ranker trained on %d users, %d candidates, recall of candidates %.3f",
        len(xs),
        len(y),
        y.sum() / len(xs),
    )
    return True


@contextmanager
def _model_settings(pipe: Pipeline, seed: int | None, show_progress: bool) -> Iterator[None]:
    """Seed every trainable model (kept, so a save records it); with ``show_progress=False``
    silence the models' own bars for this fit only."""
    models = list(pipe.retriever.models.values())
    if seed is not None:
        for model in models:
            model.seed = seed
    muted = [m for m in models if not show_progress and m.show_progress]
    for model in muted:
        model.show_progress = False
    try:
        yield
    finally:
        for model in muted:
            model.show_progress = True


def fit(
    pipe: Pipeline,
    events: list[Event],
    *,
    train_ranker: bool,
    ranker_users: int,
    seed: int | None,
    show_progress: bool,
) -> None:
    """Fit ``pipe`` on validated ``events`` sorted by time, then rebuild every profile."""
    vectors = _changes.text_vectors(pipe, events)
    with pipe._lock:
        _changes.check_items_known(pipe, events)
        features = _scoring.feature_names(pipe.retriever)
        if features != pipe.ranker.feature_names:
            pipe.ranker = Ranker(
                features,
                weights=_scoring.ranker_weights(pipe.retriever),
                diversity=pipe.ranker.diversity,
                l2=pipe.ranker.l2,
            )
        with _model_settings(pipe, seed, show_progress):
            trained = train_ranker and _fit_ranker(
                pipe, events, vectors, ranker_users, 0 if seed is None else seed, show_progress
            )
            per_user = positive_rows(events, pipe.catalog.row)
            # Models trained in the held-out pass keep their weights unless cheap to refit.
            pipe.retriever.fit(list(per_user.values()), models="cheap" if trained else "all")
        store = _empty_store(pipe)
        _replay(pipe, store, events, vectors, show_progress)
        pipe.profiles.replace_with(store)
