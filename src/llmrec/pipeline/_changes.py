"""Validating changes and applying them to a pipeline's state.

The live calls (:meth:`~llmrec.Pipeline.observe`, ...), the event-log replay and
:meth:`~llmrec.Pipeline.fit` apply events through these functions, so a replayed or refitted
event lands exactly as the live one did.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec._validate import check_instances, check_sequence, check_unicode
from llmrec.errors import (
    DuplicateItemError,
    InvalidEventError,
    InvalidInputError,
    UnknownItemError,
)
from llmrec.privacy import redact
from llmrec.profile import ProfileStore
from llmrec.types import RATING_SCALE, Event, Item

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = [
    "MAX_EVENT_WEIGHT",
    "add_items",
    "apply_event",
    "apply_events",
    "check_events",
    "check_item_list",
    "check_items_known",
    "drop_user",
    "remove_items",
    "text_vectors",
]

logger = logging.getLogger(__name__)

#: Largest accepted ``|Event.weight|`` (a rating far outside any scale would swamp, then
#: overflow, a float32 interest vector).
MAX_EVENT_WEIGHT = 1e6


def check_events(pipe: Pipeline, events: Iterable[Event]) -> list[Event]:
    """Validate events and bring them to their stored form (pseudonymized user id,
    redacted text). Nothing is changed."""
    events = check_instances(events, "events", Event, "an llmrec.Event")
    out = []
    for n, event in enumerate(events):
        if event.item_id is not None and event.item_id not in pipe.catalog:
            raise UnknownItemError(f"events[{n}] names unknown item id {event.item_id!r}")
        if not abs(event.weight) <= MAX_EVENT_WEIGHT:
            raise InvalidEventError(
                f"events[{n}] has weight {event.weight!r}, beyond "
                f"+-{MAX_EVENT_WEIGHT:g} (value {event.value!r})"
            )
        changes: dict[str, Any] = {}
        if pipe._pseudonymize is not None:
            changes["user_id"] = pipe._pseudonymize(event.user_id)
        if event.text is not None:
            text = redact(check_unicode(event.text, f"events[{n}].text"))
            if text != event.text:
                changes["text"] = text
        out.append(dataclasses.replace(event, **changes) if changes else event)
    _warn_off_scale(out)
    return out


def _warn_off_scale(events: Sequence[Event]) -> None:
    """One warning (logged and :mod:`warnings`) for ratings outside
    :data:`~llmrec.types.RATING_SCALE`: they are accepted, but a rating's weight is read on
    that scale, so a 10 counts far more than any 5 (a 0..10 or 0..100 scale needs
    converting first)."""
    low, high = RATING_SCALE
    off = [float(e.value) for e in events if e.kind == "rate" and e.value is not None]
    off = [value for value in off if not low <= value <= high]
    if not off:
        return
    message = (
        f"{len(off)} rating(s) outside the rating scale {low:g}..{high:g} (values such as "
        f"{', '.join(f'{v:g}' for v in sorted(set(off))[:3])}); ratings are read on that "
        "scale (3 is neutral), so convert other scales to it first"
    )
    logger.warning("%s", message)
    warnings.warn(message, UserWarning, stacklevel=4)


def check_items_known(pipe: Pipeline, events: Sequence[Event]) -> None:
    """Raise if an event names an item no longer in the catalog (under the lock: an item
    may have been removed since the events were validated)."""
    for event in events:
        if event.item_id is not None and event.item_id not in pipe.catalog:
            raise UnknownItemError(f"event names unknown item id {event.item_id!r}")


def text_vectors(pipe: Pipeline, events: Sequence[Event]) -> dict[str, np.ndarray]:
    """The encoded text of every query event, by text."""
    texts = sorted({e.text for e in events if e.kind == "query" and e.text})
    if not texts:
        return {}
    # User text is encoded without the encoder's cache: no vector of it outlives forget.
    return dict(zip(texts, pipe.encoder.encode_texts(texts, cache=False)))


def apply_event(
    pipe: Pipeline, store: ProfileStore, event: Event, text_vector: np.ndarray | None
) -> None:
    """Fold ``event`` into ``store`` (the pipeline's profiles, or a store being rebuilt)."""
    if event.item_id is None:
        store.observe(event, None, (), text_vector)
        return
    row = pipe.catalog.row(event.item_id)
    item = pipe.catalog.get(event.item_id)
    store.observe(event, pipe.retriever.item_vectors[row], item.tags, text_vector)


def apply_events(
    pipe: Pipeline, events: Sequence[Event], vectors: Mapping[str, np.ndarray]
) -> None:
    """Apply validated events to the profiles and to popularity (under the lock)."""
    for event in events:
        apply_event(
            pipe, pipe.profiles, event, vectors.get(event.text) if event.kind == "query" else None
        )
        if event.is_positive:
            pipe.retriever.record(pipe.catalog.row(event.item_id), event.weight)


def drop_user(pipe: Pipeline, uid: str) -> None:
    """Erase the stored user ``uid`` (under the lock)."""
    # The user's counted interactions leave popularity with them (those still in the
    # kept history; see docs/concepts.md).
    history = pipe.profiles.get(uid).history
    pipe.retriever.unrecord(
        [
            pipe.catalog.row(h.item_id)
            for h in history
            if h.is_positive and h.item_id in pipe.catalog
        ]
    )
    pipe.profiles.forget(uid)


def check_item_list(items: Iterable[Item]) -> list[Item]:
    """``items`` as a list, refusing records that are not Items yet (dicts, data frames,
    a file name) with the loader that turns them into Items."""
    if isinstance(items, (str, bytes)) or hasattr(items, "columns"):
        raise InvalidInputError(
            f"items must be a sequence of llmrec.Item, got {type(items).__name__}: " + _LOADERS
        )
    items = check_sequence(items, "items")
    for n, item in enumerate(items):
        if isinstance(item, Mapping):
            raise InvalidInputError(
                f"items[{n}] is a {type(item).__name__}, not an llmrec.Item: " + _LOADERS
            )
    return items


#: How records become Items, for the message refusing records that are not.
_LOADERS = (
    "use llmrec.Item.from_dict(d) for each dict, llmrec.from_pandas(df) for a data frame, "
    "or llmrec.datasets.read_items(path) for a .jsonl/.csv file"
)


def add_items(pipe: Pipeline, items: Iterable[Item]) -> None:
    """Insert or replace items, logged first (:meth:`~llmrec.Pipeline.add_items`)."""
    items = pipe.catalog.validate_new(check_item_list(items))
    if not items:
        return
    vectors = pipe.encoder.encode_items(items)
    pipe.retriever.check_vectors(vectors)
    with pipe._lock:
        ticket = pipe._journal.write("items", {"items": [item.to_dict() for item in items]})
        rows = pipe.catalog.upsert(items, validated=True)
        pipe.retriever.upsert(rows, vectors)
    pipe._journal.wait(ticket)


def remove_items(pipe: Pipeline, item_ids: Iterable[str]) -> None:
    """Remove items, all or none, logged first (:meth:`~llmrec.Pipeline.remove_items`)."""
    item_ids = check_sequence(item_ids, "item_ids")
    for n, item_id in enumerate(item_ids):
        if not isinstance(item_id, str):
            raise InvalidInputError(f"item_ids[{n}] must be a str, got {type(item_id).__name__}")
    if not item_ids:
        return
    with pipe._lock:
        pipe.catalog.rows(item_ids)  # unknown ids raise first
        if len(set(item_ids)) != len(item_ids):
            raise DuplicateItemError("an item id appears twice in the removal list")
        if len(pipe.catalog) - len(item_ids) < 1:
            raise InvalidInputError("removing these items would leave the catalog empty")
        ticket = pipe._journal.write("remove", {"item_ids": item_ids})
        rows = pipe.catalog.remove(item_ids)
        pipe.retriever.remove(rows)
    pipe._journal.wait(ticket)
