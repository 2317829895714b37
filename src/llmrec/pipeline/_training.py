"""Fitting a pipeline on historical events: the optional fine-tuning of the encoder, the
held-out pass that trains the ranker, the refit of the sources on every event, and the
replay that rebuilds the profiles.

Positive events (:attr:`llmrec.Event.is_positive`) are the only training rows and the only
held-out targets, so the ranker learns to predict exactly what the sources learn from.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec._validate import check_options
from llmrec.catalog import render_item_text
from llmrec.encoding.finetune import MIN_PAIRS, ContrastiveFinetuner, finetunable
from llmrec.errors import ConfigError
from llmrec.pipeline import _changes, _scoring
from llmrec.profile import ProfileStore
from llmrec.ranking import Ranker
from llmrec.types import Event

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = ["finetuner", "fit", "held_out", "positive_rows"]

logger = logging.getLogger(__name__)

#: Fewest users with a held-out event, and with that event's item among the candidates,
#: for the ranker to be trained.
MIN_RANKER_USERS = 10
#: Fewest events a user needs for their last positive one to be held out.
MIN_USER_EVENTS = 3
#: Fewest users with two or more positive events for the trainable models (EASE,
#: sequential, ...) to be fitted; with fewer they are skipped with a warning.
MIN_MODEL_USERS = 30
#: Strength of the ranker's pull toward the sources' default weights, times the number of
#: held-out users: the pull is ``PRIOR_SCALE / n``, fading as data grows. Measured with the
#: listwise fit (benchmarks/RESULTS.md, "Listwise fusion"): on the 40-product test shop
#: 0.05 let the fit fall below the default weights and 0.5 to 2 held it above them; on
#: ML-100K's ~900 held-out users 0.5 ranked best of 0.05-5 (5 pulls the weights halfway back).
PRIOR_SCALE = 0.5
#: How much better (NDCG@10 on the held-out items, times the square root of the held-out
#: users) the default weights or a single feature must rank than the fitted weights to
#: replace them.
SELECT_MARGIN = 0.5


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
        _changes.apply_event(pipe, store, event, _text_vector(event, vectors))


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
) -> tuple[ProfileStore, dict[int, Event]] | None:
    """Train the sources on all but each user's last positive event, then the ranker on
    those held-out events. Returns the profiles replayed without the held-out events and
    those events by index (:func:`_complete` turns them into every event's profiles), or
    ``None`` when there were too few users for the held-out pass."""
    held = held_out(events)
    if len(held) < MIN_RANKER_USERS:
        logger.info(
            "too few users with history (%d) to train the ranker; keeping weights", len(held)
        )
        return None
    prefix = [e for n, e in enumerate(events) if n not in held]
    prefix_rows = positive_rows(prefix, pipe.catalog.row)
    valid = [
        (prefix_rows[e.user_id], pipe.catalog.row(e.item_id))
        for e in held.values()
        if e.user_id in prefix_rows
    ]
    pipe.retriever.fit(
        list(prefix_rows.values()), valid=valid, models="all", min_users=MIN_MODEL_USERS
    )
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
        return store, held
    x, y = np.concatenate(xs), np.concatenate(ys)
    if y.sum() < MIN_RANKER_USERS:
        # Users whose held-out item is no candidate (a repeat, say) teach the fit nothing.
        logger.info(
            "only %d held-out items reached the candidates (fewer than %d); keeping ranker weights",
            int(y.sum()),
            MIN_RANKER_USERS,
        )
        return store, held
    _train_ranker(pipe, xs, ys, x, y)
    return store, held


def _complete(
    pipe: Pipeline,
    store: ProfileStore,
    events: Sequence[Event],
    held: Mapping[int, Event],
    vectors: Mapping[str, np.ndarray],
) -> None:
    """Turn ``store``, the profiles of every event but the ``held`` ones, into the profiles
    of every event, as a replay of all of them from scratch would build them.

    A profile depends only on its own user's events in order, so a held-out event that is
    its user's last event is applied on top; a user with later events is replayed anew.
    """
    last: dict[str, int] = {}
    for n, event in enumerate(events):
        last[event.user_id] = n
    redo = {e.user_id for n, e in held.items() if last[e.user_id] != n}
    for _, event in sorted(held.items()):
        if event.user_id not in redo:
            _changes.apply_event(pipe, store, event, _text_vector(event, vectors))
    for user_id in redo:
        if user_id in store:
            store.forget(user_id)
    for event in events:
        if event.user_id in redo:
            _changes.apply_event(pipe, store, event, _text_vector(event, vectors))


def _text_vector(event: Event, vectors: Mapping[str, np.ndarray]) -> np.ndarray | None:
    return vectors.get(event.text) if event.text else None


def _held_out_ndcg(
    xs: Sequence[np.ndarray], ys: Sequence[np.ndarray], weights: np.ndarray
) -> float:
    """Mean NDCG@10 of the held-out item among its user's candidates when they are ranked
    by ``x @ weights`` (ties count half; a user whose item is no candidate scores 0)."""
    total = 0.0
    for x, y in zip(xs, ys):
        hit = np.flatnonzero(y > 0)
        if not len(hit):
            continue
        scores = x @ weights
        target = scores[hit[0]]
        rank = 1.0 + np.sum(scores > target) + 0.5 * (np.sum(scores == target) - 1)
        if rank <= 10:
            total += 1.0 / np.log2(rank + 1.0)
    return total / max(len(xs), 1)


def _select_weights(
    pipe: Pipeline,
    xs: list[np.ndarray],
    ys: list[np.ndarray],
    defaults: Mapping[str, float],
) -> str:
    """Keep the fitted weights unless the default weights or one feature alone rank the
    held-out items clearly better: by more than ``SELECT_MARGIN / sqrt(users)`` NDCG@10,
    about the noise of the comparison, so a tie or a fluke never replaces a fit. Returns
    the choice."""
    names = pipe.ranker.feature_names
    options = {"fitted": pipe.ranker.weights_.copy()}
    options["default"] = np.array([defaults.get(n, 0.0) for n in names])
    for j, name in enumerate(names):
        if any(x[:, j].std() > 1e-12 for x in xs):
            options[name] = np.eye(len(names))[j]
    quality = {name: _held_out_ndcg(xs, ys, w) for name, w in options.items()}
    best = max(quality, key=lambda n: (quality[n], n == "default"))
    if quality[best] <= quality["fitted"] + SELECT_MARGIN / np.sqrt(len(xs)):
        return "fitted"
    pipe.ranker.weights_ = options[best]
    return best


def _train_ranker(
    pipe: Pipeline, xs: list[np.ndarray], ys: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> None:
    """Fit the ranker on the held-out rows, listwise (each user's candidates ranked
    together; see :meth:`~llmrec.ranking.Ranker.fit`), pulled toward the default
    weights by a prior that fades as held-out users grow, similarity-type features (every
    relation but ``popular``) kept >= 0; then keep the weights that rank the held-out
    items best (:func:`_select_weights`)."""
    defaults = _scoring.ranker_weights(pipe.retriever)
    weight = np.where(y > 0, (len(y) - y.sum()) / y.sum(), 1.0)
    relations = {**pipe.retriever.relations, _scoring.TAG_FEATURE: _scoring.TAG_RELATION}
    nonnegative = [n for n in pipe.ranker.feature_names if relations.get(n) != "popular"]
    strength = PRIOR_SCALE / float(y.sum())  # the users whose item is a candidate
    groups = np.repeat(np.arange(len(xs)), [len(rows) for rows in xs])
    pipe.ranker.fit(
        x,
        y,
        sample_weight=weight,
        groups=groups,
        prior=defaults,
        prior_strength=strength,
        nonnegative=nonnegative,
    )
    chosen = _select_weights(pipe, xs, ys, defaults)
    logger.info(
        "ranker trained on %d held-out users (%d candidates, recall of candidates %.3f); "
        "prior strength %.4g toward the default weights, %s kept >= 0; kept the %s "
        "weights %s",
        len(xs),
        len(y),
        y.sum() / len(xs),
        strength,
        ", ".join(nonnegative),
        chosen if chosen in ("fitted", "default") else f"{chosen!r}-only",
        {k: round(v, 3) for k, v in pipe.ranker.weights.items()},
    )


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


def finetuner(option: Any, seed: int | None, show_progress: bool) -> ContrastiveFinetuner | None:
    """The finetuner ``Pipeline.fit(finetune_encoder=option)`` asks for (``None``: off):
    ``True`` for the defaults, or a mapping of
    :class:`~llmrec.encoding.ContrastiveFinetuner` options; ``seed`` and
    ``show_progress`` default to the fit's.

    Raises:
        ConfigError: ``option`` is neither, or holds a bad option.
    """
    if isinstance(option, (bool, np.bool_)):
        if not option:
            return None
        options: dict[str, Any] = {}
    elif isinstance(option, Mapping):
        options = check_options(option, "finetune_encoder")
    else:
        raise ConfigError(
            "finetune_encoder must be a bool or a mapping of ContrastiveFinetuner options "
            f"(for example {{'max_seconds': 120}}), got {option!r:.80}"
        )
    options.setdefault("seed", 0 if seed is None else seed)
    options.setdefault("show_progress", show_progress)
    try:
        return ContrastiveFinetuner(**options)
    except TypeError:
        known = sorted(inspect.signature(ContrastiveFinetuner).parameters)
        unknown = sorted(set(options) - set(known))
        raise ConfigError(
            f"unknown finetune_encoder option(s) {unknown}; the options are {known}"
        ) from None


def _finetune_encoder(pipe: Pipeline, events: Sequence[Event], tuner: ContrastiveFinetuner) -> None:
    """Fine-tune the encoder on the positive events' co-consumed items, then re-encode
    the catalog with the tuned weights and put the new vectors wherever item vectors live
    (the retriever's array, its index and its models); too few pairs skip it with a
    warning. Profiles are rebuilt by the rest of the fit."""
    with pipe._lock:
        _changes.check_items_known(pipe, events)
        items = list(pipe.catalog)
    position = {item.item_id: n for n, item in enumerate(items)}
    sequences = list(positive_rows(events, position.__getitem__).values())
    n_pairs = len(tuner.pairs(sequences))
    if n_pairs < MIN_PAIRS:
        logger.warning(
            "not fine-tuning the encoder: the events give %d co-consumed pairs (window %d), "
            "fewer than the %d it needs; keeping the frozen encoder",
            n_pairs,
            tuner.window,
            MIN_PAIRS,
        )
        return
    report = tuner.train(pipe.encoder, [render_item_text(item) for item in items], sequences)
    pipe.encoder.finetune_report_ = report
    if not report.changed:
        logger.info(
            "fine-tuning did not raise the held-out recall (%.3f); keeping the encoder as it was",
            report.valid_recall_before or 0.0,
        )
        return
    with pipe._lock:
        pipe.encoder.apply_tuned_weights(report.weights)
        items = list(pipe.catalog)  # as it is now: items may have changed meanwhile
        vectors = pipe.encoder.encode_items(items)
        retriever = pipe.retriever
        with retriever.lock:
            # A new array, so nothing keyed by the old one (a calibrated similarity
            # threshold) outlives the old vectors.
            retriever.item_vectors = retriever.item_vectors.copy()
            retriever.upsert(pipe.catalog.rows([item.item_id for item in items]), vectors)


def fit(
    pipe: Pipeline,
    events: list[Event],
    *,
    train_ranker: bool,
    ranker_users: int,
    seed: int | None,
    show_progress: bool,
    finetune_encoder: Any = False,
) -> None:
    """Fit ``pipe`` on validated ``events`` sorted by time (first fine-tuning the encoder
    when ``finetune_encoder`` asks for it), then rebuild every profile."""
    tuner = finetuner(finetune_encoder, seed, show_progress)
    if tuner is not None:
        finetunable(pipe.encoder.backend)  # refuse before any work
        _finetune_encoder(pipe, events, tuner)
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
            held_pass = None
            if train_ranker:
                held_pass = _fit_ranker(
                    pipe, events, vectors, ranker_users, 0 if seed is None else seed, show_progress
                )
            per_user = positive_rows(events, pipe.catalog.row)
            # Models trained in the held-out pass keep their weights unless cheap to refit.
            pipe.retriever.fit(
                list(per_user.values()),
                models="cheap" if held_pass is not None else "all",
                min_users=MIN_MODEL_USERS,
            )
        if held_pass is None:
            store = _empty_store(pipe)
            _replay(pipe, store, events, vectors, show_progress)
        else:
            store, held = held_pass
            _complete(pipe, store, events, held, vectors)
        pipe.profiles.replace_with(store)
