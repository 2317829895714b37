"""The ``transformers`` chat backend: any Hugging Face causal language model, by default
the embedded SmolLM2-135M-Instruct, in batched greedy decoding. ``llamacpp``
(:mod:`llmrec.generation.llms.llamacpp`) runs a GGUF model in llama-cpp-python; ``openai``
(:mod:`llmrec.generation.llms.openai`) talks to an OpenAI-compatible server.

A GGUF model (the embedded one is) is converted once into a safetensors copy in the llmrec
cache directory and loaded from there (:mod:`llmrec.generation.llms._hf_source`).
"""

from __future__ import annotations

import abc
import inspect
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from llmrec._validate import check_bool, check_float, check_int
from llmrec.device import DeviceLike, quiet_model_loading, resolve_device, resolve_dtype
from llmrec.errors import ConfigError, GenerationError
from llmrec.generation.llms._hf_source import check_hub_model, import_transformers, resolve_source
from llmrec.generation.llms._llama import LlamaRunner
from llmrec.generation.llms._llama import supports as llama_supports
from llmrec.generation.llms.base import StreamingChat

__all__ = ["TransformersChat"]

logger = logging.getLogger(__name__)

#: Distinct prompt heads (system prompt + worked examples) whose keys and values are kept.
_PREFIX_CACHE_SIZE = 4


