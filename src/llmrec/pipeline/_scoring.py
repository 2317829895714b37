"""Ranking one user's candidates, explaining each pick, and asking for its text.

Every function reads the pipeline's public components (``catalog``, ``retriever``,
``ranker``, ``encoder``, ``profiles``) at call time, so a component replaced by
:meth:`~llmrec.Pipeline.fit` is the one used. Callers hold the pipeline's lock where a
function says so.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from llmrec.generation import ReasonRequest
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


def score_candidates(
    pipe: Pipeline,
    profile: UserProfile,
    query_vector: np.ndarray | None,
    exclude_seen: bool,
    row_filter: RowFilter | None,
    k: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Candidate rows for ``profile`` and their ranker feature matrix (under the lock)."""
    catalog = pipe.catalog
    exclude = [catalog.row(i) for i in profile.seen if i in catalog] if exclude_seen else []
    history = [catalog.row(i) for i in profile.recent_items() if i in catalog]
    ctx = pipe.retriever.context(profile.query_vector(), query_vector, history, exclude)
    rows, features = pipe.retriever.candidates(ctx, row_filter=row_filter, min_count=k)
    features[TAG_FEATURE] = tag_affinity(pipe, profile, rows)
    return rows, pipe.ranker.feature_matrix(features, len(rows))


def evidence(pipe: Pipeline, profile: UserProfile, row: int, limit: int = 3) -> tuple[str, ...]:
    """The user's history items that best support recommending ``row``, strongest first:
    text similarity plus co-occurrence similarity to the item."""
    history = [i for i in profile.recent_items(pipe.retriever.history_length) if i in pipe.catalog]
    if not history:
        return ()
    hist_rows = pipe.catalog.rows(history)
    vectors = pipe.retriever.item_vectors
    strength = vectors[hist_rows] @ vectors[row]
    neighbours = pipe.retriever.cooccurrence.neighbours(row)
    if neighbours:
        strength += np.array([neighbours.get(r, 0.0) for r in hist_rows.tolist()], dtype=np.float32)
    order = np.argsort(-strength, kind="stable")[:limit]
    return tuple(history[i] for i in order if strength[i] > 0)


def _explain(
    pipe: Pipeline,
    profile: UserProfile,
    item: Item,
    row: int,
    contributions: np.ndarray,
    x: np.ndarray,
) -> Explanation:
    names = pipe.ranker.feature_names
    matched = tuple(t for t in item.tags if profile.tag_affinity.get(t, 0.0) > 0)
    return Explanation(
        signals={n: float(c) for n, c in zip(names, contributions)},
        features={n: float(v) for n, v in zip(names, x)},
        evidence_item_ids=evidence(pipe, profile, row),
        matched_tags=tuple(sorted(matched, key=lambda t: -profile.tag_affinity[t])),
    )


def rank(
    pipe: Pipeline, uid: str, request: RecommendRequest, user_id: str
) -> tuple[list[Recommendation], dict[str, Item]]:
    """Rank for the stored user id ``uid``.

    Returns the recommendations and the items they and their evidence name, read under the
    same lock, so a concurrent removal cannot break the text generation that follows.

    Raises:
        UnknownUserError: ``uid`` has no profile (named by the caller's ``user_id``).
    """
    row_filter = request.row_filter(pipe.catalog)
    query_vector = None
    if request.query is not None:
        # User text is encoded without the encoder's cache: no vector of it outlives forget.
        query_vector = pipe.encoder.encode_texts([request.query], cache=False)[0]
    items: dict[str, Item] = {}
    with pipe._lock:
        if uid not in pipe.profiles:
            raise pipe._unknown_user(user_id)
        profile = pipe.profiles.get(uid)
        rows, x = score_candidates(
            pipe, profile, query_vector, request.exclude_seen, row_filter, request.k
        )
        if not len(rows):
            return [], items
        probs, contributions = pipe.ranker.score(x)
        order = pipe.ranker.order(
            probs, pipe.retriever.item_vectors[rows], request.k, request.diversity
        )
        out = []
        for position, pos in enumerate(order.tolist(), start=1):
            row = int(rows[pos])
            item = pipe.catalog.get(pipe.catalog.item_id_at(row))
            explanation = _explain(pipe, profile, item, row, contributions[pos], x[pos])
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
    )


def with_generated(rec: Recommendation, text: GeneratedText) -> Recommendation:
    """``rec`` with its generated ``text``."""
    return Recommendation(rec.item_id, rec.score, rec.rank, rec.explanation, text)


def with_text(
    pipe: Pipeline,
    batches: list[list[Recommendation]],
    uids: Sequence[str],
    query: str | None,
    budget_s: float | None,
    items: Mapping[str, Item],
) -> list[list[Recommendation]]:
    """``batches`` (one list per user) with generated texts, written in one generator call."""
    requests, slots = [], []
    for b, (recs, uid) in enumerate(zip(batches, uids)):
        for n, rec in enumerate(recs):
            requests.append(reason_request(pipe, rec, uid, query, items))
            slots.append((b, n))
    if not requests:
        return batches
    texts: list[GeneratedText] = pipe.generator.generate(requests, budget_s=budget_s)
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
