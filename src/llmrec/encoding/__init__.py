"""Encoding: item and query text to unit vectors (:class:`ItemEncoder` over an
:class:`EncoderBackend`: ``transformers`` or ``hashing``)."""

from __future__ import annotations

from llmrec.encoding.base import EncoderBackend, check_texts
from llmrec.encoding.encoder import ItemEncoder, make_encoder_backend

__all__ = ["EncoderBackend", "ItemEncoder", "check_texts", "make_encoder_backend"]
