"""The :class:`Dataset` container and the canonical event order.

Every reader returns a :class:`Dataset` whose events are in the canonical order
(see :func:`event_sort_key`): ascending integer timestamp, ties broken by
:func:`tie_key`, the SHA-256 hex digest of ``"user_id\\titem_id"``. Because the key of an
event only depends on its own user, item and timestamp, the global order restricted to one
user is exactly that user's order under the evaluation protocol
(:mod:`llmrec.evaluation`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrec._validate import check_int
from llmrec.errors import InvalidInputError
from llmrec.types import Event, Item

__all__ = ["Dataset", "core_filter", "dataset_stats", "event_sort_key", "sort_events", "tie_key"]

logger = logging.getLogger(__name__)


def tie_key(user_id: str, item_id: str) -> str:
    """Tie-break between events of one user with the same integer timestamp.

    Returns the lowercase hex SHA-256 of ``"user_id\\titem_id"`` (raw id strings, UTF-8).
    A hash carries no information about the items, unlike ordering by item id, which would
    let sequential models learn which of two same-second items comes last.
    """
    return hashlib.sha256(f"{user_id}\t{item_id}".encode()).hexdigest()


def event_sort_key(event: Event) -> tuple[int, str]:
    """Canonical sort key of an event: ``(int(timestamp), tie_key(user_id, item_id))``."""
    return int(event.timestamp), tie_key(event.user_id, event.item_id or "")


def sort_events(events: Iterable[Event]) -> list[Event]:
    """Events sorted by :func:`event_sort_key` (stable: equal keys keep their input order)."""
    return sorted(events, key=event_sort_key)


@dataclass
class Dataset:
    """A MovieLens-style dataset in llmrec types.

    Attributes:
        name: Dataset name, e.g. ``"ml-100k"``.
        items: Catalog entries; ``attributes`` hold ``genres`` (list of str) and, when
            known, ``year`` (int). Titles are kept exactly as the source gives them.
        events: One ``kind="rate"`` :class:`~llmrec.types.Event` per rating row (a
            ``"click"`` when the source has no rating), sorted by :func:`event_sort_key`.
        users: Optional user attributes keyed by user id (age, gender, occupation, ...).
        source: The format read: ``"grouplens"``, ``"recbole"``, ``"ml-latest"`` or ``""``.
        path: The directory read, when it came from disk.
    """

    name: str
    items: list[Item] = field(repr=False)
    events: list[Event] = field(repr=False)
    users: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    source: str = ""
    path: Path | None = None

    def interactions(self) -> list[tuple[str, str, float]]:
        """``(user_id, item_id, timestamp)`` for every event, in event order."""
        return [(e.user_id, e.item_id or "", e.timestamp) for e in self.events]

    def item_map(self) -> dict[str, Item]:
        """Items keyed by id."""
        return {item.item_id: item for item in self.items}

    @property
    def user_ids(self) -> list[str]:
        """Distinct user ids in order of first appearance in :attr:`events`."""
        return list(dict.fromkeys(e.user_id for e in self.events))

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, items={len(self.items):,}, events={len(self.events):,}, "
            f"users={len(self.user_ids):,}, source={self.source!r})"
        )


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Summary counts of a dataset (users, items, events, density, events per user)."""
    per_user: dict[str, int] = {}
    for e in ds.events:
        per_user[e.user_id] = per_user.get(e.user_id, 0) + 1
    interacted = {e.item_id for e in ds.events}
    counts = sorted(per_user.values())
    n_items = len({i.item_id for i in ds.items} | interacted)
    stats: dict[str, Any] = {
        "name": ds.name,
        "users": len(per_user),
        "items": len(ds.items),
        "items_with_events": len(interacted),
        "events": len(ds.events),
        "density": len(ds.events) / (len(per_user) * n_items) if per_user and n_items else 0.0,
    }
    if counts:
        stats.update(
            events_per_user_min=counts[0],
            events_per_user_median=statistics.median(counts),
            events_per_user_max=counts[-1],
            first_timestamp=min(e.timestamp for e in ds.events),
            last_timestamp=max(e.timestamp for e in ds.events),
        )
    return stats


def core_filter(ds: Dataset, min_interactions: int) -> Dataset:
    """The iterative ``min_interactions``-core of ``ds`` (e.g. 5-core, as LlamaRec filters).

    Users with fewer than ``min_interactions`` events and items with fewer than
    ``min_interactions`` events are removed, repeatedly, until every remaining user and
    item has at least that many; the catalog keeps only the items that remain. Event
    order is unchanged; item-less events (queries) do not count and stay with their user.
    ``min_interactions`` 0 or 1 returns ``ds`` itself.

    Raises:
        InvalidInputError: ``min_interactions`` is not an int >= 0.
    """
    k = check_int(min_interactions, "min_interactions", low=0, error=InvalidInputError)
    if k <= 1:
        return ds
    events = [e for e in ds.events if e.item_id is not None]
    rounds = 0
    while True:
        rounds += 1
        users = Counter(e.user_id for e in events)
        items = Counter(e.item_id for e in events)
        kept = [e for e in events if users[e.user_id] >= k and items[e.item_id] >= k]
        if len(kept) == len(events):
            break
        events = kept
    item_ids = {e.item_id for e in events}
    user_ids = {e.user_id for e in events}
    kept_ids = {id(e) for e in events}
    # Item-less events (queries) of the remaining users stay, in their place.
    events = [
        e for e in ds.events if id(e) in kept_ids or (e.item_id is None and e.user_id in user_ids)
    ]
    out = dataclasses.replace(
        ds,
        items=[item for item in ds.items if item.item_id in item_ids],
        events=events,
        users={u: a for u, a in ds.users.items() if u in user_ids},
    )
    logger.info("%d-core of %s after %d rounds: %r", k, ds.name, rounds, out)
    return out
