"""Personalized, grounded one-sentence reasons for recommendations.

The prompt holds only evidence: the target item's facts, the titles of the user's
supporting history items, and the ranking signals that fired, put into words
(:mod:`.evidence`, :mod:`.prompts`). Item text is data, never instructions: it is
length-capped, stripped of control characters and chat-template tokens, and fenced in
delimiters (:func:`~llmrec.generation.sanitize_text`). Every model answer is checked by
:func:`~llmrec.generation.verify_text`: it must mention the target (and not cite it as the
user's own evidence), name no other catalog item, and state no year, number, genre, kind of
work ("TV series", "sequel") or name (capitalized words: people, studios, places) that the
evidence lacks, and stay short. An answer that fails is asked for once more with a stricter
prompt; one that fails again, or that the latency budget leaves no time for, is replaced by
:meth:`ContentGenerator.template_text`, a grammatical sentence built from the same
evidence. :class:`~llmrec.GeneratedText` says which happened and why.

Speed: the system prompt and worked examples are the same for every request, so a
backend can keep their keys and values (the ``transformers`` backend does); the two
best-ranked requests of a call are written first, in a small batch, so a text streams back
quickly, the others in batches shared with concurrent callers (:mod:`.scheduler`);
finished texts are cached by (item, evidence).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from llmrec import registry
from llmrec._validate import (
    check_bool,
    check_float,
    check_instances,
    check_int,
    check_options,
)
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError
from llmrec.generation.evidence import Facts, ReasonRequest, facts
from llmrec.generation.llms.base import ChatBackend
from llmrec.generation.prompts import answer_text, conversation, template_text
from llmrec.generation.scheduler import FIRST_BATCH, BatchScheduler, Job, Owner
from llmrec.generation.verify import Verification, verify_text
from llmrec.types import GeneratedText

__all__ = ["ContentGenerator"]


class ContentGenerator:
    """Writes one personalized, verified sentence per recommendation.

    Args:
        backend: A :class:`~llmrec.generation.ChatBackend`, or a registered ``llms`` backend
            name: ``"default"`` (the ``transformers`` backend with the embedded
            SmolLM2-135M-Instruct), ``"transformers"``, ``"template"`` (no model; every text
            is the grounded template).
        catalog: The catalog (other titles are checked against it).
        model: The backend's ``model`` argument (for ``"transformers"``: a hub id or path).
        max_new_tokens: Token limit of each answer.
        max_words: Word limit a text must respect to pass verification.
        budget_s: Default latency budget per call in seconds (``None``: no limit); items
            left when it runs out get template text (``fallback_reason="latency budget"``).
        cache_size: Generated texts kept in the LRU cache (0 disables it).
        retries: How many times an answer that fails verification is asked for again,
            with a stricter prompt, before the template is used (0 or 1).
        device: Where the model runs.
        redact_contacts: Replace e-mail addresses, phone numbers and web addresses in item
            text, titles, tags and the query with ``[email]``, ``[phone]`` and ``[url]``
            before any prompt or template sees them. (A text that holds one never passes
            verification either way.)
        backend_options: Further keyword arguments for a backend built by name.

    Raises:
        ConfigError: A bad argument, or a backend that cannot be built.
    """

    def __init__(
        self,
        backend: ChatBackend | str = "default",
        *,
        catalog: Catalog,
        model: str | None = None,
        max_new_tokens: int = 32,
        max_words: int = 40,
        budget_s: float | None = None,
        cache_size: int = 10_000,
        retries: int = 1,
        device: Any = "auto",
        redact_contacts: bool = True,
        backend_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not isinstance(catalog, Catalog):
            raise ConfigError(f"catalog must be an llmrec Catalog, got {type(catalog).__name__}")
        self.catalog = catalog
        self.max_new_tokens = check_int(max_new_tokens, "max_new_tokens", low=4, high=1024)
        self.max_words = check_int(max_words, "max_words", low=5)
        self.budget_s = _check_budget(budget_s)
        self.cache_size = check_int(cache_size, "cache_size", low=0)
        self.retries = check_int(retries, "retries", low=0, high=1)
        self.redact_contacts = check_bool(redact_contacts, "redact_contacts")
        self._model = model
        self._backend_options = check_options(backend_options, "backend_options")
        if isinstance(backend, str):
            self.backend_name = "transformers" if backend == "default" else backend
            self.backend = self._build_backend(self.backend_name, model, device)
        else:
            for attr in ("name", "generate", "stream", "config"):
                if not hasattr(backend, attr):
                    raise ConfigError(f"backend must implement ChatBackend (missing {attr!r})")
            if model is not None or self._backend_options:
                raise ConfigError("model and backend_options only apply to a backend given by name")
            self.backend = backend
            self.backend_name = str(backend.name)
        self._is_template = self.backend_name == "template"
        self._cache: OrderedDict[tuple[str, str], GeneratedText] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._scheduler = BatchScheduler(
            self.backend,
            max_new_tokens=self.max_new_tokens,
            judge=self._judge,
            fallback=template_text,
        )

    def _build_backend(self, name: str, model: str | None, device: Any) -> ChatBackend:
        cls = registry.get_backend("llms", name)
        kwargs = dict(self._backend_options)
        if model is not None:
            kwargs["model"] = model
        if registry.accepts_keyword(cls, "device"):
            kwargs.setdefault("device", device)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"bad options for the {name!r} language model backend: {exc}"
            ) from exc

    def config(self) -> dict[str, Any]:
        """JSON config; ``ContentGenerator(config["backend"], catalog=...,
        **config["options"])`` rebuilds this generator (model weights are not copied)."""
        backend_config = {} if self._is_template else dict(self.backend.config())
        backend_model = backend_config.pop("model", None)
        options: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "max_words": self.max_words,
            "budget_s": self.budget_s,
            "cache_size": self.cache_size,
            "retries": self.retries,
        }
        if not self.redact_contacts:  # the default is left out: older configs read the same
            options["redact_contacts"] = False
        if backend_model is not None:
            options["model"] = backend_model
        if backend_config:
            options["backend_options"] = backend_config
        return {"backend": self.backend_name, "options": options}

    # ------------------------------------------------------------------ text pieces
    def _facts(self, request: ReasonRequest) -> Facts:
        return facts(request, redact_contacts=self.redact_contacts)

    def template_text(self, request: ReasonRequest) -> str:
        """A grammatical sentence built from the request's evidence only."""
        return template_text(self._facts(request))

    def prompt(self, request: ReasonRequest) -> list[dict[str, str]]:
        """The chat messages sent to the model for ``request``."""
        return conversation(self._facts(request))

    def verify(self, text: str, request: ReasonRequest) -> Verification:
        """:func:`~llmrec.generation.verify_text` of ``text`` against the request's
        evidence, with this generator's catalog and word limit."""
        return verify_text(
            text,
            target=request.item,
            evidence=self._facts(request).evidence_items,
            catalog=self.catalog,
            max_words=self.max_words,
            query=request.query,
        )

    # ------------------------------------------------------------------ cache
    def clear_cache(self) -> None:
        """Forget every cached text."""
        with self._cache_lock:
            self._cache.clear()

    def _key(self, request: ReasonRequest, messages: list[dict[str, str]]) -> tuple[str, str]:
        # The prompt is a function of the evidence alone (no user id), so it is the key.
        payload = json.dumps(
            [messages, self.backend_name, self.max_new_tokens, self.max_words],
            ensure_ascii=False,
            sort_keys=True,
        )
        return request.item.item_id, hashlib.sha256(payload.encode()).hexdigest()

    def _cache_get(self, key: tuple[str, str]) -> GeneratedText | None:
        if not self.cache_size:
            return None
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
            return hit

    def _cache_put(self, key: tuple[str, str], value: GeneratedText) -> None:
        if not self.cache_size:
            return
        with self._cache_lock:
            self._cache[key] = value
            self._cache.move_to_end(key)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

    # ------------------------------------------------------------------ generation
    def generate(
        self, requests: Sequence[ReasonRequest], *, budget_s: float | None = None
    ) -> list[GeneratedText]:
        """One :class:`~llmrec.GeneratedText` per request, in order."""
        requests = _check_requests(requests)
        out: list[GeneratedText | None] = [None] * len(requests)
        for index, text in self.stream(requests, budget_s=budget_s):
            out[index] = text
        return out  # type: ignore[return-value]

    def stream(
        self, requests: Sequence[ReasonRequest], *, budget_s: float | None = None
    ) -> Iterator[tuple[int, GeneratedText]]:
        """Yield ``(index, text)`` for every request exactly once, each as soon as it is
        done: cache hits first, then the two best-ranked requests not cached, written in
        a small batch of their own so one arrives quickly, then the others as their
        answers end.

        Calls from several threads share model batches. Stopping the iteration early
        hands the unfinished requests of other callers back to the queue.
        """
        requests = _check_requests(requests)
        budget = self.budget_s if budget_s is None else _check_budget(budget_s)
        return self._stream(requests, budget)

    def _stream(
        self, requests: list[ReasonRequest], budget: float | None
    ) -> Iterator[tuple[int, GeneratedText]]:
        started = time.perf_counter()
        owner = Owner(None if budget is None else started + budget)
        jobs: list[Job] = []
        for index, request in enumerate(requests):
            evidence = self._facts(request)
            messages = conversation(evidence)
            key = self._key(request, messages)
            hit = self._cache_get(key)
            if hit is not None:
                yield index, dataclasses.replace(hit, cached=True)
            elif self._is_template:
                text = GeneratedText(template_text(evidence), "template", "template backend")
                self._cache_put(key, text)
                yield index, text
            else:
                jobs.append(
                    Job(index, evidence, messages, key, owner, first=len(jobs) < FIRST_BATCH)
                )
        if jobs:
            yield from self._scheduler.results(owner, jobs)

    def _judge(self, job: Job, answer: Any) -> GeneratedText | Job:
        """Verify one answer: its text, a stricter second attempt, or the template."""
        text = answer_text(job.conversation, answer)
        check = verify_text(
            text,
            target=job.facts.item,
            evidence=job.facts.evidence_items,
            catalog=self.catalog,
            max_words=self.max_words,
            # As given: the words an instruction in it had are what a text must not repeat.
            query=job.facts.raw_query,
        )
        problems = "; ".join(check.problems)
        if check.ok:
            result = GeneratedText(text, "llm", retry_reason=job.retry_reason)
        elif job.attempt <= self.retries:
            return Job(
                job.index,
                job.facts,
                conversation(job.facts, attempt=job.attempt + 1),
                job.key,
                job.owner,
                first=job.first,
                attempt=job.attempt + 1,
                retry_reason=problems,
            )
        else:
            result = GeneratedText(
                template_text(job.facts), "template", problems, retry_reason=job.retry_reason
            )
        self._cache_put(job.key, result)
        return result

    async def astream(
        self, requests: Sequence[ReasonRequest], *, budget_s: float | None = None
    ) -> AsyncIterator[tuple[int, GeneratedText]]:
        """Async :meth:`stream`: the model runs in a worker thread, the loop stays free."""
        iterator = self.stream(requests, budget_s=budget_s)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()
        done = object()

        def work() -> None:
            try:
                for pair in iterator:
                    loop.call_soon_threadsafe(queue.put_nowait, pair)
                    if stop.is_set():
                        break
                loop.call_soon_threadsafe(queue.put_nowait, done)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                iterator.close()  # hands unfinished requests of other callers back

        worker = loop.run_in_executor(None, work)
        try:
            while True:
                item = await queue.get()
                if item is done:
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            if not worker.done():
                worker.add_done_callback(lambda f: f.exception())

    async def agenerate(
        self, requests: Sequence[ReasonRequest], *, budget_s: float | None = None
    ) -> list[GeneratedText]:
        """Async :meth:`generate` (runs in a worker thread)."""
        return await asyncio.to_thread(self.generate, requests, budget_s=budget_s)

    def __repr__(self) -> str:
        return f"ContentGenerator(backend={self.backend_name!r}, max_words={self.max_words})"


def _check_budget(budget_s: Any) -> float | None:
    return None if budget_s is None else check_float(budget_s, "budget_s", low=0)


def _check_requests(requests: Sequence[ReasonRequest]) -> list[ReasonRequest]:
    return check_instances(requests, "requests", ReasonRequest, "a ReasonRequest")
