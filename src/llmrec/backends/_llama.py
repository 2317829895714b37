"""A lean forward pass for Llama-architecture causal language models (the embedded
SmolLM2-135M-Instruct is one), used by :class:`~llmrec.backends.llms.TransformersChat`
for greedy batched decoding.

At the batch sizes of one recommendation request (2-16 rows, one new token per row and
step) a step of the Hugging Face forward costs about three times its weight matmuls on a
laptop CPU: per-layer bookkeeping, a 4-D mask built every step, the shared prompt head
copied into every row's cache and the whole cache concatenated again each step. This
module runs the same weights with:

* one matmul for the query, key and value projections and one for the gate and up
  projections (the model's own parameters become views of the fused weights, so no
  memory is duplicated and the model object keeps working);
* the shared head's keys and values held once, not once per row: attention scores
  against the head and against each row's own tokens are computed separately and
  normalised together;
* a per-row key/value buffer allocated once per batch and filled in place;
* attention in float32 (scores, softmax, weighted sum); projections in the model's dtype.

Only architectures it reproduces exactly are accepted (:func:`supports`); the results
agree with the Hugging Face forward to bfloat16 rounding (tests compare both).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["LlamaRunner", "supports"]


def supports(model: Any) -> bool:
    """Whether :class:`LlamaRunner` reproduces ``model``'s forward pass: a plain Llama
    (no biases, SiLU MLP, default rotary embedding, full attention in every layer)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama":
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else None
    inner = getattr(model, "model", None)
    return (rope_type == "default"
            and not getattr(config, "attention_bias", False)
            and not getattr(config, "mlp_bias", False)
            and getattr(config, "hidden_act", None) == "silu"
            and getattr(config, "pretraining_tp", 1) == 1
            and not getattr(config, "sliding_window", None)
            and inner is not None and hasattr(inner, "layers") and hasattr(inner, "rotary_emb")
            and hasattr(model, "lm_head"))


@dataclass
class _Layer:
    qkv: torch.Tensor
    o: torch.Tensor
    gate_up: torch.Tensor
    down: torch.Tensor
    norm_in: torch.Tensor
    norm_post: torch.Tensor


@dataclass
class Head:
    """Keys and values of a prompt head shared by every row: per layer ``[kv_heads,
    length, head_dim]`` float32 tensors."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[1]) if self.keys else 0


@dataclass
class Batch:
    """The state of one decoding batch: each row's keys and values after the head (a
    buffer of ``capacity`` columns, the first ``length`` filled), which columns hold real
    tokens, and the next position id of each row."""

    head: Head | None
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    valid: torch.Tensor  # [rows, capacity] bool
    length: int = 0
    positions: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.long))

    def discard(self, counts: torch.Tensor) -> None:
        """Forget the last ``counts[row]`` tokens given to each row (draft tokens that
        were not accepted): their columns are masked and the row's position rewinds."""
        cols = torch.arange(self.valid.shape[1], device=self.valid.device)
        dropped = (cols >= self.length - counts[:, None]) & (cols < self.length)
        self.valid &= ~dropped
        self.positions = self.positions - counts

    def grow(self, capacity: int) -> None:
        """Make room for ``capacity`` columns."""
        extra = capacity - self.valid.shape[1]
        if extra <= 0:
            return
        self.keys = [F.pad(k, (0, 0, 0, extra)) for k in self.keys]
        self.values = [F.pad(v, (0, 0, 0, extra)) for v in self.values]
        self.valid = F.pad(self.valid, (0, extra))

    def select(self, rows: torch.Tensor) -> None:
        """Keep only ``rows`` (a long tensor of row indices), in that order."""
        self.keys = [k.index_select(0, rows) for k in self.keys]
        self.values = [v.index_select(0, rows) for v in self.values]
        self.valid = self.valid.index_select(0, rows)
        self.positions = self.positions.index_select(0, rows)


