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
finished texts are cached by (item, prompt) and used again only when they pass the new
request's own fact plan.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import inspect
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from llmrec import registry
from llmrec._validate import (
    check_bool,
    check_choice,
    check_float,
    check_instances,
    check_int,
    check_options,
)
from llmrec.catalog import Catalog
from llmrec.errors import ConfigError, InvalidInputError, LLMRecError
from llmrec.generation.claims import CONTENT_KINDS, ITEM_KINDS, sentences
from llmrec.generation.evidence import Facts, ReasonRequest, facts
from llmrec.generation.llms.base import ChatBackend
from llmrec.generation.prompts import LENGTHS, TONES, answer_text, conversation, whole_taste
from llmrec.generation.scheduler import FIRST_BATCH, BatchScheduler, Job, Owner
from llmrec.generation.templates import complete_pitch, reader_sentence, template_text
from llmrec.generation.verify import Verification, verify_text
from llmrec.types import Fact, GeneratedText

__all__ = ["DEFAULT_BUDGET_S", "KIND_BUDGETS", "ContentGenerator"]

#: The latency budget the CLI and the server apply when none is given (seconds): texts
#: not written by then come back as flagged template texts.
DEFAULT_BUDGET_S = 2.0
#: A budget per content kind, for applications that set one per kind (seconds, for a
#: list of ten on a 2-core CPU with the embedded model; see benchmarks/RESULTS.md).
KIND_BUDGETS = {"reason": 2.0, "pitch": 4.0, "summary": 3.0, "headline": 1.5, "digest": 1.5}
#: Each kind's token limit and word limit, as multiples of the reason's.
_KIND_TOKENS = {"reason": 1.0, "pitch": 3.0, "summary": 3.5, "headline": 0.75, "digest": 1.25}
_KIND_WORDS = {"reason": 1.0, "pitch": 2.5, "summary": 3.0, "headline": 0.3, "digest": 1.0}


