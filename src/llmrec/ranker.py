"""Deprecated alias (see :mod:`llmrec._compat`)."""

from llmrec._compat import alias

alias(__name__)
