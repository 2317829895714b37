"""The fact plan of one recommendation, from the pipeline's own data.

:func:`explain_evidence` picks the user's history items that the recommended item is
really related to, and states each relation as a :class:`~llmrec.Fact`
(:mod:`llmrec.generation.plan`):

- **co-consumption**, with its strength: of the people who liked the history item (an
  event of weight >= :data:`~llmrec.types.LIKED_WEIGHT`: a click, like, purchase or 4-5
  star rating; not a view or a 3-star rating), the share that also liked the recommended item
  ("Liked by 41% of the 230 people who liked Fargo."). The counts come from the
  profiles, not from the co-occurrence source's normalized similarities (which cannot be
  turned back into counts once live events moved the popularity counts): the profile
  store's inverted index item -> users who liked it, built once and kept current by every
  change;
- a **shared attribute value** (same director, cast member, brand, category);
- **similar text**, only above a threshold calibrated per catalog: the 95th percentile
  of the similarity of random item pairs (at least :data:`MIN_SIMILARITY`), so "close to"
  means closer than 95% of pairs are.

When no history item relates to it, the plan says what the user usually likes instead
(:func:`~llmrec.generation.plan.taste_facts`: "Most of what you liked is Sports (3 of 4);
this is not."), and the words of the user's stated preferences the item matches.

Only history items the user liked are evidence ("You liked X." must be true), and of them
only the ones with a relation. The ranking itself is not changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from llmrec.errors import LLMRecError
from llmrec.generation import (
    ReasonRequest,
    context_facts,
    display_title,
    item_facts,
    relation_facts,
    taste_facts,
)
from llmrec.profile import ProfileStore, UserProfile
from llmrec.types import Fact, Item, Recommendation

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = [
    "MAX_HISTORY",
    "MIN_SIMILARITY",
    "co_users",
    "consumers_of",
    "digest_requests",
    "explain_evidence",
    "similarity_threshold",
    "start_warming",
]

logger = logging.getLogger(__name__)

#: The least text similarity ever stated as a relation.
MIN_SIMILARITY = 0.5
#: Most recent history items looked at for relations (each costs a comparison per
#: recommended item, under the pipeline lock).
MAX_HISTORY = 10
#: Item pairs sampled to calibrate the similarity threshold.
_SAMPLE_PAIRS = 4000
_LOCK = threading.Lock()
_THRESHOLDS: dict[tuple[int, int, int], float] = {}


def consumers_of(profiles: ProfileStore) -> Mapping[str, set[str]]:
    """item id -> ids of the users who liked it
    (:meth:`~llmrec.ProfileStore.likers`, kept current by every change)."""
    return profiles.likers()


def co_users(index: Mapping[str, set[str]], target: str, other: str) -> tuple[int, int]:
    """``(users who liked both, users who liked other)`` from an index of
    :func:`consumers_of`."""
    liked = index.get(other, set())
    return len(liked & index.get(target, set())), len(liked)


def similarity_threshold(vectors: np.ndarray) -> float:
    """The 95th percentile of the similarity of random item pairs (at least
    :data:`MIN_SIMILARITY`), cached per vector matrix."""
    n = len(vectors)
    key = (id(vectors), n, vectors.shape[1] if vectors.ndim == 2 else 0)
    with _LOCK:
        if key in _THRESHOLDS:
            return _THRESHOLDS[key]
    threshold = MIN_SIMILARITY
    if n >= 3:
        rng = np.random.default_rng(0)
        a, b = rng.integers(0, n, _SAMPLE_PAIRS), rng.integers(0, n, _SAMPLE_PAIRS)
        keep = a != b
        sims = np.einsum("ij,ij->i", vectors[a[keep]], vectors[b[keep]])
        if len(sims):
            threshold = max(MIN_SIMILARITY, float(np.quantile(sims, 0.95)))
    with _LOCK:
        if len(_THRESHOLDS) > 64:
            _THRESHOLDS.clear()
        _THRESHOLDS[key] = threshold
    return threshold


def explain_evidence(
    pipe: Pipeline,
    profile: UserProfile,
    item: Item,
    row: int,
    signals: Mapping[str, float],
    matched_tags: tuple[str, ...],
    query: str | None = None,
    limit: int = 3,
    *,
    consumers: Mapping[str, set[str]] | None = None,
) -> tuple[tuple[str, ...], tuple[Fact, ...]]:
    """The history items related to ``item`` (strongest relation first, at most
    ``limit``) and the fact plan of the recommendation (called under the pipeline lock;
    ``consumers``: the :func:`consumers_of` index, when the caller has it)."""
    catalog, retriever = pipe.catalog, pipe.retriever
    recent = profile.recent_items(retriever.history_length, liked_only=True)
    history = [i for i in recent if i in catalog]
    history = [i for i in history if i != item.item_id][:MAX_HISTORY]
    vectors = retriever.item_vectors
    threshold = similarity_threshold(vectors)
    related: list[tuple[float, str, list[Fact]]] = []
    if history:
        index = consumers_of(pipe.profiles) if consumers is None else consumers
        rows = catalog.rows(history)
        sims = vectors[rows] @ vectors[row]
        for item_id, sim in zip(history, sims.tolist()):
            other = catalog.get(item_id)
            both = co_users(index, item.item_id, item_id)
            facts = relation_facts(item, other, co_users=both, similarity=sim, threshold=threshold)
            if facts:
                related.append((max(f.weight for f in facts), item_id, facts))
    related.sort(key=lambda r: -r[0])
    related = related[:limit]
    plan = item_facts(item)
    for _, item_id, facts in related:
        title = display_title(catalog.get(item_id).title)
        plan.append(Fact("history", f"You liked {title}.", "profile:history", (), item_id))
        plan += facts
    if not related and history:
        # No history item relates to it: say how it differs from what the user likes.
        plan += taste_facts(item, [catalog.get(i) for i in history])
    relations = {**retriever.relations, "tag_affinity": "shared_tags"}
    plan += context_facts(
        item,
        matched_tags=matched_tags,
        query=query,
        signals=signals,
        relations=relations,
        stated=profile.stated_preferences,
    )
    return tuple(r[1] for r in related), tuple(plan)


def digest_requests(
    pipe: Pipeline, recs: Sequence[Recommendation], uid: str
) -> list[ReasonRequest]:
    """The requests of a digest: one per recommendation whose item is still in the
    catalog, with the evidence items that are (called under the pipeline lock)."""
    catalog, out = pipe.catalog, []
    for rec in recs:
        if rec.item_id not in catalog:
            continue
        evidence = tuple(catalog.get(i) for i in rec.explanation.evidence_item_ids if i in catalog)
        out.append(
            ReasonRequest(
                user_id=uid,
                item=catalog.get(rec.item_id),
                evidence_items=evidence,
                signals=dict(rec.explanation.signals),
                matched_tags=rec.explanation.matched_tags,
                relations={**pipe.retriever.relations, "tag_affinity": "shared_tags"},
                plan=rec.explanation.plan,
            )
        )
    return out


def start_warming(pipe: Pipeline) -> threading.Thread:
    """Build and warm the pipeline's generator in a daemon thread; a request that needs
    it sooner waits on the generator's lock. A failure is logged, and raised again by
    the first request that builds the generator."""

    def work() -> None:
        try:
            pipe.generator.warm()
        except LLMRecError as exc:
            logger.warning("could not warm the language model: %s", exc)
        except Exception:  # noqa: BLE001 - the first request reports it
            logger.exception("could not warm the language model")

    thread = threading.Thread(target=work, name="llmrec-warm-llm", daemon=True)
    thread.start()
    return thread
