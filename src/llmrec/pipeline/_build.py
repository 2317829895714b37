"""Building a new pipeline's components from a catalog (:meth:`~llmrec.Pipeline.from_catalog`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from llmrec._validate import check_bool, check_options, check_sequence, check_vectors
from llmrec.catalog import Catalog
from llmrec.device import DeviceLike
from llmrec.encoding import ItemEncoder
from llmrec.errors import InvalidInputError
from llmrec.pipeline._changes import check_item_list
from llmrec.pipeline._scoring import feature_names, ranker_weights
from llmrec.profile import ProfileStore
from llmrec.ranking import Ranker
from llmrec.registry import accepts_keyword, get_backend
from llmrec.retrieval import Retriever
from llmrec.types import Item

__all__ = ["AUTO_MODELS", "AUTO_MODELS_MAX_ITEMS", "build_components"]

#: Trainable candidate sources ``models="auto"`` adds on catalogs up to
#: :data:`AUTO_MODELS_MAX_ITEMS` items.
AUTO_MODELS: tuple[str, ...] = ("ease", "sequential")
AUTO_MODELS_MAX_ITEMS = 20_000


def _models(models: Any, n_items: int) -> list[Any]:
    if isinstance(models, str) and models == "auto":
        models = AUTO_MODELS if n_items <= AUTO_MODELS_MAX_ITEMS else ()
    return [models] if isinstance(models, str) else check_sequence(models, "models")


def _vectors(item_encoder: ItemEncoder, items: list[Item], item_vectors: Any) -> np.ndarray:
    """The items' vectors: ``item_vectors`` checked, or the items encoded."""
    if item_vectors is None:
        return item_encoder.encode_items(items)
    vectors = check_vectors(item_vectors, item_encoder.dim, "item_vectors")
    if len(vectors) != len(items):
        raise InvalidInputError(f"item_vectors has {len(vectors)} rows for {len(items)} items")
    return vectors


def build_components(
    items: Iterable[Item],
    *,
    encoder: Any,
    index: Any,
    device: DeviceLike,
    diversity: float,
    n_candidates: int,
    half_life: float,
    models: Any,
    max_history: int = 500,
    encoder_options: Mapping[str, Any] | None,
    show_progress: Any,
    item_vectors: Any,
) -> tuple[Catalog, ItemEncoder, Retriever, Ranker, ProfileStore]:
    """Encode ``items`` (unless ``item_vectors`` are given) and build the catalog, encoder,
    retriever (with ``models`` added), ranker and an empty profile store.

    Raises:
        InvalidInputError: no items, a bad item, or ``item_vectors`` that do not fit.
        ConfigError: a bad option.
    """
    items = check_item_list(items)
    if not items:
        raise InvalidInputError("the catalog is empty: from_catalog needs at least one item")
    encoder_options = check_options(encoder_options, "encoder_options")
    show_progress = check_bool(show_progress, "show_progress")
    models = _models(models, len(items))
    catalog = Catalog()
    items = catalog.validate_new(items)
    item_encoder = ItemEncoder(
        encoder, device=device, show_progress=show_progress, **encoder_options
    )
    vectors = _vectors(item_encoder, items, item_vectors)
    rows = catalog.upsert(items, validated=True)
    retriever = Retriever(
        item_encoder.dim,
        index=index,
        n_items_hint=len(items),
        n_candidates=n_candidates,
        device=device,
    )
    retriever.upsert(rows, vectors)
    for model in models:
        options: dict[str, Any] = {}
        if isinstance(model, str) and accepts_keyword(get_backend("models", model), "device"):
            options["device"] = device  # models named here follow the pipeline's device
        retriever.add_model(model, **options)
    ranker = Ranker(
        feature_names(retriever), weights=ranker_weights(retriever), diversity=diversity
    )
    profiles = ProfileStore(item_encoder.dim, half_life=half_life, max_history=max_history)
    return catalog, item_encoder, retriever, ranker, profiles
