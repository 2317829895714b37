"""Evaluation: the leave-one-out protocol, metrics and prediction files
(:mod:`.protocol`), and the evaluation report (:mod:`.report`, extra ``report``)."""

from __future__ import annotations

from llmrec.evaluation.protocol import *  # noqa: F403
from llmrec.evaluation.protocol import __all__ as _protocol_all

__all__ = sorted(_protocol_all)
