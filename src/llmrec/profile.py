"""Real-time user profiles: ordered history, decayed interest vector, tag affinities."""

from __future__ import annotations

import json
import math
import threading
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmrec._validate import check_float, check_int
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError, UnknownUserError
from llmrec.storage.io import MAX_DIM, load_array, read_lines, save_array
from llmrec.types import LIKED_WEIGHT, Event, check_id

__all__ = ["HistoryEntry", "ProfileStore", "UserProfile"]


#: Bounds on a loaded store's settings: a longer half-life no longer decays in float64,
#: and a longer history is not a setting anyone saves.
MAX_HALF_LIFE = 1e12
MAX_HISTORY = 1 << 24


@dataclass(frozen=True)
class HistoryEntry:
    """One item event in a user's history.

    Attributes:
        item_id: The item acted on.
        kind: The event kind.
        weight: The event's signed weight (:attr:`llmrec.Event.weight`).
        timestamp: When it happened.
    """

    item_id: str
    kind: str
    weight: float
    timestamp: float

    @property
    def is_positive(self) -> bool:
        """Whether the recorded event was positive (:attr:`llmrec.Event.is_positive`: an
        item event of weight > 0)."""
        return self.weight > 0

    @property
    def is_liked(self) -> bool:
        """Whether the recorded event says the user liked the item
        (:attr:`llmrec.Event.is_liked`: weight >= :data:`~llmrec.types.LIKED_WEIGHT`)."""
        return self.weight >= LIKED_WEIGHT


@dataclass
class UserProfile:
    """Everything llmrec knows about one user.

    Attributes:
        user_id: The user's id.
        history: Item events, oldest first, at most ``max_history`` kept.
        interest: Exponentially decayed, weight-signed sum of the vectors of items the
            user acted on (not normalized); ``None`` before the first item event.
        tag_affinity: Decayed signed weight per tag (genre) of the items acted on.
        stated_preferences: Free text the user gave (queries, stated tastes), newest last.
        preference_vector: Mean vector of the stated preferences, or ``None``.
        seen: Ids of every item the user acted on (for ``exclude_seen``).
        n_events: Events observed in total.
    """

    user_id: str
    max_history: int = 500
    history: deque[HistoryEntry] = field(default_factory=deque)
    interest: np.ndarray | None = None
    tag_affinity: dict[str, float] = field(default_factory=dict)
    stated_preferences: list[str] = field(default_factory=list)
    preference_vector: np.ndarray | None = None
    seen: set[str] = field(default_factory=set)
    n_events: int = 0
    last_timestamp: float | None = None

    def __post_init__(self) -> None:
        self.history = deque(self.history, maxlen=self.max_history)

    def recent_items(
        self, n: int | None = None, *, positive_only: bool = True, liked_only: bool = False
    ) -> list[str]:
        """Most recent distinct item ids, newest first: only positive events' items unless
        ``positive_only=False``; only liked ones (:attr:`HistoryEntry.is_liked`) with
        ``liked_only=True``."""
        out: list[str] = []
        seen: set[str] = set()
        for entry in reversed(self.history):
            if (positive_only and not entry.is_positive) or (liked_only and not entry.is_liked):
                continue
            if entry.item_id not in seen:
                seen.add(entry.item_id)
                out.append(entry.item_id)
                if n is not None and len(out) >= n:
                    break
        return out

    def query_vector(self) -> np.ndarray | None:
        """Unit vector combining interest and stated preferences, or ``None`` if empty."""
        parts = []
        if self.interest is not None:
            norm = float(np.linalg.norm(self.interest))
            if norm > 1e-12:
                parts.append(self.interest / norm)
        if self.preference_vector is not None:
            parts.append(self.preference_vector)
        if not parts:
            return None
        combined = np.sum(parts, axis=0)
        norm = float(np.linalg.norm(combined))
        return None if norm < 1e-12 else (combined / norm).astype(np.float32)


