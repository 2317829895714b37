"""llmrec: personalized recommendations with personalized, grounded text.

Quick start::

    import llmrec
    pipe = llmrec.Pipeline.from_catalog(items)           # embedded encoder and LLM
    pipe.fit(events)                                     # optional: learn from history
    pipe.observe(llmrec.Event(user_id="u1", item_id="i9", kind="click"))
    for rec in pipe.recommend("u1", k=10):
        print(rec.item_id, rec.score, rec.explanation.signals, rec.text)
"""

from __future__ import annotations

from llmrec.catalog import Catalog
from llmrec.device import resolve_device
from llmrec.encoder import ItemEncoder
from llmrec.errors import (
    BackendUnavailableError,
    ConfigError,
    DatasetError,
    DeviceError,
    DuplicateItemError,
    GenerationError,
    InvalidEventError,
    InvalidInputError,
    LLMRecError,
    NotFittedError,
    PersistenceError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.eventlog import EventLog
from llmrec.pipeline import Pipeline
from llmrec.profile import ProfileStore, UserProfile
from llmrec.ranker import Ranker
from llmrec.registry import available_backends, register_backend
from llmrec.retriever import Retriever
from llmrec.types import Candidate, Event, Explanation, GeneratedText, Item, Recommendation

__version__ = "0.1.0"


def __getattr__(name: str):  # noqa: ANN202 - module-level lazy attribute
    # The generator pulls in transformers; import it only when asked for.
    if name in ("ContentGenerator", "ReasonRequest", "verify_text"):
        from llmrec import generator

        return getattr(generator, name)
    raise AttributeError(f"module 'llmrec' has no attribute {name!r}")


__all__ = [
    "BackendUnavailableError",
    "Candidate",
    "Catalog",
    "ConfigError",
    "ContentGenerator",
    "DatasetError",
    "DeviceError",
    "DuplicateItemError",
    "Event",
    "EventLog",
    "Explanation",
    "GeneratedText",
    "GenerationError",
    "InvalidEventError",
    "InvalidInputError",
    "Item",
    "ItemEncoder",
    "LLMRecError",
    "NotFittedError",
    "PersistenceError",
    "Pipeline",
    "ProfileStore",
    "Ranker",
    "ReasonRequest",
    "Recommendation",
    "Retriever",
    "UnknownItemError",
    "UnknownUserError",
    "UserProfile",
    "__version__",
    "available_backends",
    "register_backend",
    "resolve_device",
    "verify_text",
]
