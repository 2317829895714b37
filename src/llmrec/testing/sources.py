"""Conformance checks of candidate sources (:func:`check_candidate_source`), trainable
ones included; see :mod:`llmrec.testing`."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.errors import ConfigError
from llmrec.retrieval.base import CandidateSource, RetrievalContext, TrainableSource
from llmrec.testing.backends import _require, _require_json, _require_name, _unit_vectors
from llmrec.types import RELATIONS

__all__ = ["TINY_ROWS", "check_candidate_source"]

#: Rows of the tiny interaction data :func:`check_candidate_source` trains sources on.
TINY_ROWS = 24

ContextFactory = Callable[[Sequence[int], Sequence[int]], RetrievalContext]


def check_candidate_source(source: Any, ctx_factory: ContextFactory | None = None) -> None:
    """Check a :class:`~llmrec.retrieval.CandidateSource` (and a
    :class:`~llmrec.retrieval.TrainableSource` further).

    Rules for every source: ``name`` is a non-empty str, ``default_weight`` a number and
    ``relation`` one of :data:`llmrec.types.RELATIONS`; ``propose(ctx, n)`` returns at
    most ``n`` distinct int rows of the row space, none in ``ctx.exclude_rows``, best
    first (their scores never increase); ``score`` returns finite float32 scores of shape
    ``(len(rows),)``, the same on a fresh context.

    A trainable source is first fitted on tiny interaction data (:data:`TINY_ROWS` rows,
    one of them not live), so pass a fresh one; then: it proposes something for a known
    history, never a row that is not live, ``save`` gives a JSON config and ``load`` equal
    proposals and scores, ``update_items`` makes a new row scorable and ``remove_rows``
    stops a row being proposed.

    Args:
        source: The source to check (it is changed by the checks).
        ctx_factory: ``(history rows newest first, exclude rows) -> RetrievalContext`` in
            the source's row space, with ``n_rows`` set. Required for a source that is not
            trainable; for a trainable one it defaults to plain contexts over the tiny data.

    Raises:
        AssertionError: naming the first rule broken.
    """
    subject = f"candidate source {getattr(source, 'name', source)!r}"
    _require_name(source, subject)
    weight = getattr(source, "default_weight", None)
    _require(
        isinstance(weight, (int, float)) and not isinstance(weight, bool) and np.isfinite(weight),
        subject,
        "default_weight is a finite number",
        f"got {weight!r}",
    )
    _require(
        getattr(source, "relation", None) in RELATIONS,
        subject,
        f"relation is one of {list(RELATIONS)}",
        f"got {getattr(source, 'relation', None)!r}",
    )
    _require(
        isinstance(source, CandidateSource),
        subject,
        "it has the CandidateSource attributes and methods",
    )
    if isinstance(source, TrainableSource):
        _check_trainable(source, ctx_factory, subject)
        return
    if ctx_factory is None:
        raise ConfigError("ctx_factory is required for a source that is not trainable")
    _check_proposals(source, ctx_factory, subject)


def _plain_context(n_rows: int) -> ContextFactory:
    def make(history: Sequence[int], exclude: Sequence[int]) -> RetrievalContext:
        rows = np.asarray(list(history), dtype=np.int64)
        return RetrievalContext(
            None,
            None,
            rows,
            0.9 ** np.arange(len(rows), dtype=np.float32),
            np.unique(np.asarray(list(exclude), dtype=np.int64)),
            n_rows=n_rows,
            profile_rows=rows,
        )

    return make


def _check_proposals(source: Any, make: ContextFactory, subject: str) -> None:
    n_rows = make([], []).n_rows
    _require(n_rows > 0, subject, "ctx_factory's contexts carry n_rows (the row space)")
    for history in ([], [0], [min(2, n_rows - 1), min(1, n_rows - 1), 0]):
        ctx = make(history, [])
        for n in (1, 5, n_rows + 5):
            rows = source.propose(ctx, n)
            _require(
                isinstance(rows, np.ndarray)
                and rows.ndim == 1
                and (not len(rows) or np.issubdtype(rows.dtype, np.integer)),
                subject,
                "propose returns a 1-d int array",
                f"got {rows!r:.80}",
            )
            _require(
                len(rows) <= n and len(set(rows.tolist())) == len(rows),
                subject,
                "propose returns at most n distinct rows",
                f"n={n}, got {len(rows)}",
            )
            _require(
                ((rows >= 0) & (rows < max(n_rows, ctx.n_rows))).all(),
                subject,
                "propose returns rows of the row space",
            )
        rows = source.propose(ctx, 5)
        scores = source.score(ctx, rows)
        _require(
            isinstance(scores, np.ndarray)
            and scores.dtype == np.float32
            and scores.shape == (len(rows),)
            and np.isfinite(scores).all(),
            subject,
            "score returns finite float32 scores of shape (len(rows),)",
            f"got {scores!r:.80}",
        )
        _require(
            (np.diff(scores) <= 1e-6).all(),
            subject,
            "proposals come best first (their scores never increase)",
        )
        _require(
            np.array_equal(source.score(make(history, []), rows), scores),
            subject,
            "score is the same on a fresh context",
        )
        _require(
            source.score(ctx, np.zeros(0, dtype=np.int64)).shape == (0,),
            subject,
            "score of no rows has shape (0,)",
        )
        if len(rows):
            again = source.propose(make(history, rows[:1]), 5)
            _require(
                rows[0] not in again,
                subject,
                "propose never returns ctx.exclude_rows",
                f"row {int(rows[0])} excluded yet proposed",
            )


def _tiny_data() -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Users walk cycles of 6 rows (4 cycles); the last row is in the data, not live."""
    rng = np.random.default_rng(0)
    user_rows = []
    for user in range(48):
        cycle, start = user % 4, int(rng.integers(6))
        user_rows.append([cycle * 6 + (start + step) % 6 for step in range(8)])
    live = np.ones(TINY_ROWS, dtype=bool)
    live[-1] = False
    return user_rows, _unit_vectors(TINY_ROWS, 8, 0), live


