"""Deprecated: the backends moved into their stages (see :mod:`llmrec._compat`)."""
