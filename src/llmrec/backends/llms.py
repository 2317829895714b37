"""Deprecated alias (see :mod:`llmrec._compat`): its names moved to several modules."""

from llmrec._compat import warn_moved

warn_moved(__name__)

from llmrec.generation.llms.base import (  # noqa: E402
    DEFAULT_LLM_FILE,
    DEFAULT_LLM_PACKAGE,
    default_llm_path,
)
from llmrec.generation.llms.template import TemplateChat  # noqa: E402
from llmrec.generation.llms.transformers import TransformersChat  # noqa: E402
from llmrec.storage.io import default_cache_dir as cache_root  # noqa: E402

__all__ = [
    "DEFAULT_LLM_FILE",
    "DEFAULT_LLM_PACKAGE",
    "TemplateChat",
    "TransformersChat",
    "cache_root",
    "default_llm_path",
]