class ProfileStore:
    """Thread-safe map of user id to :class:`UserProfile`.

    Args:
        dim: Item vector dimension.
        half_life: Events after which an old event counts half as much in the interest
            vector and tag affinities (count-based, so bursty timestamps do not matter).
        max_history: History entries kept per user.
    """

    def __init__(self, dim: int, *, half_life: float = 20.0, max_history: int = 500) -> None:
        dim = check_int(dim, "dim", low=1)
        half_life = check_float(half_life, "half_life", low=0, low_open=True)
        if not math.isfinite(half_life):  # an infinite half-life would never decay
            raise ConfigError(f"half_life must be a finite positive number, got {half_life!r}")
        max_history = check_int(max_history, "max_history", low=1)
        self.dim = dim
        self.half_life = half_life
        self.max_history = max_history
        self._decay = 0.5 ** (1.0 / self.half_life)
        self._profiles: dict[str, UserProfile] = {}
        # item id -> users whose kept history has a liked event on it; built on first
        # use (:meth:`likers`), then kept current by every change below.
        self._likers: dict[str, set[str]] | None = None
        self.lock = threading.RLock()

    def __len__(self) -> int:
        return len(self._profiles)

    def __contains__(self, user_id: object) -> bool:
        return user_id in self._profiles

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._profiles))

    def get(self, user_id: str) -> UserProfile:
        """Return the profile, or raise :class:`UnknownUserError`."""
        try:
            return self._profiles[user_id]
        except (KeyError, TypeError):
            raise UnknownUserError(
                f"unknown user id {user_id!r}: observe an event or call add_user first"
            ) from None

    def get_or_create(self, user_id: str) -> UserProfile:
        check_id(user_id, "user_id")
        with self.lock:
            profile = self._profiles.get(user_id)
            if profile is None:
                profile = UserProfile(user_id, max_history=self.max_history)
                self._profiles[user_id] = profile
            return profile

    def observe(
        self,
        event: Event,
        item_vector: np.ndarray | None,
        item_tags: Sequence[str] = (),
        text_vector: np.ndarray | None = None,
    ) -> UserProfile:
        """Fold one validated event into its user's profile (creating it if needed).

        Args:
            event: The event.
            item_vector: The acted-on item's unit vector (``None`` for a pure query).
            item_tags: The item's tags.
            text_vector: The encoded ``event.text`` for query events.
        """
        # A non-finite entry makes the squared norm non-finite (a cheaper test per event).
        if item_vector is not None and (
            item_vector.shape != (self.dim,) or not math.isfinite(float(item_vector @ item_vector))
        ):
            raise InvalidInputError(
                f"item vector for {event.item_id!r} is not a finite ({self.dim},) vector"
            )
        with self.lock:
            profile = self._profiles.get(event.user_id)  # an Event's ids are checked
            if profile is None:
                profile = self.get_or_create(event.user_id)
            weight = event.weight
            profile.n_events += 1
            profile.last_timestamp = event.timestamp
            if event.kind == "query":
                if event.text:
                    profile.stated_preferences = (profile.stated_preferences + [event.text])[-5:]
                if text_vector is not None:
                    prev = profile.preference_vector
                    combined = text_vector if prev is None else 0.5 * prev + 0.5 * text_vector
                    profile.preference_vector = (
                        combined / max(np.linalg.norm(combined), 1e-12)
                    ).astype(np.float32)
                return profile
            assert event.item_id is not None
            full = len(profile.history) == profile.history.maxlen
            dropped = profile.history[0] if full and profile.history else None
            entry = HistoryEntry(event.item_id, event.kind, weight, event.timestamp)
            profile.history.append(entry)
            self._update_likers(profile, entry, dropped)
            profile.seen.add(event.item_id)
            if item_vector is not None:
                if profile.interest is None:
                    profile.interest = np.zeros(self.dim, dtype=np.float32)
                profile.interest *= self._decay
                profile.interest += weight * item_vector
            if item_tags:
                for tag in list(profile.tag_affinity):
                    profile.tag_affinity[tag] *= self._decay
                for tag in item_tags:
                    profile.tag_affinity[tag] = profile.tag_affinity.get(tag, 0.0) + weight
            return profile

    def _update_likers(
        self, profile: UserProfile, added: HistoryEntry, dropped: HistoryEntry | None
    ) -> None:
        """Keep :meth:`likers` current after ``added`` entered and ``dropped`` (if any) left
        ``profile``'s history (under the lock)."""
        if self._likers is None:
            return
        if added.is_liked:
            self._likers.setdefault(added.item_id, set()).add(profile.user_id)
        if dropped is not None and dropped.is_liked:
            still = any(h.is_liked and h.item_id == dropped.item_id for h in profile.history)
            if not still:
                self._likers.get(dropped.item_id, set()).discard(profile.user_id)

    def likers(self) -> Mapping[str, set[str]]:
        """item id -> ids of the users whose kept history holds a liked event on it
        (:attr:`HistoryEntry.is_liked`: a click, like, purchase or 4-5 star rating; the
        people of "liked by 41% of the 230 people who liked Fargo").

        Built on first use, then updated by every change, so a caller pays a scan of the
        profiles once rather than per request. The mapping is live: read it under
        :attr:`lock` (or the pipeline's lock, which orders every change) and do not
        modify it.
        """
        with self.lock:
            if self._likers is None:
                index: dict[str, set[str]] = {}
                for user_id, profile in self._profiles.items():
                    for entry in profile.history:
                        if entry.is_liked:
                            index.setdefault(entry.item_id, set()).add(user_id)
                self._likers = index
            return self._likers

    def forget(self, user_id: str) -> None:
        """Erase everything stored about ``user_id``."""
        with self.lock:
            profile = self.get(user_id)
            del self._profiles[user_id]
            if self._likers is not None:
                for entry in profile.history:
                    self._likers.get(entry.item_id, set()).discard(user_id)

    def clear(self) -> None:
        """Erase every profile."""
        with self.lock:
            self._profiles.clear()
            self._likers = None

    def replace_with(self, other: ProfileStore) -> None:
        """Take every profile of ``other`` in place of this store's own (``other`` is left
        to be discarded: the profiles are shared, not copied).

        Raises:
            ConfigError: ``other`` holds vectors of another dimension.
        """
        if not isinstance(other, ProfileStore):
            raise ConfigError(f"replace_with needs a ProfileStore, got {type(other).__name__}")
        if other.dim != self.dim:
            raise ConfigError(
                f"replace_with needs a ProfileStore of dim {self.dim}, got dim {other.dim}"
            )
        with self.lock, other.lock:
            self._profiles = dict(other._profiles)
            self._likers = None

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with self.lock:
            users = list(self._profiles.values())
            interest = np.zeros((len(users), self.dim), dtype=np.float32)
            preference = np.zeros((len(users), self.dim), dtype=np.float32)
            with open(path / "profiles.jsonl", "w", encoding="utf-8") as f:
                for n, p in enumerate(users):
                    if p.interest is not None:
                        interest[n] = p.interest
                    if p.preference_vector is not None:
                        preference[n] = p.preference_vector
                    f.write(
                        json.dumps(
                            {
                                "user_id": p.user_id,
                                "history": [
                                    [h.item_id, h.kind, h.weight, h.timestamp] for h in p.history
                                ],
                                "has_interest": p.interest is not None,
                                "has_preference": p.preference_vector is not None,
                                "tag_affinity": p.tag_affinity,
                                "stated_preferences": p.stated_preferences,
                                "seen": sorted(p.seen),
                                "n_events": p.n_events,
                                "last_timestamp": p.last_timestamp,
                            },
                            ensure_ascii=False,
                        )
                        + "\n"
                    )
            save_array(path / "interest.npy", interest)
            save_array(path / "preference.npy", preference)
        return {
            "dim": self.dim,
            "half_life": self.half_life,
            "max_history": self.max_history,
            "count": len(users),
        }

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> ProfileStore:
        path = Path(path)
        where = "components.profiles"
        store = cls(
            check_int(config["dim"], f"{where}.dim", low=1, high=MAX_DIM, error=PersistenceError),
            half_life=check_float(
                config["half_life"],
                f"{where}.half_life",
                low=0.0,
                low_open=True,
                high=MAX_HALF_LIFE,
                error=PersistenceError,
            ),
            max_history=check_int(
                config["max_history"],
                f"{where}.max_history",
                low=1,
                high=MAX_HISTORY,
                error=PersistenceError,
            ),
        )
        count = check_int(config.get("count"), f"{where}.count", low=0, error=PersistenceError)
        interest = load_array(path / "interest.npy", dtype=np.float32, ndim=2)
        preference = load_array(path / "preference.npy", dtype=np.float32, ndim=2)
        for array in (interest, preference):
            if array.shape != (count, store.dim) or not np.isfinite(array).all():
                raise PersistenceError(
                    f"profile vectors in {str(path)!r} are not {count} finite rows of "
                    f"dim {store.dim} (got shape {array.shape})"
                )
        try:
            records = list(read_lines(path / "profiles.jsonl"))
            if len(records) != count:
                raise ValueError("record count does not match the arrays")
            for n, r in enumerate(records):
                p = UserProfile(
                    r["user_id"],
                    max_history=store.max_history,
                    history=deque(HistoryEntry(*h) for h in r["history"]),
                    interest=interest[n].copy() if r["has_interest"] else None,
                    tag_affinity={str(k): float(v) for k, v in r["tag_affinity"].items()},
                    stated_preferences=list(r["stated_preferences"]),
                    preference_vector=preference[n].copy() if r["has_preference"] else None,
                    seen=set(r["seen"]),
                    n_events=int(r["n_events"]),
                    last_timestamp=r["last_timestamp"],
                )
                store._profiles[p.user_id] = p
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise PersistenceError(f"corrupt profiles in {str(path)!r}: {exc}") from None
        return store