class TransformersChat(StreamingChat):
    """Batched greedy chat generation with a Hugging Face causal language model.

    Prompts are sorted by token length and generated in padded batches of at most
    ``max_batch_size`` (greedy, KV cache); ``generate`` returns answers in input order,
    stripped, and ``stream`` yields each one as soon as it ends. The messages before the
    last user message (system prompt, worked examples) are the conversation's head: its
    keys and values are computed once and shared by every row and every later call with
    the same head (a few heads are kept), so only the rest of each prompt is run. A
    conversation ending with an ``assistant`` message is continued: the answer is the text
    that follows that message (prefill).

    Args:
        model: ``"default"`` (the embedded SmolLM2-135M-Instruct), a Hugging Face id, a
            local model directory, or a path to a ``.gguf`` file (converted once and
            cached, see the module docstring).
        device: See :func:`llmrec.resolve_device`.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"`` or ``"float16"``.
        cache_dir: Where converted GGUF copies live (default: :func:`llmrec.storage.io.default_cache_dir`).
        max_batch_size: Most conversations per forward batch.
        repetition_penalty: Greedy decoding's repetition penalty (1.0 = none).
        draft_tokens: Prompt-lookup guesses checked per row and step (0 = one token per
            step). Guesses change the number of steps, not the answers. Not used with a
            repetition penalty.
        show_progress: Show a progress bar over batches.

    Raises:
        ConfigError: ``model`` names a local path that does not exist, or a bad argument.
        BackendUnavailableError: transformers or the embedded model is not installed.
        GenerationError: the model cannot be loaded.
    """

    name = "transformers"
    #: Continues a final assistant message (the generator prefills a reason's opening).
    continues_prefill = True
    #: Takes ``until`` in :meth:`stream` (checked after a token ending a sentence or line
    #: and after the token that follows it).
    stops_early = True

    def __init__(
        self,
        model: str = "default",
        *,
        device: DeviceLike = "auto",
        dtype: str | torch.dtype = "auto",
        cache_dir: str | os.PathLike | None = None,
        max_batch_size: int = 16,
        repetition_penalty: float = 1.0,
        draft_tokens: int = 2,
        show_progress: bool = False,
    ) -> None:
        transformers = import_transformers()
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be 'default', a model id or a path, got {model!r}")
        self.model_name = model
        self.max_batch_size = check_int(max_batch_size, "max_batch_size", low=1)
        self.draft_tokens = check_int(draft_tokens, "draft_tokens", low=0, high=16)
        self.repetition_penalty = check_float(
            repetition_penalty, "repetition_penalty", low=0.5, high=3.0
        )
        self.show_progress = check_bool(show_progress, "show_progress")
        self._dtype_arg = dtype if isinstance(dtype, str) else str(dtype).replace("torch.", "")
        self._cache_dir = None if cache_dir is None else str(cache_dir)
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(self.device, dtype)
        self._lock = threading.Lock()
        self._head_ids: dict[str, tuple[int, ...]] = {}
        self._head_lock = threading.Lock()
        self._head_states: dict[tuple[int, ...], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self._ending_tokens: dict[int, bool] = {}  # token id -> holds . ! ? or a newline
        started = time.perf_counter()
        self._load(transformers, resolve_source(model, cache_dir))
        logger.info(
            "loaded language model %s on %s (%s) in %.2fs",
            model,
            self.device,
            self.dtype,
            time.perf_counter() - started,
        )

    @classmethod
    def preflight(cls, model: str = "default", **options: Any) -> None:
        """Check ``model`` without loading it (see
        :meth:`~llmrec.generation.ContentGenerator.check_config`): a Hugging Face hub id
        must be loadable (in the local cache while hub downloads are off). Local paths
        and the other options are checked when the backend is built."""
        del options
        if isinstance(model, str) and model not in ("", "default"):
            if not os.path.exists(os.path.expanduser(model)):
                check_hub_model(model)

    def _load(self, transformers: Any, source: str) -> None:
        """Load the tokenizer and the model from ``source`` and learn what their forward
        pass needs: the padding and end-of-sequence ids, the name of the argument asking
        for the last position's logits only, whether heads can be reused, which forward
        runs."""
        try:
            with quiet_model_loading():
                self.tokenizer = transformers.AutoTokenizer.from_pretrained(source)
                self.model = transformers.AutoModelForCausalLM.from_pretrained(
                    source, dtype=self.dtype
                )
        except Exception as exc:
            raise GenerationError(
                f"cannot load language model {self.model_name!r} from {source!r}: {exc}"
            ) from exc
        self.model.to(self.device).eval()
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "left"
        self._pad_id = int(self.tokenizer.pad_token_id)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        self._eos_ids = eos
        # Only the last position's logits are needed (the argument's name changed in 4.50).
        forward = inspect.signature(self.model.forward).parameters
        self._last_logits = next(
            ({name: 1} for name in ("logits_to_keep", "num_logits_to_keep") if name in forward), {}
        )
        # Reusing a head's keys and values needs full attention in every layer.
        config = self.model.config
        layer_types = getattr(config, "layer_types", None)
        self._reuse_prefix = (
            all(t == "full_attention" for t in layer_types)
            if layer_types
            else not getattr(config, "sliding_window", None)
        )
        # On a CPU, Llama architectures (the embedded model) decode through a lean forward
        # over the same weights, much faster per step at request batch sizes. On a GPU the
        # model's own forward (fused attention kernels) is used: the lean one has been
        # measured on CPUs only.
        self._runner = (
            LlamaRunner(self.model)
            if self.device.type == "cpu" and llama_supports(self.model)
            else None
        )

    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "model": self.model_name,
            "dtype": self._dtype_arg,
            "max_batch_size": self.max_batch_size,
            "repetition_penalty": self.repetition_penalty,
            "draft_tokens": self.draft_tokens,
        }
        if self._cache_dir is not None:
            out["cache_dir"] = self._cache_dir
        return out

    # ------------------------------------------------------------------ generation
    def _render(self, messages: list[dict], *, prefill: bool, generation_prompt: bool) -> Any:
        return self.tokenizer.apply_chat_template(
            messages,
            add_generation_prompt=generation_prompt,
            continue_final_message=prefill,
            tokenize=False,
        )

    def _tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _prompt_ids(self, conversation: list[dict]) -> tuple[tuple[int, ...], list[int]]:
        """A conversation's token ids in two parts: the head (every message before the
        last user message: the system prompt and any worked examples), whose keys and
        values are computed once and reused across calls, and the rest. A final assistant
        message is a prefix the answer continues (prefill)."""
        prefill = conversation[-1]["role"] == "assistant"
        text = self._render(conversation, prefill=prefill, generation_prompt=not prefill)
        if not isinstance(text, str):  # some versions return a BatchEncoding or a list
            text = text["input_ids"] if hasattr(text, "keys") else text
            return (), [int(t) for t in (text[0] if text and isinstance(text[0], list) else text)]
        last_user = max((n for n, m in enumerate(conversation) if m["role"] == "user"), default=0)
        head_text = (
            self._render(conversation[:last_user], prefill=False, generation_prompt=False)
            if last_user
            else ""
        )
        if (
            not self._reuse_prefix
            or not isinstance(head_text, str)
            or not head_text
            or not text.startswith(head_text)
        ):
            return (), self._tokenize(text)
        with self._head_lock:
            head = self._head_ids.get(head_text)
            if head is None:
                head = tuple(self._tokenize(head_text))
                self._head_ids[head_text] = head
                while len(self._head_ids) > _PREFIX_CACHE_SIZE:
                    self._head_ids.pop(next(iter(self._head_ids)))
        return head, self._tokenize(text[len(head_text) :])

    def _head(self, head: tuple[int, ...]) -> Any:
        """The keys and values of ``head`` in the form the forward in use takes; a head
        runs through the model once and is kept (a few heads at most)."""
        states = self._head_states.get(head)
        if states is None:
            if self._runner is not None:
                states = self._runner.head(head)
            else:
                ids = torch.tensor([head], dtype=torch.long, device=self.device)
                out = self.model(input_ids=ids, use_cache=True, **self._last_logits)
                states = [(entry[0], entry[1]) for entry in out.past_key_values]
            self._head_states[head] = states
            while len(self._head_states) > _PREFIX_CACHE_SIZE:
                self._head_states.pop(next(iter(self._head_states)))
        return states

    def _decode(
        self,
        head: tuple[int, ...],
        tails: list[tuple[int, list[int]]],
        max_new_tokens: int,
        until: dict[int, Callable[[str], bool] | None] | None = None,
    ) -> Iterator[tuple[int, str]]:
        """Greedy decoding of one batch of ``(index, prompt tail)`` rows sharing ``head``:
        ``(index, answer)`` for each row as soon as it ends (end-of-sequence token,
        ``max_new_tokens``, or its ``until`` test true of its answer so far).

        Each step also checks up to ``draft_tokens`` guessed tokens per row (prompt lookup:
        the tokens that followed the latest earlier occurrence of the row's last few
        tokens in its prompt or answer, since answers copy titles and phrases from the
        prompt). A guess is kept only where it equals the greedy choice, so the answer is
        the one plain greedy decoding gives, in fewer steps. Rows that ended leave the
        batch once half of it has ended."""
        draft_tokens = self.draft_tokens if self.repetition_penalty == 1.0 else 0
        states = self._head(head) if head else None
        steps: _Steps = (
            _LeanSteps(
                self._runner, states, len(tails), max(len(t) for _, t in tails) + max_new_tokens
            )
            if self._runner is not None
            else _ModelSteps(self, states, len(head))
        )
        eos = set(self._eos_ids if isinstance(self._eos_ids, (list, tuple)) else [self._eos_ids])
        rows = [_Row(index, list(head), tail) for index, tail in tails]
        for row in rows:
            row.until = (until or {}).get(row.index)
        while any(not r.ended for r in rows):
            logits = steps.run(
                [[] if r.ended else r.feed for r in rows], last_only=[r.prompt for r in rows]
            )
            discard = [0] * len(rows)
            for slot, row in enumerate(rows):
                if row.ended or not row.feed:
                    continue
                discard[slot], answer = self._advance(
                    row, logits[slot], eos, max_new_tokens, draft_tokens
                )
                if answer is not None:
                    yield row.index, answer
            if any(discard):
                steps.discard(discard)
            ended = sum(r.ended for r in rows)
            if ended and 2 * ended >= len(rows):  # ended rows cost compute
                live = [slot for slot, r in enumerate(rows) if not r.ended]
                steps.keep(live)
                rows = [rows[slot] for slot in live]

    def _advance(
        self, row: _Row, scores: torch.Tensor, eos: set[int], max_new_tokens: int, draft_tokens: int
    ) -> tuple[int, str | None]:
        """Take one step's greedy choices for ``row`` (its last token's, and its guesses'
        where they hold) and give it its next feed.

        Returns:
            How many of the row's guessed tokens to discard, and its answer if it ended.
        """
        penalty = self.repetition_penalty
        if penalty != 1.0:  # one token per step here (no guesses)
            seen = torch.tensor(sorted(set(row.lookup.tokens)), device=scores.device)
            picked = scores[-1, seen]
            scores = scores.clone()
            scores[-1, seen] = torch.where(picked < 0, picked * penalty, picked / penalty)
        choices = scores.argmax(-1).tolist()
        kept = 0
        while kept < len(row.draft) and row.draft[kept] == choices[kept]:
            kept += 1
        discard = len(row.draft) - kept
        row.prompt = False
        for token in choices[: kept + 1]:
            if token in eos or len(row.tokens) + 1 >= max_new_tokens:
                if token not in eos:
                    row.tokens.append(token)
                row.ended = True
                return discard, self.tokenizer.decode(row.tokens, skip_special_tokens=True).strip()
            row.tokens.append(token)
            row.lookup.extend([token])
            if row.until is not None and self._complete(row, token):
                row.ended = True
                return discard, self.tokenizer.decode(row.tokens, skip_special_tokens=True).strip()
        room = max_new_tokens - len(row.tokens) - 1
        row.draft = row.lookup.guess(min(draft_tokens, room)) if draft_tokens else []
        row.feed = [choices[kept], *row.draft]
        return discard, None

    def _complete(self, row: _Row, token: int) -> bool:
        """Whether ``row``'s ``until`` holds of its answer: tested after a token holding
        ``.``, ``!``, ``?`` or a newline and after the token that follows one (where a
        next sentence shows), not after every token (decoding the answer costs time)."""
        ends = self._ending_tokens.get(token)
        if ends is None:
            text = self.tokenizer.decode([token], skip_special_tokens=True)
            ends = self._ending_tokens[token] = any(c in text for c in ".!?\n")
        check, row.after_end = ends or row.after_end, ends
        if not check:
            return False
        assert row.until is not None
        return bool(row.until(self.tokenizer.decode(row.tokens, skip_special_tokens=True)))

    def _stream(
        self,
        conversations: list[list[dict]],
        max_new_tokens: int,
        until: list[Callable[[str], bool] | None] | None = None,
    ) -> Iterator[tuple[int, str]]:
        """Conversations run in batches of at most ``max_batch_size`` that share a head,
        shortest prompts first; closing the iterator stops the batch in flight."""
        if not conversations:
            return
        prompts = [self._prompt_ids(c) for c in conversations]
        order = sorted(range(len(prompts)), key=lambda i: (prompts[i][0], len(prompts[i][1])))
        batches: list[list[int]] = []
        for i in order:
            if (
                batches
                and len(batches[-1]) < self.max_batch_size
                and prompts[batches[-1][0]][0] == prompts[i][0]
            ):
                batches[-1].append(i)
            else:
                batches.append([i])
        from tqdm.auto import tqdm

        for idx in tqdm(batches, desc="generating", unit="batch", disable=not self.show_progress):
            head = prompts[idx[0]][0]
            try:
                with self._lock, torch.inference_mode():
                    yield from self._decode(
                        head,
                        [(i, prompts[i][1]) for i in idx],
                        max_new_tokens,
                        None if until is None else {i: until[i] for i in idx},
                    )
            except GenerationError:
                raise
            except Exception as exc:
                raise GenerationError(f"language model {self.model_name!r} failed: {exc}") from exc

    def __repr__(self) -> str:
        return (
            f"TransformersChat(model={self.model_name!r}, device={self.device}, dtype={self.dtype})"
        )