class ContentGenerator:
    """Writes one personalized, verified sentence per recommendation.

    Args:
        backend: A :class:`~llmrec.generation.ChatBackend`, or a registered ``llms`` backend
            name: ``"default"`` (the ``transformers`` backend with the embedded
            SmolLM2-135M-Instruct), ``"transformers"``, ``"template"`` (no model; every text
            is the grounded template).
        catalog: The catalog (other titles are checked against it).
        model: The backend's ``model`` argument (for ``"transformers"``: a hub id or path).
        max_new_tokens: Token limit of each reason (the other kinds scale it: a pitch
            gets three times as many).
        max_words: Word limit a reason must respect to pass verification (scaled for
            the other kinds).
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
        tone: How texts sound: ``"neutral"``, ``"friendly"``, ``"enthusiastic"`` or
            ``"formal"`` (asked of the model; templates are neutral).
        length: ``"short"``, ``"medium"`` or ``"long"``: the words a text aims at.

    Raises:
        ConfigError: A bad argument, or a backend that cannot be built.
    """

    def __init__(
        self,
        backend: ChatBackend | str = "default",
        *,
        catalog: Catalog,
        model: str | None = None,
        max_new_tokens: int = 40,
        max_words: int = 40,
        budget_s: float | None = None,
        cache_size: int = 10_000,
        retries: int = 1,
        device: Any = "auto",
        redact_contacts: bool = True,
        backend_options: Mapping[str, Any] | None = None,
        tone: str = "neutral",
        length: str = "short",
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
        self.tone = check_choice(tone, "tone", tuple(TONES))
        self.length = check_choice(length, "length", tuple(LENGTHS))
        self._model = model
        self._backend_options = check_options(backend_options, "backend_options")
        if isinstance(backend, str):
            self.backend_name = _check_backend_name(backend)
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
        self._prefill = getattr(self.backend, "continues_prefill", False) is True
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

    @classmethod
    def check_config(cls, backend: ChatBackend | str = "default", **options: Any) -> None:
        """Check the arguments of ``ContentGenerator(backend, catalog=..., **options)``
        without building the backend or loading a model, so that a generator that cannot
        be built is refused when a pipeline is made, not at its first request
        (:meth:`~llmrec.Pipeline.from_catalog` calls this).

        Checked: the backend name (an unknown one is answered with the registered names
        and how to reach a hosted model), the option names, the generator's own options
        (by building a generator around the model-free template backend), the backend's
        options against its signature, and what the backend's ``preflight`` classmethod
        checks, where it has one (the ``openai`` backend: ``base_url``; ``transformers``:
        a Hugging Face model id while hub access is off and the model is not cached).

        Raises:
            ConfigError: the constructor would refuse these arguments.
        """
        if not isinstance(backend, str):
            return  # an instance was checked when it was built
        name = _check_backend_name(backend)
        options = dict(options)
        unknown = sorted(set(options) - set(_OPTION_NAMES))
        if unknown:
            raise ConfigError(_unknown_options(unknown, name))
        model = options.pop("model", None)
        kwargs = dict(check_options(options.pop("backend_options", None), "backend_options"))
        options.pop("device", None)
        cls("template", catalog=Catalog(), **options)
        if model is not None:
            kwargs["model"] = model
        backend_cls = registry.get_backend("llms", name)
        try:
            inspect.signature(backend_cls).bind(**kwargs)
        except TypeError as exc:
            raise ConfigError(
                f"bad options for the {name!r} language model backend: {exc}"
            ) from None
        preflight = getattr(backend_cls, "preflight", None)
        if callable(preflight):
            preflight(**kwargs)

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
        if self.tone != "neutral":
            options["tone"] = self.tone
        if self.length != "short":
            options["length"] = self.length
        if backend_model is not None:
            options["model"] = backend_model
        if backend_config:
            options["backend_options"] = backend_config
        return {"backend": self.backend_name, "options": options}

    # ------------------------------------------------------------------ text pieces
    def _facts(self, request: ReasonRequest, kind: str = "reason") -> Facts:
        return facts(request, redact_contacts=self.redact_contacts, kind=kind, tone=self.tone)

    def _limits(self, kind: str) -> tuple[int, int]:
        """``(max_new_tokens, max_words)`` of a text of ``kind``."""
        tokens = min(1024, max(8, round(self.max_new_tokens * _KIND_TOKENS[kind])))
        return tokens, max(5, round(self.max_words * _KIND_WORDS[kind]))

    def template_text(self, request: ReasonRequest, kind: str = "reason") -> str:
        """The text of ``kind`` built from the request's fact plan only."""
        return template_text(self._facts(request, _check_kind(kind)))

    def prompt(self, request: ReasonRequest, kind: str = "reason") -> list[dict[str, str]]:
        """The chat messages sent to the model for ``request``."""
        return conversation(
            self._facts(request, _check_kind(kind)), length=self.length, prefill=self._prefill
        )

    def plan(self, request: ReasonRequest) -> tuple[Fact, ...]:
        """The fact plan a text about ``request`` is written from and checked against
        (the request's own, or one built from it), sanitized as the prompt shows it."""
        return self._facts(request).plan

    def verify(self, text: str, request: ReasonRequest, kind: str = "reason") -> Verification:
        """:func:`~llmrec.generation.verify_text` of ``text`` against the request's
        plan, with this generator's catalog and the word limit of ``kind``."""
        return self._verify(text, self._facts(request, _check_kind(kind)))

    def _verify(self, text: str, f: Facts) -> Verification:
        return verify_text(
            text,
            f.plan,
            target=f.item,
            evidence=f.evidence_items,
            catalog=self.catalog,
            max_words=self._limits(f.kind)[1],
            # As given: the words an instruction in it had are what a text must not repeat.
            query=f.raw_query,
            kind=f.kind,
            listed=f.listed,
        )

    def warm(self) -> None:
        """Run the model once on a short prompt, so the first request pays neither the
        load nor the first-call set-up (kept prompt heads, kernels). Safe to call again."""
        if self._is_template:
            return
        messages = [{"role": "system", "content": "Say OK."}, {"role": "user", "content": "OK"}]
        self.backend.generate([messages], max_new_tokens=2)

    # ------------------------------------------------------------------ cache
    def clear_cache(self) -> None:
        """Forget every cached text."""
        with self._cache_lock:
            self._cache.clear()

    def _key(self, f: Facts, messages: list[dict[str, str]]) -> tuple[str, str]:
        # The prompt is a function of the evidence alone (no user id): the same prompt
        # gets the same (greedy) answer, so it is the key. The rest of the plan decides
        # what the verifier allows and the template says: a hit is checked against the
        # request's own plan (:meth:`_reuse`), so an event that changes facts the prompt
        # does not show costs no new text.
        payload = json.dumps(
            [messages, self.backend_name, self.max_new_tokens, self.max_words, f.kind],
            ensure_ascii=False,
            sort_keys=True,
        )
        return f.item.item_id, hashlib.sha256(payload.encode()).hexdigest()

    def _reuse(self, hit: GeneratedText, f: Facts) -> GeneratedText | None:
        """A cached text for the same prompt, valid for ``f``'s plan: model text that
        still passes verification against it, or the template of ``f`` where the model's
        answer to this prompt had failed (it would fail again). ``None``: write anew."""
        if hit.source == "llm":
            if not self._verify(hit.text, f).ok:
                return None
            return dataclasses.replace(hit, cached=True)
        return dataclasses.replace(hit, text=template_text(f), cached=True)

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
        self,
        requests: Sequence[ReasonRequest],
        *,
        budget_s: float | None = None,
        kind: str = "reason",
    ) -> list[GeneratedText]:
        """One :class:`~llmrec.GeneratedText` of ``kind`` per request, in order.

        Args:
            requests: The requests.
            budget_s: Latency budget (default: the generator's).
            kind: ``"reason"`` (one sentence), ``"pitch"`` (two or three sentences
                describing the item for this user), ``"summary"`` (a personalized summary
                of the item's long text, every sentence supported by it) or
                ``"headline"`` (at most 60 characters). The one line introducing a whole
                list is :meth:`digest`.
        """
        requests = _check_requests(requests)
        kind = check_choice(kind, "kind", ITEM_KINDS, error=InvalidInputError)
        budget = self.budget_s if budget_s is None else _check_budget(budget_s)
        out: list[GeneratedText | None] = [None] * len(requests)
        # Without a budget nothing is gained by writing two texts ahead of the others
        # (the caller waits for all): every request shares the batches.
        evidences = [self._facts(r, kind) for r in requests]
        for index, text in self._stream(evidences, budget, first_batch=budget is not None):
            out[index] = text
        return out  # type: ignore[return-value]

    def stream(
        self,
        requests: Sequence[ReasonRequest],
        *,
        budget_s: float | None = None,
        kind: str = "reason",
    ) -> Iterator[tuple[int, GeneratedText]]:
        """Yield ``(index, text)`` for every request exactly once, each as soon as it is
        done: cache hits first, then the two best-ranked requests not cached, written in
        a small batch of their own so one arrives quickly, then the others as their
        answers end.

        Calls from several threads share model batches. Stopping the iteration early
        hands the unfinished requests of other callers back to the queue. ``kind`` is
        that of :meth:`generate`.
        """
        requests = _check_requests(requests)
        kind = check_choice(kind, "kind", ITEM_KINDS, error=InvalidInputError)
        budget = self.budget_s if budget_s is None else _check_budget(budget_s)
        return self._stream([self._facts(r, kind) for r in requests], budget)

    def _stream(
        self, evidences: list[Facts], budget: float | None, *, first_batch: bool = True
    ) -> Iterator[tuple[int, GeneratedText]]:
        """Cache hits, then the model's texts as they end; with ``first_batch`` the two
        best-ranked requests are written in a batch of their own first."""
        started = time.perf_counter()
        owner = Owner(None if budget is None else started + budget)
        jobs: list[Job] = []
        for index, evidence in enumerate(evidences):
            messages = conversation(evidence, length=self.length, prefill=self._prefill)
            key = self._key(evidence, messages)
            hit = self._cache_get(key)
            reused = None if hit is None else self._reuse(hit, evidence)
            if reused is not None:
                yield index, reused
            elif self._is_template:
                text = GeneratedText(template_text(evidence), "template", "template backend")
                self._cache_put(key, text)
                yield index, text
            else:
                jobs.append(
                    Job(
                        index,
                        evidence,
                        messages,
                        key,
                        owner,
                        first=first_batch and len(jobs) < FIRST_BATCH,
                        max_new_tokens=self._limits(evidence.kind)[0],
                    )
                )
        if jobs:
            yield from self._scheduler.results(owner, jobs)

    def _judge(self, job: Job, answer: Any) -> GeneratedText | Job:
        """Verify one answer: its text, a stricter second attempt, or the template."""
        text = whole_taste(answer_text(job.conversation, answer, job.facts.kind), job.facts)
        if job.facts.kind == "summary" and text:
            # The article's sentences the model wrote, after the plan's one about the reader.
            frame = reader_sentence(job.facts)
            if frame and not text.startswith(frame):
                text = f"{frame} {text}"
        check = self._verify(text, job.facts)
        if job.facts.kind == "pitch" and not check.ok:
            text, check = self._mend_pitch(text, check, job.facts)
        problems = "; ".join(check.problems)
        if check.ok:
            result = GeneratedText(text, "llm", retry_reason=job.retry_reason)
        elif job.attempt <= self.retries:
            return Job(
                job.index,
                job.facts,
                conversation(
                    job.facts, attempt=job.attempt + 1, length=self.length, prefill=self._prefill
                ),
                job.key,
                job.owner,
                first=job.first,
                attempt=job.attempt + 1,
                retry_reason=problems,
                max_new_tokens=job.max_new_tokens,
            )
        else:
            result = GeneratedText(
                template_text(job.facts), "template", problems, retry_reason=job.retry_reason
            )
        self._cache_put(job.key, result)
        return result

    def _mend_pitch(
        self, text: str, check: Verification, evidence: Facts
    ) -> tuple[str, Verification]:
        """A pitch that failed its check, kept where its true sentences suffice: a later
        sentence that fails beside the first is dropped ("Headlamp 400 is a 400-lumen
        headlamp ... It is a Summit Labs 400."), and a true first sentence left alone goes
        on with a sentence from the plan (the item's own description, its price or maker)
        instead of a new answer. Returns the text and its check, unchanged where neither
        helps."""
        parts = sentences(text)
        if len(parts) > 1 and not _only_too_short(check):
            head = parts[0]
            kept = [p for p in parts[1:] if self._verify(f"{head} {p}", evidence).ok]
            if len(kept) < len(parts) - 1:
                pruned = " ".join([head, *kept])
                second = self._verify(pruned, evidence)
                if second.ok or _only_too_short(second):
                    text, check = pruned, second
        if _only_too_short(check):
            completed = complete_pitch(evidence, text)
            if completed is not None:
                second = self._verify(completed, evidence)
                if second.ok:
                    text, check = completed, second
        return text, check

    async def astream(
        self,
        requests: Sequence[ReasonRequest],
        *,
        budget_s: float | None = None,
        kind: str = "reason",
    ) -> AsyncIterator[tuple[int, GeneratedText]]:
        """Async :meth:`stream`: the model runs in a worker thread, the loop stays free."""
        iterator = self.stream(requests, budget_s=budget_s, kind=kind)
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
        self,
        requests: Sequence[ReasonRequest],
        *,
        budget_s: float | None = None,
        kind: str = "reason",
    ) -> list[GeneratedText]:
        """Async :meth:`generate` (runs in a worker thread)."""
        return await asyncio.to_thread(self.generate, requests, budget_s=budget_s, kind=kind)

    def digest(
        self, requests: Sequence[ReasonRequest], *, budget_s: float | None = None
    ) -> GeneratedText:
        """One line introducing the whole list ``requests`` (best first): its first titles
        and the user's history item it relates to, verified against the plans of all of
        them (cached, budgeted and template-backed like every text).

        Raises:
            InvalidInputError: an empty list, or one that is not of ReasonRequests.
        """
        requests = _check_requests(requests)
        if not requests:
            raise InvalidInputError("digest needs at least one recommendation")
        budget = self.budget_s if budget_s is None else _check_budget(budget_s)
        for _, text in self._stream([self._digest_facts(requests)], budget):
            return text
        raise AssertionError("unreachable: _stream yields every request")  # pragma: no cover

    def _digest_facts(self, requests: list[ReasonRequest]) -> Facts:
        """The evidence of a digest: the first item as its target, the other listed items
        and every history item as its evidence, the plans of all of them."""
        parts = [self._facts(r) for r in requests]
        head = parts[0]
        listed = {p.item.item_id: (p.item, p.title) for p in parts[1:5]}
        history: dict[str, tuple[Any, str]] = {}
        plan: list[Fact] = list(head.plan)
        for p in parts:
            for item, title in zip(p.evidence_items, p.evidence):
                if item.item_id not in listed and item.item_id != head.item.item_id:
                    history.setdefault(item.item_id, (item, title))
            plan += [f for f in p.plan if f.item_id is not None and f.item_id in history]
        for item_id, (_, title) in listed.items():
            plan.append(
                Fact("attribute", f"Also picked for you: {title}.", "request:list", (), item_id)
            )
        others = [*listed.values(), *history.values()]
        return dataclasses.replace(
            head,
            evidence=tuple(t for _, t in others),
            evidence_items=tuple(i for i, _ in others),
            plan=tuple(dict.fromkeys(plan)),
            kind="digest",
            listed=tuple(listed),
        )

    def __repr__(self) -> str:
        return f"ContentGenerator(backend={self.backend_name!r}, max_words={self.max_words})"