class LlamaRunner:
    """Greedy-decoding forward passes over a Llama model's weights (see the module
    docstring). Not thread-safe: the caller serialises calls, as the backend does."""

    def __init__(self, model: Any) -> None:
        if not supports(model):
            raise ValueError(f"LlamaRunner does not support {type(model).__name__}")
        config = model.config
        self.n_heads = int(config.num_attention_heads)
        self.n_kv = int(getattr(config, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(getattr(config, "head_dim", None)
                            or config.hidden_size // config.num_attention_heads)
        self.group = self.n_heads // self.n_kv
        self.eps = float(config.rms_norm_eps)
        self.scale = self.head_dim ** -0.5
        inner = model.model
        rotary = inner.rotary_emb
        self.inv_freq = rotary.inv_freq.detach().float()
        self.rope_scale = float(getattr(rotary, "attention_scaling", 1.0))
        self.embed = inner.embed_tokens.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.norm = inner.norm.weight.detach()
        self.device = self.embed.device
        self.layers = [self._fuse(layer) for layer in inner.layers]

    @staticmethod
    def _fuse(layer: Any) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp

        def fused(*linears: nn.Linear) -> torch.Tensor:
            weight = torch.cat([lin.weight.detach() for lin in linears])
            start = 0
            for lin in linears:  # the model's parameters become views of the fused weight
                rows = lin.weight.shape[0]
                lin.weight = nn.Parameter(weight[start:start + rows], requires_grad=False)
                start += rows
            return weight

        return _Layer(qkv=fused(attn.q_proj, attn.k_proj, attn.v_proj), o=attn.o_proj.weight.detach(),
                      gate_up=fused(mlp.gate_proj, mlp.up_proj), down=mlp.down_proj.weight.detach(),
                      norm_in=layer.input_layernorm.weight.detach(),
                      norm_post=layer.post_attention_layernorm.weight.detach())

    # ------------------------------------------------------------------ state
    def new_batch(self, rows: int, capacity: int, head: Head | None) -> Batch:
        shape = (rows, self.n_kv, capacity, self.head_dim)
        n = len(self.layers)  # columns are written before they are read: no need to clear
        return Batch(head=head,
                     keys=[torch.empty(shape, device=self.device) for _ in range(n)],
                     values=[torch.empty(shape, device=self.device) for _ in range(n)],
                     valid=torch.zeros((rows, capacity), dtype=torch.bool, device=self.device),
                     positions=torch.zeros(rows, dtype=torch.long, device=self.device))

    def head(self, ids: list[int] | tuple[int, ...]) -> Head:
        """Run a shared prompt head once and keep its keys and values."""
        batch = self.new_batch(1, len(ids), None)
        tokens = torch.tensor([list(ids)], dtype=torch.long, device=self.device)
        self.forward(batch, tokens, torch.ones_like(tokens, dtype=torch.bool))
        return Head(keys=[k[0] for k in batch.keys], values=[v[0] for v in batch.values])

    # ------------------------------------------------------------------ forward
    def _rms(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x.to(dtype)

    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        freqs = positions.float().unsqueeze(-1) * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)
        return (emb.cos() * self.rope_scale).unsqueeze(1), (emb.sin() * self.rope_scale).unsqueeze(1)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def forward(self, batch: Batch, ids: torch.Tensor, real: torch.Tensor, *,
                last_only: bool = True) -> torch.Tensor:
        """Append ``ids`` (``[rows, n]``; ``real`` marks which are tokens rather than
        padding) to every row and return float32 logits: of each row's last position
        (``[rows, vocab]``) or, with ``last_only=False``, of every position (``[rows, n,
        vocab]``). Position ids count real tokens only, after the head."""
        rows, n = ids.shape
        start, end = batch.length, batch.length + n
        if end > batch.valid.shape[1]:
            batch.grow(max(end, batch.valid.shape[1] * 3 // 2))
        batch.valid[:, start:end] = real
        offset = batch.head.length if batch.head is not None else 0
        positions = batch.positions.unsqueeze(1) + real.long().cumsum(1) - 1 + offset
        batch.positions = batch.positions + real.long().sum(1)
        cos, sin = self._rope(positions.clamp(min=0))
        # Which of the row's own columns each new token sees: real ones up to itself
        # (each token always sees itself, so a padding query never has an empty row).
        cols = torch.arange(end, device=self.device)
        own = torch.arange(start, end, device=self.device)
        allowed = (batch.valid[:, None, :end] & (cols[None, :] <= own[:, None])[None]) \
            | (cols[None, :] == own[:, None])[None]
        bias = torch.zeros(allowed.shape, device=self.device).masked_fill_(~allowed, float("-inf"))
        bias = bias[:, None, None]  # [rows, 1, 1, n, end] against [rows, kv, group, n, end]
        head = batch.head
        q_size, kv_size = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        x = F.embedding(ids, self.embed)
        for index, layer in enumerate(self.layers):
            h = self._rms(x, layer.norm_in)
            q, k, v = F.linear(h, layer.qkv).float().split([q_size, kv_size, kv_size], dim=-1)
            q = self._rotate(q.view(rows, n, self.n_heads, self.head_dim).transpose(1, 2), cos, sin)
            k = self._rotate(k.view(rows, n, self.n_kv, self.head_dim).transpose(1, 2), cos, sin)
            keys, values = batch.keys[index], batch.values[index]
            keys[:, :, start:end] = k
            values[:, :, start:end] = v.view(rows, n, self.n_kv, self.head_dim).transpose(1, 2)
            q = (q * self.scale).reshape(rows, self.n_kv, self.group * n, self.head_dim)
            scores = (q @ keys[:, :, :end].transpose(-1, -2)).view(rows, self.n_kv, self.group, n, end)
            scores = (scores + bias).view(rows, self.n_kv, self.group * n, end)
            if head is not None:
                scores = torch.cat((q @ head.keys[index].transpose(-1, -2), scores), dim=-1)
            weights = scores.softmax(-1)
            if head is not None:
                split = head.length
                out = weights[..., :split] @ head.values[index] \
                    + weights[..., split:] @ values[:, :, :end]
            else:
                out = weights @ values[:, :, :end]
            out = out.view(rows, self.n_heads, n, self.head_dim).transpose(1, 2).reshape(rows, n, q_size)
            x = x + F.linear(out.to(x.dtype), layer.o)
            h = self._rms(x, layer.norm_post)
            gate, up = F.linear(h, layer.gate_up).chunk(2, dim=-1)
            x = x + F.linear(F.silu(gate) * up, layer.down)
        batch.length = end
        return F.linear(self._rms(x[:, -1] if last_only else x, self.norm), self.lm_head).float()
