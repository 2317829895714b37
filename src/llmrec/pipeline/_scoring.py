"""Ranking one user's candidates, explaining each pick, and asking for its text.

Every function reads the pipeline's public components (``catalog``, ``retriever``,
``ranker``, ``encoder``, ``profiles``) at call time, so a component replaced by
:meth:`~llmrec.Pipeline.fit` is the one used. Callers hold the pipeline's lock where a
function says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from llmrec.generation import ReasonRequest
from llmrec.pipeline import _content
from llmrec.pipeline._request import RecommendRequest, RowFilter
from llmrec.profile import UserProfile
from llmrec.retrieval import Retriever
from llmrec.types import Explanation, GeneratedText, Item, Recommendation

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = [
    "TAG_FEATURE",
    "feature_names",
    "rank",
    "rank_profile",
    "ranker_weights",
    "reason_request",
    "score_candidates",
    "stream_texts",
    "tag_affinity",
    "with_generated",
    "with_text",
]

#: The pipeline's own ranker feature (not a candidate source): the user's affinity for
#: the item's tags.
TAG_FEATURE = "tag_affinity"
#: Weight of :data:`TAG_FEATURE` before the ranker is fitted.
TAG_DEFAULT_WEIGHT = 0.5
#: The relation :data:`TAG_FEATURE` states (see :data:`llmrec.types.RELATIONS`).
TAG_RELATION = "shared_tags"
#: :attr:`llmrec.Recommendation.fallback` of a cold-start list for an unknown user id.
FALLBACK_UNKNOWN_USER = "unknown_user"
#: Items a user must act on before their stated preferences count half as much as a
#: request query: a new user's "I want to start trail running" steers like a query, a
#: long history speaks for itself.
PREFERENCE_HALF_ITEMS = 5.0


def ranker_weights(retriever: Retriever) -> dict[str, float]:
    """Initial ranker weights: each source's declared default, plus the tag feature's."""
    return {**retriever.default_weights, TAG_FEATURE: TAG_DEFAULT_WEIGHT}


def feature_names(retriever: Retriever) -> tuple[str, ...]:
    """The ranker features: the retriever's sources, then the tag feature."""
    return retriever.feature_names + (TAG_FEATURE,)


def tag_affinity(pipe: Pipeline, profile: UserProfile, rows: np.ndarray) -> np.ndarray:
    """Per row: the user's tag affinities of the item's tags, scaled to the user's strongest
    affinity, summed and divided by the square root of the item's tag count."""
    affinity = profile.tag_affinity
    out = np.zeros(len(rows), dtype=np.float32)
    if not affinity:
        return out
    catalog = pipe.catalog
    scale = max(abs(v) for v in affinity.values()) or 1.0
    weights = np.zeros(catalog.n_tags + 1, dtype=np.float32)  # last: padding (-1)
    for tag, value in affinity.items():
        tag_id = catalog.tag_id(tag)
        if tag_id is not None:
            weights[tag_id] = value / scale
    tags = catalog.row_tags(rows)
    counts = (tags >= 0).sum(axis=1)
    np.divide(weights[tags].sum(axis=1), np.sqrt(counts), out=out, where=counts > 0)
    return out


def standing_query(profile: UserProfile) -> np.ndarray | None:
    """The user's stated preferences as a query for a request that gives none, weighted
    ``PREFERENCE_HALF_ITEMS / (PREFERENCE_HALF_ITEMS + items acted on)``; ``None`` if the
    user stated none."""
    if profile.preference_vector is None:
        return None
    scale = PREFERENCE_HALF_ITEMS / (PREFERENCE_HALF_ITEMS + len(profile.seen))
    return (profile.preference_vector * scale).astype(np.float32)