class _Lookup:
    """Prompt-lookup guesses for one row: the tokens that followed the latest earlier
    occurrence of the row's last three (else two, else one) tokens."""

    _N = 3

    def __init__(self, tokens: list[int]) -> None:
        self.tokens: list[int] = []
        self.ends: dict[tuple[int, ...], int] = {}  # n-gram -> end of its latest occurrence
        self.extend(tokens)

    def extend(self, tokens: Sequence[int]) -> None:
        for token in tokens:
            # n-grams ending at the previous token become findable now that it has a
            # successor (the n-grams ending at the last token never are)
            end = len(self.tokens) - 1
            for n in range(1, min(self._N, end + 1) + 1):
                self.ends[tuple(self.tokens[end - n + 1 : end + 1])] = end
            self.tokens.append(token)

    def guess(self, k: int) -> list[int]:
        if k <= 0:
            return []
        for n in range(min(self._N, len(self.tokens)), 0, -1):
            end = self.ends.get(tuple(self.tokens[-n:]))
            if end is not None:
                return self.tokens[end + 1 : end + 1 + k]
        return []


class _Row:
    """One answer being written: its stream index, its tokens so far, what it is given in
    the next step (its prompt, then its last token and guesses) and its guesses."""

    __slots__ = (
        "after_end",
        "draft",
        "ended",
        "feed",
        "index",
        "lookup",
        "prompt",
        "tokens",
        "until",
    )

    def __init__(self, index: int, head: list[int], tail: list[int]) -> None:
        self.index, self.feed, self.prompt, self.ended = index, list(tail), True, False
        self.until: Callable[[str], bool] | None = None
        self.after_end = False  # the last token ended a sentence or line
        self.tokens: list[int] = []
        self.draft: list[int] = []
        self.lookup = _Lookup(head + list(tail))


