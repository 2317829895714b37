"""A lean forward pass for Llama-architecture causal language models (the embedded
SmolLM2-135M-Instruct is one), used by :class:`~llmrec.generation.llms.transformers.TransformersChat`
for greedy batched decoding on CPUs.

At the batch sizes of one recommendation request (2-16 rows, one new token per row and
step) a step of the Hugging Face forward costs several times its weight matmuls on a
CPU: per-layer bookkeeping, a 4-D mask built every step, the shared prompt head
copied into every row's cache and the whole cache concatenated again each step. This
module runs the same weights with:

* one matmul for the query, key and value projections and one for the gate and up
  projections (the model's own parameters become views of the fused weights, so the
  model object keeps working), and on a CPU with oneDNN those weights pre-packed in its
  blocked layout (a packed copy; matmuls at decoding batch sizes cost less);
* rows packed: each row gives any number of new tokens per step (its prompt, or its last
  token and a few guessed ones) and projections run over real tokens only;
* the shared head's keys and values held once, not once per row: attention scores
  against the head and against each row's own tokens are computed separately and
  normalised together; rows with a handful of new tokens are attended apart from rows
  with a whole prompt, so they are not padded to a prompt's length;
* per-row key/value buffers filled in place (guesses that were not kept are overwritten);
* keys, values and attention scores in the model's dtype (as the model's own cache and
  attention keep them), the softmax in float32.

Only architectures it reproduces exactly are accepted (:func:`supports`); the logits
agree with the Hugging Face forward to rounding (tests compare both in float32).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from llmrec.errors import ConfigError, InvalidInputError

__all__ = ["LlamaRunner", "supports"]

logger = logging.getLogger(__name__)


def supports(model: Any) -> bool:
    """Whether :class:`LlamaRunner` reproduces ``model``'s forward pass: a plain Llama
    (no biases, SiLU MLP, default rotary embedding, full attention in every layer)."""
    config = getattr(model, "config", None)
    if config is None or getattr(config, "model_type", None) != "llama":
        return False
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    rope_type = (
        rope.get("rope_type", rope.get("type", "default")) if isinstance(rope, dict) else None
    )
    inner = getattr(model, "model", None)
    return (
        rope_type == "default"
        and not getattr(config, "attention_bias", False)
        and not getattr(config, "mlp_bias", False)
        and getattr(config, "hidden_act", None) == "silu"
        and getattr(config, "pretraining_tp", 1) == 1
        and not getattr(config, "sliding_window", None)
        and inner is not None
        and hasattr(inner, "layers")
        and hasattr(inner, "rotary_emb")
        and hasattr(model, "lm_head")
    )


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
    length, head_dim]`` tensors in the model's dtype."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[1]) if self.keys else 0


@dataclass
class Batch:
    """The state of one decoding batch: per layer, each row's keys and values after the
    head (``[rows, kv_heads, capacity, head_dim]``, the model's dtype), and how many tokens each
    row holds. A row's tokens sit at columns ``0 .. length - 1`` and its position ids
    continue the head's, so a row computes exactly what it would alone."""

    head: Head | None
    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    lengths: list[int]

    @property
    def rows(self) -> int:
        return len(self.lengths)

    def discard(self, counts: Sequence[int]) -> None:
        """Forget the last ``counts[row]`` tokens of each row (guesses that were not
        kept); the next tokens overwrite them."""
        self.lengths = [n - c for n, c in zip(self.lengths, counts)]

    def select(self, rows: Sequence[int]) -> None:
        """Keep only ``rows``, in that order."""
        index = torch.tensor(list(rows), dtype=torch.long, device=self.keys[0].device)
        self.keys = [k.index_select(0, index) for k in self.keys]
        self.values = [v.index_select(0, index) for v in self.values]
        self.lengths = [self.lengths[r] for r in rows]

    def _reserve(self, columns: int) -> None:
        capacity = self.keys[0].shape[2]
        if columns > capacity:
            extra = max(columns, capacity * 3 // 2) - capacity
            self.keys = [F.pad(k, (0, 0, 0, extra)) for k in self.keys]
            self.values = [F.pad(v, (0, 0, 0, extra)) for v in self.values]


@dataclass
class _Group:
    """Rows whose new tokens are attended together, padded to the longest of them."""

    rows: torch.Tensor | None  # None: every row of the batch, in order
    slot: torch.Tensor  # per token of the group: its row within the group
    step: torch.Tensor  # per token: its place among the row's new tokens
    tokens: torch.Tensor  # per token: its index in the packed tokens
    width: int
    columns: int
    bias: torch.Tensor  # [rows, 1, 1, width, columns]


def _packed_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return torch.ops.mkldnn._linear_pointwise(x, weight, None, "none", [], "")


class LlamaRunner:
    """Greedy-decoding forward passes over a Llama model's weights (see the module
    docstring). Not thread-safe: the caller serialises calls, as the backend does."""

    #: Rows given more new tokens than this (prompts) are attended apart from the rest
    #: (one token and a few guesses), so short rows are not padded to a prompt's length.
    SHORT = 8

    def __init__(self, model: Any) -> None:
        if not supports(model):
            raise ConfigError(f"LlamaRunner does not support {type(model).__name__}")
        config = model.config
        self.n_heads = int(config.num_attention_heads)
        self.n_kv = int(getattr(config, "num_key_value_heads", None) or self.n_heads)
        self.head_dim = int(
            getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
        )
        self.group = self.n_heads // self.n_kv
        self.eps = float(config.rms_norm_eps)
        self.scale = self.head_dim**-0.5
        inner = model.model
        rotary = inner.rotary_emb
        self.inv_freq = rotary.inv_freq.detach().float()
        self.rope_scale = float(getattr(rotary, "attention_scaling", 1.0))
        self.embed = inner.embed_tokens.weight.detach()
        self.lm_head = model.lm_head.weight.detach()
        self.vocab = int(self.lm_head.shape[0])
        self.norm = inner.norm.weight.detach()
        self.device = self.embed.device
        self.layers = [self._fuse(layer) for layer in inner.layers]
        # Keys, values and attention scores in the model's dtype (as the model's own
        # cache and attention keep them); the softmax in float32.
        self.dtype = self.embed.dtype
        self.packed = self._pack()

    @staticmethod
    def _fuse(layer: Any) -> _Layer:
        attn, mlp = layer.self_attn, layer.mlp

        def fused(*linears: nn.Linear) -> torch.Tensor:
            weight = torch.cat([lin.weight.detach() for lin in linears])
            start = 0
            for lin in linears:  # the model's parameters become views of the fused weight
                rows = lin.weight.shape[0]
                lin.weight = nn.Parameter(weight[start : start + rows], requires_grad=False)
                start += rows
            return weight

        return _Layer(
            qkv=fused(attn.q_proj, attn.k_proj, attn.v_proj),
            o=attn.o_proj.weight.detach(),
            gate_up=fused(mlp.gate_proj, mlp.up_proj),
            down=mlp.down_proj.weight.detach(),
            norm_in=layer.input_layernorm.weight.detach(),
            norm_post=layer.post_attention_layernorm.weight.detach(),
        )

    def _pack(self) -> bool:
        """On a CPU with oneDNN, hold the projection weights pre-packed in oneDNN's
        blocked layout: at decoding batch sizes a matmul then costs less (the weight
        is not re-laid out on every call); results are identical. Keeps a packed copy of
        the weights; falls back to plain matmuls where packing is unavailable."""
        if (
            self.device.type != "cpu"
            or self.embed.dtype not in (torch.bfloat16, torch.float32)
            or not torch.backends.mkldnn.is_available()
        ):
            return False
        try:
            pack = torch.ops.mkldnn._reorder_linear_weight
            probe = torch.randn((3, self.lm_head.shape[1]), dtype=self.embed.dtype)
            packed_head = pack(self.lm_head)
            if not torch.equal(_packed_linear(probe, packed_head), F.linear(probe, self.lm_head)):
                return False
            self.lm_head = packed_head
            for layer in self.layers:
                for name in ("qkv", "o", "gate_up", "down"):
                    setattr(layer, name, pack(getattr(layer, name)))
        except (RuntimeError, AttributeError) as exc:  # an op missing from this build
            logger.info("oneDNN weight packing unavailable (%s); plain matmuls", exc)
            return False
        return True

    def _linear(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return _packed_linear(x, weight) if self.packed else F.linear(x, weight)

    # ------------------------------------------------------------------ state
    def new_batch(self, rows: int, capacity: int, head: Head | None) -> Batch:
        """An empty batch of ``rows`` rows with room for ``capacity`` tokens each (it
        grows when needed)."""
        shape = (rows, self.n_kv, max(capacity, 1), self.head_dim)
        n = len(self.layers)  # zeros: masked columns must still be finite (0 x NaN is NaN)
        return Batch(
            head=head,
            keys=[torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(n)],
            values=[torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in range(n)],
            lengths=[0] * rows,
        )

    def head(self, ids: Sequence[int]) -> Head:
        """Run a shared prompt head once and keep its keys and values."""
        batch = self.new_batch(1, len(ids), None)
        self.forward(batch, [list(ids)], last_only=[True])
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
        return (emb.cos() * self.rope_scale).unsqueeze(1), (emb.sin() * self.rope_scale).unsqueeze(
            1
        )

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def _groups(self, counts: list[int], starts: list[int]) -> list[_Group]:
        """Short rows (one token and a few guesses) are attended over the whole batch,
        without copying anyone's keys; long rows (prompts) apart, padded to the longest
        prompt, so short rows are never padded to a prompt's length."""
        n_rows = len(counts)
        short = [r for r, n in enumerate(counts) if 0 < n <= self.SHORT]
        long = [r for r, n in enumerate(counts) if n > self.SHORT]
        plans = []
        if short:
            plans.append((None, short))
        if long:
            plans.append((None if len(long) == n_rows else long, long))
        offsets = [0]
        for n in counts:
            offsets.append(offsets[-1] + n)
        as_long = functools.partial(torch.tensor, dtype=torch.long, device=self.device)
        groups = []
        for subset, members in plans:
            rows = list(range(n_rows)) if subset is None else subset
            place = {r: i for i, r in enumerate(rows)}
            slot = [place[r] for r in members for _ in range(counts[r])]
            step = [j for r in members for j in range(counts[r])]
            tokens = [t for r in members for t in range(offsets[r], offsets[r + 1])]
            width = max(counts[r] for r in members)
            columns = max(starts[r] + counts[r] for r in rows)
            # A token sees its row's columns up to its own; padding queries see the same
            # as the row's first new token (never nothing, so no row softmaxes over -inf).
            first = as_long([starts[r] for r in rows])
            query = first[:, None] + torch.arange(width, device=self.device)[None]
            allowed = torch.arange(columns, device=self.device)[None, None, :] <= query[:, :, None]
            bias = torch.zeros(allowed.shape, device=self.device).masked_fill_(
                ~allowed, torch.finfo(torch.float32).min
            )[:, None, None]
            groups.append(
                _Group(
                    rows=None if subset is None else as_long(subset),
                    slot=as_long(slot),
                    step=as_long(step),
                    tokens=as_long(tokens),
                    width=width,
                    columns=columns,
                    bias=bias,
                )
            )
        return groups

    def forward(
        self, batch: Batch, tokens: Sequence[Sequence[int]], last_only: Sequence[bool]
    ) -> list[torch.Tensor]:
        """Append ``tokens[row]`` (possibly none) to each row; return, per row, float32
        next-token logits: ``[1, vocab]`` for its last new token where ``last_only[row]``,
        else ``[n, vocab]`` for each of its ``n`` new tokens (``[0, vocab]`` for a row
        given none). Rows are packed: projections run over real tokens only."""
        counts = [len(t) for t in tokens]
        if len(counts) != batch.rows:
            raise InvalidInputError(f"{len(counts)} token lists for a batch of {batch.rows} rows")
        starts = list(batch.lengths)
        ends = [s + n for s, n in zip(starts, counts)]
        batch._reserve(max(ends, default=0))
        flat = [t for row in tokens for t in row]
        if not flat:
            return [torch.zeros((0, self.vocab), device=self.device) for _ in counts]
        as_long = functools.partial(torch.tensor, dtype=torch.long, device=self.device)
        row_of = as_long([r for r, n in enumerate(counts) for _ in range(n)])
        column = as_long([starts[r] + j for r, n in enumerate(counts) for j in range(n)])
        offset = batch.head.length if batch.head is not None else 0
        cos, sin = self._rope(column + offset)
        groups = self._groups(counts, starts)
        x = F.embedding(as_long(flat), self.embed)
        for index, layer in enumerate(self.layers):
            x = self._layer(x, index, layer, batch, (row_of, column), (cos, sin), groups)
        batch.lengths = ends
        return self._logits(x, counts, last_only)

    def _layer(
        self,
        x: torch.Tensor,
        index: int,
        layer: _Layer,
        batch: Batch,
        where: tuple[torch.Tensor, torch.Tensor],
        rope: tuple[torch.Tensor, torch.Tensor],
        groups: list[_Group],
    ) -> torch.Tensor:
        """One decoder layer over the packed tokens ``x``: their keys and values are
        written into the batch at ``where`` (row, column per token), then attention,
        output projection and MLP, each with its residual."""
        total = x.shape[0]
        (row_of, column), (cos, sin) = where, rope
        q_size, kv_size = self.n_heads * self.head_dim, self.n_kv * self.head_dim
        h = self._rms(x, layer.norm_in)
        q, k, v = self._linear(h, layer.qkv).float().split([q_size, kv_size, kv_size], dim=-1)
        q = (self._rotate(q.view(total, self.n_heads, self.head_dim), cos, sin) * self.scale).to(
            self.dtype
        )
        k = self._rotate(k.view(total, self.n_kv, self.head_dim), cos, sin)
        keys, values = batch.keys[index], batch.values[index]
        keys[row_of, :, column] = k.to(keys.dtype)
        values[row_of, :, column] = v.view(total, self.n_kv, self.head_dim).to(values.dtype)
        out = x.new_empty((total, self.n_heads, self.head_dim))
        for g in groups:
            out[g.tokens] = self._attend(q, keys, values, g, batch.head, index).to(out.dtype)
        x = x + self._linear(out.reshape(total, q_size).to(x.dtype), layer.o)
        h = self._rms(x, layer.norm_post)
        gate, up = self._linear(h, layer.gate_up).chunk(2, dim=-1)
        return x + self._linear(F.silu(gate) * up, layer.down)

    def _attend(
        self,
        q: torch.Tensor,
        keys: torch.Tensor,
        values: torch.Tensor,
        g: _Group,
        head: Head | None,
        index: int,
    ) -> torch.Tensor:
        """Attention of group ``g``'s queries over its rows' keys and values (and the
        shared head's, normalised together): per token of the group, its output heads."""
        rows = keys.shape[0] if g.rows is None else len(g.rows)
        gk = (
            keys[:, :, : g.columns]
            if g.rows is None
            else keys.index_select(0, g.rows)[:, :, : g.columns]
        )
        gv = (
            values[:, :, : g.columns]
            if g.rows is None
            else values.index_select(0, g.rows)[:, :, : g.columns]
        )
        padded = q.new_zeros((rows, g.width, self.n_heads, self.head_dim))
        padded[g.slot, g.step] = q.index_select(0, g.tokens)
        gq = padded.permute(0, 2, 1, 3).reshape(
            rows, self.n_kv, self.group * g.width, self.head_dim
        )
        scores = (
            (gq @ gk.transpose(-1, -2))
            .float()
            .view(rows, self.n_kv, self.group, g.width, g.columns)
        )
        scores = (scores + g.bias).view(rows, self.n_kv, self.group * g.width, g.columns)
        if head is not None:
            scores = torch.cat(((gq @ head.keys[index].transpose(-1, -2)).float(), scores), dim=-1)
        weights = scores.softmax(-1).to(self.dtype)
        if head is not None:
            split = head.length
            o = weights[..., :split] @ head.values[index] + weights[..., split:] @ gv
        else:
            o = weights @ gv
        o = o.view(rows, self.n_heads, g.width, self.head_dim).permute(0, 2, 1, 3)
        return o[g.slot, g.step]

    def _logits(
        self, x: torch.Tensor, counts: list[int], last_only: Sequence[bool]
    ) -> list[torch.Tensor]:
        """Float32 next-token logits per row: of its last new token where ``last_only``,
        else of each of its new tokens."""
        picks, bounds = [], []
        position = 0
        for n, last in zip(counts, last_only):
            chosen = [position + n - 1] if (last and n) else list(range(position, position + n))
            bounds.append((len(picks), len(picks) + len(chosen)))
            picks += chosen
            position += n
        index = torch.tensor(picks, dtype=torch.long, device=self.device)
        logits = self._linear(self._rms(x.index_select(0, index), self.norm), self.lm_head).float()
        return [logits[a:b] for a, b in bounds]
