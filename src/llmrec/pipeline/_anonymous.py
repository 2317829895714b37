"""Recommendations without a stored user: an anonymous session's items, and the items
similar to one item.

Both rank a transient profile built from the given history exactly as a stored user's
events would build it (:func:`llmrec.pipeline._changes.apply_event`), so the same sources,
ranker and explanations apply, and nothing is stored, logged or counted toward popularity.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from llmrec._validate import check_sequence
from llmrec.errors import InvalidInputError, UnknownItemError
from llmrec.pipeline import _changes, _scoring
from llmrec.pipeline._request import RecommendRequest
from llmrec.profile import ProfileStore, UserProfile
from llmrec.types import Event, Item, Recommendation

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = ["SESSION_USER", "session_events", "session_rank", "similar_items"]

#: The user id a session's transient profile carries (never stored).
SESSION_USER = "session"


def session_events(history: Any) -> list[Event]:
    """``history`` (item ids or :class:`~llmrec.Event` objects, oldest first) as the
    session's events, in order; an item id becomes a ``click``.

    Raises:
        InvalidInputError: ``history`` is not a sequence of item ids and Events.
    """
    entries = check_sequence(history, "history")
    events = []
    for n, entry in enumerate(entries):
        if isinstance(entry, str):
            events.append(Event(SESSION_USER, entry, kind="click", timestamp=float(n)))
        elif isinstance(entry, Event):
            events.append(entry)
        else:
            raise InvalidInputError(
                f"history[{n}] must be an item id (str) or an llmrec.Event, "
                f"got {type(entry).__name__}"
            )
    return events


def _session_profile(
    pipe: Pipeline, events: Sequence[Event], vectors: Mapping[str, Any]
) -> UserProfile:
    """The transient profile of validated ``events`` (under the lock)."""
    store = ProfileStore(
        pipe.profiles.dim, half_life=pipe.profiles.half_life, max_history=pipe.profiles.max_history
    )
    store.get_or_create(SESSION_USER)
    _changes.check_items_known(pipe, events)
    for event in events:
        # Every entry joins the one session, whoever the Event named.
        event = dataclasses.replace(event, user_id=SESSION_USER)
        _changes.apply_event(pipe, store, event, vectors.get(event.text) if event.text else None)
    return store.get(SESSION_USER)


def session_rank(
    pipe: Pipeline, history: Any, request: RecommendRequest
) -> tuple[list[Recommendation], dict[str, Item]]:
    """Rank for an anonymous session (see :meth:`llmrec.Pipeline.recommend_session`)."""
    events = _changes.check_events(pipe, session_events(history))
    vectors = _changes.text_vectors(pipe, events)
    with pipe._lock:
        profile = _session_profile(pipe, events, vectors)
    # Ranked outside this lock so the query is encoded unlocked; an item removed meanwhile
    # is skipped by the ranking as for any stored user.
    return _scoring.rank_profile(pipe, profile, request)


def similar_items(
    pipe: Pipeline, item_id: Any, request: RecommendRequest
) -> tuple[list[Recommendation], dict[str, Item]]:
    """The items most like ``item_id`` (see :meth:`llmrec.Pipeline.similar_items`)."""
    if not isinstance(item_id, str):
        raise InvalidInputError(f"item_id must be a str, got {type(item_id).__name__}")
    if item_id not in pipe.catalog:
        raise UnknownItemError(f"unknown item id {item_id!r:.80}: add it to the catalog first")
    return session_rank(pipe, [item_id], request)
