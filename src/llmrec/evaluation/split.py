"""The leave-one-out split: per-user train / valid / test items in protocol order.

See :mod:`llmrec.evaluation` for the protocol (positives, order, split, subsets,
fingerprint).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from llmrec._validate import check_choice
from llmrec.datasets import Dataset, event_sort_key, sort_events
from llmrec.errors import InvalidInputError
from llmrec.types import Event

__all__ = [
    "ML100K_SPLIT_FINGERPRINT",
    "RARE_ITEM_THRESHOLD",
    "SPLITS",
    "SUBSETS",
    "LeaveOneOutSplit",
    "check_split_name",
    "leave_one_out",
    "ordered_ids",
]

SPLITS = ("valid", "test")
SUBSETS = ("all", "no-ties", "rare-items")
#: An item with fewer training users than this is "rare" (subset ``"rare-items"``).
RARE_ITEM_THRESHOLD = 5
#: Split fingerprint of ML-100K (recbole 1.2.1 ``ml-100k.inter``) under this protocol.
ML100K_SPLIT_FINGERPRINT = "71411dd74c5e2a6a538875ac195c7976417d648d9ab086b11131e8751b42fec4"


def ordered_ids(ids: Iterable[str]) -> list[str]:
    """Ascending numeric order when every id is ASCII digits, else string order."""
    ids = list(ids)
    if all(i.isascii() and i.isdigit() for i in ids):
        return sorted(ids, key=lambda i: (int(i), i))
    return sorted(ids)


def check_split_name(split_name: str) -> str:
    """``split_name`` if it is one of :data:`SPLITS`."""
    return check_choice(split_name, "split_name", SPLITS, error=InvalidInputError)


@dataclass(repr=False)
class LeaveOneOutSplit:
    """A leave-one-out split; build it with :func:`leave_one_out`.

    Attributes:
        train: Each user's train items, chronological.
        valid: Each user's validation item (users with at least 3 events).
        test: Each user's test item (users with at least 2 events).
        items: The candidate universe: every distinct item of the events, ascending.
        valid_timestamps: Integer timestamp of each valid event.
        test_timestamps: Integer timestamp of each test event.
        user_events: Each user's de-duplicated events in protocol order (the original
            :class:`~llmrec.types.Event` objects): train, then valid, then test.
    """

    train: dict[str, list[str]]
    valid: dict[str, str]
    test: dict[str, str]
    items: list[str]
    valid_timestamps: dict[str, int] = field(default_factory=dict)
    test_timestamps: dict[str, int] = field(default_factory=dict)
    user_events: dict[str, list[Event]] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"LeaveOneOutSplit(users={len(self.train):,}, items={len(self.items):,}, "
            f"train={sum(map(len, self.train.values())):,}, valid={len(self.valid):,}, "
            f"test={len(self.test):,})"
        )

    @property
    def users(self) -> list[str]:
        """Every user, ascending (numeric when all ids are digits)."""
        return ordered_ids(self.train)

    def subset_users(self, subset: str = "all", split_name: str = "test") -> set[str]:
        """Users scored under ``subset`` (``"all"``, ``"no-ties"`` or ``"rare-items"``)
        when evaluating ``split_name``."""
        check_choice(subset, "subset", SUBSETS, error=InvalidInputError)
        if subset == "all":
            return set(self.train)
        if subset == "no-ties":
            return {
                u for u, ts in self.test_timestamps.items()
                if u in self.valid_timestamps and self.valid_timestamps[u] != ts
            }  # fmt: skip
        counts = self.item_counts(split_name)  # subset == "rare-items"
        held_out = self.test if check_split_name(split_name) == "test" else self.valid
        return {u for u, item in held_out.items() if counts.get(item, 0) < RARE_ITEM_THRESHOLD}

    def item_counts(self, split_name: str = "test") -> dict[str, int]:
        """Distinct users per item in the events a model may learn from for ``split_name``."""
        counts: dict[str, int] = {}
        for user in self.train:
            for item in self.history(user, split_name):
                counts[item] = counts.get(item, 0) + 1
        return counts

    def targets(self, split_name: str = "test", subset: str = "all") -> dict[str, str]:
        """Held-out item of each scored user of ``split_name``, in ascending user order."""
        held_out = self.test if check_split_name(split_name) == "test" else self.valid
        keep = self.subset_users(subset, split_name)
        return {u: held_out[u] for u in ordered_ids(held_out) if u in keep}

    def history(self, user_id: str, split_name: str = "test") -> list[str]:
        """Chronological items a model may read before predicting ``split_name``."""
        items = list(self.train.get(user_id, ()))
        if check_split_name(split_name) == "test" and user_id in self.valid:
            items.append(self.valid[user_id])
        return items

    def excluded(self, user_id: str, split_name: str = "test") -> set[str]:
        """Items that may not be recommended to ``user_id`` when scoring ``split_name``."""
        return set(self.history(user_id, split_name))

    def train_events(self) -> list[Event]:
        """Events of the train part, in canonical chronological order."""
        return self.events_for("valid")

    def events_for(self, split_name: str = "test") -> list[Event]:
        """Events a model may learn from before predicting ``split_name``, chronological.

        ``"valid"``: the train events. ``"test"``: the train and valid events.
        """
        check_split_name(split_name)
        out = []
        for user, events in self.user_events.items():
            n_seen = len(self.train.get(user, ()))
            if split_name == "test" and user in self.valid:
                n_seen += 1
            out.extend(events[:n_seen])
        return sort_events(out)

    def fingerprint(self) -> str:
        """SHA-256 over ``"user|train items comma-joined|valid|test\\n"``, users ascending."""
        digest = hashlib.sha256()
        for u in self.users:
            line = f"{u}|{','.join(self.train[u])}|{self.valid.get(u, '')}|{self.test.get(u, '')}\n"
            digest.update(line.encode())
        return digest.hexdigest()


def leave_one_out(events: Iterable[Event] | Dataset) -> LeaveOneOutSplit:
    """Split events per user into train / valid / test (see :mod:`llmrec.evaluation`).

    Args:
        events: Events (or a :class:`~llmrec.datasets.Dataset`); events without an item
            (queries) are ignored.

    Raises:
        InvalidInputError: There are no events with an item.
    """
    if isinstance(events, Dataset):
        events = events.events
    per_user: dict[str, list[Event]] = {}
    items: set[str] = set()
    for event in events:
        if not isinstance(event, Event):
            raise InvalidInputError(f"expected Event objects, got {type(event).__name__}")
        if event.item_id is None:
            continue
        per_user.setdefault(event.user_id, []).append(event)
        items.add(event.item_id)
    if not per_user:
        raise InvalidInputError("leave_one_out needs at least one event with an item")

    split = LeaveOneOutSplit(train={}, valid={}, test={}, items=ordered_ids(items))
    for user in ordered_ids(per_user):
        seen: set[str] = set()
        chronological = []
        for event in sorted(per_user[user], key=event_sort_key):
            if event.item_id not in seen:  # a repeated (user, item) keeps its first event
                seen.add(event.item_id)  # type: ignore[arg-type]
                chronological.append(event)
        seq = [e.item_id for e in chronological]
        n = len(seq)
        if n >= 3:
            split.train[user], split.valid[user], split.test[user] = seq[:-2], seq[-2], seq[-1]
            split.valid_timestamps[user] = int(chronological[-2].timestamp)
            split.test_timestamps[user] = int(chronological[-1].timestamp)
        elif n == 2:
            split.train[user], split.test[user] = seq[:1], seq[1]
            split.test_timestamps[user] = int(chronological[-1].timestamp)
        else:
            split.train[user] = seq
        split.user_events[user] = chronological
    return split
