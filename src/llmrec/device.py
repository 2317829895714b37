"""Device and dtype resolution: done once per component, in its constructor."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Union

import torch

from llmrec._validate import check_choice
from llmrec.errors import ConfigError, DeviceError

__all__ = ["DeviceLike", "quiet_model_loading", "resolve_device", "resolve_dtype"]

logger = logging.getLogger(__name__)

DeviceLike = Union[str, int, torch.device, None]


def resolve_device(device: DeviceLike = "auto") -> torch.device:
    """Turn a user's device argument into a usable :class:`torch.device`.

    Args:
        device: ``"auto"`` or ``None`` (cuda, then mps, then cpu; the choice is logged),
            ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, a CUDA ordinal, or a
            :class:`torch.device`.

    Raises:
        DeviceError: an explicitly named device is not available.
        ConfigError: the argument is not a device description.
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        if torch.cuda.is_available():
            chosen = torch.device("cuda", torch.cuda.current_device())
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            chosen = torch.device("mps")
        else:
            chosen = torch.device("cpu")
        logger.info("device='auto' resolved to %s", chosen)
        return chosen
    if isinstance(device, bool):
        raise ConfigError(f"device must be a str, int or torch.device, got {device!r}")
    if isinstance(device, int):
        if not 0 <= device < 2**31:
            raise ConfigError(f"device ordinal must be in [0, 2**31), got {device}")
        device = torch.device("cuda", device)
    elif isinstance(device, str):
        try:
            device = torch.device(device)
        except (RuntimeError, ValueError):
            raise ConfigError(_unknown_device(device)) from None
    elif not isinstance(device, torch.device):
        raise ConfigError(f"device must be 'auto', a str, an int or a torch.device, got {device!r}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(device)!r} was requested but CUDA is not available")
        index = device.index if device.index is not None else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(
                f"device {str(device)!r} was requested but only "
                f"{torch.cuda.device_count()} CUDA device(s) exist"
            )
        return torch.device("cuda", index)
    if device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise DeviceError("device 'mps' was requested but MPS is not available")
        return device
    if device.type == "cpu":
        return torch.device("cpu")
    raise DeviceError(f"device type {device.type!r} is not supported (use cpu, cuda or mps)")


#: Device names people try that torch does not know, and the name meant.
_DEVICE_ALIASES = {"gpu": "cuda", "nvidia": "cuda", "rocm": "cuda", "metal": "mps", "apple": "mps"}


def _unknown_device(device: str) -> str:
    """The message for a device string torch does not parse: what to pass instead (not
    torch's list of every device type it was built with)."""
    base, colon, index = device.strip().lower().partition(":")
    meant = _DEVICE_ALIASES.get(base)
    if meant and colon:
        meant += colon + index  # "gpu:1" -> "cuda:1"
    hint = f"use {meant!r} (or 'auto')" if meant else "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"
    return f"unknown device {device!r:.80}: {hint}"


def _cpu_has_fast_bf16() -> bool:
    probe = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
    amx = getattr(torch.cpu, "_is_amx_tile_supported", None)
    return bool((probe and probe()) or (amx and amx()))


def resolve_dtype(device: torch.device, dtype: str | torch.dtype = "auto") -> torch.dtype:
    """Pick the weight dtype for ``device``.

    ``"auto"`` gives bfloat16 on CUDA devices that support it and on CPUs with native
    bf16 instructions (AVX512-BF16 or AMX), float32 elsewhere.
    """
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "float32": torch.float32,
        "fp32": torch.float32,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
        "float16": torch.float16,
        "fp16": torch.float16,
    }
    check_choice(dtype, "dtype", ("auto", *sorted(names)))
    if dtype in names:
        return names[dtype]
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and _cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Hide transformers' "Loading weights" progress bars while a model loads.

    A load takes a second or two and its bars would print even where the caller asked
    for ``show_progress=False``; the previous setting is restored afterwards.
    """
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