def _check_trainable(
    source: TrainableSource, ctx_factory: ContextFactory | None, subject: str
) -> None:
    _require(isinstance(source.refit_on_all, bool), subject, "refit_on_all is a bool")
    _require(isinstance(source.show_progress, bool), subject, "show_progress is a bool")
    _require(
        source.seed is None or (isinstance(source.seed, int) and not isinstance(source.seed, bool)),
        subject,
        "seed is an int or None",
    )
    user_rows, vectors, live = _tiny_data()
    source.fit(user_rows, vectors, valid=None, live=live)
    make = ctx_factory or _plain_context(TINY_ROWS)
    history = user_rows[0][::-1]
    rows = source.propose(make(history, []), TINY_ROWS)
    _require(len(rows) > 0, subject, "a fitted source proposes rows for a known history")
    _require(TINY_ROWS - 1 not in rows, subject, "rows that are not live are never proposed")
    _check_proposals(source, make, subject)
    _check_source_round_trip(source, make, [history, user_rows[1][::-1]], subject)
    new_row = np.array([TINY_ROWS])
    source.update_items(new_row, _unit_vectors(1, vectors.shape[1], 5))
    grown = _plain_context(TINY_ROWS + 1) if ctx_factory is None else ctx_factory
    scores = source.score(grown(history, []), new_row)
    _require(
        scores.shape == (1,) and np.isfinite(scores).all(),
        subject,
        "update_items makes a new row scorable",
    )
    top = int(rows[0])
    source.remove_rows(np.array([top]))
    _require(
        top not in source.propose(grown(history, []), TINY_ROWS + 1),
        subject,
        "remove_rows stops a row being proposed",
        f"row {top} still proposed",
    )


def _check_source_round_trip(
    source: TrainableSource, make: ContextFactory, histories: list[list[int]], subject: str
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = source.save(Path(tmp) / "source")
        _require_json(config, subject)
        loaded = type(source).load(Path(tmp) / "source", config, device="cpu")
    for history in histories:
        before, after = source.propose(make(history, []), 10), loaded.propose(make(history, []), 10)
        _require(np.array_equal(before, after), subject, "save then load gives the same proposals")
        rows = np.arange(TINY_ROWS)
        _require(
            np.allclose(
                source.score(make(history, []), rows),
                loaded.score(make(history, []), rows),
                atol=1e-6,
            ),
            subject,
            "save then load gives the same scores",
        )
