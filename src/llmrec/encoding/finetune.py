"""Contrastive fine-tuning of a transformer item encoder on co-consumed items.

The method is described on :class:`ContrastiveFinetuner`; the pipeline runs it from
``Pipeline.fit(..., finetune_encoder=...)``.

The tuned tensors travel as safetensors (:func:`write_tuned_weights`,
:func:`read_tuned_weights`): a weights file is checked tensor by tensor against the base
model (names, shapes, dtypes, offsets) before anything is allocated, and never unpickled.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch

from llmrec._validate import check_bool, check_float, check_int
from llmrec.encoding.base import check_texts
from llmrec.encoding.transformers import mean_pool
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.storage.io import open_regular, parse_json

if TYPE_CHECKING:
    from llmrec.encoding.encoder import ItemEncoder

__all__ = [
    "ALL_LAYERS_LR",
    "DEFAULT_TEMPERATURE",
    "MIN_PAIRS",
    "TOP_LAYERS_LR",
    "WEIGHTS_NAME",
    "ContrastiveFinetuner",
    "FinetunableBackend",
    "FinetuneReport",
    "co_consumed_pairs",
    "finetunable",
    "read_tuned_weights",
    "write_tuned_weights",
]

logger = logging.getLogger(__name__)

#: Fewest co-consumed pairs worth fine-tuning on; with fewer the pipeline skips it.
MIN_PAIRS = 64
#: See :class:`ContrastiveFinetuner`.
DEFAULT_TEMPERATURE = 0.05
#: Default learning rate when only the top layers train (on MovieLens-100K's held-out
#: pairs it reached a higher recall than 1e-4 within the CPU time limit).
TOP_LAYERS_LR = 3e-4
#: Default learning rate when every layer trains (the usual full fine-tuning rate: larger
#: ones wash out what the pretrained lower layers know).
ALL_LAYERS_LR = 3e-5
#: The file of a save's encoder folder holding the tuned tensors.
WEIGHTS_NAME = "tuned_weights.safetensors"
#: Largest safetensors header read (a model of thousands of tensors needs ~1 MiB).
MAX_HEADER_BYTES = 8 << 20
#: Partners ranked for the held-out recall.
RECALL_K = 10
#: Users with pairs below which no users are held out (no early stopping).
MIN_VALID_USERS = 20
#: safetensors dtype -> (torch dtype, bytes per value); the float types a save may hold.
_DTYPES = {
    "F32": (torch.float32, 4),
    "BF16": (torch.bfloat16, 2),
    "F16": (torch.float16, 2),
}


@runtime_checkable
class FinetunableBackend(Protocol):
    """An encoder backend whose weights can be tuned (:class:`TransformersEncoder`)."""

    name: str
    device: torch.device
    model: Any
    tokenizer: Any
    tuned_names: tuple[str, ...]

    def tuned_tensors(self) -> dict[str, torch.Tensor]: ...

    def check_tuned_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None: ...

    def load_tuned_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None: ...


def finetunable(backend: Any) -> FinetunableBackend:
    """``backend`` if its weights can be fine-tuned.

    Raises:
        ConfigError: it cannot (the ``hashing`` encoder has no weights), naming the fix.
    """
    if isinstance(backend, FinetunableBackend):
        return backend
    name = getattr(backend, "name", type(backend).__name__)
    raise ConfigError(
        f"the {name!r} encoder has no weights to fine-tune: build the pipeline with "
        "encoder='default' (the embedded all-MiniLM-L6-v2) or encoder='transformers' with "
        "encoder_options={'model': ...}, or fit without finetune_encoder"
    )


def co_consumed_pairs(user_rows: Sequence[Sequence[int]], *, window: int = 3) -> np.ndarray:
    """``(n, 2)`` int64 rows ``(a, b)``: each item of a user's chronological positive
    history with each of the next ``window`` items (repeats of one item left out).

    A pair comes once for every time a user consumed the two items that close
    together, so often co-consumed items weigh more.
    """
    window = check_int(window, "window", low=1)
    out = []
    for rows in user_rows:
        seq = np.asarray(list(rows), dtype=np.int64)
        for gap in range(1, min(window, len(seq) - 1) + 1):
            pairs = np.stack([seq[:-gap], seq[gap:]], axis=1)
            out.append(pairs[pairs[:, 0] != pairs[:, 1]])
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


@dataclass(frozen=True)
class FinetuneReport:
    """What :meth:`ContrastiveFinetuner.train` did.

    Attributes:
        train_pairs: Pairs trained on.
        valid_pairs: Held-out pairs (0: no early stopping).
        steps: Optimizer steps taken.
        best_step: The step whose weights were kept (0: the frozen model's).
        valid_recall_before: Held-out recall@10 of the frozen model (``None`` without
            held-out pairs).
        valid_recall: Held-out recall@10 of the kept weights.
        stopped: ``"max_steps"``, ``"max_seconds"`` or ``"patience"``.
        seconds: Wall time of the whole call.
        train_layers: Transformer layers tuned (from the top).
        lr: The learning rate used.
        cached: Whether the frozen layers' outputs were computed once and kept.
        weights: The tuned tensors by name (empty: keep the model as it is), for
            :meth:`~llmrec.ItemEncoder.apply_tuned_weights`.
    """

    train_pairs: int
    valid_pairs: int
    steps: int
    best_step: int
    valid_recall_before: float | None
    valid_recall: float | None
    stopped: str
    seconds: float
    train_layers: int
    lr: float
    cached: bool
    weights: dict[str, torch.Tensor] = field(default_factory=dict, repr=False, compare=False)

    @property
    def changed(self) -> bool:
        """Whether there are tuned weights to apply."""
        return bool(self.weights)

    def to_dict(self) -> dict[str, Any]:
        """The report without the weights (JSON-ready)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "weights"}
        out["changed"] = self.changed
        return out


