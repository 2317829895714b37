"""Pipeline: the object applications use. Owns a catalog, an encoder, profiles, a
retriever, a ranker and a content generator, and keeps them consistent."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from llmrec._validate import check_vectors
from llmrec.catalog import Catalog
from llmrec.device import DeviceLike, resolve_device
from llmrec.encoding import ItemEncoder
from llmrec.errors import (
    BackendUnavailableError,
    ConfigError,
    DeviceError,
    DuplicateItemError,
    InvalidEventError,
    InvalidInputError,
    LLMRecError,
    PersistenceError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.privacy import Pseudonymizer, redact
from llmrec.profile import ProfileStore, UserProfile
from llmrec.ranking import Ranker
from llmrec.registry import accepts_keyword, get_backend
from llmrec.retrieval import Retriever
from llmrec.storage.eventlog import EventLog, LogRecord
from llmrec.storage.io import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    atomic_directory,
    check_path,
    file_digests,
    read_manifest,
    verify_files,
    write_json,
)
from llmrec.types import Event, Explanation, GeneratedText, Item, Recommendation, check_id

__all__ = ["Filters", "Pipeline"]

logger = logging.getLogger(__name__)

#: ``filters`` is a predicate on items, or a mapping ``attribute -> allowed value(s)``.
Filters = Callable[[Item], bool] | Mapping[str, Any]

TAG_FEATURE = "tag_affinity"
#: Trainable candidate sources ``models="auto"`` adds on catalogs up to 20k items.
AUTO_MODELS: tuple[str, ...] = ("ease", "sequential")
#: Largest accepted ``|Event.weight|`` (a rating far outside any scale would swamp, then
#: overflow, a float32 interest vector).
MAX_EVENT_WEIGHT = 1e6


def _versions() -> dict[str, str]:
    out = {}
    for name in ("llmrec", "torch", "transformers", "numpy", "hnswlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k <= 0:
        raise InvalidInputError(f"k must be a positive int, got {k!r}")
    return int(k)


def _as_list(values: Any, what: str) -> list[Any]:
    if isinstance(values, (str, bytes, Mapping)):
        raise InvalidInputError(f"{what} must be a sequence, not a {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise InvalidInputError(f"{what} must be iterable, got {type(values).__name__}") from None


def _options(options: Any, what: str) -> dict[str, Any]:
    """Keyword options as a dict, or a ConfigError naming what is wrong with them."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{what} must be a mapping, got {type(options).__name__}")
    bad = [key for key in options if not isinstance(key, str) or not key.isidentifier()]
    if bad:
        raise ConfigError(f"{what} keys must be argument names, got {bad[0]!r:.60}")
    return dict(options)


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{what} must be a bool, got {value!r:.60}")
    return bool(value)


