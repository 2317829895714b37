"""Device and dtype resolution on this (CUDA-less) machine."""

from __future__ import annotations

import pytest
import torch

from llmrec.device import resolve_device, resolve_dtype
from llmrec.errors import ConfigError, DeviceError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
no_accel = pytest.mark.skipif(
    torch.cuda.is_available()
    or (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()),
    reason="needs a machine without CUDA or MPS",
)


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu"), "CPU".lower()])
def test_cpu_resolves_to_cpu(device) -> None:
    assert resolve_device(device) == torch.device("cpu")


@no_accel
@pytest.mark.parametrize("device", ["auto", None])
def test_auto_resolves_to_cpu_without_accelerators(device) -> None:
    assert resolve_device(device) == torch.device("cpu")


@no_cuda
@pytest.mark.parametrize("device", [0, 1, "cuda", "cuda:0", "cuda:1", torch.device("cuda", 0)])
def test_cuda_requests_raise_device_error(device) -> None:
    with pytest.raises(DeviceError, match="cuda"):
        resolve_device(device)


@pytest.mark.parametrize("device", ["gpu", "banana", "cuda:x", "", "cpu:zero"])
def test_garbage_strings_raise_config_error(device: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_device(device)
    assert repr(device) in str(info.value)
    assert not isinstance(info.value, DeviceError)


@pytest.mark.parametrize("device", [True, False, -1, 1.5, ["cpu"], object()])
def test_bad_types_raise_config_error(device) -> None:
    with pytest.raises(ConfigError):
        resolve_device(device)


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("float32", torch.float32),
        ("fp32", torch.float32),
        ("bfloat16", torch.bfloat16),
        ("bf16", torch.bfloat16),
        ("float16", torch.float16),
        ("fp16", torch.float16),
        (torch.float64, torch.float64),
    ],
)
def test_resolve_dtype_names(name, dtype) -> None:
    assert resolve_dtype(torch.device("cpu"), name) == dtype


def test_resolve_dtype_auto_on_cpu_is_a_float_type() -> None:
    assert resolve_dtype(torch.device("cpu"), "auto") in (torch.float32, torch.bfloat16)


def test_resolve_dtype_auto_on_cpu_without_fast_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    import llmrec.device as device_module

    monkeypatch.setattr(device_module, "_cpu_has_fast_bf16", lambda: False)
    assert resolve_dtype(torch.device("cpu"), "auto") == torch.float32
    monkeypatch.setattr(device_module, "_cpu_has_fast_bf16", lambda: True)
    assert resolve_dtype(torch.device("cpu"), "auto") == torch.bfloat16


@pytest.mark.parametrize("dtype", ["float64", "int8", "", "FP32", None, ["bf16"], {"a": 1}])
def test_resolve_dtype_rejects_unknown_names(dtype) -> None:
    with pytest.raises(ConfigError, match="dtype"):
        resolve_dtype(torch.device("cpu"), dtype)


@pytest.mark.parametrize(
    ("device", "hint"),
    [
        ("gpu", "use 'cuda' (or 'auto')"),
        ("gpu:1", "use 'cuda:1' (or 'auto')"),
        ("metal", "use 'mps' (or 'auto')"),
        ("banana", "use 'auto', 'cpu', 'cuda', 'cuda:N' or 'mps'"),
    ],
)
def test_unknown_device_strings_name_what_to_pass(device: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_device(device)
    assert hint in str(info.value)
    assert "Expected one of" not in str(info.value)  # not torch's list of device types