class _OutOfTime(Exception):
    """The frozen layers' pass cannot end within the time limit."""

    def __init__(self, train_layers: int) -> None:
        super().__init__(train_layers)
        self.train_layers = train_layers


class _Passthrough(torch.nn.Module):
    """Stands in for a model's embedding layer: hands back the hidden states it is given,
    so the model runs only its upper layers on states computed by the lower ones."""

    def forward(self, *args: Any, inputs_embeds: torch.Tensor | None = None, **kwargs: Any):
        return inputs_embeds


def _layer_stack(model: torch.nn.Module) -> tuple[torch.nn.Module, str, torch.nn.ModuleList]:
    """``(parent, attribute, layers)`` of the model's stack of transformer layers."""
    count = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    for module in model.modules():
        for attr in ("layer", "layers"):
            child = getattr(module, attr, None)
            if isinstance(child, torch.nn.ModuleList) and len(child) == count:
                return module, attr, child
    raise ConfigError(
        f"cannot find the transformer layers of {type(model).__name__}: "
        "fine-tune it with train_layers='all'"
    )


class _Embedder:
    """Unit vectors of item texts from a training copy of the model: the whole model, or
    its upper layers on kept outputs of the frozen lower ones."""

    def __init__(
        self,
        backend: FinetunableBackend,
        texts: list[str],
        rows: np.ndarray,
        *,
        train_layers: int | str,
        max_length: int,
        max_cache_mb: float,
        batch_size: int,
        show_progress: bool,
        deadline: float = math.inf,
    ) -> None:
        self.device = backend.device
        self.tokenizer = backend.tokenizer
        self.texts = texts
        self.max_length = max_length
        self.model = copy.deepcopy(backend.model).to(dtype=torch.float32)
        self.parent, self.attr, layers = _layer_stack(self.model)
        if train_layers == "auto":
            train_layers = len(layers) if self.device.type == "cuda" else 1
        if train_layers == "all" or train_layers >= len(layers):
            train_layers = len(layers)
        self.train_layers = int(train_layers)
        self.split = len(layers) - self.train_layers
        self.layers = list(layers)
        for param in self.model.parameters():
            param.requires_grad_(self.split == 0)
        for layer in self.layers[self.split :]:
            for param in layer.parameters():
                param.requires_grad_(True)
        self.cache: dict[int, torch.Tensor] | None = None
        if self.split and self._can_split():
            self.cache = self._fill_cache(rows, max_cache_mb, batch_size, show_progress, deadline)

    # ------------------------------------------------------------------ parts of the model
    @contextlib.contextmanager
    def _part(self, part: str) -> Iterator[None]:
        """Run the ``"lower"`` (embeddings and frozen layers) or the ``"upper"`` layers
        only, for the duration of the block."""
        embeddings = getattr(self.model, "embeddings", None)
        layers = self.layers[: self.split] if part == "lower" else self.layers[self.split :]
        setattr(self.parent, self.attr, torch.nn.ModuleList(layers))
        if part == "upper":
            self.model.embeddings = _Passthrough()
        try:
            yield
        finally:
            setattr(self.parent, self.attr, torch.nn.ModuleList(self.layers))
            if part == "upper":
                self.model.embeddings = embeddings

    def _can_split(self) -> bool:
        """Whether the upper layers run on the lower layers' output give the whole
        model's output (models whose embeddings are not ``model.embeddings``, or whose
        forward does more than embeddings then layers, are tuned without the cache)."""
        if not isinstance(getattr(self.model, "embeddings", None), torch.nn.Module):
            return False
        enc = self._tokenize(["a short probe text", "another probe, a little longer than that"])
        try:
            with torch.inference_mode():
                self.model.eval()
                whole = self.model(**enc).last_hidden_state
                with self._part("lower"):
                    lower = self.model(**enc).last_hidden_state
                with self._part("upper"):
                    upper = self.model(
                        inputs_embeds=lower, attention_mask=enc["attention_mask"]
                    ).last_hidden_state
        except (TypeError, ValueError, RuntimeError, AttributeError) as exc:
            logger.info("tuning without the layer cache: split forward failed (%s)", exc)
            return False
        mask = enc["attention_mask"].bool()
        return bool(torch.allclose(whole[mask], upper[mask], atol=1e-4, rtol=1e-4))

    def _tokenize(self, texts: list[str]) -> Any:
        return self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)

    def _fill_cache(
        self,
        rows: np.ndarray,
        max_cache_mb: float,
        batch_size: int,
        show_progress: bool,
        deadline: float,
    ) -> dict[int, torch.Tensor] | None:
        """The lower layers' output for the text of every row (unpadded, on the CPU), or
        ``None`` when it would take more than ``max_cache_mb``.

        Raises:
            _OutOfTime: the pass passed ``deadline`` (a ``time.perf_counter`` value), or
                at its pace so far would, with no time left to train.
        """
        lengths = [len(ids) for ids in self._token_ids(rows)]
        width = int(self.model.config.hidden_size)
        megabytes = sum(lengths) * width * 4 / 2**20
        if megabytes > max_cache_mb:
            logger.info(
                "tuning without the layer cache: it would take %.0f MB (max_cache_mb=%g)",
                megabytes,
                max_cache_mb,
            )
            return None
        from tqdm.auto import tqdm

        started = time.perf_counter()
        order = rows[np.argsort([-n for n in lengths], kind="stable")]
        cache: dict[int, torch.Tensor] = {}
        self.model.eval()
        starts = range(0, len(order), batch_size)
        for start in tqdm(
            starts, desc="fine-tuning: frozen layers", unit="batch", disable=not show_progress
        ):
            batch = order[start : start + batch_size]
            enc = self._tokenize([self.texts[r] for r in batch])
            with torch.inference_mode(), self._part("lower"):
                hidden = self.model(**enc).last_hidden_state
            tokens = enc["attention_mask"].bool()
            for n, row in enumerate(batch.tolist()):
                cache[row] = hidden[n][tokens[n]].to("cpu", torch.float32).clone()
            now, done = time.perf_counter(), len(cache) / len(order)
            if now > deadline or (done >= 0.1 and started + (now - started) / done > deadline):
                raise _OutOfTime(self.train_layers)
        logger.info(
            "kept the frozen layers' output for %d texts (%.0f MB) in %.0fs",
            len(cache),
            megabytes,
            time.perf_counter() - started,
        )
        return cache

    def _token_ids(self, rows: np.ndarray) -> list[list[int]]:
        texts = [self.texts[r] for r in rows.tolist()]
        return self.tokenizer(texts, truncation=True, max_length=self.max_length)["input_ids"]

    # ------------------------------------------------------------------ embedding
    def set_mode(self, train: bool) -> None:
        """Dropout on in the tuned layers while training, off everywhere else."""
        self.model.eval()
        if train:
            for layer in self.layers[self.split :]:
                layer.train()
            if self.split == 0:
                self.model.train()

    def embed(self, rows: np.ndarray) -> torch.Tensor:
        """``(len(rows), dim)`` unit vectors (float32, on the device)."""
        if self.cache is None:
            enc = self._tokenize([self.texts[r] for r in rows.tolist()])
            return mean_pool(self.model(**enc).last_hidden_state, enc["attention_mask"])
        states = [self.cache[r] for r in rows.tolist()]
        longest = max(len(s) for s in states)
        width = states[0].shape[1]
        hidden = torch.zeros(len(states), longest, width)
        mask = torch.zeros(len(states), longest, dtype=torch.long)
        for n, state in enumerate(states):
            hidden[n, : len(state)] = state
            mask[n, : len(state)] = 1
        hidden, mask = hidden.to(self.device), mask.to(self.device)
        with self._part("upper"):
            out = self.model(inputs_embeds=hidden, attention_mask=mask).last_hidden_state
        return mean_pool(out, mask)

    def trainable(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}