def _check_text(text: str, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{what} is not valid Unicode (lone surrogates)") from None
    return text


def _attribute_matches(value: Any, allowed: Any) -> bool:
    allowed_set = set(allowed) if isinstance(allowed, (list, tuple, set, frozenset)) else {allowed}
    if isinstance(value, (list, tuple, set)):
        return bool(allowed_set.intersection(value))
    return value in allowed_set


class Pipeline:
    """Personalized recommendations with personalized, grounded text.

    Build one with :meth:`from_catalog` or :meth:`from_pretrained`. All public methods are
    safe to call from several threads and (through the ``a``-prefixed variants) from
    asyncio; an observed event is visible to the next :meth:`recommend` of that user.
    With :meth:`open_event_log` every change is logged before it is applied, so a crash
    loses nothing that was acknowledged.

    Args:
        catalog: The items.
        encoder: Encodes item and query text.
        retriever: Candidate sources and the vector index (vectors already added).
        ranker: The candidate scorer.
        profiles: User profiles.
        llm: The generator backend name (``"default"``, ``"transformers"``,
            ``"template"``, ...) or a ready :class:`~llmrec.generation.ContentGenerator`;
            the model loads on first use.
        llm_options: Passed to the :class:`~llmrec.generation.ContentGenerator`.
        device: Where models run.
        pseudonymize_key: A secret (bytes, >= 16): user ids are replaced by their keyed
            HMAC-SHA256 at every public method, so profiles, saves, logs and prompts never
            hold a raw id. Pass the same key to :meth:`from_pretrained`.
    """

    def __init__(
        self,
        catalog: Catalog,
        encoder: ItemEncoder,
        retriever: Retriever,
        ranker: Ranker,
        profiles: ProfileStore,
        *,
        llm: Any = "default",
        llm_options: Mapping[str, Any] | None = None,
        device: DeviceLike = "auto",
        pseudonymize_key: bytes | None = None,
    ) -> None:
        for name, value, cls in (("catalog", catalog, Catalog), ("encoder", encoder, ItemEncoder),
                                 ("retriever", retriever, Retriever), ("ranker", ranker, Ranker),
                                 ("profiles", profiles, ProfileStore)):
            if not isinstance(value, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
        if not isinstance(llm, str) and not hasattr(llm, "generate"):
            raise ConfigError(f"llm must be a backend name or a ContentGenerator, got {llm!r:.80}")
        llm_options = _options(llm_options, "llm_options")
        self._pseudonymize = None if pseudonymize_key is None else Pseudonymizer(pseudonymize_key)
        self.catalog = catalog
        self.encoder = encoder
        self.retriever = retriever
        self.ranker = ranker
        self.profiles = profiles
        self.device = resolve_device(device)
        self._llm = llm
        self._llm_options = dict(llm_options or {})
        self._generator: Any = None if isinstance(llm, str) else llm
        # One lock orders every change and every ranking: the order in which changes
        # are applied is the order in which they are logged (see docs/concepts.md).
        self._lock = threading.RLock()
        self._generator_lock = threading.Lock()
        self.event_log: EventLog | None = None
        self._log_id: str | None = None
        self._log_sequence = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_catalog(
        cls,
        items: Iterable[Item],
        *,
        encoder: Any = "default",
        index: Any = "auto",
        llm: Any = "default",
        device: DeviceLike = "auto",
        diversity: float = 0.0,
        n_candidates: int = 200,
        half_life: float = 20.0,
        models: Any = "auto",
        encoder_options: Mapping[str, Any] | None = None,
        llm_options: Mapping[str, Any] | None = None,
        show_progress: bool = True,
        pseudonymize_key: bytes | None = None,
        item_vectors: Any = None,
    ) -> Pipeline:
        """Encode ``items`` and build a ready pipeline with the embedded defaults.

        Args:
            items: The catalog; at least one item, unique ids.
            encoder: Encoder backend name (``"default"`` = all-MiniLM-L6-v2,
                ``"transformers"`` with ``encoder_options={"model": ...}``, ``"hashing"``)
                or an :class:`~llmrec.encoding.EncoderBackend`.
            index: ``"auto"``, ``"exact"``, ``"hnsw"`` or an index backend.
            llm: ``"default"`` (embedded SmolLM2-135M-Instruct), ``"transformers"`` with
                ``llm_options={"model": ...}``, ``"template"`` (no model), or a
                :class:`~llmrec.generation.ContentGenerator`.
            device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (see :func:`llmrec.resolve_device`).
            diversity: Default MMR trade-off in [0, 1).
            n_candidates: Candidates proposed by each source per request.
            half_life: Events after which an old event's weight in a profile halves.
            models: Trainable candidate sources fitted by :meth:`fit`: names
                (``"ease"``, ``"sequential"``) or instances; ``"auto"`` picks
                :data:`AUTO_MODELS` for catalogs up to 20k items and none above.
            show_progress: Show progress bars on long work.
            pseudonymize_key: See :class:`Pipeline`.
            item_vectors: ``(len(items), dim)`` vectors already made by this encoder (for
                example by :func:`llmrec.apps.ray.encode_catalog`); the catalog is then
                not encoded again.
        """
        items = _as_list(items, "items")
        if not items:
            raise InvalidInputError("the catalog is empty: from_catalog needs at least one item")
        encoder_options = _options(encoder_options, "encoder_options")
        llm_options = _options(llm_options, "llm_options")
        show_progress = _flag(show_progress, "show_progress")
        if isinstance(models, str) and models == "auto":
            models = AUTO_MODELS if len(items) <= 20_000 else ()
        models = (models,) if isinstance(models, str) else _as_list(models, "models")
        if pseudonymize_key is not None:
            Pseudonymizer(pseudonymize_key)  # fail before the encoding work
        catalog = Catalog()
        items = catalog.validate_new(items)
        device = resolve_device(device)
        item_encoder = ItemEncoder(encoder, device=device, show_progress=show_progress,
                                   **encoder_options)
        if item_vectors is None:
            vectors = item_encoder.encode_items(items)
        else:
            try:
                vectors = check_vectors(item_vectors, item_encoder.dim, "item_vectors")
            except (TypeError, ValueError) as exc:
                if isinstance(exc, LLMRecError):
                    raise
                raise InvalidInputError(f"item_vectors must be a float array: {exc}") from None
            if len(vectors) != len(items):
                raise InvalidInputError(f"item_vectors has {len(vectors)} rows for "
                                        f"{len(items)} items")
        rows = catalog.upsert(items, validated=True)
        retriever = Retriever(item_encoder.dim, index=index, n_items_hint=len(items),
                              n_candidates=n_candidates, device=device)
        retriever.upsert(rows, vectors)
        for model in models:
            options: dict[str, Any] = {}
            if isinstance(model, str) and accepts_keyword(get_backend("models", model), "device"):
                options["device"] = device  # models named here follow the pipeline's device
            retriever.add_model(model, **options)
        ranker = Ranker(retriever.feature_names + (TAG_FEATURE,), diversity=diversity)
        profiles = ProfileStore(item_encoder.dim, half_life=half_life)
        return cls(catalog, item_encoder, retriever, ranker, profiles, llm=llm,
                   llm_options=llm_options, device=device, pseudonymize_key=pseudonymize_key)

    @property
    def generator(self) -> Any:
        """The :class:`~llmrec.generation.ContentGenerator` (its model loads on first use)."""
        if self._generator is None:
            with self._generator_lock:
                if self._generator is None:
                    from llmrec.generation import ContentGenerator

                    try:
                        self._generator = ContentGenerator(
                            self._llm, catalog=self.catalog, device=self.device,
                            **self._llm_options)
                    except TypeError as exc:
                        raise ConfigError(f"bad llm_options {self._llm_options!r:.200}: "
                                          f"{exc}") from None
        return self._generator

    # ------------------------------------------------------------------ API boundary
    def _user(self, user_id: Any) -> str:
        """The stored id of ``user_id``: itself, or its keyed pseudonym."""
        check_id(user_id, "user_id")
        return user_id if self._pseudonymize is None else self._pseudonymize(user_id)

    def _unknown_user(self, user_id: str) -> UnknownUserError:
        # Named by the caller's id, not by its pseudonym.
        return UnknownUserError(
            f"unknown user id {user_id!r}: observe an event or call add_user first")

    def _check_events(self, events: Iterable[Event]) -> list[Event]:
        """Validate events and bring them to their stored form (pseudonymized user id,
        redacted text). Nothing is changed."""
        if isinstance(events, Event):
            raise InvalidInputError("events must be a sequence of events, not a single Event")
        events = _as_list(events, "events")
        out = []
        for n, event in enumerate(events):
            if not isinstance(event, Event):
                raise InvalidInputError(f"events[{n}] must be an llmrec.Event, got {type(event).__name__}")
            if event.item_id is not None and event.item_id not in self.catalog:
                raise UnknownItemError(f"events[{n}] names unknown item id {event.item_id!r}")
            if not abs(event.weight) <= MAX_EVENT_WEIGHT:
                raise InvalidEventError(f"events[{n}] has weight {event.weight!r}, beyond "
                                        f"+-{MAX_EVENT_WEIGHT:g} (value {event.value!r})")
            changes: dict[str, Any] = {}
            if self._pseudonymize is not None:
                changes["user_id"] = self._pseudonymize(event.user_id)
            if event.text is not None:
                text = redact(_check_text(event.text, f"events[{n}].text"))
                if text != event.text:
                    changes["text"] = text
            out.append(dataclasses.replace(event, **changes) if changes else event)
        return out

    def _text_vectors(self, events: Sequence[Event]) -> dict[str, np.ndarray]:
        texts = sorted({e.text for e in events if e.kind == "query" and e.text})
        if not texts:
            return {}
        # User text is encoded without the encoder's cache: no vector of it outlives forget.
        return dict(zip(texts, self.encoder.encode_texts(texts, cache=False)))

    # ------------------------------------------------------------------ applying changes
    # Every change goes through _write_log (under the lock, before it is applied) and
    # _wait_log (after the lock is released): the log's order is the order of application,
    # and concurrent writers share one disk sync.
    def _write_log(self, op: str, data: Mapping[str, Any]) -> tuple[EventLog, int] | None:
        log = self.event_log
        if log is None:
            return None
        seq = log.write(op, data, wait=False)
        self._log_sequence = seq
        return log, seq

    @staticmethod
    def _wait_log(ticket: tuple[EventLog, int] | None) -> None:
        if ticket is not None:
            ticket[0].wait(ticket[1])

    def _apply(self, store: ProfileStore, event: Event, text_vector: np.ndarray | None) -> None:
        if event.item_id is None:
            store.observe(event, None, (), text_vector)
            return
        row = self.catalog.row(event.item_id)
        item = self.catalog.get(event.item_id)
        store.observe(event, self.retriever.item_vectors[row], item.tags, text_vector)

    def _apply_events(self, events: Sequence[Event], vectors: Mapping[str, np.ndarray]) -> None:
        for event in events:
            self._apply(self.profiles, event,
                        vectors.get(event.text) if event.kind == "query" else None)
            if event.item_id is not None and event.kind != "query":
                self.retriever.record(self.catalog.row(event.item_id), event.weight)

    def _commit_events(self, events: list[Event]) -> None:
        if not events:
            return
        vectors = self._text_vectors(events)
        with self._lock:
            for event in events:  # an item may have been removed since validation
                if event.item_id is not None and event.item_id not in self.catalog:
                    raise UnknownItemError(f"event names unknown item id {event.item_id!r}")
            ticket = self._write_log("events", {"events": [e.to_dict() for e in events]})
            self._apply_events(events, vectors)
        self._wait_log(ticket)

    # ------------------------------------------------------------------ events
    def observe(self, event: Event) -> None:
        """Fold one event into its user's profile; visible to the next :meth:`recommend`.

        With an event log open, the event is logged first and ``observe`` returns at the
        log's durability point.

        Raises:
            InvalidInputError: ``event`` is not an :class:`~llmrec.Event`.
            UnknownItemError: it names an item that is not in the catalog.
            PersistenceError: the event log could not be written (nothing changed).
        """
        if not isinstance(event, Event):
            raise InvalidInputError(f"event must be an llmrec.Event, got {type(event).__name__}")
        self._commit_events(self._check_events([event]))

    def observe_many(self, events: Iterable[Event]) -> None:
        """Observe events in order: all are validated before any is applied, and they are
        logged as one record (a crash keeps all of them or none)."""
        self._commit_events(self._check_events(events))

    def add_user(self, user_id: str, preferences: str | None = None) -> None:
        """Create a (cold) user, optionally from a free-text statement of taste."""
        check_id(user_id, "user_id")
        if preferences is not None:
            self._commit_events(self._check_events(
                [Event(user_id=user_id, kind="query", text=preferences)]))
            return
        uid = self._user(user_id)
        with self._lock:
            if uid in self.profiles:
                return
            ticket = self._write_log("user", {"user_id": uid})
            self.profiles.get_or_create(uid)
        self._wait_log(ticket)

    def profile(self, user_id: str) -> UserProfile:
        """The user's profile (raises :class:`~llmrec.UnknownUserError` if absent).

        The object is live: it changes as events arrive; read it, do not modify it.
        """
        uid = self._user(user_id)
        if uid not in self.profiles:
            raise self._unknown_user(user_id)
        return self.profiles.get(uid)

    def forget(self, user_id: str) -> None:
        """Erase everything stored about ``user_id``: profile, history, stated preferences,
        cached generated texts and the user's records in the event log. Later saves do not
        contain the user; a tombstone in the log keeps a recovery from an older save from
        bringing the user back.

        Raises:
            UnknownUserError: nothing is stored about the user.
        """
        uid = self._user(user_id)
        with self._lock:
            known = uid in self.profiles
            removed = 0
            if self.event_log is not None:
                removed = self.event_log.forget(uid, tombstone=known)
                self._log_sequence = self.event_log.last_sequence
            if not known and not removed:
                raise UnknownUserError(f"unknown user id {user_id!r}: nothing to forget")
            if known:
                self._drop_user(uid)
            if self._generator is not None and hasattr(self._generator, "clear_cache"):
                # Cached texts are keyed by prompt, not by user: drop them all.
                self._generator.clear_cache()

    def _drop_user(self, uid: str) -> None:
        # The user's counted interactions leave popularity with them (those still in the
        # kept history; see docs/concepts.md).
        history = self.profiles.get(uid).history
        self.retriever.unrecord([self.catalog.row(h.item_id) for h in history
                                 if h.weight > 0 and h.item_id in self.catalog])
        self.profiles.forget(uid)

    # ------------------------------------------------------------------ training
    @staticmethod
    def _positive_rows(events: Sequence[Event], row_of: Callable[[str], int]) -> dict[str, list[int]]:
        per_user: dict[str, list[int]] = {}
        for event in events:
            if event.item_id is not None and event.kind != "query" and event.weight > -1e-9 \
                    and event.kind not in ("dislike", "skip"):
                per_user.setdefault(event.user_id, []).append(row_of(event.item_id))
        return per_user

    def fit(
        self,
        events: Iterable[Event],
        *,
        train_ranker: bool = True,
        ranker_users: int = 1000,
        seed: int | None = None,
        show_progress: bool = True,
    ) -> Pipeline:
        """Learn from historical events and rebuild every profile from them.

        Co-occurrence and popularity are fitted on the events; the ranker is trained on
        each user's last positive event held out from everything it sees (so its weights
        reflect how well each source predicts an unseen next item); then the sources are
        refitted on all events and the profiles replayed.

        Args:
            events: Historical events (any order; sorted by timestamp, stably).
            train_ranker: Learn the ranker's weights (else keep the current ones).
            ranker_users: Users sampled to train the ranker.
            seed: Seed of everything random in fitting: the ranker's user sample and
                every trainable model with a ``seed`` attribute (which is set to it, so a
                saved pipeline records it). ``None`` keeps each model's own seed and
                samples users with seed 0. The same seed and events give the same
                pipeline.
            show_progress: Show progress bars.

        Raises:
            InvalidInputError / UnknownItemError: a bad event; nothing changes.
        """
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise InvalidInputError(f"seed must be a non-negative int or None, got {seed!r}")
        if isinstance(ranker_users, bool) or not isinstance(ranker_users, int) or ranker_users < 1:
            raise InvalidInputError(f"ranker_users must be a positive int, got {ranker_users!r}")
        train_ranker = _flag(train_ranker, "train_ranker")
        show_progress = _flag(show_progress, "show_progress")
        events = self._check_events(events)
        if not events:
            raise InvalidInputError("fit needs at least one event")
        events.sort(key=lambda e: e.timestamp)
        text_vectors = self._text_vectors(events)
        with self._lock:
            for event in events:  # an item may have been removed since validation
                if event.item_id is not None and event.item_id not in self.catalog:
                    raise UnknownItemError(f"event names unknown item id {event.item_id!r}")
            features = self.retriever.feature_names + (TAG_FEATURE,)
            if features != self.ranker.feature_names:
                self.ranker = Ranker(features, diversity=self.ranker.diversity, l2=self.ranker.l2)
            # show_progress=False silences the models' own bars for this call only.
            muted = [m for m in self.retriever.models.values()
                     if not show_progress and getattr(m, "show_progress", False)]
            for model in muted:
                model.show_progress = False
            if seed is not None:
                for model in self.retriever.models.values():
                    if hasattr(model, "seed"):
                        model.seed = seed
            try:
                trained = train_ranker and self._fit_ranker(
                    events, text_vectors, ranker_users, 0 if seed is None else seed,
                    show_progress)
                per_user = self._positive_rows(events, self.catalog.row)
                # Models trained in the held-out pass keep their weights unless cheap to refit.
                self.retriever.fit(list(per_user.values()),
                                   models="cheap" if trained else "all")
            finally:
                for model in muted:
                    model.show_progress = True
            store = ProfileStore(self.profiles.dim, half_life=self.profiles.half_life,
                                 max_history=self.profiles.max_history)
            self._replay(store, events, text_vectors, show_progress)
            self.profiles._profiles = store._profiles
        return self

    def _replay(self, store: ProfileStore, events: Sequence[Event],
                text_vectors: Mapping[str, np.ndarray], show_progress: bool) -> None:
        from tqdm.auto import tqdm

        for event in tqdm(events, desc="replaying events", unit="event",
                          disable=not show_progress or len(events) < 10_000):
            self._apply(store, event, text_vectors.get(event.text) if event.text else None)

    def _fit_ranker(self, events: list[Event], text_vectors: Mapping[str, np.ndarray],
                    ranker_users: int, seed: int, show_progress: bool) -> bool:
        """Train sources on all but each user's last positive event, then the ranker on
        those held-out events. Returns whether the held-out pass ran."""
        # Hold out each user's last positive event; fit sources and profiles on the rest.
        last_index: dict[str, int] = {}
        for n, event in enumerate(events):
            if event.item_id is not None and event.kind not in ("query", "dislike", "skip"):
                last_index[event.user_id] = n
        per_user_count: dict[str, int] = {}
        for event in events:
            per_user_count[event.user_id] = per_user_count.get(event.user_id, 0) + 1
        held = {n: events[n] for u, n in last_index.items() if per_user_count[u] >= 3}
        if len(held) < 10:
            logger.info("too few users with history (%d) to train the ranker; keeping weights",
                        len(held))
            return False
        prefix = [e for n, e in enumerate(events) if n not in held]
        prefix_rows = self._positive_rows(prefix, self.catalog.row)
        valid = [(prefix_rows[e.user_id], self.catalog.row(e.item_id)) for e in held.values()
                 if e.user_id in prefix_rows]
        self.retriever.fit(list(prefix_rows.values()), valid=valid, models="all")
        store = ProfileStore(self.profiles.dim, half_life=self.profiles.half_life,
                             max_history=self.profiles.max_history)
        self._replay(store, prefix, text_vectors, show_progress)
        rng = np.random.default_rng(seed)
        users = sorted(held.values(), key=lambda e: e.user_id)
        if len(users) > ranker_users:
            users = [users[i] for i in sorted(rng.choice(len(users), ranker_users, replace=False))]
        xs, ys = [], []
        from tqdm.auto import tqdm

        for target in tqdm(users, desc="training ranker", unit="user", disable=not show_progress):
            if target.user_id not in store:
                continue
            profile = store.get(target.user_id)
            rows, x = self._score_candidates(profile, None, True, None, 1)
            if not len(rows):
                continue
            y = (rows == self.catalog.row(target.item_id)).astype(np.float64)
            xs.append(x)
            ys.append(y)
        if not xs:
            return True
        x, y = np.concatenate(xs), np.concatenate(ys)
        if y.sum() == 0:
            logger.info("no held-out item reached the candidates; keeping ranker weights")
            return True
        weight = np.where(y > 0, (len(y) - y.sum()) / y.sum(), 1.0)
        self.ranker.fit(x, y, sample_weight=weight)
        logger.info("ranker trained on %d users, %d candidates, recall of candidates %.3f",
                    len(xs), len(y), y.sum() / len(xs))
        return True

    # ------------------------------------------------------------------ recommending
    def _row_filter(self, filters: Filters | None) -> Callable[[np.ndarray], np.ndarray] | None:
        if filters is None:
            return None
        if callable(filters):
            predicate = filters
        elif isinstance(filters, Mapping):
            wanted = dict(filters)
            for key, allowed in wanted.items():
                try:
                    _attribute_matches(None, allowed)
                except TypeError:
                    raise InvalidInputError(
                        f"filters[{key!r}] must be a hashable value or a list of them, "
                        f"got {allowed!r:.80}") from None

            def predicate(item: Item) -> bool:
                try:
                    return all(_attribute_matches(item.attributes.get(key), allowed)
                               for key, allowed in wanted.items())
                except TypeError:  # an unhashable attribute value matches nothing
                    return False
        else:
            raise InvalidInputError(
                f"filters must be a callable or a mapping, got {type(filters).__name__}")
        catalog = self.catalog

        def row_filter(rows: np.ndarray) -> np.ndarray:
            return np.fromiter((bool(predicate(catalog.get(catalog.item_id_at(int(r)))))
                                for r in rows), dtype=bool, count=len(rows))

        return row_filter

    def _history_rows(self, profile: UserProfile) -> list[int]:
        rows = []
        for item_id in profile.recent_items():
            if item_id in self.catalog:
                rows.append(self.catalog.row(item_id))
        return rows

    def _tag_affinity(self, profile: UserProfile, rows: np.ndarray) -> np.ndarray:
        affinity = profile.tag_affinity
        out = np.zeros(len(rows), dtype=np.float32)
        if not affinity:
            return out
        scale = max(abs(v) for v in affinity.values()) or 1.0
        weights = np.zeros(self.catalog.n_tags + 1, dtype=np.float32)  # last: padding (-1)
        for tag, value in affinity.items():
            tag_id = self.catalog.tag_id(tag)
            if tag_id is not None:
                weights[tag_id] = value / scale
        tags = self.catalog.row_tags(rows)
        counts = (tags >= 0).sum(axis=1)
        np.divide(weights[tags].sum(axis=1), np.sqrt(counts), out=out, where=counts > 0)
        return out

    def _score_candidates(self, profile: UserProfile, query_vector: np.ndarray | None,
                          exclude_seen: bool, row_filter: Any, k: int
                          ) -> tuple[np.ndarray, np.ndarray]:
        exclude = [self.catalog.row(i) for i in profile.seen if i in self.catalog] \
            if exclude_seen else []
        ctx = self.retriever.context(profile.query_vector(), query_vector,
                                     self._history_rows(profile), exclude)
        rows, features = self.retriever.candidates(ctx, row_filter=row_filter, min_count=k)
        features[TAG_FEATURE] = self._tag_affinity(profile, rows)
        return rows, self.ranker.feature_matrix(features, len(rows))

    def _evidence(self, profile: UserProfile, row: int, limit: int = 3) -> tuple[str, ...]:
        history = [i for i in profile.recent_items(self.retriever.history_length) if i in self.catalog]
        if not history:
            return ()
        hist_rows = self.catalog.rows(history)
        vectors = self.retriever.item_vectors
        strength = vectors[hist_rows] @ vectors[row]
        sim = self.retriever.cooccurrence.similarity
        if row < sim.shape[0] and sim.nnz:
            # The target's own neighbour row: cheap to read from CSR, unlike a column.
            start, end = sim.indptr[row], sim.indptr[row + 1]
            neighbours = dict(zip(sim.indices[start:end].tolist(), sim.data[start:end].tolist()))
            strength += np.array([neighbours.get(r, 0.0) for r in hist_rows.tolist()],
                                 dtype=np.float32)
        order = np.argsort(-strength, kind="stable")[:limit]
        return tuple(history[i] for i in order if strength[i] > 0)

    def _check_query(self, query: Any) -> str | None:
        """The request query as used: validated, then redacted."""
        if query is None:
            return None
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"query must be a non-empty str or None, got {query!r:.80}")
        return redact(_check_text(query, "query"))

    def _rank(self, uid: str, k: int, query: str | None, exclude_seen: bool,
              filters: Filters | None, diversity: float | None, user_id: str
              ) -> tuple[list[Recommendation], dict[str, Item]]:
        """Rank for the stored user id ``uid`` (``query`` already checked). Returns the
        recommendations and the items they and their evidence name, read under the same
        lock, so a concurrent removal cannot break the text generation that follows."""
        k = _check_k(k)
        exclude_seen = _flag(exclude_seen, "exclude_seen")
        if diversity is not None:
            Ranker.check_diversity(diversity)
        row_filter = self._row_filter(filters)
        query_vector = None
        if query is not None:
            # User text is encoded without the encoder's cache: no vector of it outlives forget.
            query_vector = self.encoder.encode_texts([query], cache=False)[0]
        items: dict[str, Item] = {}
        with self._lock:
            if uid not in self.profiles:
                raise self._unknown_user(user_id)
            profile = self.profiles.get(uid)
            rows, x = self._score_candidates(profile, query_vector, exclude_seen, row_filter, k)
            if not len(rows):
                return [], items
            probs, contributions = self.ranker.score(x)
            order = self.ranker.order(probs, self.retriever.item_vectors[rows], k, diversity)
            out = []
            names = self.ranker.feature_names
            for rank, pos in enumerate(order.tolist(), start=1):
                row = int(rows[pos])
                item = self.catalog.get(self.catalog.item_id_at(row))
                matched = tuple(t for t in item.tags if profile.tag_affinity.get(t, 0.0) > 0)
                explanation = Explanation(
                    signals={n: float(c) for n, c in zip(names, contributions[pos])},
                    features={n: float(v) for n, v in zip(names, x[pos])},
                    evidence_item_ids=self._evidence(profile, row),
                    matched_tags=tuple(sorted(matched, key=lambda t: -profile.tag_affinity[t])),
                )
                out.append(Recommendation(item.item_id, float(probs[pos]), rank, explanation))
                items[item.item_id] = item
                for evidence_id in explanation.evidence_item_ids:
                    items[evidence_id] = self.catalog.get(evidence_id)
            return out, items

    def _reason_request(self, rec: Recommendation, uid: str, query: str | None,
                        items: Mapping[str, Item]) -> Any:
        from llmrec.generation import ReasonRequest

        return ReasonRequest(
            user_id=uid, item=items[rec.item_id],
            evidence_items=tuple(items[i] for i in rec.explanation.evidence_item_ids),
            signals=dict(rec.explanation.signals),
            matched_tags=rec.explanation.matched_tags, query=query)

    def _with_text(self, batches: list[list[Recommendation]], uids: Sequence[str],
                   queries: Sequence[str | None], budget_s: float | None,
                   items: Mapping[str, Item]) -> list[list[Recommendation]]:
        requests, slots = [], []
        for b, (recs, uid, query) in enumerate(zip(batches, uids, queries)):
            for n, rec in enumerate(recs):
                requests.append(self._reason_request(rec, uid, query, items))
                slots.append((b, n))
        if not requests:
            return batches
        texts: list[GeneratedText] = self.generator.generate(requests, budget_s=budget_s)
        out = [list(recs) for recs in batches]
        for (b, n), text in zip(slots, texts):
            rec = out[b][n]
            out[b][n] = Recommendation(rec.item_id, rec.score, rec.rank, rec.explanation, text)
        return out

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        *,
        query: str | None = None,
        exclude_seen: bool = True,
        filters: Filters | None = None,
        generate: bool = True,
        diversity: float | None = None,
        budget_s: float | None = None,
    ) -> list[Recommendation]:
        """Top-``k`` items for ``user_id``, best first, each with its score breakdown and
        (with ``generate=True``) a personalized one-sentence reason.

        Args:
            user_id: A user known from :meth:`fit`, :meth:`observe` or :meth:`add_user`.
            k: Items wanted; fewer come back when fewer items qualify.
            query: Optional free text steering this request ("something funny").
            exclude_seen: Leave out items the user already acted on.
            filters: A predicate on :class:`~llmrec.Item` or ``{attribute: value(s)}``.
            generate: Write the personalized text for each item.
            diversity: MMR trade-off for this call (default: the ranker's).
            budget_s: Latency budget for generation; late items get template text.

        Raises:
            UnknownUserError: the user has no profile.
            InvalidInputError: ``k`` <= 0, an empty query, a bad filter.
        """
        uid = self._user(user_id)
        query = self._check_query(query)
        generate = _flag(generate, "generate")
        recs, items = self._rank(uid, k, query, exclude_seen, filters, diversity, user_id)
        if generate:
            recs = self._with_text([recs], [uid], [query], budget_s, items)[0]
        return recs

    def recommend_stream(
        self,
        user_id: str,
        k: int = 10,
        *,
        query: str | None = None,
        exclude_seen: bool = True,
        filters: Filters | None = None,
        diversity: float | None = None,
        budget_s: float | None = None,
    ) -> Iterator[Recommendation]:
        """:meth:`recommend` with text, yielding each Recommendation as soon as its text
        is written (completion order; ``rank`` tells the position). Ranking happens, and
        bad arguments raise, before the first item is yielded."""
        uid = self._user(user_id)
        query = self._check_query(query)
        recs, items = self._rank(uid, k, query, exclude_seen, filters, diversity, user_id)
        requests = [self._reason_request(rec, uid, query, items) for rec in recs]
        return self._stream_texts(recs, self.generator.stream(requests, budget_s=budget_s)
                                  if requests else iter(()))

    @staticmethod
    def _stream_texts(recs: list[Recommendation], pairs: Iterator[tuple[int, GeneratedText]]
                      ) -> Iterator[Recommendation]:
        for n, text in pairs:
            rec = recs[n]
            yield Recommendation(rec.item_id, rec.score, rec.rank, rec.explanation, text)

    async def arecommend_stream(self, user_id: str, k: int = 10, *, query: str | None = None,
                                exclude_seen: bool = True, filters: Filters | None = None,
                                diversity: float | None = None, budget_s: float | None = None,
                                ) -> AsyncIterator[Recommendation]:
        """Async :meth:`recommend_stream`; the model runs in a worker thread."""
        uid = self._user(user_id)
        query = self._check_query(query)
        recs, items = await asyncio.to_thread(self._rank, uid, k, query, exclude_seen, filters,
                                              diversity, user_id)
        requests = [self._reason_request(rec, uid, query, items) for rec in recs]
        if not requests:
            return
        async for n, text in self.generator.astream(requests, budget_s=budget_s):
            rec = recs[n]
            yield Recommendation(rec.item_id, rec.score, rec.rank, rec.explanation, text)

    def recommend_batch(
        self,
        user_ids: Sequence[str],
        k: int = 10,
        *,
        query: str | None = None,
        exclude_seen: bool = True,
        filters: Filters | None = None,
        generate: bool = True,
        diversity: float | None = None,
        budget_s: float | None = None,
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for several users; texts are generated in one batch.

        Every user id is checked before any work is done; results equal single calls.
        """
        user_ids = _as_list(user_ids, "user_ids")
        uids = [self._user(u) for u in user_ids]
        for uid, user_id in zip(uids, user_ids):
            if uid not in self.profiles:
                raise self._unknown_user(user_id)
        query = self._check_query(query)
        generate = _flag(generate, "generate")
        items: dict[str, Item] = {}
        recs = []
        for uid, user_id in zip(uids, user_ids):
            user_recs, user_items = self._rank(uid, k, query, exclude_seen, filters, diversity,
                                               user_id)
            recs.append(user_recs)
            items.update(user_items)
        if generate:
            recs = self._with_text(recs, uids, [query] * len(uids), budget_s, items)
        return recs

    # ------------------------------------------------------------------ asyncio
    # Each coroutine runs its blocking twin in a worker thread (asyncio.to_thread), so the
    # event loop stays free; the guarantees are those of the twin.
    async def arecommend(self, user_id: str, k: int = 10, **kwargs: Any) -> list[Recommendation]:
        """Async :meth:`recommend`; runs in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self.recommend, user_id, k, **kwargs)

    async def arecommend_batch(self, user_ids: Sequence[str], k: int = 10,
                               **kwargs: Any) -> list[list[Recommendation]]:
        """Async :meth:`recommend_batch`."""
        return await asyncio.to_thread(self.recommend_batch, user_ids, k, **kwargs)

    async def aobserve(self, event: Event) -> None:
        """Async :meth:`observe`."""
        await asyncio.to_thread(self.observe, event)

    async def aobserve_many(self, events: Iterable[Event]) -> None:
        """Async :meth:`observe_many`."""
        await asyncio.to_thread(self.observe_many, events)

    async def aadd_items(self, items: Iterable[Item]) -> None:
        """Async :meth:`add_items`."""
        await asyncio.to_thread(self.add_items, items)

    async def aremove_items(self, item_ids: Iterable[str]) -> None:
        """Async :meth:`remove_items`."""
        await asyncio.to_thread(self.remove_items, item_ids)

    async def aforget(self, user_id: str) -> None:
        """Async :meth:`forget`."""
        await asyncio.to_thread(self.forget, user_id)

    # ------------------------------------------------------------------ catalog changes
    def add_items(self, items: Iterable[Item]) -> None:
        """Insert or replace items; they are searchable by the next request."""
        items = self.catalog.validate_new(_as_list(items, "items"))
        if not items:
            return
        vectors = self.encoder.encode_items(items)
        self.retriever.check_vectors(vectors)
        with self._lock:
            ticket = self._write_log("items", {"items": [item.to_dict() for item in items]})
            rows = self.catalog.upsert(items, validated=True)
            self.retriever.upsert(rows, vectors)
        self._wait_log(ticket)

    def remove_items(self, item_ids: Iterable[str]) -> None:
        """Remove items (all must exist, else nothing changes)."""
        item_ids = _as_list(item_ids, "item_ids")
        for n, item_id in enumerate(item_ids):
            if not isinstance(item_id, str):
                raise InvalidInputError(f"item_ids[{n}] must be a str, got {type(item_id).__name__}")
        if not item_ids:
            return
        with self._lock:
            self.catalog.rows(item_ids)  # unknown ids raise first
            if len(set(item_ids)) != len(item_ids):
                raise DuplicateItemError("an item id appears twice in the removal list")
            if len(self.catalog) - len(item_ids) < 1:
                raise InvalidInputError("removing these items would leave the catalog empty")
            ticket = self._write_log("remove", {"item_ids": item_ids})
            rows = self.catalog.remove(item_ids)
            self.retriever.remove(rows)
        self._wait_log(ticket)

    # ------------------------------------------------------------------ event log
    def open_event_log(self, path: str | Path, *, fsync: str = "always",
                       batch_interval: float = 0.2, allow_new: bool = False) -> int:
        """Log every later change to ``path`` before applying it, after replaying the
        records this pipeline has not seen yet: this is how a pipeline recovers.

        A pipeline loaded from a save that was made with a log open replays that log's
        records newer than the save; any other pipeline replays the whole log (so
        ``from_catalog`` with the same items plus the log rebuilds a pipeline that was
        never saved). Events, new users, item upserts and removals and forget tombstones
        are logged; :meth:`fit` is not (save after fitting).

        Args:
            path: The log file (created when missing).
            fsync: ``"always"``: a change is acknowledged only once on disk (concurrent
                calls share one sync); ``"batch"``: synced within ``batch_interval``
                seconds; ``"never"``: left to the operating system. Under every policy a
                crash of the process loses nothing acknowledged.
            batch_interval: Seconds between syncs with ``fsync="batch"``.
            allow_new: Accept a new, empty log although the pipeline was saved with
                another one (whose records after the save are then not replayed).

        Returns:
            The number of records replayed.

        Raises:
            ConfigError: a log is already open, or the log was written under another
                pseudonymization key.
            PersistenceError: the log is corrupt, in use, or not the one the save was made
                with; or a record cannot be replayed.
        """
        if not isinstance(allow_new, bool):
            raise ConfigError(f"allow_new must be a bool, got {allow_new!r}")
        key_check = None if self._pseudonymize is None else self._pseudonymize.key_check
        with self._lock:
            if self.event_log is not None:
                raise ConfigError(f"an event log is already open ({self.event_log.path}); "
                                  "close() it first")
            log = EventLog(path, fsync=fsync, batch_interval=batch_interval,
                           meta={"key_check": key_check})
            try:
                if log.meta.get("key_check") != key_check:
                    raise ConfigError(
                        f"event log {str(log.path)!r} was written "
                        + ("without pseudonymization" if log.meta.get("key_check") is None
                           else "under another pseudonymization key")
                        + ("" if key_check is None else " than this pipeline's"))
                after = 0
                if self._log_id is not None and self._log_id != log.log_id:
                    if not (allow_new and log.last_sequence == 0):
                        raise PersistenceError(
                            f"this pipeline was saved with event log {self._log_id} at record "
                            f"{self._log_sequence}, but {str(log.path)!r} is log {log.log_id}; "
                            "open that log to recover (allow_new=True starts a new one)")
                elif self._log_id is not None:
                    if self._log_sequence > log.last_sequence:
                        raise PersistenceError(
                            f"the save includes record {self._log_sequence} of event log "
                            f"{str(log.path)!r}, which ends at {log.last_sequence}: the log "
                            "lost records")
                    after = self._log_sequence
                replayed = self._replay_log(log, after)
            except BaseException:
                log.close()
                raise
            self.event_log = log
            self._log_id = log.log_id
            self._log_sequence = log.last_sequence
        logger.info("opened event log %s (fsync=%s), replayed %d records", log.path, fsync,
                    replayed)
        return replayed

    def _replay_log(self, log: EventLog, after: int) -> int:
        count = 0
        for record in log.replay(after):
            try:
                self._apply_record(record, log)
            except (LLMRecError, KeyError, TypeError, ValueError) as exc:
                raise PersistenceError(f"cannot replay record {record.sequence} of event log "
                                       f"{str(log.path)!r}: {exc}") from None
            self._log_sequence = record.sequence
            count += 1
        return count

    def _apply_record(self, record: LogRecord, log: EventLog) -> None:
        """Apply one logged change exactly as the live call applied it."""
        data = record.data
        if record.op == "events":
            events = record.events
            for event in events:
                if event.item_id is not None and event.item_id not in self.catalog:
                    raise UnknownItemError(f"event names unknown item id {event.item_id!r}")
            self._apply_events(events, self._text_vectors(events))
        elif record.op == "user":
            self.profiles.get_or_create(data["user_id"])
        elif record.op == "items":
            items = self.catalog.validate_new([Item(**d) for d in data["items"]])
            vectors = self.encoder.encode_items(items)
            rows = self.catalog.upsert(items, validated=True)
            self.retriever.upsert(rows, vectors)
        elif record.op == "remove":
            self.retriever.remove(self.catalog.remove(list(data["item_ids"])))
        elif record.op == "forget":
            for uid in list(self.profiles):
                if log.user_hash(uid) == data["user_hash"]:
                    self._drop_user(uid)

    def close(self) -> None:
        """Sync and close the event log, if one is open (the pipeline stays usable; its
        next save still records how far the log was applied)."""
        with self._lock:
            if self.event_log is not None:
                self.event_log.close()
                self.event_log = None

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path: str | Path) -> None:
        """Save everything to ``path`` atomically: a crash at any moment leaves the
        previous save (or the new one) loadable. The manifest records every file's size
        and SHA-256, and how far the event log had been applied.

        Raises:
            PersistenceError: ``path`` is a file or a non-empty directory that is not an
                llmrec save (it is never replaced), or the disk refused the write.
        """
        path = check_path(path, "save path")
        started = time.perf_counter()
        with self._lock, atomic_directory(path) as tmp:
            components = {
                "catalog": self.catalog.save(tmp / "catalog"),
                "retriever": self.retriever.save(tmp / "retriever"),
                "ranker": self.ranker.save(tmp / "ranker"),
                "profiles": self.profiles.save(tmp / "profiles"),
                "encoder": self.encoder.config(),
                "generator": self._generator_config(),
            }
            manifest: dict[str, Any] = {
                "format_version": FORMAT_VERSION, "kind": "pipeline",
                "versions": _versions(), "components": components,
                "privacy": {"key_check": None if self._pseudonymize is None
                            else self._pseudonymize.key_check},
                "files": file_digests(tmp),
            }
            if self._log_id is not None:
                manifest["event_log"] = {"log_id": self._log_id, "sequence": self._log_sequence}
            write_json(tmp / MANIFEST_NAME, manifest)
        logger.info("saved pipeline to %s in %.2fs", path, time.perf_counter() - started)

    def _generator_config(self) -> dict[str, Any]:
        if self._generator is not None and hasattr(self._generator, "config"):
            return {"llm": self._llm if isinstance(self._llm, str) else "default",
                    "config": self._generator.config()}
        return {"llm": self._llm if isinstance(self._llm, str) else "default",
                "options": self._llm_options}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: DeviceLike = "auto",
                        llm: Any = None, llm_options: Mapping[str, Any] | None = None,
                        pseudonymize_key: bytes | None = None) -> Pipeline:
        """Load a pipeline saved by :meth:`save_pretrained`.

        To recover after a crash, open the event log on the loaded pipeline
        (:meth:`open_event_log`): it replays what happened after the save.

        Args:
            path: The save directory.
            device: Where to run (a GPU save loads on a CPU).
            llm: Override the saved generator backend (e.g. ``"template"``).
            pseudonymize_key: The key the save was made with, if any.

        Raises:
            PersistenceError: the directory is missing, truncated, corrupt or from a newer
                llmrec.
            ConfigError: the save is pseudonymized and the key is missing or another one
                (or a key is given for a save that is not pseudonymized).
        """
        path = check_path(path, "save path")
        if llm_options is not None:
            llm_options = _options(llm_options, "llm_options")
        pseudonymize = None if pseudonymize_key is None else Pseudonymizer(pseudonymize_key)
        manifest = read_manifest(path, "pipeline")
        try:
            if "files" in manifest:
                verify_files(path, manifest["files"])
            saved_check = (manifest.get("privacy") or {}).get("key_check")
            log_state = manifest.get("event_log")
            if log_state is not None:
                log_id, log_sequence = str(log_state["log_id"]), log_state["sequence"]
                if isinstance(log_sequence, bool) or not isinstance(log_sequence, int) \
                        or log_sequence < 0:
                    raise ValueError(f"bad event log sequence {log_sequence!r}")
            parts = manifest["components"]
            device = resolve_device(device)
            catalog = Catalog.load(path / "catalog", parts["catalog"])
            enc = parts["encoder"]
            encoder = ItemEncoder(enc["backend"], device=device, batch_size=enc["batch_size"],
                                  cache_size=enc["cache_size"], **enc["backend_config"])
            retriever = Retriever.load(path / "retriever", parts["retriever"], device=device)
            ranker = Ranker.load(path / "ranker", parts["ranker"])
            profiles = ProfileStore.load(path / "profiles", parts["profiles"])
            gen = parts["generator"]
            saved_llm = gen.get("llm", "default")
            options = dict(gen.get("options") or gen.get("config", {}).get("options", {}) or {})
        except (PersistenceError, BackendUnavailableError, DeviceError):
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError,
                OSError, LLMRecError) as exc:
            raise PersistenceError(f"corrupt save in {str(path)!r}: {exc!r}") from None
        if retriever.dim != encoder.dim:
            raise PersistenceError(
                f"saved vectors have dim {retriever.dim} but the encoder gives {encoder.dim}")
        if saved_check != (None if pseudonymize is None else pseudonymize.key_check):
            if saved_check is None:
                raise ConfigError(f"{str(path)!r} holds raw user ids; it cannot be opened with "
                                  "a pseudonymize_key")
            raise ConfigError(f"{str(path)!r} holds pseudonymized user ids: pass the "
                              "pseudonymize_key it was saved with"
                              + ("" if pseudonymize is None else " (this one differs)"))
        if llm_options is not None:
            options = dict(llm_options)
        pipe = cls(catalog, encoder, retriever, ranker, profiles,
                   llm=llm if llm is not None else saved_llm,
                   llm_options=options, device=device, pseudonymize_key=pseudonymize_key)
        if log_state is not None:
            pipe._log_id, pipe._log_sequence = log_id, log_sequence
        return pipe

    def __repr__(self) -> str:
        return (f"Pipeline(items={len(self.catalog)}, users={len(self.profiles)}, "
                f"encoder={self.encoder.backend.name}, index={self.retriever.index.name}, "
                f"device={self.device})")

