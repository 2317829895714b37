"""Pipeline: the object applications use. Owns a catalog, an encoder, profiles, a
retriever, a ranker and a content generator, and keeps them consistent."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.catalog import Catalog
from llmrec.device import DeviceLike, resolve_device
from llmrec.encoder import ItemEncoder
from llmrec.errors import (
    BackendUnavailableError,
    DeviceError,
    InvalidInputError,
    LLMRecError,
    PersistenceError,
    UnknownItemError,
)
from llmrec.io import FORMAT_VERSION, MANIFEST_NAME, atomic_directory, read_manifest, write_json
from llmrec.profile import ProfileStore, UserProfile
from llmrec.ranker import Ranker
from llmrec.retriever import Retriever
from llmrec.types import Event, Explanation, GeneratedText, Item, Recommendation, check_id

__all__ = ["Filters", "Pipeline"]

logger = logging.getLogger(__name__)

#: ``filters`` is a predicate on items, or a mapping ``attribute -> allowed value(s)``.
Filters = Callable[[Item], bool] | Mapping[str, Any]

TAG_FEATURE = "tag_affinity"
#: Trainable candidate sources ``models="auto"`` adds on catalogs up to 20k items.
AUTO_MODELS: tuple[str, ...] = ("ease", "sequential")


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


def _attribute_matches(value: Any, allowed: Any) -> bool:
    allowed_set = set(allowed) if isinstance(allowed, (list, tuple, set, frozenset)) else {allowed}
    if isinstance(value, (list, tuple, set)):
        return bool(allowed_set.intersection(value))
    return value in allowed_set


class Pipeline:
    """Personalized recommendations with personalized, grounded text.

    Build one with :meth:`from_catalog` or :meth:`from_pretrained`. All public methods are
    safe to call from several threads; an observed event is visible to the next
    :meth:`recommend` of that user.

    Args:
        catalog: The items.
        encoder: Encodes item and query text.
        retriever: Candidate sources and the vector index (vectors already added).
        ranker: The candidate scorer.
        profiles: User profiles.
        llm: The generator backend name (``"default"``, ``"transformers"``,
            ``"template"``, ...) or a ready :class:`~llmrec.generator.ContentGenerator`;
            the model loads on first use.
        llm_options: Passed to the :class:`~llmrec.generator.ContentGenerator`.
        device: Where models run.
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
    ) -> None:
        self.catalog = catalog
        self.encoder = encoder
        self.retriever = retriever
        self.ranker = ranker
        self.profiles = profiles
        self.device = resolve_device(device)
        self._llm = llm
        self._llm_options = dict(llm_options or {})
        self._generator: Any = None if isinstance(llm, str) else llm
        self._lock = threading.RLock()
        self._generator_lock = threading.Lock()

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
    ) -> Pipeline:
        """Encode ``items`` and build a ready pipeline with the embedded defaults.

        Args:
            items: The catalog; at least one item, unique ids.
            encoder: Encoder backend name (``"default"`` = all-MiniLM-L6-v2,
                ``"transformers"`` with ``encoder_options={"model": ...}``, ``"hashing"``)
                or an :class:`~llmrec.protocols.EncoderBackend`.
            index: ``"auto"``, ``"exact"``, ``"hnsw"`` or an index backend.
            llm: ``"default"`` (embedded SmolLM2-135M-Instruct), ``"transformers"`` with
                ``llm_options={"model": ...}``, ``"template"`` (no model), or a
                :class:`~llmrec.generator.ContentGenerator`.
            device: ``"auto"``, ``"cpu"``, ``"cuda"``, ... (see :func:`llmrec.resolve_device`).
            diversity: Default MMR trade-off in [0, 1).
            n_candidates: Candidates proposed by each source per request.
            half_life: Events after which an old event's weight in a profile halves.
            models: Trainable candidate sources fitted by :meth:`fit`: names
                (``"ease"``, ``"sequential"``) or instances; ``"auto"`` picks
                :data:`AUTO_MODELS` for catalogs up to 20k items and none above.
            show_progress: Show progress bars on long work.
        """
        items = list(items)
        if not items:
            raise InvalidInputError("the catalog is empty: from_catalog needs at least one item")
        catalog = Catalog()
        items = catalog.validate_new(items)
        device = resolve_device(device)
        item_encoder = ItemEncoder(encoder, device=device, show_progress=show_progress,
                                   **dict(encoder_options or {}))
        vectors = item_encoder.encode_items(items)
        rows = catalog.upsert(items)
        retriever = Retriever(item_encoder.dim, index=index, n_items_hint=len(items),
                              n_candidates=n_candidates, device=device)
        retriever.upsert(rows, vectors)
        if models == "auto":
            models = AUTO_MODELS if len(items) <= 20_000 else ()
        if isinstance(models, str):
            models = (models,)
        for model in models:
            retriever.add_model(model)
        ranker = Ranker(retriever.feature_names + (TAG_FEATURE,), diversity=diversity)
        profiles = ProfileStore(item_encoder.dim, half_life=half_life)
        return cls(catalog, item_encoder, retriever, ranker, profiles, llm=llm,
                   llm_options=llm_options, device=device)

    @property
    def generator(self) -> Any:
        """The :class:`~llmrec.generator.ContentGenerator` (its model loads on first use)."""
        if self._generator is None:
            with self._generator_lock:
                if self._generator is None:
                    from llmrec.generator import ContentGenerator

                    self._generator = ContentGenerator(self._llm, catalog=self.catalog,
                                                       device=self.device, **self._llm_options)
        return self._generator

    # ------------------------------------------------------------------ events
    def _check_events(self, events: Iterable[Event]) -> list[Event]:
        events = list(events)
        for n, event in enumerate(events):
            if not isinstance(event, Event):
                raise InvalidInputError(f"events[{n}] must be an llmrec.Event, got {type(event).__name__}")
            if event.item_id is not None and event.item_id not in self.catalog:
                raise UnknownItemError(f"events[{n}] names unknown item id {event.item_id!r}")
        return events

    def _apply(self, store: ProfileStore, event: Event, text_vector: np.ndarray | None) -> None:
        if event.item_id is None:
            store.observe(event, None, (), text_vector)
            return
        row = self.catalog.row(event.item_id)
        item = self.catalog.get(event.item_id)
        store.observe(event, self.retriever.item_vectors[row], item.tags, text_vector)

    def observe(self, event: Event) -> None:
        """Fold one event into its user's profile; visible to the next :meth:`recommend`.

        Raises:
            InvalidInputError: ``event`` is not an :class:`~llmrec.Event`.
            UnknownItemError: it names an item that is not in the catalog.
        """
        (event,) = self._check_events([event])
        text_vector = self.encoder.encode_query(event.text) if event.kind == "query" else None
        with self._lock:
            if event.item_id is not None and event.item_id not in self.catalog:
                raise UnknownItemError(f"event names unknown item id {event.item_id!r}")
            self._apply(self.profiles, event, text_vector)
            if event.item_id is not None and event.kind != "query":
                self.retriever.record(self.catalog.row(event.item_id), event.weight)

    def observe_many(self, events: Iterable[Event]) -> None:
        """Observe events in order (all are validated before any is applied)."""
        events = self._check_events(events)
        texts = {e.text for e in events if e.kind == "query"}
        vectors = dict(zip(texts, self.encoder.encode_texts(list(texts)))) if texts else {}
        with self._lock:
            for event in events:
                self._apply(self.profiles, event, vectors.get(event.text))
                if event.item_id is not None and event.kind != "query":
                    self.retriever.record(self.catalog.row(event.item_id), event.weight)

    def add_user(self, user_id: str, preferences: str | None = None) -> None:
        """Create a (cold) user, optionally from a free-text statement of taste."""
        check_id(user_id, "user_id")
        if preferences is not None:
            self.observe(Event(user_id=user_id, kind="query", text=preferences))
        else:
            self.profiles.get_or_create(user_id)

    def profile(self, user_id: str) -> UserProfile:
        """The user's profile (raises :class:`~llmrec.UnknownUserError` if absent)."""
        return self.profiles.get(user_id)

    def forget(self, user_id: str) -> None:
        """Erase everything stored about ``user_id`` (profile, history, preferences)."""
        with self._lock:
            self.profiles.forget(user_id)

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
        events = self._check_events(events)
        if not events:
            raise InvalidInputError("fit needs at least one event")
        events.sort(key=lambda e: e.timestamp)
        texts = sorted({e.text for e in events if e.kind == "query" and e.text})
        text_vectors = dict(zip(texts, self.encoder.encode_texts(texts))) if texts else {}
        with self._lock:
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

            def predicate(item: Item) -> bool:
                return all(_attribute_matches(item.attributes.get(key), allowed)
                           for key, allowed in wanted.items())
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

    def _rank(self, user_id: str, k: int, query: str | None, exclude_seen: bool,
              filters: Filters | None, diversity: float | None) -> list[Recommendation]:
        check_id(user_id, "user_id")
        k = _check_k(k)
        if query is not None and (not isinstance(query, str) or not query.strip()):
            raise InvalidInputError(f"query must be a non-empty str or None, got {query!r:.80}")
        if diversity is not None:
            Ranker.check_diversity(diversity)
        row_filter = self._row_filter(filters)
        query_vector = self.encoder.encode_query(query) if query is not None else None
        with self._lock:
            profile = self.profiles.get(user_id)
            rows, x = self._score_candidates(profile, query_vector, exclude_seen, row_filter, k)
            if not len(rows):
                return []
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
            return out

    def _reason_request(self, rec: Recommendation, user_id: str, query: str | None) -> Any:
        from llmrec.generator import ReasonRequest

        return ReasonRequest(
            user_id=user_id, item=self.catalog.get(rec.item_id),
            evidence_items=tuple(self.catalog.get(i) for i in rec.explanation.evidence_item_ids),
            signals=dict(rec.explanation.signals),
            matched_tags=rec.explanation.matched_tags, query=query)

    def _with_text(self, batches: list[list[Recommendation]], user_ids: Sequence[str],
                   queries: Sequence[str | None], budget_s: float | None) -> list[list[Recommendation]]:
        requests, slots = [], []
        for b, (recs, user_id, query) in enumerate(zip(batches, user_ids, queries)):
            for n, rec in enumerate(recs):
                requests.append(self._reason_request(rec, user_id, query))
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
        recs = self._rank(user_id, k, query, exclude_seen, filters, diversity)
        if generate:
            recs = self._with_text([recs], [user_id], [query], budget_s)[0]
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
        recs = self._rank(user_id, k, query, exclude_seen, filters, diversity)
        requests = [self._reason_request(rec, user_id, query) for rec in recs]
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
        recs = await asyncio.to_thread(self._rank, user_id, k, query, exclude_seen, filters,
                                       diversity)
        requests = [self._reason_request(rec, user_id, query) for rec in recs]
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
        if isinstance(user_ids, str):
            raise InvalidInputError("user_ids must be a sequence of ids, not a str")
        user_ids = list(user_ids)
        for user_id in user_ids:
            self.profiles.get(check_id(user_id, "user_id"))
        recs = [self._rank(u, k, query, exclude_seen, filters, diversity) for u in user_ids]
        if generate:
            recs = self._with_text(recs, user_ids, [query] * len(user_ids), budget_s)
        return recs

    async def arecommend(self, user_id: str, k: int = 10, **kwargs: Any) -> list[Recommendation]:
        """Async :meth:`recommend`; runs in a worker thread so the event loop stays free."""
        return await asyncio.to_thread(self.recommend, user_id, k, **kwargs)

    async def aobserve(self, event: Event) -> None:
        """Async :meth:`observe`."""
        await asyncio.to_thread(self.observe, event)

    # ------------------------------------------------------------------ catalog changes
    def add_items(self, items: Iterable[Item]) -> None:
        """Insert or replace items; they are searchable by the next request."""
        items = self.catalog.validate_new(list(items))
        if not items:
            return
        vectors = self.encoder.encode_items(items)
        self.retriever.check_vectors(vectors)
        with self._lock:
            rows = self.catalog.upsert(items)
            self.retriever.upsert(rows, vectors)

    def remove_items(self, item_ids: Iterable[str]) -> None:
        """Remove items (all must exist, else nothing changes)."""
        if isinstance(item_ids, str):
            raise InvalidInputError("item_ids must be a sequence of ids, not a str")
        item_ids = list(item_ids)
        with self._lock:
            if len(self.catalog) - len(set(item_ids)) < 1 and item_ids:
                self.catalog.rows(item_ids)  # unknown ids raise first
                raise InvalidInputError("removing these items would leave the catalog empty")
            rows = self.catalog.remove(item_ids)
            self.retriever.remove(rows)

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, path: str | Path) -> None:
        """Save everything to ``path`` atomically (a crash leaves the previous save)."""
        path = Path(path)
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
            write_json(tmp / MANIFEST_NAME, {
                "format_version": FORMAT_VERSION, "kind": "pipeline",
                "versions": _versions(), "components": components})
        logger.info("saved pipeline to %s in %.2fs", path, time.perf_counter() - started)

    def _generator_config(self) -> dict[str, Any]:
        if self._generator is not None and hasattr(self._generator, "config"):
            return {"llm": self._llm if isinstance(self._llm, str) else "default",
                    "config": self._generator.config()}
        return {"llm": self._llm if isinstance(self._llm, str) else "default",
                "options": self._llm_options}

    @classmethod
    def from_pretrained(cls, path: str | Path, *, device: DeviceLike = "auto",
                        llm: Any = None, llm_options: Mapping[str, Any] | None = None) -> Pipeline:
        """Load a pipeline saved by :meth:`save_pretrained`.

        Args:
            path: The save directory.
            device: Where to run (a GPU save loads on a CPU).
            llm: Override the saved generator backend (e.g. ``"template"``).

        Raises:
            PersistenceError: the directory is missing, corrupt or from a newer llmrec.
        """
        path = Path(path)
        manifest = read_manifest(path, "pipeline")
        try:
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
        except (KeyError, TypeError, ValueError, AttributeError, LLMRecError) as exc:
            raise PersistenceError(f"corrupt save in {str(path)!r}: {exc!r}") from None
        if retriever.dim != encoder.dim:
            raise PersistenceError(
                f"saved vectors have dim {retriever.dim} but the encoder gives {encoder.dim}")
        if llm_options is not None:
            options = dict(llm_options)
        return cls(catalog, encoder, retriever, ranker, profiles,
                   llm=llm if llm is not None else saved_llm,
                   llm_options=options, device=device)

    def __repr__(self) -> str:
        return (f"Pipeline(items={len(self.catalog)}, users={len(self.profiles)}, "
                f"encoder={self.encoder.backend.name}, index={self.retriever.index.name}, "
                f"device={self.device})")