def _info_nce(
    anchors: torch.Tensor,
    partners: torch.Tensor,
    anchor_rows: torch.Tensor,
    partner_rows: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """Symmetric InfoNCE of matching rows, the other rows' partners as negatives; a
    negative that is the same item as the row's partner or anchor is masked out."""
    logits = anchors @ partners.T / temperature
    target = torch.arange(len(anchors), device=anchors.device)
    eye = torch.eye(len(anchors), dtype=torch.bool, device=anchors.device)
    # Row i of ``logits`` ranks partners: column j is a false negative if it is i's
    # partner again or i's anchor itself; likewise for the transposed direction.
    forward_mask = (partner_rows[None, :] == partner_rows[:, None]) | (
        partner_rows[None, :] == anchor_rows[:, None]
    )
    backward_mask = (anchor_rows[None, :] == anchor_rows[:, None]) | (
        anchor_rows[None, :] == partner_rows[:, None]
    )
    forward = logits.masked_fill(forward_mask & ~eye, float("-inf"))
    backward = logits.T.masked_fill(backward_mask & ~eye, float("-inf"))
    loss = torch.nn.functional.cross_entropy
    return (loss(forward, target) + loss(backward, target)) / 2


def _check_train_layers(value: Any) -> int | str:
    if isinstance(value, str) and value in ("auto", "all"):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    raise ConfigError(
        f"train_layers must be 'auto', 'all' or a positive int (layers from the top), "
        f"got {value!r:.80}"
    )


class ContrastiveFinetuner:
    """Fine-tunes a transformer item encoder so co-consumed items get close vectors.

    Two items a user consumed close together in time (within ``window`` positions of their
    positive history) form a pair; the encoder is trained so that each item's vector is
    nearer its partner's than the other partners' in the batch (InfoNCE with in-batch
    negatives, both directions). Only the item *text* goes in, so what is learned carries
    over to items nobody has consumed yet: a new item lands near the items its audience
    consumes.

    * **Temperature.** Scores are cosines of unit vectors divided by ``temperature``
      (default 0.05, the scale of sentence-transformers' in-batch-negatives loss). Cosines
      lie in [-1, 1], so at 0.05 the logits span +-20: a partner 0.2 more similar than a
      negative already wins by 4 nats, enough to single it out among a batch of negatives
      (log 32 = 3.5), while the loss does not saturate on the many co-consumption pairs that
      are noise. Much higher (0.1-1) flattens the softmax and the gradient fades; much lower
      makes every noisy pair a hard error.
    * **Duplicates.** A popular item often appears twice in a batch; a negative that is the
      row's own partner (or its anchor) is masked out rather than pushed away.
    * **Layers.** ``train_layers="auto"`` tunes the whole model on a GPU and the top layer on
      a CPU: there the layers below are frozen, their outputs are computed once per text and
      kept (when they fit in ``max_cache_mb``), so a step costs the top layer only.
    * **Early stopping.** Pairs of a seeded tenth of the users are held out; every
      ``eval_every`` steps the held-out recall@10 (the partner among every held-out item) is
      measured, the best weights are kept, and training stops after ``patience`` checks
      without a gain, at ``max_steps`` or at ``max_seconds``. When the held-out recall never
      rises above the frozen model's, nothing changes.

    The same seed, data and options give the same weights when a step cap (not
    ``max_seconds``) ends the run.

    Args:
        max_steps: Most optimizer steps.
        max_seconds: Wall-time limit of the whole call (the frozen layers' pass
            included); the loop stops in time for a last held-out check. The default
            keeps MovieLens-100K with descriptions under ten minutes, re-encoding the
            catalog included, on a 2-core CPU.
        batch_size: Pairs per step (each pair's partner is a negative for the others).
        lr: AdamW learning rate (after ``warmup_steps`` of linear warm-up); ``None``:
            :data:`TOP_LAYERS_LR` when only top layers train, :data:`ALL_LAYERS_LR` when
            the whole model does.
        weight_decay: AdamW weight decay.
        warmup_steps: Steps of linear learning-rate warm-up.
        temperature: Softmax temperature of the loss (see above).
        window: Items after each history item that count as co-consumed with it.
        train_layers: ``"auto"`` (all layers on a GPU, the top one on a CPU), ``"all"``,
            or the number of top transformer layers to tune.
        max_length: Tokens per text in training (the encoder keeps its own limit).
        max_cache_mb: Largest memory for the frozen layers' kept outputs; above it they
            are recomputed at every step.
        valid_fraction: Share of the users whose pairs are held out.
        max_valid_pairs: Most held-out pairs (a seeded sample).
        eval_every: Steps between held-out checks.
        patience: Checks without a gain after which training stops.
        seed: Seeds the user split, the batches and dropout.
        show_progress: Show tqdm bars.

    Raises:
        ConfigError: an option out of range or of the wrong type.
    """

    def __init__(
        self,
        *,
        max_steps: int = 2000,
        max_seconds: float = 390.0,
        batch_size: int = 32,
        lr: float | None = None,
        weight_decay: float = 0.01,
        warmup_steps: int = 10,
        temperature: float = DEFAULT_TEMPERATURE,
        window: int = 3,
        train_layers: int | str = "auto",
        max_length: int = 128,
        max_cache_mb: float = 4096.0,
        valid_fraction: float = 0.1,
        max_valid_pairs: int = 512,
        eval_every: int = 25,
        patience: int = 4,
        seed: int = 0,
        show_progress: bool = True,
    ) -> None:
        self.max_steps = check_int(max_steps, "max_steps", low=1)
        self.max_seconds = check_float(max_seconds, "max_seconds", low=0.0, low_open=True)
        self.batch_size = check_int(batch_size, "batch_size", low=2)
        self.lr = None if lr is None else check_float(lr, "lr", low=0.0, high=1.0, low_open=True)
        self.weight_decay = check_float(weight_decay, "weight_decay", low=0.0, high=1.0)
        self.warmup_steps = check_int(warmup_steps, "warmup_steps", low=0)
        self.temperature = check_float(
            temperature, "temperature", low=0.0, high=10.0, low_open=True
        )
        self.window = check_int(window, "window", low=1)
        self.train_layers = _check_train_layers(train_layers)
        self.max_length = check_int(max_length, "max_length", low=8)
        self.max_cache_mb = check_float(max_cache_mb, "max_cache_mb", low=0.0)
        self.valid_fraction = check_float(valid_fraction, "valid_fraction", low=0.0, high=0.5)
        self.max_valid_pairs = check_int(max_valid_pairs, "max_valid_pairs", low=1)
        self.eval_every = check_int(eval_every, "eval_every", low=1)
        self.patience = check_int(patience, "patience", low=1)
        self.seed = check_int(seed, "seed", low=0)
        self.show_progress = check_bool(show_progress, "show_progress")

    def pairs(self, user_rows: Sequence[Sequence[int]]) -> np.ndarray:
        """The co-consumed pairs of ``user_rows`` (:func:`co_consumed_pairs`)."""
        return co_consumed_pairs(user_rows, window=self.window)

    def _split(
        self, user_rows: Sequence[Sequence[int]], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Training pairs and held-out pairs (those of a seeded share of the users)."""
        users = [rows for rows in user_rows if len(rows) >= 2]
        n_valid = int(round(self.valid_fraction * len(users)))
        if len(users) < MIN_VALID_USERS or n_valid == 0:
            return self.pairs(users), np.zeros((0, 2), dtype=np.int64)
        held = set(rng.choice(len(users), n_valid, replace=False).tolist())
        train = self.pairs([rows for n, rows in enumerate(users) if n not in held])
        valid = self.pairs([rows for n, rows in enumerate(users) if n in held])
        if len(train) < MIN_PAIRS:  # too few to spare any: train on all, no early stopping
            return np.concatenate([train, valid]), np.zeros((0, 2), dtype=np.int64)
        if len(valid) > self.max_valid_pairs:
            valid = valid[np.sort(rng.choice(len(valid), self.max_valid_pairs, replace=False))]
        return train, valid

    def train(
        self, encoder: ItemEncoder, texts: Sequence[str], user_rows: Sequence[Sequence[int]]
    ) -> FinetuneReport:
        """Tune a copy of ``encoder``'s model on the co-consumed pairs of ``user_rows``.

        The encoder itself is not changed: apply the result with
        :meth:`~llmrec.ItemEncoder.apply_tuned_weights`, then re-encode the items.

        Args:
            encoder: An :class:`~llmrec.ItemEncoder` over a transformer backend; the
                tuning runs on its device.
            texts: Item texts (what the encoder sees, e.g.
                :func:`~llmrec.catalog.render_item_text`); rows index into them.
            user_rows: Per user, the rows of their positive items in time order.

        Raises:
            ConfigError: the encoder cannot be fine-tuned.
            InvalidInputError: a row outside ``texts``, or fewer than :data:`MIN_PAIRS`
                pairs.
        """
        from llmrec.encoding.encoder import ItemEncoder

        started = time.perf_counter()
        if not isinstance(encoder, ItemEncoder):
            raise ConfigError(f"encoder must be an ItemEncoder, got {type(encoder).__name__}")
        backend = finetunable(encoder.backend)
        texts = check_texts(texts)
        user_rows = [np.asarray(list(rows), dtype=np.int64) for rows in user_rows]
        for n, rows in enumerate(user_rows):
            if len(rows) and (rows.min() < 0 or rows.max() >= len(texts)):
                raise InvalidInputError(
                    f"user_rows[{n}] holds a row outside the {len(texts)} texts"
                )
        rng = np.random.default_rng(self.seed)
        train, valid = self._split(user_rows, rng)
        if len(train) + len(valid) < MIN_PAIRS:
            raise InvalidInputError(
                f"only {len(train) + len(valid)} co-consumed pairs (window {self.window}); "
                f"fine-tuning needs at least {MIN_PAIRS}"
            )
        with _seeded(self.seed, backend.device):
            return self._train(backend, texts, train, valid, rng, started)

    def _train(
        self,
        backend: FinetunableBackend,
        texts: list[str],
        train: np.ndarray,
        valid: np.ndarray,
        rng: np.random.Generator,
        started: float,
    ) -> FinetuneReport:
        try:
            embedder = _Embedder(
                backend,
                texts,
                np.unique(np.concatenate([train.ravel(), valid.ravel()])),
                train_layers=self.train_layers,
                max_length=self.max_length,
                max_cache_mb=self.max_cache_mb,
                batch_size=max(self.batch_size * 2, 64),
                show_progress=self.show_progress,
                deadline=started + self.max_seconds,
            )
        except _OutOfTime as out:
            logger.warning(
                "fine-tuning stopped before its first step: computing the frozen layers' "
                "output would not end within max_seconds=%g; nothing changes (raise "
                "max_seconds, lower max_length, or run on a GPU)",
                self.max_seconds,
            )
            return FinetuneReport(
                train_pairs=len(train),
                valid_pairs=len(valid),
                steps=0,
                best_step=0,
                valid_recall_before=None,
                valid_recall=None,
                stopped="max_seconds",
                seconds=time.perf_counter() - started,
                train_layers=out.train_layers,
                lr=math.nan if self.lr is None else self.lr,
                cached=False,
            )
        params = embedder.trainable()
        lr = self.lr
        if lr is None:
            lr = ALL_LAYERS_LR if embedder.split == 0 else TOP_LAYERS_LR
        optimizer = torch.optim.AdamW(list(params.values()), lr=lr, weight_decay=self.weight_decay)
        warmup = max(self.warmup_steps, 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: min(1.0, (step + 1) / warmup)
        )
        keeper = _Keeper(_HeldOut(embedder, valid), self.patience)
        batches = _Batches(len(train), self.batch_size, rng)
        from tqdm.auto import tqdm

        bar = tqdm(total=self.max_steps, desc="fine-tuning encoder", disable=not self.show_progress)
        step, stopped, loss = 0, "max_steps", math.nan
        while step < self.max_steps:
            if time.perf_counter() - started + keeper.checker.seconds >= self.max_seconds:
                stopped = "max_seconds"
                break
            loss = self._step(embedder, train[batches.next()], params, optimizer)
            schedule.step()
            if not step:  # keep what the loss reaches (an unused pooler head stays out)
                params = {n: p for n, p in params.items() if p.grad is not None}
            step += 1
            bar.update(1)
            if step % self.eval_every == 0:
                stop = keeper.check(step, params)
                bar.set_postfix(loss=f"{loss:.3f}", recall=_recall_text(keeper.last))
                if stop:
                    stopped = "patience"
                    break
        bar.close()
        keeper.finish(step, params, checked=step % self.eval_every == 0)
        report = FinetuneReport(
            train_pairs=len(train),
            valid_pairs=len(valid),
            steps=step,
            best_step=keeper.best_step,
            valid_recall_before=keeper.before,
            valid_recall=keeper.best,
            stopped=stopped,
            seconds=time.perf_counter() - started,
            train_layers=embedder.train_layers,
            lr=lr,
            cached=embedder.cache is not None,
            weights=keeper.state or {},
        )
        _log(report, loss)
        return report

    def _step(
        self,
        embedder: _Embedder,
        batch: np.ndarray,
        params: Mapping[str, torch.nn.Parameter],
        optimizer: torch.optim.Optimizer,
    ) -> float:
        """One optimizer step on a batch of pairs; returns the loss."""
        embedder.set_mode(True)
        rows = torch.from_numpy(batch).to(embedder.device)
        vectors = embedder.embed(np.concatenate([batch[:, 0], batch[:, 1]]))
        n = len(batch)
        loss = _info_nce(vectors[:n], vectors[n:], rows[:, 0], rows[:, 1], self.temperature)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in params.values() if p.grad is not None], 1.0)
        optimizer.step()
        return float(loss.detach())


def _recall_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _log(report: FinetuneReport, loss: float) -> None:
    logger.info(
        "fine-tuned %d top layer(s) on %d pairs: %d steps (stopped: %s, last loss %.3f), "
        "held-out recall@%d %s -> %s at step %d, %.0fs",
        report.train_layers,
        report.train_pairs,
        report.steps,
        report.stopped,
        loss,
        RECALL_K,
        _recall_text(report.valid_recall_before),
        _recall_text(report.valid_recall),
        report.best_step,
        report.seconds,
    )


class _Keeper:
    """Keeps the weights of the best held-out recall and says when to stop; without
    held-out pairs, the last weights."""

    def __init__(self, checker: _HeldOut, patience: int) -> None:
        self.checker, self.patience = checker, patience
        self.before = self.best = self.last = checker.recall()
        self.best_step, self.state, self.stale = 0, None, 0

    def check(self, step: int, params: Mapping[str, torch.nn.Parameter]) -> bool:
        """Measure at ``step``; whether ``patience`` checks in a row brought no gain."""
        if not self.checker.active:
            return False
        self.last = self.checker.recall()
        if self.last > self.best:
            self.best, self.best_step, self.stale = self.last, step, 0
            self.state = _snapshot(params)
            return False
        self.stale += 1
        return self.stale >= self.patience

    def finish(self, step: int, params: Mapping[str, torch.nn.Parameter], checked: bool) -> None:
        """The last check (unless ``step`` was just checked), or the last weights."""
        if not self.checker.active:
            if step:
                self.best_step, self.state = step, _snapshot(params)
        elif not checked and step > self.best_step:
            self.check(step, params)


def _snapshot(params: Mapping[str, torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    return {name: p.detach().to("cpu", copy=True).contiguous() for name, p in params.items()}


class _Batches:
    """Batches of pair indices: a seeded permutation, walked through epoch after epoch."""

    def __init__(self, n: int, size: int, rng: np.random.Generator) -> None:
        self.n, self.size, self.rng = n, min(size, n), rng
        self.order, self.pos = rng.permutation(n), 0

    def next(self) -> np.ndarray:
        if self.pos + self.size > self.n:
            self.order, self.pos = self.rng.permutation(self.n), 0
        out = self.order[self.pos : self.pos + self.size]
        self.pos += self.size
        return out


class _HeldOut:
    """Held-out recall@10: each held-out pair's partner among every held-out item (both
    directions, the query item itself left out). Keeps how long a check takes."""

    def __init__(self, embedder: _Embedder, pairs: np.ndarray) -> None:
        self.embedder, self.pairs = embedder, pairs
        self.pool = np.unique(pairs.ravel()) if len(pairs) else np.zeros(0, dtype=np.int64)
        self.seconds = 0.0

    @property
    def active(self) -> bool:
        return len(self.pairs) > 0

    def recall(self) -> float | None:
        if not self.active:
            return None
        started = time.perf_counter()
        self.embedder.set_mode(False)
        with torch.inference_mode():
            chunks = [
                self.embedder.embed(self.pool[i : i + 128]) for i in range(0, len(self.pool), 128)
            ]
        vectors = torch.cat(chunks).float().cpu()
        sims = vectors @ vectors.T
        sims.fill_diagonal_(float("-inf"))
        where = {row: n for n, row in enumerate(self.pool.tolist())}
        queries = torch.tensor([where[r] for r in self.pairs[:, 0].tolist()])
        partners = torch.tensor([where[r] for r in self.pairs[:, 1].tolist()])
        queries, partners = torch.cat([queries, partners]), torch.cat([partners, queries])
        target = sims[queries, partners]
        ranks = (sims[queries] > target[:, None]).sum(1) + 1
        self.seconds = time.perf_counter() - started
        return float((ranks <= RECALL_K).float().mean())


@contextlib.contextmanager
def _seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Seed torch (dropout) for the block without touching the caller's random state."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- weights files
def write_tuned_weights(path: Path, backend: FinetunableBackend) -> None:
    """Write ``backend``'s tuned tensors to ``path`` as safetensors."""
    from safetensors.torch import save

    data = save(backend.tuned_tensors(), metadata={"format": "pt"})
    with open(path, "wb") as f:
        f.write(data)


def read_tuned_weights(path: Path, backend: FinetunableBackend) -> dict[str, torch.Tensor]:
    """Read tuned tensors written by :func:`write_tuned_weights` for ``backend``'s model.

    The file is a regular file no larger than the model's float32 tensors; its header is
    checked in full (every name a tensor of the model, every shape the model's, a float
    dtype, offsets that tile the data exactly) before any tensor is built, then every
    value must be finite.

    Raises:
        PersistenceError: the file is missing, a link, too large, not safetensors, or
            holds a tensor the model lacks or of another shape.
    """
    state = backend.model.state_dict()
    shapes = {name: tuple(t.shape) for name, t in state.items() if t.is_floating_point()}
    limit = 8 + MAX_HEADER_BYTES + 4 * sum(math.prod(s) for s in shapes.values())
    with open_regular(path, max_bytes=limit) as f:
        data = f.read(limit + 1)
    where = repr(str(path))
    _check_header(data, where, shapes)
    from safetensors.torch import load

    try:
        tensors = load(data)
    except Exception as exc:  # noqa: BLE001 - the library's own error type varies
        raise PersistenceError(f"{where} is not a valid safetensors file: {exc}") from None
    try:
        backend.check_tuned_tensors(tensors)
    except InvalidInputError as exc:
        raise PersistenceError(f"{where}: {exc}") from None
    return tensors


def _check_header(data: bytes, where: str, shapes: Mapping[str, tuple[int, ...]]) -> None:
    """Refuse a safetensors file whose header does not describe tensors of the model
    (``shapes``) laid out end to end over the rest of the file."""
    if len(data) < 8:
        raise PersistenceError(f"{where} is not a safetensors file (too short)")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER_BYTES or 8 + size > len(data):
        raise PersistenceError(f"{where} is not a safetensors file (bad header length)")
    header = parse_json(data[8 : 8 + size], where)
    if not isinstance(header, dict):
        raise PersistenceError(f"{where} is not a safetensors file (header is not a mapping)")
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise PersistenceError(f"{where}: bad __metadata__ in the header")
    if not header:
        raise PersistenceError(f"{where} holds no tensors")
    spans = []
    for name, entry in header.items():
        if name not in shapes:
            raise PersistenceError(
                f"{where}: tensor {name!r:.120} is not a floating-point tensor of the encoder model"
            )
        if not isinstance(entry, dict) or entry.get("dtype") not in _DTYPES:
            raise PersistenceError(f"{where}: tensor {name!r} must be one of {sorted(_DTYPES)}")
        shape, offsets = entry.get("shape"), entry.get("data_offsets")
        if not isinstance(shape, list) or tuple(shape) != shapes[name]:
            raise PersistenceError(
                f"{where}: tensor {name!r} has shape {shape!r:.80}, the model's has "
                f"{list(shapes[name])}"
            )
        ok = (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offsets)
        )
        itemsize = _DTYPES[entry["dtype"]][1]
        if not ok or offsets[1] - offsets[0] != math.prod(shapes[name]) * itemsize:
            raise PersistenceError(f"{where}: tensor {name!r} has bad data offsets")
        spans.append((offsets[0], offsets[1]))
    spans.sort()
    end = 0
    for start, stop in spans:
        if start != end:
            raise PersistenceError(f"{where}: tensor data overlaps or leaves gaps")
        end = stop
    if end != len(data) - 8 - size:
        raise PersistenceError(f"{where}: tensor data does not fill the file")
