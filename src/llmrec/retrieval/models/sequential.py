"""A SASRec-style sequential recommender (Kang & McAuley, 2018) used as a candidate source.

Causal self-attention over a user's last ``max_len`` items predicts the next item at every
position, trained with a full-softmax cross-entropy over every catalog row (no sampled
negatives). Output logits are tied to the item table.

With ``text_init=True`` an item's embedding is ``Linear(text vector) + residual`` where the
per-item residual starts at zero: what the model knows about an item starts from its text,
so rare items borrow from similar texts, and an item added after training (see
:meth:`SequentialSource.update_items`) gets a meaningful embedding from its text alone.

Scores given to the ranker (:meth:`SequentialSource.score`) are
``clip(logit - max logit, -20, 0) / 10``: the log-softmax over the live, non-excluded rows
shifted so the user's best candidate is 0, floored at ``-2``. Rows that cannot be scored
(not live, unknown) get the floor ``-2``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from llmrec._validate import check_bool, check_float, check_int, check_vectors
from llmrec.device import DeviceLike, resolve_device
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.retrieval.base import RetrievalContext, TrainableSource
from llmrec.storage.io import MAX_DIM

__all__ = ["SequentialSource"]

logger = logging.getLogger(__name__)

#: Logit gap below the best candidate from which scores are floored.
SCORE_CLIP = 20.0
#: Divisor of the clipped gap: scores lie in ``[-SCORE_CLIP / SCORE_SCALE, 0]``.
SCORE_SCALE = 10.0
FLOOR = -SCORE_CLIP / SCORE_SCALE
WEIGHTS_FILE = "weights.safetensors"


# ---------------------------------------------------------------------------- network
class _FastDropout(nn.Module):
    """Inverted dropout from ``rand_like``, which is faster than ``bernoulli_`` on CPU."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        return x * ((torch.rand_like(x) >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p)))


class _Block(nn.Module):
    """Pre-norm transformer block with causal attention."""

    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.ff1 = nn.Linear(hidden, 4 * hidden)
        self.ff2 = nn.Linear(4 * hidden, hidden)
        self.drop = _FastDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, h = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.heads, h // self.heads).unbind(2)
        attn = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
        )
        x = x + self.drop(self.out(attn.transpose(1, 2).reshape(b, t, h)))
        return x + self.drop(self.ff2(F.gelu(self.ff1(self.norm2(x)))))