class _Steps(abc.ABC):
    """One decoding batch's forward passes: ``run`` gives each row its tokens (a list per
    row, possibly empty) and returns each row's next-token logits (of its last token where
    ``last_only``, else of each); ``discard`` forgets each row's last few tokens; ``keep``
    keeps only some rows."""

    @abc.abstractmethod
    def run(self, feeds: list[list[int]], *, last_only: list[bool]) -> list[torch.Tensor]:
        """One forward pass; see the class docstring."""

    @abc.abstractmethod
    def discard(self, counts: list[int]) -> None:
        """Forget the last ``counts[row]`` tokens of each row."""

    @abc.abstractmethod
    def keep(self, rows: list[int]) -> None:
        """Keep only ``rows``, in that order."""


class _LeanSteps(_Steps):
    """Through :class:`~llmrec.generation.llms._llama.LlamaRunner` (Llama architectures): rows
    are packed, so they may take different numbers of tokens."""

    def __init__(self, runner: Any, head: Any, rows: int, capacity: int) -> None:
        self.runner = runner
        self.batch = runner.new_batch(rows, capacity, head)

    def run(self, feeds: list[list[int]], *, last_only: list[bool]) -> list[torch.Tensor]:
        return self.runner.forward(self.batch, feeds, last_only)

    def discard(self, counts: list[int]) -> None:
        self.batch.discard(counts)

    def keep(self, rows: list[int]) -> None:
        self.batch.select(rows)


