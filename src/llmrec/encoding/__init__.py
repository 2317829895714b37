"""Encoding: item and query text to unit vectors (:class:`ItemEncoder` over an
:class:`EncoderBackend`: ``transformers`` or ``hashing``), and contrastive fine-tuning of a
transformer encoder on interactions (:class:`ContrastiveFinetuner`)."""

from __future__ import annotations

from llmrec.encoding.base import EncoderBackend, check_texts
from llmrec.encoding.encoder import ItemEncoder, make_encoder_backend
from llmrec.encoding.finetune import ContrastiveFinetuner, FinetuneReport, co_consumed_pairs

__all__ = [
    "ContrastiveFinetuner",
    "EncoderBackend",
    "FinetuneReport",
    "ItemEncoder",
    "check_texts",
    "co_consumed_pairs",
    "make_encoder_backend",
]
