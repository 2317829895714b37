"""The encoder contract: :class:`EncoderBackend`, and the input check every encoder uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from llmrec.errors import InvalidInputError

__all__ = ["EncoderBackend", "check_texts"]


@runtime_checkable
class EncoderBackend(Protocol):
    """Turns texts into L2-normalized float32 vectors of a fixed dimension."""

    name: str
    dim: int
    device: torch.device

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Return an array of shape ``(len(texts), dim)``, rows of unit length."""
        ...

    def config(self) -> dict[str, Any]:
        """JSON config that recreates this encoder with ``cls(**config)``."""
        ...


def check_texts(texts: Sequence[str], max_length: int | None = None) -> list[str]:
    """Return ``texts`` as a list of str, or raise naming the first bad entry."""
    if isinstance(texts, str):
        raise InvalidInputError("texts must be a sequence of str, not a single str")
    out = list(texts)
    for n, text in enumerate(out):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{n}] must be a str, got {type(text).__name__}")
        if max_length is not None and len(text) > max_length:
            raise InvalidInputError(
                f"texts[{n}] has {len(text):,} characters; the limit is {max_length:,}"
            )
    return out
