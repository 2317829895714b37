"""Pipeline: the object applications use. Owns a catalog, an encoder, profiles, a
retriever, a ranker and a content generator, and keeps them consistent.

This module is the public face; the work is done by the private modules beside it:
:mod:`._request` (a request's arguments), :mod:`._scoring` (ranking and explaining),
:mod:`._changes` (applying events), :mod:`._journal` (the event log), :mod:`._training`
(:meth:`Pipeline.fit`) and :mod:`._persistence` (saves).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from llmrec._validate import (
    check_bool,
    check_instances,
    check_int,
    check_options,
    check_sequence,
)
from llmrec.catalog import Catalog
from llmrec.device import DeviceLike, resolve_device
from llmrec.encoding import ItemEncoder
from llmrec.errors import ConfigError, InvalidInputError, UnknownUserError
from llmrec.generation import ChatBackend, ContentGenerator
from llmrec.pipeline import _anonymous, _changes, _content, _persistence, _scoring, _training
from llmrec.pipeline._build import build_components
from llmrec.pipeline._journal import Journal
from llmrec.pipeline._request import Filters, RecommendRequest
from llmrec.privacy import Pseudonymizer
from llmrec.profile import ProfileStore, UserProfile
from llmrec.ranking import Ranker
from llmrec.retrieval import Retriever
from llmrec.storage.eventlog import EventLog
from llmrec.storage.io import check_path, check_signing_key
from llmrec.types import Event, GeneratedText, Item, Recommendation, check_id

__all__ = ["Filters", "Pipeline"]


def _check_llm(llm: Any, llm_options: Mapping[str, Any] | None = None) -> None:
    """Refuse an ``llm`` (with its ``llm_options``) whose generator could not be built: it
    would fail only at the first generated text (see ContentGenerator.check_config)."""
    if isinstance(llm, str):
        ContentGenerator.check_config(llm, **check_options(llm_options, "llm_options"))
    elif not isinstance(llm, (ContentGenerator, ChatBackend)):
        raise ConfigError(
            f"llm must be a backend name, a ContentGenerator or a ChatBackend, got {llm!r:.80}"
        )


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
            ``"template"``, ...), a ready :class:`~llmrec.generation.ContentGenerator`, or
            a :class:`~llmrec.generation.ChatBackend` (wrapped in a ContentGenerator over
            ``catalog``); a model named here loads on first use.
        llm_options: Passed to the :class:`~llmrec.generation.ContentGenerator` (unused
            with a ready one).
        device: Where models run.
        pseudonymize_key: A secret (bytes, >= 16): user ids are replaced by their keyed
            HMAC-SHA256 at every public method, so profiles, saves, logs and prompts never
            hold a raw id. Pass the same key to :meth:`from_pretrained`.
        warm_llm: Load and warm the language model now, in a background thread, so no
            request pays the load (a request that comes sooner waits for it). Off by
            default, so pipelines built to train, evaluate or rank without text never
            load a model; ``llmrec serve`` warms it at start. Only in-process models are
            warmed (a remote ``openai`` backend is never called before a request), and
            there is nothing to load with ``llm="template"``.

    Raises:
        ConfigError: a component of the wrong type, an ``llm`` that is none of the above,
            or bad ``llm_options``.
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
        warm_llm: bool = False,
    ) -> None:
        for name, value, cls in (
            ("catalog", catalog, Catalog),
            ("encoder", encoder, ItemEncoder),
            ("retriever", retriever, Retriever),
            ("ranker", ranker, Ranker),
            ("profiles", profiles, ProfileStore),
        ):
            if not isinstance(value, cls):
                raise ConfigError(f"{name} must be a {cls.__name__}, got {type(value).__name__}")
        _check_llm(llm, llm_options)
        llm_options = check_options(llm_options, "llm_options")
        self._pseudonymize = None if pseudonymize_key is None else Pseudonymizer(pseudonymize_key)
        self.catalog = catalog
        self.encoder = encoder
        self.retriever = retriever
        self.ranker = ranker
        self.profiles = profiles
        self.device = resolve_device(device)
        self._llm_options = llm_options
        self._generator: ContentGenerator | None = None
        if isinstance(llm, ContentGenerator):
            self._generator = llm
        elif not isinstance(llm, str):
            self._generator = self._make_generator(llm)
        self._llm: str = llm if isinstance(llm, str) else self._generator.backend_name
        # One lock orders every change and every ranking: the order in which changes
        # are applied is the order in which they are logged (see docs/concepts.md).
        self._lock = threading.RLock()
        self._generator_lock = threading.Lock()
        self._journal = Journal()
        if check_bool(warm_llm, "warm_llm") and self._llm not in ("template", "openai"):
            _content.start_warming(self)

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
        max_history: int = 500,
        models: Any = "auto",
        encoder_options: Mapping[str, Any] | None = None,
        llm_options: Mapping[str, Any] | None = None,
        show_progress: bool = True,
        pseudonymize_key: bytes | None = None,
        item_vectors: Any = None,
        warm_llm: bool = False,
    ) -> Pipeline:
        """Encode ``items`` and build a ready pipeline with the embedded defaults.

        Args:
            items: The catalog; at least one item, unique ids.
            encoder: Encoder backend name (``"default"`` = all-MiniLM-L6-v2,
                ``"transformers"`` with ``encoder_options={"model": ...}``, ``"hashing"``)
                or an :class:`~llmrec.encoding.EncoderBackend`.
            index: ``"auto"``, ``"exact"``, ``"hnsw"`` or an index backend.
            llm: ``"default"`` (embedded SmolLM2-135M-Instruct), ``"transformers"`` with
                ``llm_options={"model": ...}``, ``"template"`` (no model), another
                registered backend name, a :class:`~llmrec.generation.ContentGenerator`
                or a :class:`~llmrec.generation.ChatBackend`.
            device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (see :func:`llmrec.resolve_device`).
            diversity: Default MMR trade-off in [0, 1).
            n_candidates: Candidates proposed by each source per request.
            half_life: Events after which an old event's weight in a profile halves.
            max_history: Events kept per user (the newest); the plan's co-consumption
                counts ("41% of the 230 people who liked Fargo") count the kept likes.
            models: Trainable candidate sources fitted by :meth:`fit`: names
                (``"ease"``, ``"sequential"``) or instances; ``"auto"`` picks
                ``("ease", "sequential")`` for catalogs up to 20k items and none above.
            show_progress: Show progress bars on long work.
            pseudonymize_key: See :class:`Pipeline`.
            item_vectors: ``(len(items), dim)`` vectors already made by this encoder (for
                example by :func:`llmrec.apps.ray.encode_catalog`); the catalog is then
                not encoded again.
            warm_llm: See :class:`Pipeline`.
        """
        _check_llm(llm, llm_options)
        llm_options = check_options(llm_options, "llm_options")
        if pseudonymize_key is not None:
            Pseudonymizer(pseudonymize_key)  # fail before the encoding work
        check_int(max_history, "max_history", low=1)  # before the encoding work
        device = resolve_device(device)
        parts = build_components(
            items,
            encoder=encoder,
            index=index,
            device=device,
            diversity=diversity,
            n_candidates=n_candidates,
            half_life=half_life,
            max_history=max_history,
            models=models,
            encoder_options=encoder_options,
            show_progress=show_progress,
            item_vectors=item_vectors,
        )
        pipe = cls(
            *parts,
            llm=llm,
            llm_options=llm_options,
            device=device,
            pseudonymize_key=pseudonymize_key,
            warm_llm=warm_llm,
        )
        return pipe

    def _make_generator(self, llm: Any) -> ContentGenerator:
        try:
            return ContentGenerator(
                llm, catalog=self.catalog, device=self.device, **self._llm_options
            )
        except TypeError as exc:
            raise ConfigError(f"bad llm_options {self._llm_options!r:.200}: {exc}") from None

    @property
    def generator(self) -> ContentGenerator:
        """The :class:`~llmrec.generation.ContentGenerator` (its model loads on first use)."""
        if self._generator is None:
            with self._generator_lock:
                if self._generator is None:
                    self._generator = self._make_generator(self._llm)
        return self._generator

    def generator_config(self) -> dict[str, Any]:
        """``{"backend", "options"}`` of the generator, as a save stores it, without loading
        a model: what tells an operator where text is generated."""
        if self._generator is not None:
            return self._generator.config()
        return {"backend": self._llm, "options": dict(self._llm_options)}

    @property
    def event_log(self) -> EventLog | None:
        """The open :class:`~llmrec.EventLog`, or ``None`` (see :meth:`open_event_log`)."""
        return self._journal.log

    # ------------------------------------------------------------------ API boundary
    def _user(self, user_id: Any) -> str:
        """The stored id of ``user_id``: itself, or its keyed pseudonym."""
        check_id(user_id, "user_id")
        return user_id if self._pseudonymize is None else self._pseudonymize(user_id)

    def _unknown_user(self, user_id: str) -> UnknownUserError:
        # Named by the caller's id, not by its pseudonym.
        return UnknownUserError(
            f"unknown user id {user_id!r}: observe an event or call add_user first"
        )

    def _commit_events(self, events: list[Event]) -> None:
        if not events:
            return
        vectors = _changes.text_vectors(self, events)
        with self._lock:
            _changes.check_items_known(self, events)
            ticket = self._journal.write("events", {"events": [e.to_dict() for e in events]})
            _changes.apply_events(self, events, vectors)
        self._journal.wait(ticket)

    def _tag_affinity(self, profile: UserProfile, rows: Any) -> Any:
        """The ``tag_affinity`` ranker feature of ``rows`` for ``profile``."""
        return _scoring.tag_affinity(self, profile, rows)

    def _reason_request(
        self, rec: Recommendation, uid: str, query: str | None, items: Mapping[str, Item]
    ) -> Any:
        """The :class:`~llmrec.ReasonRequest` :meth:`recommend` sends for ``rec``."""
        return _scoring.reason_request(self, rec, uid, query, items)

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
        self._commit_events(_changes.check_events(self, [event]))

    def observe_many(self, events: Iterable[Event]) -> None:
        """Observe events in order: all are validated before any is applied, and they are
        logged as one record (a crash keeps all of them or none)."""
        self._commit_events(_changes.check_events(self, events))

    def add_user(self, user_id: str, preferences: str | None = None) -> None:
        """Create a (cold) user, optionally from a free-text statement of taste."""
        check_id(user_id, "user_id")
        if preferences is not None:
            self._commit_events(
                _changes.check_events(
                    self, [Event(user_id=user_id, kind="query", text=preferences)]
                )
            )
            return
        uid = self._user(user_id)
        with self._lock:
            if uid in self.profiles:
                return
            ticket = self._journal.write("user", {"user_id": uid})
            self.profiles.get_or_create(uid)
        self._journal.wait(ticket)

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
            removed = self._journal.forget(uid, tombstone=known)
            if not known and not removed:
                raise UnknownUserError(f"unknown user id {user_id!r}: nothing to forget")
            if known:
                _changes.drop_user(self, uid)
            if self._generator is not None:
                # Cached texts are keyed by prompt, not by user: drop them all.
                self._generator.clear_cache()

    # ------------------------------------------------------------------ training
    def fit(
        self,
        events: Iterable[Event],
        *,
        train_ranker: bool = True,
        ranker_users: int = 1000,
        seed: int | None = None,
        show_progress: bool = True,
        finetune_encoder: bool | Mapping[str, Any] = False,
    ) -> Pipeline:
        """Learn from historical events and rebuild every profile from them.

        Co-occurrence and popularity are fitted on the positive events; the ranker is
        trained on each user's last positive event held out from everything it sees (so
        its weights reflect how well each source predicts an unseen next item); then the
        sources are refitted on all events and the profiles replayed. With
        ``finetune_encoder`` the encoder is fine-tuned on the events first.

        Args:
            events: Historical events (any order; sorted by timestamp, stably).
            train_ranker: Learn the ranker's weights (else keep the current ones).
            ranker_users: Users sampled to train the ranker.
            seed: Seed of everything random in fitting: the ranker's user sample and
                every trainable model (whose ``seed`` is set to it, so a saved pipeline
                records it). ``None`` keeps each model's own seed and samples users with
                seed 0. The same seed and events give the same pipeline.
            show_progress: Show progress bars.
            finetune_encoder: Fine-tune the item encoder on the positive events before
                anything else is fitted: ``True`` (default options) or a mapping of
                :class:`~llmrec.encoding.ContrastiveFinetuner` options (for example
                ``{"max_seconds": 120, "train_layers": "all"}``; ``seed`` and
                ``show_progress`` default to this call's). Items a user consumed close
                together are pulled together in vector space, from their text alone, so
                new items land near what their audience consumes; the catalog is then
                re-encoded with the tuned weights, the vectors replaced everywhere they
                live, the encoder's vector cache emptied, and a save keeps the weights.
                Needs a transformer encoder. With too few co-consumed pairs it is
                skipped with a warning; weights that do not raise the held-out recall
                are not applied. Off by default: the frozen encoder. On a 2-core CPU it
                stays within about ten minutes on MovieLens-100K (``max_seconds``).

        Raises:
            InvalidInputError / UnknownItemError: a bad event; nothing changes.
            ConfigError: a bad ``finetune_encoder`` option, or an encoder that cannot
                be fine-tuned (the ``hashing`` one); nothing changes.
        """
        if seed is not None:
            seed = check_int(seed, "seed", low=0, error=InvalidInputError)
        ranker_users = check_int(ranker_users, "ranker_users", low=1, error=InvalidInputError)
        train_ranker = check_bool(train_ranker, "train_ranker")
        show_progress = check_bool(show_progress, "show_progress")
        events = _changes.check_events(self, events)
        if not events:
            raise InvalidInputError("fit needs at least one event")
        events.sort(key=lambda e: e.timestamp)
        _training.fit(
            self,
            events,
            train_ranker=train_ranker,
            ranker_users=ranker_users,
            seed=seed,
            show_progress=show_progress,
            finetune_encoder=finetune_encoder,
        )
        return self

    # ------------------------------------------------------------------ recommending
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
        fallback: bool = True,
        content: str = "reason",
    ) -> list[Recommendation]:
        """Top-``k`` items for ``user_id``, best first, each with its score breakdown and
        (with ``generate=True``) its personalized, verified text of kind ``content``.

        A user id with no profile (an anonymous visitor) gets a cold-start list: the
        query's matches when a query is given, else popular items, each with
        ``Recommendation.fallback == "unknown_user"``; nothing is stored about them.

        Args:
            user_id: Any user id; a user known from :meth:`fit`, :meth:`observe` or
                :meth:`add_user` gets their own ranking.
            k: Items wanted; fewer come back when fewer items qualify.
            query: Optional free text steering this request ("something funny").
            exclude_seen: Leave out items the user already acted on.
            filters: A predicate on :class:`~llmrec.Item` or ``{attribute: value(s)}``.
            generate: Write the personalized text for each item.
            diversity: MMR trade-off for this call (default: the ranker's).
            budget_s: Latency budget for generation; late items get template text.
            fallback: Give an unknown user the cold-start list (``False``: raise
                :class:`~llmrec.UnknownUserError` instead).
            content: The text written per item: ``"reason"`` (one sentence),
                ``"pitch"`` (two or three sentences describing the item for this user),
                ``"summary"`` (a personalized summary of the item's long text, every
                sentence supported by it) or ``"headline"`` (at most 60 characters).
                Each is written from ``explanation.plan``, verified against it, and
                falls back to its template text (docs/how-to/content.md). The line
                introducing the whole list is :meth:`digest`.

        Raises:
            UnknownUserError: the user has no profile and ``fallback`` is false.
            InvalidInputError: ``k`` <= 0, an empty query, a bad filter, an unknown
                ``content`` kind.
            ConfigError: a flag that is not a bool, a negative ``budget_s``.
        """
        uid = self._user(user_id)
        request = RecommendRequest.make(
            k,
            query=query,
            exclude_seen=exclude_seen,
            filters=filters,
            generate=generate,
            diversity=diversity,
            budget_s=budget_s,
            content=content,
        )
        fallback = check_bool(fallback, "fallback")
        recs, items = _scoring.rank(self, uid, request, user_id, fallback=fallback)
        if request.generate:
            recs = _scoring.with_text(
                self, [recs], [uid], request.query, request.budget_s, items, request.content
            )[0]
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
        fallback: bool = True,
        content: str = "reason",
    ) -> Iterator[Recommendation]:
        """:meth:`recommend` with text, yielding each Recommendation as soon as its text
        is written (completion order; ``rank`` tells the position). Ranking happens, and
        bad arguments raise, before the first item is yielded."""
        uid = self._user(user_id)
        request = RecommendRequest.make(
            k,
            query=query,
            exclude_seen=exclude_seen,
            filters=filters,
            diversity=diversity,
            budget_s=budget_s,
            content=content,
        )
        fallback = check_bool(fallback, "fallback")
        recs, items = _scoring.rank(self, uid, request, user_id, fallback=fallback)
        requests = [self._reason_request(rec, uid, request.query, items) for rec in recs]
        pairs = (
            self.generator.stream(requests, budget_s=request.budget_s, kind=request.content)
            if requests
            else iter(())
        )
        return _scoring.stream_texts(recs, pairs)

    async def arecommend_stream(
        self,
        user_id: str,
        k: int = 10,
        *,
        query: str | None = None,
        exclude_seen: bool = True,
        filters: Filters | None = None,
        diversity: float | None = None,
        budget_s: float | None = None,
        fallback: bool = True,
        content: str = "reason",
    ) -> AsyncIterator[Recommendation]:
        """Async :meth:`recommend_stream`; the model runs in a worker thread."""
        uid = self._user(user_id)
        request = RecommendRequest.make(
            k,
            query=query,
            exclude_seen=exclude_seen,
            filters=filters,
            diversity=diversity,
            budget_s=budget_s,
            content=content,
        )
        fallback = check_bool(fallback, "fallback")
        recs, items = await asyncio.to_thread(
            _scoring.rank, self, uid, request, user_id, fallback=fallback
        )
        requests = [self._reason_request(rec, uid, request.query, items) for rec in recs]
        if not requests:
            return
        async for n, text in self.generator.astream(
            requests, budget_s=request.budget_s, kind=request.content
        ):
            yield _scoring.with_generated(recs[n], text)

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
        fallback: bool = True,
        content: str = "reason",
    ) -> list[list[Recommendation]]:
        """:meth:`recommend` for several users; texts are generated in one batch.

        Every user id is checked before any work is done; results equal single calls.
        """
        user_ids = check_sequence(user_ids, "user_ids")
        uids = [self._user(u) for u in user_ids]
        fallback = check_bool(fallback, "fallback")
        for uid, user_id in zip(uids, user_ids):
            if not fallback and uid not in self.profiles:
                raise self._unknown_user(user_id)
        request = RecommendRequest.make(
            k,
            query=query,
            exclude_seen=exclude_seen,
            filters=filters,
            generate=generate,
            diversity=diversity,
            budget_s=budget_s,
            content=content,
        )
        items: dict[str, Item] = {}
        recs = []
        for uid, user_id in zip(uids, user_ids):
            user_recs, user_items = _scoring.rank(self, uid, request, user_id, fallback=fallback)
            recs.append(user_recs)
            items.update(user_items)
        if request.generate:
            recs = _scoring.with_text(
                self, recs, uids, request.query, request.budget_s, items, request.content
            )
        return recs

    def digest(
        self,
        user_id: str,
        recommendations: Sequence[Recommendation],
        *,
        budget_s: float | None = None,
    ) -> GeneratedText:
        """One line introducing a whole list (for a newsletter or a push notification):
        its first titles and the user's history item it relates to, written from the
        recommendations' fact plans and verified against them (template text when the
        model's line fails or the budget runs out).

        Args:
            user_id: The user the list was made for.
            recommendations: The list, best first (from :meth:`recommend`); items
                removed from the catalog since are left out.
            budget_s: Latency budget in seconds (default: the generator's).

        Raises:
            InvalidInputError: an empty list, or no item of it left in the catalog.
            ConfigError: a negative ``budget_s``.
        """
        uid = self._user(user_id)
        recs = check_instances(
            recommendations, "recommendations", Recommendation, "a Recommendation"
        )
        budget = RecommendRequest.make(1, budget_s=budget_s).budget_s
        with self._lock:
            requests = _content.digest_requests(self, recs, uid)
        if not requests:
            raise InvalidInputError("digest needs recommendations of items in the catalog")
        return self.generator.digest(requests, budget_s=budget)

    def warm(self) -> None:
        """Load the language model and run it once now (blocking), so the next request
        pays neither; a no-op with ``llm="template"``."""
        self.generator.warm()

    def recommend_session(
        self,
        history: Sequence[str | Event],
        k: int = 10,
        *,
        query: str | None = None,
        filters: Filters | None = None,
        exclude_seen: bool = True,
        generate: bool = False,
        diversity: float | None = None,
        budget_s: float | None = None,
    ) -> list[Recommendation]:
        """Top-``k`` items for an anonymous session, from what it viewed or bought, without
        creating or changing a stored user.

        The session is ranked exactly as a user with these events would be (same sources,
        ranker and explanations); its events are not stored, logged or counted toward
        popularity.

        Args:
            history: The session's item ids (each counts as a click) or
                :class:`~llmrec.Event` objects (their kind and value count; their user id
                is ignored), oldest first.
            k: Items wanted (as for :meth:`recommend`).
            query: Optional free text steering this request.
            filters: As for :meth:`recommend`.
            exclude_seen: Leave out the session's own items.
            generate: Write a reason for each item.
            diversity: MMR trade-off for this call (default: the ranker's).
            budget_s: Latency budget for generation.

        Raises:
            InvalidInputError: ``history`` is not a sequence of item ids and Events, or
                an argument :meth:`recommend` refuses.
            UnknownItemError: ``history`` names an item not in the catalog.
        """
        request = RecommendRequest.make(
            k,
            query=query,
            exclude_seen=exclude_seen,
            filters=filters,
            generate=generate,
            diversity=diversity,
            budget_s=budget_s,
        )
        recs, items = _anonymous.session_rank(self, history, request)
        if request.generate:
            uid = _anonymous.SESSION_USER
            recs = _scoring.with_text(self, [recs], [uid], request.query, request.budget_s, items)
            recs = recs[0]
        return recs

    def similar_items(
        self, item_id: str, k: int = 10, *, filters: Filters | None = None
    ) -> list[Recommendation]:
        """The ``k`` items most like ``item_id`` ("customers also bought"), best first,
        the item itself excluded.

        The item is ranked as a one-item session: co-occurrence neighbours and the
        trained models blended with text and tag similarity by the ranker's weights; each
        :class:`~llmrec.Recommendation` carries its score breakdown, with ``item_id`` as
        its evidence.

        Raises:
            UnknownItemError: ``item_id`` is not in the catalog.
            InvalidInputError: ``k`` <= 0 or a bad filter.
        """
        request = RecommendRequest.make(k, filters=filters, generate=False)
        return _anonymous.similar_items(self, item_id, request)[0]

    # ------------------------------------------------------------------ asyncio
    # Each coroutine runs its blocking twin in a worker thread (asyncio.to_thread), so the
    # event loop stays free; the guarantees are those of the twin.
    async def arecommend(self, user_id: str, k: int = 10, **kwargs: Any) -> list[Recommendation]:
        """Async :meth:`recommend`; runs in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self.recommend, user_id, k, **kwargs)

    async def arecommend_batch(
        self, user_ids: Sequence[str], k: int = 10, **kwargs: Any
    ) -> list[list[Recommendation]]:
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
        _changes.add_items(self, items)

    def remove_items(self, item_ids: Iterable[str]) -> None:
        """Remove items (all must exist, else nothing changes)."""
        _changes.remove_items(self, item_ids)

    # ------------------------------------------------------------------ event log
    def open_event_log(
        self,
        path: str | Path,
        *,
        fsync: str = "always",
        batch_interval: float = 0.2,
        allow_new: bool = False,
    ) -> int:
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
        allow_new = check_bool(allow_new, "allow_new")
        with self._lock:
            return self._journal.open(
                self, path, fsync=fsync, batch_interval=batch_interval, allow_new=allow_new
            )

    def close(self) -> None:
        """Sync and close the event log, if one is open (the pipeline stays usable; its
        next save still records how far the log was applied)."""
        with self._lock:
            self._journal.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path: str | Path, *, signing_key: bytes | None = None) -> None:
        """Save everything to ``path`` atomically: a crash at any moment leaves the
        previous save (or the new one) loadable. The manifest records every file's size
        and SHA-256, and how far the event log had been applied.

        Args:
            path: The save directory.
            signing_key: Sign the save (HMAC-SHA256 of the manifest, which lists every
                file's SHA-256) so that ``from_pretrained(..., signing_key=...)`` refuses
                any save not made with this key.

        Raises:
            PersistenceError: ``path`` is a file or a non-empty directory that is not an
                llmrec save (it is never replaced), or the disk refused the write.
            ConfigError: ``signing_key`` is not bytes of at least 16 bytes.
        """
        key = check_signing_key(signing_key)
        _persistence.save(self, check_path(path, "save path"), signing_key=key)

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        device: DeviceLike = "auto",
        llm: Any = None,
        llm_options: Mapping[str, Any] | None = None,
        pseudonymize_key: bytes | None = None,
        allow_remote: bool = False,
        allow_llms: Iterable[str] = (),
        signing_key: bytes | None = None,
    ) -> Pipeline:
        """Load a pipeline saved by :meth:`save_pretrained`.

        A save directory is input: it may come from elsewhere or have been edited. Its
        generator is used only when it runs in this process (``"default"``,
        ``"transformers"``, ``"template"``, ``"llamacpp"``) with no network address in
        its options; a save that sends prompts over the network (``"openai"``, or any
        ``scheme://`` address) needs ``allow_remote=True``, and any other backend name
        needs to be listed in ``allow_llms``. Passing ``llm=`` or ``llm_options=`` makes
        the choice yours and skips the check.

        To recover after a crash, open the event log on the loaded pipeline
        (:meth:`open_event_log`): it replays what happened after the save.

        Args:
            path: The save directory.
            device: Where to run (a GPU save loads on a CPU).
            llm: Override the saved generator backend (e.g. ``"template"``); the saved
                generator options that belong to the saved backend (``model``,
                ``backend_options``) are then dropped.
            llm_options: Override the saved generator options.
            pseudonymize_key: The key the save was made with, if any.
            allow_remote: Trust a saved generator that sends prompts over the network.
            allow_llms: Other saved generator backend names to trust (registered ones).
            signing_key: Accept only a save signed with this key (see
                :meth:`save_pretrained`).

        Raises:
            PersistenceError: the directory is missing, truncated, corrupt or from a newer
                llmrec; or its generator is remote or a backend not allowed (above).
            ConfigError: the save is pseudonymized and the key is missing or another one
                (or a key is given for a save that is not pseudonymized).
        """
        path = check_path(path, "save path")
        if llm_options is not None:
            llm_options = check_options(llm_options, "llm_options")
        allow_remote = check_bool(allow_remote, "allow_remote")
        allowed = frozenset(check_instances(allow_llms, "allow_llms", str, "a backend name"))
        signing_key = check_signing_key(signing_key)
        pseudonymize = None if pseudonymize_key is None else Pseudonymizer(pseudonymize_key)
        device = resolve_device(device)
        saved = _persistence.load(
            path,
            device=device,
            key_check=None if pseudonymize is None else pseudonymize.key_check,
            signing_key=signing_key,
        )
        llm, options = _persistence.generator_choice(
            saved.parts["generator"],
            llm,
            llm_options,
            allow_remote=allow_remote,
            allow_llms=allowed,
        )
        parts = saved.parts
        pipe = cls(
            parts["catalog"],
            parts["encoder"],
            parts["retriever"],
            parts["ranker"],
            parts["profiles"],
            llm=llm,
            llm_options=options,
            device=device,
            pseudonymize_key=pseudonymize_key,
        )
        pipe._journal = saved.journal
        return pipe

    def __repr__(self) -> str:
        return (
            f"Pipeline(items={len(self.catalog)}, users={len(self.profiles)}, "
            f"encoder={self.encoder.backend.name}, index={self.retriever.index.name}, "
            f"device={self.device})"
        )
