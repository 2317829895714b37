"""The small interfaces backends implement. Public classes only talk to these."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

__all__ = ["ChatBackend", "ChatMessage", "EncoderBackend", "IndexBackend", "Persistable"]

ChatMessage = Mapping[str, str]  # {"role": "system" | "user" | "assistant", "content": ...}


@runtime_checkable
class Persistable(Protocol):
    """Saves its state into a directory and returns the JSON config to rebuild it."""

    def save(self, path: Path) -> dict[str, Any]: ...


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


@runtime_checkable
class IndexBackend(Protocol):
    """Nearest-neighbour search over unit vectors, keyed by non-negative int labels.

    Scores are inner products (cosine for unit vectors), higher is better.
    """

    name: str
    dim: int

    def __len__(self) -> int: ...

    def upsert(self, labels: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, labels: np.ndarray) -> None: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(labels, scores)`` of shape ``(n, k)``; missing slots hold label -1."""
        ...

    def save(self, path: Path) -> dict[str, Any]: ...


@runtime_checkable
class ChatBackend(Protocol):
    """A chat language model answering batches of conversations."""

    name: str

    def generate(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> list[str]:
        """Answer each conversation; the i-th output answers the i-th conversation."""
        ...

    def stream(
        self, conversations: Sequence[Sequence[ChatMessage]], *, max_new_tokens: int = 48
    ) -> Iterator[tuple[int, str]]:
        """Yield ``(index, text)`` for each conversation as soon as its answer is done."""
        ...

    def config(self) -> dict[str, Any]: ...
