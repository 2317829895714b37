"""Conformance checks for backends and candidate sources, and test doubles.

Third parties run the checks on their own backends (llmrec runs them on every built-in
one): :func:`check_encoder_backend`, :func:`check_index_backend`,
:func:`check_chat_backend` and :func:`check_candidate_source` exercise an object through
its public contract and raise :class:`AssertionError` naming the rule it broke::

    from llmrec.testing import check_encoder_backend, check_index_backend

    def test_my_backends_conform():
        check_encoder_backend(MyEncoder(dim=128))
        check_index_backend(lambda dim: MyIndex(dim))

The doubles stand in for a model in tests: :class:`FunctionChat` answers with a function
of the conversation, :class:`FunctionEncoder` encodes with a function of the text.
"""

from __future__ import annotations

from llmrec.testing.backends import (
    FunctionChat,
    FunctionEncoder,
    check_chat_backend,
    check_encoder_backend,
    check_index_backend,
)
from llmrec.testing.sources import TINY_ROWS, check_candidate_source

__all__ = [
    "TINY_ROWS",
    "FunctionChat",
    "FunctionEncoder",
    "check_candidate_source",
    "check_chat_backend",
    "check_encoder_backend",
    "check_index_backend",
]