#: The options ``ContentGenerator(backend, catalog=..., **options)`` takes.
_OPTION_NAMES = tuple(inspect.signature(ContentGenerator).parameters)[2:]


def _check_backend_name(backend: str) -> str:
    """The registered backend ``backend`` names (``"default"`` is ``"transformers"``)."""
    name = "transformers" if backend == "default" else backend
    if name not in registry.available_backends("llms"):
        raise ConfigError(
            f"unknown llm {backend!r:.80}; choose 'default' (the embedded SmolLM2-135M-Instruct) "
            f"or a registered llm backend {registry.available_backends('llms')}. For a hosted "
            f"model use llm='openai' with llm_options={{'model': {backend!r:.80}, "
            "'backend_options': {'base_url': 'http://host:8000/v1'}}"
        )
    return name


def _unknown_options(unknown: list[str], backend: str) -> str:
    """The message for options the generator does not take; the backend's own ones are
    pointed to ``backend_options``."""
    try:
        backend_params = set(inspect.signature(registry.get_backend("llms", backend)).parameters)
    except (LLMRecError, TypeError, ValueError):
        backend_params = set()
    theirs = [name for name in unknown if name in backend_params]
    one = len(theirs) == 1
    hint = (
        f"; {', '.join(map(repr, theirs))} {'is an option' if one else 'are options'} of the "
        f"{backend!r} backend: put {'it' if one else 'them'} in "
        f"backend_options={{{', '.join(f'{n!r}: ...' for n in theirs)}}}"
        if theirs
        else ""
    )
    return f"unknown generator option(s) {unknown}; the options are {list(_OPTION_NAMES)}{hint}"


def _check_budget(budget_s: Any) -> float | None:
    return None if budget_s is None else check_float(budget_s, "budget_s", low=0)


def _check_kind(kind: Any, exclude: tuple[str, ...] = ()) -> str:
    """A content kind (``exclude``: kinds the caller does not write, e.g. a per-item
    stream cannot write the list's digest)."""
    return check_choice(
        kind,
        "kind",
        tuple(k for k in CONTENT_KINDS if k not in exclude),
        error=InvalidInputError,
    )


def _check_requests(requests: Sequence[ReasonRequest]) -> list[ReasonRequest]:
    return check_instances(requests, "requests", ReasonRequest, "a ReasonRequest")


def _only_too_short(check: Verification) -> bool:
    """Whether a pitch failed only for having one sentence."""
    return bool(check.problems) and all(
        p.startswith("1 sentences (a pitch") for p in check.problems
    )
