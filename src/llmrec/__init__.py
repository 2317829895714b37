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
from llmrec.datasets.frames import events_from_pandas, from_pandas
from llmrec.device import resolve_device
from llmrec.encoding import ItemEncoder
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
    PersistenceError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.generation import ContentGenerator, ReasonRequest, verify_text
from llmrec.pipeline import Pipeline
from llmrec.profile import ProfileStore, UserProfile
from llmrec.ranking import Ranker
from llmrec.registry import available_backends, register_backend
from llmrec.retrieval import Retriever
from llmrec.storage.eventlog import EventLog
from llmrec.types import Event, Explanation, Fact, GeneratedText, Item, Recommendation

__version__ = "0.2.0"


def __getattr__(name: str) -> object:
    if name not in ("Candidate", "NotFittedError"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from llmrec._compat import removed_name

    return removed_name(__name__, name)


__all__ = [
    "BackendUnavailableError",
    "Catalog",
    "ConfigError",
    "ContentGenerator",
    "DatasetError",
    "DeviceError",
    "DuplicateItemError",
    "Event",
    "EventLog",
    "Explanation",
    "Fact",
    "GeneratedText",
    "GenerationError",
    "InvalidEventError",
    "InvalidInputError",
    "Item",
    "ItemEncoder",
    "LLMRecError",
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
    "events_from_pandas",
    "from_pandas",
    "register_backend",
    "resolve_device",
    "verify_text",
]