class _Net(nn.Module):
    """Item table + positional embeddings + causal transformer; logits tied to the table."""

    def __init__(
        self,
        n_items: int,
        dim: int,
        *,
        hidden: int,
        layers: int,
        heads: int,
        max_len: int,
        dropout: float,
        text_init: bool,
    ) -> None:
        super().__init__()
        self.n_items = n_items
        self.text_init = text_init
        self.proj = nn.Linear(dim, hidden) if text_init else None
        self.residual = nn.Parameter(torch.empty(n_items, hidden))
        if text_init:
            nn.init.zeros_(self.residual)
        else:
            nn.init.normal_(self.residual, std=hidden**-0.5)
        self.position = nn.Parameter(torch.empty(max_len, hidden))
        nn.init.normal_(self.position, std=0.02)
        self.drop = _FastDropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(hidden)

    def table(self, text: torch.Tensor | None) -> torch.Tensor:
        """Item embeddings for every row of ``text`` (rows past the trained ones: text only)."""
        if self.proj is None or text is None:
            return self.residual
        table = self.proj(text)
        n = min(self.n_items, len(table))
        return torch.cat([table[:n] + self.residual[:n], table[n:]])

    def encode(self, table: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Hidden states ``(batch, time, hidden)``; ``inputs`` are right-padded with
        ``len(table)``, which the causal mask keeps out of every real position."""
        padded = torch.cat([table, table.new_zeros(1, table.shape[1])])
        x = padded[inputs] + self.position[: inputs.shape[1]]
        x = self.drop(x)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


def _member_prefix(member: int) -> str:
    """Key prefix of a member's tensors in the weights file."""
    return "net." if member == 0 else f"net{member}."


# ---------------------------------------------------------------------------- checks
def _check_item_vectors(vectors: Any) -> np.ndarray:
    shape = np.shape(vectors)
    if len(shape) != 2 or 0 in shape:
        raise InvalidInputError(
            f"item_vectors must be a non-empty (n_rows, dim) array, got shape {shape}"
        )
    return check_vectors(vectors, shape[1], "item_vectors")


def _check_rows(rows: Any, n_rows: int, what: str) -> np.ndarray:
    array = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise InvalidInputError(f"{what} must be a 1-d sequence of int rows, got {array!r:.80}")
    array = array.astype(np.int64)
    bad = array[(array < 0) | (array >= n_rows)]
    if len(bad):
        raise InvalidInputError(f"{what} holds row {int(bad[0])}, outside [0, {n_rows})")
    return array


class SequentialSource(TrainableSource):
    """SASRec-style next-item model over catalog rows; a
    :class:`~llmrec.retrieval.TrainableSource`.

    Args:
        hidden: Embedding and hidden size (divisible by ``heads``).
        layers: Transformer blocks.
        heads: Attention heads.
        max_len: Items of history read (the newest ``max_len``).
        dropout: Dropout on the input embeddings and on each attention and feed-forward
            output (not inside attention: it is slow on CPU).
        text_init: Item embedding = projected text vector + learned residual (else a plain
            learned embedding; items added after training then score the floor).
        epochs: Maximum training epochs with validation pairs (early stopping usually
            ends sooner: on MovieLens-100K at about 33, the best epoch plus ``patience``;
            on ml-latest-small the best epoch is past 30).
        unvalidated_epochs: Without validation pairs nothing can stop training early, so
            it runs ``min(epochs, unvalidated_epochs)`` epochs.
        members: Networks trained (seeds ``seed``, ``seed + 1``, ...), each with its own
            early stopping; their log-softmax scores are averaged. At twice the training
            time, two members lift the source alone on MovieLens-100K and the fused
            pipeline on ml-latest-small (see ``benchmarks/RESULTS.md``).
        batch_size: Training windows per step.
        lr: Adam learning rate.
        weight_decay: AdamW weight decay (.05 measured ahead of 0 on MovieLens-100K, alone
            and in the fused pipeline; see ``benchmarks/RESULTS.md``).
        patience: Epochs without validation improvement before stopping (with ``valid``).
        seed: Seed of initialization, shuffling and dropout.
        device: Where the model trains and scores (see :func:`llmrec.resolve_device`).
        show_progress: Show a tqdm bar over epochs.
    """

    name = "sequential"
    default_weight = 1.0
    relation = "co_consumption"
    #: Too slow to refit after the ranker's held-out pass: keeps those weights.
    refit_on_all = False

    def __init__(
        self,
        *,
        hidden: int = 64,
        layers: int = 2,
        heads: int = 2,
        max_len: int = 50,
        dropout: float = 0.2,
        text_init: bool = True,
        epochs: int = 100,
        unvalidated_epochs: int = 30,
        members: int = 2,
        batch_size: int = 128,
        lr: float = 3e-3,
        weight_decay: float = 0.05,
        patience: int = 10,
        seed: int = 0,
        device: DeviceLike = "auto",
        show_progress: bool = True,
    ) -> None:
        self.hidden = check_int(hidden, "hidden", low=1)
        self.layers = check_int(layers, "layers", low=1)
        self.heads = check_int(heads, "heads", low=1)
        if self.hidden % self.heads:
            raise ConfigError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.max_len = check_int(max_len, "max_len", low=1)
        self.epochs = check_int(epochs, "epochs", low=1)
        self.unvalidated_epochs = check_int(unvalidated_epochs, "unvalidated_epochs", low=1)
        self.members = check_int(members, "members", low=1, high=16)
        self.batch_size = check_int(batch_size, "batch_size", low=1)
        self.patience = check_int(patience, "patience", low=1)
        self.dropout = check_float(dropout, "dropout", low=0.0, high=1.0, high_open=True)
        self.lr = check_float(lr, "lr", low=0.0, high=math.inf, low_open=True, high_open=True)
        self.weight_decay = check_float(
            weight_decay, "weight_decay", low=0.0, high=math.inf, high_open=True
        )
        self.text_init = check_bool(text_init, "text_init")
        self.seed = check_int(seed, "seed")
        self.device = resolve_device(device)
        self.show_progress = check_bool(show_progress, "show_progress")
        self.nets: list[_Net] = []  # the members, once fitted
        self.text: torch.Tensor | None = None  # (n_rows, dim) on device
        self.live = np.zeros(0, dtype=bool)
        # Per-epoch loss / validation metric of every member (with a "member" key when
        # there are several), and each member's best epoch.
        self.history: list[dict[str, float]] = []
        self.best_epochs: tuple[int, ...] = ()
        self.best_epoch = 0
        self._tables: list[torch.Tensor] | None = None

    # ------------------------------------------------------------------ state
    @property
    def net(self) -> _Net | None:
        """The first member's network (``None`` before :meth:`fit`)."""
        return self.nets[0] if self.nets else None

    @property
    def fitted(self) -> bool:
        return bool(self.nets)

    @property
    def n_rows(self) -> int:
        """Rows the source can score (trained rows plus rows added by update_items)."""
        return len(self.live)

    def _config(self) -> dict[str, Any]:
        return {
            "hidden": self.hidden,
            "layers": self.layers,
            "heads": self.heads,
            "max_len": self.max_len,
            "dropout": self.dropout,
            "text_init": self.text_init,
            "epochs": self.epochs,
            "unvalidated_epochs": self.unvalidated_epochs,
            "members": self.members,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "patience": self.patience,
            "seed": self.seed,
        }

    def _new_net(self, n_items: int, dim: int) -> _Net:
        """An untrained member network of this source's shape."""
        return _Net(
            n_items,
            dim,
            hidden=self.hidden,
            layers=self.layers,
            heads=self.heads,
            max_len=self.max_len,
            dropout=self.dropout,
            text_init=self.text_init,
        )

    def _item_tables(self) -> list[torch.Tensor]:
        if self._tables is None:
            with torch.inference_mode():
                self._tables = [net.table(self.text) for net in self.nets]
        return self._tables

    # ------------------------------------------------------------------ training
    def _windows(self, sequences: list[np.ndarray], pad: int) -> tuple[np.ndarray, np.ndarray]:
        """Non-overlapping windows cut from the end of each sequence: every next-item
        target of every sequence appears exactly once, with up to ``max_len`` items of
        context. Inputs are right-padded with ``pad``, targets with -100."""
        inputs, targets = [], []
        m = self.max_len
        for seq in sequences:
            end = len(seq) - 1  # targets are seq[1:]
            while end > 0:
                start = max(0, end - m)
                x = np.full(m, pad, dtype=np.int64)
                y = np.full(m, -100, dtype=np.int64)
                x[: end - start] = seq[start:end]
                y[: end - start] = seq[start + 1 : end + 1]
                inputs.append(x)
                targets.append(y)
                end = start
        if not inputs:
            return np.zeros((0, m), np.int64), np.zeros((0, m), np.int64)
        return np.stack(inputs), np.stack(targets)

    def fit(
        self,
        sequences: Sequence[Sequence[int]],
        item_vectors: np.ndarray,
        *,
        valid: Sequence[tuple[Sequence[int], int]] | None = None,
        live: np.ndarray | None = None,
    ) -> SequentialSource:
        """Train on per-user chronological rows.

        Args:
            sequences: Each user's positive rows, oldest first, in ``[0, n_rows)``.
            item_vectors: ``(n_rows, dim)`` item text vectors (zero rows allowed).
            valid: ``(history rows, next row)`` pairs; when given, training stops after
                ``patience`` epochs without a better NDCG@10 (full ranking, history
                excluded) and the best epoch's weights are kept.
            live: Boolean mask of rows that may be scored (default: all).

        Raises:
            InvalidInputError: rows out of range, bad vectors, a bad ``live`` mask.
        """
        vectors = _check_item_vectors(item_vectors)
        n_rows = len(vectors)
        if isinstance(sequences, (str, bytes)):
            raise InvalidInputError("sequences must be a sequence of row sequences")
        seqs = [_check_rows(seq, n_rows, f"sequences[{n}]") for n, seq in enumerate(sequences)]
        live_mask = np.ones(n_rows, dtype=bool)
        if live is not None:
            given = np.asarray(live)
            if given.ndim != 1 or given.dtype != bool or len(given) < n_rows:
                raise InvalidInputError(
                    f"live must be a bool mask of at least {n_rows} rows, got "
                    f"{given.dtype} {given.shape}"
                )
            live_mask = given[:n_rows].copy()
        valid_pairs = []
        for n, pair in enumerate(valid or ()):
            try:
                history, target = pair
            except (TypeError, ValueError):
                raise InvalidInputError(f"valid[{n}] must be a (history, row) pair") from None
            history = _check_rows(history, n_rows, f"valid[{n}] history")
            target = _check_rows([target], n_rows, f"valid[{n}] target")[0]
            if live_mask[target] and target not in history:
                valid_pairs.append((history, int(target)))

        inputs, targets = self._windows(seqs, pad=n_rows)
        targets[(targets >= 0) & ~live_mask[np.maximum(targets, 0)]] = -100  # not scorable
        started = time.perf_counter()
        devices = [self.device] if self.device.type == "cuda" else []
        text = torch.from_numpy(vectors).to(self.device)
        self.text, self.live = text, live_mask
        members, history, best_epochs = [], [], []
        for member in range(self.members):
            with torch.random.fork_rng(devices=devices):
                torch.manual_seed(self.seed + member)
                rng = np.random.default_rng(self.seed + member)
                net = self._new_net(n_rows, vectors.shape[1]).to(self.device)
                # While a member trains it is the only one validated.
                self.nets, self._tables, self.history = [net], None, []
                self.best_epoch = 0
                if len(inputs):
                    self._train(net, text, inputs, targets, valid_pairs, rng)
            net.eval()
            members.append(net)
            best_epochs.append(self.best_epoch)
            if self.members > 1:
                history += [{**record, "member": member} for record in self.history]
            else:
                history = self.history
        self.nets, self._tables, self.history = members, None, history
        self.best_epochs, self.best_epoch = tuple(best_epochs), best_epochs[0]
        logger.info(
            "sequential model trained in %.1fs (%d member(s), best epochs %s)",
            time.perf_counter() - started,
            self.members,
            best_epochs,
        )
        return self

    def _train(
        self,
        net: _Net,
        text: torch.Tensor,
        inputs: np.ndarray,
        targets: np.ndarray,
        valid: list[tuple[np.ndarray, int]],
        rng: np.random.Generator,
    ) -> None:
        from tqdm.auto import tqdm

        optimizer = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        x_all = torch.from_numpy(inputs)
        y_all = torch.from_numpy(targets)
        live_t = torch.from_numpy(self.live).to(self.device)
        best, best_state, stale = -1.0, None, 0
        epochs = self.epochs if valid else min(self.epochs, self.unvalidated_epochs)
        bar = tqdm(
            range(1, epochs + 1),
            desc="training sequential model",
            unit="epoch",
            disable=not self.show_progress,
        )
        for epoch in bar:
            net.train()
            order = torch.from_numpy(rng.permutation(len(inputs)))
            total, count = 0.0, 0
            for start in range(0, len(order), self.batch_size):
                idx = order[start : start + self.batch_size]
                x = x_all[idx].to(self.device)
                y = y_all[idx].to(self.device)
                keep = y >= 0
                table = net.table(text)
                hidden = net.encode(table, x)[keep]
                logits = hidden @ table.T
                logits = logits.masked_fill(~live_t, -1e9)
                loss = F.cross_entropy(logits, y[keep])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach()) * int(keep.sum())
                count += int(keep.sum())
            record = {"epoch": epoch, "loss": total / max(count, 1)}
            if valid:
                self._tables = None
                net.eval()
                record["ndcg@10"] = self._validate(valid)
                if record["ndcg@10"] > best:
                    best, stale, self.best_epoch = record["ndcg@10"], 0, epoch
                    best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
                else:
                    stale += 1
            else:
                self.best_epoch = epoch
            self.history.append(record)
            bar.set_postfix({k: round(v, 4) for k, v in record.items() if k != "epoch"})
            if valid and stale >= self.patience:
                break
        bar.close()
        if best_state is not None:
            net.load_state_dict(best_state)

    def _validate(self, valid: list[tuple[np.ndarray, int]], batch: int = 512) -> float:
        """Mean NDCG@10 of the targets, full ranking over live rows, history excluded."""
        total = 0.0
        for start in range(0, len(valid), batch):
            chunk = valid[start : start + batch]
            logits = self.logits([h for h, _ in chunk])
            for row, (history, target) in enumerate(chunk):
                scores = logits[row]
                scores[history] = -np.inf
                rank = int((scores > scores[target]).sum())
                if rank < 10:
                    total += 1.0 / math.log2(rank + 2)
        return total / len(valid)

    # ------------------------------------------------------------------ inference
    def logits(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Next-item logits ``(len(histories), n_rows)`` for chronological histories
        (oldest first): one member's raw logits, or the mean of the members' log-softmax
        over the live rows; rows that are not live are ``-inf``. Unfitted: all ``-inf``."""
        out = np.full((len(histories), self.n_rows), -np.inf, dtype=np.float32)
        if not self.nets or not len(histories):
            return out
        tables = self._item_tables()
        usable = len(tables[0]) if self.text_init else self.nets[0].n_items
        pad = len(tables[0])
        x = np.full((len(histories), self.max_len), pad, dtype=np.int64)
        last = np.zeros(len(histories), dtype=np.int64)
        empty = np.zeros(len(histories), dtype=bool)
        for n, history in enumerate(histories):
            rows = np.asarray(history, dtype=np.int64)
            rows = rows[(rows >= 0) & (rows < usable)][-self.max_len :]
            if not len(rows):
                empty[n] = True
                continue
            x[n, : len(rows)] = rows
            last[n] = len(rows) - 1
        with torch.inference_mode():
            inputs = torch.from_numpy(x).to(self.device)
            at = (torch.arange(len(x), device=self.device), torch.from_numpy(last).to(self.device))
            dead = torch.from_numpy(~self.live[:pad]).to(self.device)
            total = None
            for net, table in zip(self.nets, tables):
                scores = net.encode(table, inputs)[at] @ table.T
                if len(self.nets) > 1:
                    scores = torch.log_softmax(scores.float().masked_fill(dead, -math.inf), dim=1)
                total = scores if total is None else total + scores
            assert total is not None
            scores = (total / len(self.nets)).float().cpu().numpy()
        out[:, : scores.shape[1]] = scores
        out[:, ~self.live] = -np.inf
        out[empty] = -np.inf
        return out

    def user_scores(self, ctx: RetrievalContext) -> np.ndarray:
        """Raw logits over every row for the context (memoized in ``ctx.memo``)."""
        cached = ctx.memo.get(self.name)
        if cached is not None:
            return cached
        history = ctx.history_rows
        if len(ctx.profile_rows) > len(history):
            history = ctx.profile_rows
        history = np.asarray(history, dtype=np.int64)[: self.max_len][::-1]
        if self.net is None or not len(history):
            scores = np.full(max(ctx.n_rows, self.n_rows), -np.inf, dtype=np.float32)
        else:
            logits = self.logits([history])[0]
            scores = np.full(max(ctx.n_rows, len(logits)), -np.inf, dtype=np.float32)
            scores[: len(logits)] = logits
        if len(ctx.exclude_rows):
            excluded = ctx.exclude_rows[(ctx.exclude_rows >= 0) & (ctx.exclude_rows < len(scores))]
            scores[excluded] = -np.inf
        ctx.memo[self.name] = scores
        return scores

    def propose(self, ctx: RetrievalContext, n: int) -> np.ndarray:
        """Up to ``n`` live, non-excluded rows with the highest logits."""
        scores = self.user_scores(ctx)
        finite = np.flatnonzero(np.isfinite(scores))
        if not len(finite) or n <= 0:
            return np.zeros(0, dtype=np.int64)
        if len(finite) > n:
            finite = finite[np.argpartition(-scores[finite], n - 1)[:n]]
        return finite[np.argsort(-scores[finite], kind="stable")]

    def score(self, ctx: RetrievalContext, rows: np.ndarray) -> np.ndarray:
        """``clip(logit - best logit, -20, 0) / 10`` per row (the log-softmax shifted so the
        best live, non-excluded row is 0); ``-2`` where the model has no score, ``0``
        everywhere before fit."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        if self.net is None:
            return out
        scores = self.user_scores(ctx)
        finite = np.isfinite(scores)
        if not finite.any():
            return out
        top = scores[finite].max()
        inside = (rows >= 0) & (rows < len(scores))
        values = np.full(len(rows), -np.inf, dtype=np.float32)
        values[inside] = scores[rows[inside]]
        gap = np.where(np.isfinite(values), values - top, -SCORE_CLIP)
        return (np.clip(gap, -SCORE_CLIP, 0.0) / SCORE_SCALE).astype(np.float32)

    # ------------------------------------------------------------------ catalog changes
    def update_items(self, rows: np.ndarray, vectors: np.ndarray) -> None:
        """Register new or changed items without retraining.

        New rows get an embedding from their text vector alone (``text_init=True``; with
        ``text_init=False`` they cannot be scored); changed rows keep their learned
        residual on top of the new text. Ignored before :meth:`fit`.
        """
        if self.net is None:
            return
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        vectors = _check_item_vectors(vectors) if len(rows) else np.zeros((0, 1), np.float32)
        if not len(rows):
            return
        if len(vectors) != len(rows):
            raise InvalidInputError(f"{len(rows)} rows for {len(vectors)} vectors")
        if rows.min() < 0:
            raise InvalidInputError(f"rows must be >= 0, got {int(rows.min())}")
        assert self.text is not None
        if vectors.shape[1] != self.text.shape[1]:
            raise InvalidInputError(
                f"vectors must have dim {self.text.shape[1]}, got {vectors.shape[1]}"
            )
        size = int(rows.max()) + 1
        if size > self.n_rows:
            grown = torch.zeros(size, self.text.shape[1], dtype=self.text.dtype, device=self.device)
            grown[: len(self.text)] = self.text
            self.text = grown
            live = np.zeros(size, dtype=bool)
            live[: len(self.live)] = self.live
            self.live = live
        self.text[torch.from_numpy(rows).to(self.device)] = torch.from_numpy(vectors).to(
            self.device, self.text.dtype
        )
        self.live[rows] = True
        self._tables = None

    def remove_rows(self, rows: np.ndarray) -> None:
        """Stop scoring ``rows`` (removed items)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        rows = rows[(rows >= 0) & (rows < self.n_rows)]
        self.live[rows] = False

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> dict[str, Any]:
        """Write the weights (safetensors) under ``path``; return the JSON-able config."""
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        config = {
            **self._config(),
            "fitted": self.fitted,
            "best_epoch": self.best_epoch,
            "best_epochs": list(self.best_epochs),
        }
        if self.net is not None and self.text is not None:
            # The first member under "net." (the one-network layout), member m under "netm.".
            tensors = {
                f"{_member_prefix(m)}{k}": v.detach().to("cpu").contiguous()
                for m, net in enumerate(self.nets)
                for k, v in net.state_dict().items()
            }
            tensors["text"] = self.text.detach().to("cpu").contiguous()
            tensors["live"] = torch.from_numpy(self.live.astype(np.uint8))
            save_file(tensors, str(path / WEIGHTS_FILE))
            config.update(n_items=self.net.n_items, dim=int(self.text.shape[1]))
        return config

    @classmethod
    def load(
        cls, path: Path, config: dict[str, Any], *, device: DeviceLike = "cpu"
    ) -> SequentialSource:
        """Rebuild a source saved by :meth:`save` (weights are mapped onto ``device``)."""
        from safetensors.torch import load_file

        path = Path(path)
        try:
            # Saves from before ``unvalidated_epochs`` trained at most their ``epochs``
            # and had one network.
            config = {"unvalidated_epochs": config.get("epochs"), "members": 1, **config}
            options = {k: config[k] for k in cls(device="cpu")._config()}
            source = cls(**options, device=device, show_progress=False)
            source.best_epoch = int(config.get("best_epoch", 0))
            source.best_epochs = tuple(int(e) for e in config.get("best_epochs", ()))
            if not config["fitted"]:
                return source
            where = "components.retriever.models.sequential"
            n_items = check_int(
                config["n_items"], f"{where}.n_items", low=1, error=PersistenceError
            )
            dim = check_int(
                config["dim"], f"{where}.dim", low=1, high=MAX_DIM, error=PersistenceError
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PersistenceError(f"corrupt sequential config in {str(path)!r}: {exc}") from None
        try:
            tensors = load_file(str(path / WEIGHTS_FILE), device="cpu")
        except FileNotFoundError:
            raise PersistenceError(f"missing file {str(path / WEIGHTS_FILE)!r}") from None
        except Exception as exc:  # safetensors raises its own error types
            raise PersistenceError(f"corrupt weights in {str(path)!r}: {exc}") from None
        nets = []
        for member in range(source.members):
            net = source._new_net(n_items, dim)
            prefix = _member_prefix(member)
            try:
                net.load_state_dict(
                    {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
                )
            except RuntimeError as exc:
                raise PersistenceError(
                    f"weights in {str(path)!r} do not match the config: {exc}"
                ) from None
            nets.append(net.to(source.device).eval())
        try:
            text, live = tensors["text"], tensors["live"].numpy().astype(bool)
        except KeyError as exc:
            raise PersistenceError(
                f"weights in {str(path)!r} do not match the config: {exc}"
            ) from None
        if text.shape[1] != dim or len(live) != len(text) or not torch.isfinite(text).all():
            raise PersistenceError(f"weights in {str(path)!r} do not match the config")
        source.nets = nets
        source.text = text.to(source.device)
        source.live = live
        return source