def score_candidates(
    pipe: Pipeline,
    profile: UserProfile,
    query_vector: np.ndarray | None,
    exclude_seen: bool,
    row_filter: RowFilter | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rows for ``profile`` and their ranker feature matrix (under the lock).

    Without a request ``query_vector`` the user's stated preferences stand in for one
    (:func:`standing_query`), in training as in serving.
    """
    if query_vector is None:
        query_vector = standing_query(profile)
    catalog = pipe.catalog
    exclude = [catalog.row(i) for i in profile.seen if i in catalog] if exclude_seen else []
    history = [catalog.row(i) for i in profile.recent_items() if i in catalog]
    ctx = pipe.retriever.context(profile.query_vector(), query_vector, history, exclude)
    rows, features = pipe.retriever.candidates(ctx, row_filter=row_filter, min_count=k)
    features[TAG_FEATURE] = tag_affinity(pipe, profile, rows)
    return rows, pipe.ranker.feature_matrix(features, len(rows))


def _explain(
    pipe: Pipeline,
    profile: UserProfile,
    item: Item,
    row: int,
    contributions: np.ndarray,
    x: np.ndarray,
    query: str | None = None,
    consumers: Mapping[str, set[str]] | None = None,
) -> Explanation:
    names = pipe.ranker.feature_names
    matched = tuple(t for t in item.tags if profile.tag_affinity.get(t, 0.0) > 0)
    matched = tuple(sorted(matched, key=lambda t: -profile.tag_affinity[t]))
    signals = {n: float(c) for n, c in zip(names, contributions)}
    # The evidence is the history items the item is really related to, with the fact
    # plan stating each relation (pipeline/_content.py); ranking is not changed by it.
    evidence_ids, plan = _content.explain_evidence(
        pipe, profile, item, row, signals, matched, query, consumers=consumers
    )
    return Explanation(
        signals=signals,
        features={n: float(v) for n, v in zip(names, x)},
        evidence_item_ids=evidence_ids,
        matched_tags=matched,
        plan=plan,
    )


def rank(
    pipe: Pipeline,
    uid: str,
    request: RecommendRequest,
    user_id: str,
    *,
    fallback: bool = False,
) -> tuple[list[Recommendation], dict[str, Item]]:
    """Rank for the stored user id ``uid``.

    Returns the recommendations and the items they and their evidence name, read under the
    same lock, so a concurrent removal cannot break the text generation that follows.

    Args:
        fallback: For a ``uid`` with no profile, rank for an empty profile (the query's
            matches, else popular items), each flagged :data:`FALLBACK_UNKNOWN_USER`.

    Raises:
        UnknownUserError: ``uid`` has no profile and ``fallback`` is false (named by the
            caller's ``user_id``).
    """
    row_filter, query_vector = _prepare(pipe, request)
    with pipe._lock:
        if uid in pipe.profiles:
            profile = pipe.profiles.get(uid)
            return _rank_locked(pipe, profile, request, row_filter, query_vector)
        if not fallback:
            raise pipe._unknown_user(user_id)
        # A cold-start list for an anonymous visitor: nothing is stored about them.
        recs, items = _rank_locked(pipe, UserProfile(uid), request, row_filter, query_vector)
        return [dataclasses.replace(r, fallback=FALLBACK_UNKNOWN_USER) for r in recs], items


def rank_profile(
    pipe: Pipeline, profile: UserProfile, request: RecommendRequest
) -> tuple[list[Recommendation], dict[str, Item]]:
    """Rank for a transient ``profile`` (an anonymous session); see :func:`rank`."""
    row_filter, query_vector = _prepare(pipe, request)
    with pipe._lock:
        return _rank_locked(pipe, profile, request, row_filter, query_vector)


def _prepare(
    pipe: Pipeline, request: RecommendRequest
) -> tuple[RowFilter | None, np.ndarray | None]:
    """The request's row filter and encoded query, made before the lock is taken."""
    query_vector = None
    if request.query is not None:
        # User text is encoded without the encoder's cache: no vector of it outlives forget.
        query_vector = pipe.encoder.encode_texts([request.query], cache=False)[0]
    return request.row_filter(pipe.catalog), query_vector


def _rank_locked(
    pipe: Pipeline,
    profile: UserProfile,
    request: RecommendRequest,
    row_filter: RowFilter | None,
    query_vector: np.ndarray | None,
) -> tuple[list[Recommendation], dict[str, Item]]:
    items: dict[str, Item] = {}
    rows, x = score_candidates(
        pipe, profile, query_vector, request.exclude_seen, row_filter, request.k
    )
    if not len(rows):
        return [], items
    weights = None
    if not any(i in pipe.catalog for i in profile.recent_items()):
        # No history: the fitted weights never saw such a user (the ranker learns from
        # held-out events of users with history, where popularity may weigh against an
        # item given the similarity signals); the sources' defaults rank popular items
        # and those matching the query or stated preferences first.
        defaults = ranker_weights(pipe.retriever)
        weights = np.array([defaults.get(n, 0.0) for n in pipe.ranker.feature_names])
    probs, contributions = pipe.ranker.score(x, weights)
    # Ordered by the logit, which a probability of 1.0 (a saturated sigmoid) cannot tie.
    logits = contributions.sum(axis=1) + pipe.ranker.bias_
    order = pipe.ranker.order(
        logits, pipe.retriever.item_vectors[rows], request.k, request.diversity
    )
    out = []
    consumers = _content.consumers_of(pipe.profiles)  # co-consumption counts, once per call
    for position, pos in enumerate(order.tolist(), start=1):
        row = int(rows[pos])
        item = pipe.catalog.get(pipe.catalog.item_id_at(row))
        explanation = _explain(
            pipe, profile, item, row, contributions[pos], x[pos], request.query, consumers
        )
        out.append(Recommendation(item.item_id, float(probs[pos]), position, explanation))
        items[item.item_id] = item
        for evidence_id in explanation.evidence_item_ids:
            items[evidence_id] = pipe.catalog.get(evidence_id)
    return out, items


def reason_request(
    pipe: Pipeline, rec: Recommendation, uid: str, query: str | None, items: Mapping[str, Item]
) -> ReasonRequest:
    """What the generator may write about ``rec``: its item, evidence, signals and the
    relation each signal states."""
    return ReasonRequest(
        user_id=uid,
        item=items[rec.item_id],
        evidence_items=tuple(items[i] for i in rec.explanation.evidence_item_ids),
        signals=dict(rec.explanation.signals),
        matched_tags=rec.explanation.matched_tags,
        query=query,
        relations={**pipe.retriever.relations, TAG_FEATURE: TAG_RELATION},
        plan=rec.explanation.plan,
    )


def with_generated(rec: Recommendation, text: GeneratedText) -> Recommendation:
    """``rec`` with its generated ``text``."""
    return dataclasses.replace(rec, generated=text)


def with_text(
    pipe: Pipeline,
    batches: list[list[Recommendation]],
    uids: Sequence[str],
    query: str | None,
    budget_s: float | None,
    items: Mapping[str, Item],
    kind: str = "reason",
) -> list[list[Recommendation]]:
    """``batches`` (one list per user) with generated texts of ``kind``, written in one
    generator call."""
    requests, slots = [], []
    for b, (recs, uid) in enumerate(zip(batches, uids)):
        for n, rec in enumerate(recs):
            requests.append(reason_request(pipe, rec, uid, query, items))
            slots.append((b, n))
    if not requests:
        return batches
    texts: list[GeneratedText] = pipe.generator.generate(requests, budget_s=budget_s, kind=kind)
    out = [list(recs) for recs in batches]
    for (b, n), text in zip(slots, texts):
        out[b][n] = with_generated(out[b][n], text)
    return out


def stream_texts(
    recs: list[Recommendation], pairs: Iterator[tuple[int, GeneratedText]]
) -> Iterator[Recommendation]:
    """Each recommendation with its text, in the order the texts arrive."""
    for n, text in pairs:
        yield with_generated(recs[n], text)
