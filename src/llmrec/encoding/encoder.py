"""ItemEncoder: item and query text to unit vectors, with a content-hash cache."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from llmrec._validate import check_bool, check_int
from llmrec.catalog import render_item_text
from llmrec.device import DeviceLike
from llmrec.encoding.base import EncoderBackend, check_texts
from llmrec.encoding.finetune import (
    WEIGHTS_NAME,
    finetunable,
    read_tuned_weights,
    write_tuned_weights,
)
from llmrec.errors import ConfigError, InvalidInputError, LLMRecError, PersistenceError
from llmrec.registry import available_backends, get_backend
from llmrec.types import MAX_TEXT_LENGTH, Item

if TYPE_CHECKING:
    import torch

    from llmrec.encoding.finetune import FinetuneReport

__all__ = ["ItemEncoder", "make_encoder_backend"]


def make_encoder_backend(
    backend: str | EncoderBackend = "default", *, device: DeviceLike = "auto", **options: Any
) -> EncoderBackend:
    """Build an encoder backend from a registered name (``"default"`` = the embedded
    all-MiniLM-L6-v2 through ``transformers``), or pass an instance through."""
    if not isinstance(backend, str):
        if not isinstance(backend, EncoderBackend):
            raise ConfigError(
                f"encoder must be 'default', a registered encoder backend name "
                f"{available_backends('encoders')} or an EncoderBackend, got {backend!r:.80}"
            )
        return backend
    name = "transformers" if backend == "default" else backend
    if name not in available_backends("encoders"):
        raise ConfigError(
            f"unknown encoder {backend!r:.80}; choose 'default' (the embedded "
            f"all-MiniLM-L6-v2) or a registered encoder backend {available_backends('encoders')}"
            " (a Hugging Face model: encoder='transformers', encoder_options={'model': ...})"
        )
    cls = get_backend("encoders", name)
    try:
        return cls(device=device, **options)
    except TypeError as exc:
        raise ConfigError(f"bad options for the {name!r} encoder backend: {exc}") from None


class ItemEncoder:
    """Encodes item text (title, genres, description) and free-text queries.

    Unchanged texts are never encoded twice: vectors are cached by the SHA-256 of the
    text (an LRU of ``cache_size`` entries). A transformer backend can be fine-tuned on
    interactions (:class:`~llmrec.encoding.finetune.ContrastiveFinetuner`, or
    ``Pipeline.fit(..., finetune_encoder=True)``); :meth:`apply_tuned_weights` installs
    the result and empties the cache, and a save keeps the tuned weights.

    Args:
        backend: A registered encoder name or an :class:`~llmrec.encoding.EncoderBackend`.
        device: Where the model runs (see :func:`llmrec.resolve_device`).
        batch_size: Texts per forward pass.
        show_progress: Show a tqdm bar when encoding many texts.
        cache_size: Cached vectors kept.
        **options: Passed to the backend (e.g. ``model="..."`` for ``transformers``).
    """

    def __init__(
        self,
        backend: str | EncoderBackend = "default",
        *,
        device: DeviceLike = "auto",
        batch_size: int = 64,
        show_progress: bool = True,
        cache_size: int = 50_000,
        **options: Any,
    ) -> None:
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.show_progress = check_bool(show_progress, "show_progress")
        self.cache_size = check_int(cache_size, "cache_size", low=0)
        self.backend = make_encoder_backend(backend, device=device, **options)
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        # Bumped by clear_cache: an encoding that started before does not fill the cache.
        self._generation = 0
        #: The :class:`~llmrec.encoding.FinetuneReport` of the last fine-tuning by
        #: ``Pipeline.fit`` in this process (``None``: none; not saved).
        self.finetune_report_: FinetuneReport | None = None

    @property
    def dim(self) -> int:
        return int(self.backend.dim)

    @property
    def device(self) -> Any:
        return self.backend.device

    @property
    def finetuned(self) -> bool:
        """Whether the backend runs fine-tuned weights."""
        return bool(getattr(self.backend, "finetuned", False))

    def config(self) -> dict[str, Any]:
        return {
            "backend": self.backend.name,
            "backend_config": self.backend.config(),
            "batch_size": self.batch_size,
            "cache_size": self.cache_size,
            "finetuned": self.finetuned,
        }

    def clear_cache(self) -> None:
        """Forget every cached vector (they were made by the weights before a change)."""
        with self._lock:
            self._cache.clear()
            self._generation += 1

    def apply_tuned_weights(self, weights: Mapping[str, torch.Tensor]) -> None:
        """Install fine-tuned tensors (:attr:`~llmrec.encoding.FinetuneReport.weights`)
        and empty the vector cache. Vectors made before are stale: re-encode the items.

        Raises:
            ConfigError: the backend cannot be fine-tuned.
            InvalidInputError: a tensor the model lacks or of another shape (nothing
                changes).
        """
        finetunable(self.backend).load_tuned_tensors(weights)
        self.clear_cache()

    def save(self, path: Path) -> dict[str, Any]:
        """The config a save stores; a fine-tuned backend's tuned tensors are written to
        ``path`` (:data:`~llmrec.encoding.finetune.WEIGHTS_NAME`, safetensors)."""
        config = self.config()
        if config["finetuned"]:
            path = Path(path)
            path.mkdir(parents=True, exist_ok=True)
            write_tuned_weights(path / WEIGHTS_NAME, finetunable(self.backend))
        return config

    @classmethod
    def load(
        cls, path: Path, config: Mapping[str, Any], *, device: DeviceLike = "auto"
    ) -> ItemEncoder:
        """Rebuild an encoder from :meth:`save`'s config: the base model by name, then,
        when the config says it was fine-tuned, the tuned tensors from ``path``, each
        checked against the base model's.

        Raises:
            PersistenceError: a bad ``finetuned`` value, a backend that cannot hold tuned
                weights, or a weights file that is missing, corrupt or does not fit the
                model.
        """
        finetuned = config.get("finetuned", False)  # saves before fine-tuning lack it
        if not isinstance(finetuned, bool):
            raise PersistenceError(
                f"components.encoder.finetuned must be a bool, got {finetuned!r:.80}"
            )
        encoder = cls(
            config["backend"],
            device=device,
            batch_size=config["batch_size"],
            cache_size=config["cache_size"],
            **config["backend_config"],
        )
        if finetuned:
            try:
                backend = finetunable(encoder.backend)
            except ConfigError as exc:
                raise PersistenceError(
                    f"the save's encoder is marked fine-tuned, but {exc}"
                ) from None
            tensors = read_tuned_weights(Path(path) / WEIGHTS_NAME, backend)
            try:
                backend.load_tuned_tensors(tensors)
            except LLMRecError as exc:
                raise PersistenceError(f"cannot load the tuned encoder weights: {exc}") from None
        return encoder

    def encode_texts(self, texts: Sequence[str], *, cache: bool = True) -> np.ndarray:
        """Encode texts to an ``(n, dim)`` float32 array of unit rows.

        ``cache=False`` neither reads nor fills the vector cache (the pipeline encodes
        user text that way, so nothing derived from it outlives a ``forget``).
        """
        texts = check_texts(texts, MAX_TEXT_LENGTH)
        if not cache:
            return np.asarray(
                self.backend.encode(texts, batch_size=self.batch_size, show_progress=False),
                dtype=np.float32,
            )
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        missing: dict[str, list[int]] = {}
        with self._lock:
            generation = self._generation
            for n, key in enumerate(keys):
                hit = self._cache.get(key)
                if hit is None:
                    missing.setdefault(key, []).append(n)
                else:
                    self._cache.move_to_end(key)
                    out[n] = hit
        if missing:
            todo = [texts[positions[0]] for positions in missing.values()]
            vectors = self.backend.encode(
                todo,
                batch_size=self.batch_size,
                show_progress=self.show_progress and len(todo) > 4 * self.batch_size,
            )
            with self._lock:
                fresh = generation == self._generation
                for (key, positions), vector in zip(missing.items(), vectors):
                    out[positions] = vector
                    if self.cache_size and fresh:
                        self._cache[key] = vector
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return out

    def encode_items(self, items: Sequence[Item]) -> np.ndarray:
        """Encode catalog items from their rendered text (title, genres, year, text)."""
        return self.encode_texts([render_item_text(item) for item in items])

    def encode_query(self, text: str) -> np.ndarray:
        """Encode one free-text query or stated preference to a ``(dim,)`` vector."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidInputError(f"query text must be a non-empty str, got {text!r:.80}")
        return self.encode_texts([text])[0]
