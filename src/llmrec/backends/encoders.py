"""Deprecated alias (see :mod:`llmrec._compat`): its names moved to several modules."""

from llmrec._compat import warn_moved

warn_moved(__name__)

from llmrec.encoding.base import check_texts  # noqa: E402
from llmrec.encoding.hashing import HashingEncoder  # noqa: E402
from llmrec.encoding.transformers import (  # noqa: E402
    DEFAULT_ENCODER_PACKAGE,
    TransformersEncoder,
    default_encoder_path,
)

__all__ = [
    "DEFAULT_ENCODER_PACKAGE",
    "HashingEncoder",
    "TransformersEncoder",
    "check_texts",
    "default_encoder_path",
]