class _ModelSteps(_Steps):
    """Through the Hugging Face model's own forward (any causal LM): each step's tokens
    are left-padded to the longest row, a 2-D attention mask marks real tokens, position
    ids count them."""

    def __init__(self, chat: TransformersChat, head: Any, n_head: int) -> None:
        self.chat, self.n_head, self.head = chat, n_head, head
        self.cache: Any = None
        self.mask: torch.Tensor | None = None
        self.next_position: torch.Tensor | None = None

    def run(self, feeds: list[list[int]], *, last_only: list[bool]) -> list[torch.Tensor]:
        device = self.chat.device
        width = max(len(f) for f in feeds)
        ids = torch.full((len(feeds), width), self.chat._pad_id, dtype=torch.long)
        real = torch.zeros((len(feeds), width), dtype=torch.bool)
        for row, feed in enumerate(feeds):  # left-padded: a row's last token comes last
            if feed:
                ids[row, width - len(feed) :] = torch.tensor(feed, dtype=torch.long)
                real[row, width - len(feed) :] = True
        ids, real = ids.to(device), real.to(device)
        if self.mask is None:  # the first call: the prompt tails after the shared head
            self.mask = torch.ones((len(feeds), self.n_head), dtype=torch.long, device=device)
            self.next_position = torch.full(
                (len(feeds),), self.n_head, dtype=torch.long, device=device
            )
            if self.head is not None:
                self.cache = import_transformers().DynamicCache()
                for layer, (keys, values) in enumerate(self.head):
                    self.cache.update(
                        keys.expand(len(feeds), -1, -1, -1),
                        values.expand(len(feeds), -1, -1, -1),
                        layer,
                    )
        self.mask = torch.cat([self.mask, real.long()], dim=1)
        positions = (self.next_position[:, None] + real.long().cumsum(1) - 1).clamp_(min=0)
        self.next_position = self.next_position + real.long().sum(1)
        last = all(last_only) or width == 1
        keep = self.chat._last_logits if last else {name: 0 for name in self.chat._last_logits}
        out = self.chat.model(
            input_ids=ids,
            attention_mask=self.mask,
            position_ids=positions,
            past_key_values=self.cache,
            use_cache=True,
            **keep,
        )
        self.cache = out.past_key_values
        logits = out.logits.float()
        return [
            logits[row, -1:] if last or last_only[row] else logits[row, width - len(feed) :]
            for row, feed in enumerate(feeds)
        ]

    def discard(self, counts: list[int]) -> None:
        counts_t = torch.tensor(counts, dtype=torch.long, device=self.mask.device)
        cols = torch.arange(self.mask.shape[1], device=self.mask.device)
        self.mask = self.mask.masked_fill(cols >= self.mask.shape[1] - counts_t[:, None], 0)
        self.next_position = self.next_position - counts_t

    def keep(self, rows: list[int]) -> None:
        index = torch.tensor(rows, dtype=torch.long, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.next_position = self.mask[index], self.next_position[index]
