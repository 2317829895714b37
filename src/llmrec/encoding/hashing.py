"""The ``hashing`` encoder: no model, deterministic feature hashing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmrec._validate import check_int
from llmrec.device import DeviceLike, resolve_device
from llmrec.encoding.base import check_texts

__all__ = ["HashingEncoder"]


_TOKEN = re.compile(r"\w+", re.UNICODE)


class HashingEncoder:
    """Model-free encoder: signed feature hashing of words and word bigrams.

    Deterministic across processes and machines; useful for tests and as a fallback where
    no transformer can be loaded.
    """

    name = "hashing"

    def __init__(self, dim: int = 256, *, device: DeviceLike = "cpu") -> None:
        self.dim = check_int(dim, "dim", low=8, high=65536)
        self.device = resolve_device(device)

    def config(self) -> dict[str, Any]:
        return {"dim": self.dim}

    def _features(self, text: str) -> list[str]:
        words = _TOKEN.findall(text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feature in self._features(text):
                digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        empty = norms[:, 0] == 0
        out[empty, 0] = 1.0  # an empty text still maps to a unit vector
        norms[empty] = 1.0
        return out / norms
