"""Deprecated: each contract moved to its stage; removed in llmrec 0.3."""

import warnings

from llmrec.encoding.base import EncoderBackend
from llmrec.generation.llms.base import ChatBackend, ChatMessage
from llmrec.retrieval.indexes import IndexBackend

warnings.warn(
    "llmrec.protocols is deprecated: import EncoderBackend from llmrec.encoding, "
    "IndexBackend from llmrec.retrieval, ChatBackend from llmrec.generation",
    DeprecationWarning,
    stacklevel=2,
)

__all__ = ["ChatBackend", "ChatMessage", "EncoderBackend", "IndexBackend"]
