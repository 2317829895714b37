"""The cross-caller batch scheduler of :class:`~llmrec.generation.ContentGenerator`.

Requests waiting for the model, from every caller, sit in one queue; one caller at a time
(the one whose turn it is) takes a batch from it and runs it, delivering each text to the
caller it belongs to as its answer ends. Requests whose latency budget runs out get the
template text instead.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from llmrec.errors import GenerationError
from llmrec.generation.evidence import Facts
from llmrec.generation.llms.base import ChatBackend
from llmrec.generation.prompts import answer_done
from llmrec.types import GeneratedText

__all__ = ["FIRST_BATCH", "BatchScheduler", "Job", "Owner"]

logger = logging.getLogger(__name__)

#: The best-ranked requests of a call written together before the others (their retries
#: too), so the caller sees a text soon: two rather than one, so that one failing answer
#: rarely delays the first text, at almost no cost (on a CPU a decoding step at batch 2
#: costs about what one at batch 1 does).
FIRST_BATCH = 2


class Owner:
    """One ``stream`` call: its deadline and its finished texts not yet yielded."""

    __slots__ = ("answered", "deadline", "done")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline
        self.done: deque[tuple[int, GeneratedText]] = deque()
        self.answered = False  # a text of this call has come out of the model's batches


@dataclass(eq=False)
class Job:
    """One text being written: the request's evidence, the prompt, the cache key, the
    caller it goes to, and which attempt this is."""

    index: int
    facts: Facts
    conversation: list[dict[str, str]]
    key: tuple[str, str]
    owner: Owner
    first: bool = False
    attempt: int = 1
    retry_reason: str | None = None
    max_new_tokens: int | None = None  # this job's token limit (None: the scheduler's)


#: Judges one model answer: the finished text, or the job of a second attempt.
Judge = Callable[[Job, Any], "GeneratedText | Job"]


class BatchScheduler:
    """Runs the jobs of every caller in shared model batches.

    Args:
        backend: The chat backend (its ``max_batch_size``, if any, caps a batch).
        max_new_tokens: Token limit of each answer.
        judge: Turns a job's answer into its text, or into a second attempt to queue.
        fallback: The template text of a job's evidence.
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        max_new_tokens: int,
        judge: Judge,
        fallback: Callable[[Facts], str],
    ) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self._judge = judge
        self._fallback = fallback
        self._cv = threading.Condition()
        self._queue: list[Job] = []
        self._running = False
        self._seconds_per_item: float | None = None

    @property
    def idle(self) -> bool:
        """Nothing queued and no batch running."""
        with self._cv:
            return not self._queue and not self._running

    def results(self, owner: Owner, jobs: list[Job]) -> Iterator[tuple[int, GeneratedText]]:
        """Queue ``jobs`` (all of ``owner``) and yield ``(index, text)`` for each as it is
        done. The caller runs batches (its own and others' jobs) whenever no other caller
        does; stopping early hands this caller's unfinished jobs back."""
        with self._cv:
            self._queue.extend(jobs)
            self._cv.notify_all()
        remaining = len(jobs)
        try:
            while remaining:
                batch = self._take_turn(owner)
                if batch is not None:
                    runner = self._run(batch)
                    try:
                        for _ in runner:
                            while owner.done:
                                remaining -= 1
                                yield owner.done.popleft()
                    finally:
                        runner.close()
                        with self._cv:
                            self._running = False
                            self._cv.notify_all()
                while owner.done:
                    remaining -= 1
                    yield owner.done.popleft()
        finally:
            if remaining:  # the caller stopped early: nobody will read these
                with self._cv:
                    self._queue[:] = [j for j in self._queue if j.owner is not owner]

    def _take_turn(self, owner: Owner) -> list[Job] | None:
        """Wait until ``owner`` has texts to read (``None``) or may run the next batch
        (that batch, possibly empty)."""
        with self._cv:
            while not owner.done:
                queued = any(j.owner is owner for j in self._queue)
                if queued and not self._running:
                    break
                left = None if owner.deadline is None else owner.deadline - time.perf_counter()
                if queued and left is not None and left <= 0:
                    self._expire(owner)  # out of time while another caller's batch runs
                    continue
                # Wake at the deadline only while something of ours waits in the queue;
                # texts in a running batch are delivered with a notify.
                self._cv.wait(left if queued and left is not None else None)
            if owner.done:
                return None
            self._running = True
            return self._take_batch()

    def _fallback_text(self, job: Job, reason: str) -> GeneratedText:
        return GeneratedText(
            self._fallback(job.facts), "template", reason, retry_reason=job.retry_reason
        )

    def _expire(self, owner: Owner) -> None:
        """Template text for the queued jobs of ``owner``, whose budget ran out (called
        with ``self._cv`` held)."""
        expired = [j for j in self._queue if j.owner is owner]
        self._queue[:] = [j for j in self._queue if j.owner is not owner]
        for job in expired:
            job.owner.done.append((job.index, self._fallback_text(job, "latency budget")))

    def _take_batch(self) -> list[Job]:
        """The next model batch (called with ``self._cv`` held): jobs whose budget is
        spent get template text; the first jobs of a call (and their second attempts,
        until the call has a text) go in a small batch of their own, several calls'
        together; otherwise the oldest jobs, as many as the backend batches and the
        tightest budget among them allows."""
        now = time.perf_counter()
        per_item = self._seconds_per_item
        for job in list(self._queue):
            deadline = job.owner.deadline
            # The first job of a call always runs, so a stale, slow estimate is corrected
            # instead of locking every call into templates.
            if deadline is not None and (
                now >= deadline or (per_item and not job.first and now + per_item > deadline)
            ):
                self._queue.remove(job)
                job.owner.done.append((job.index, self._fallback_text(job, "latency budget")))
        if not self._queue:
            return []
        limit = max(1, int(getattr(self.backend, "max_batch_size", 16) or 16))
        # Once a call has its first text, the second attempt of its other first job joins
        # the next large batch instead of running alone ahead of it.
        firsts = [j for j in self._queue if j.first and not j.owner.answered]
        batch = (firsts or self._queue)[:limit]
        if per_item and not firsts:
            deadlines = [j.owner.deadline for j in batch if j.owner.deadline is not None]
            if deadlines:
                batch = batch[: max(1, int((min(deadlines) - now) / per_item))]
        taken = {id(j) for j in batch}
        self._queue[:] = [j for j in self._queue if id(j) not in taken]
        return batch

    def _run(self, batch: list[Job]) -> Iterator[None]:
        """Run one model batch, delivering each text to its caller as its answer ends
        (a ``None`` is yielded after each, so the leading caller can pass its own on)."""
        if not batch:
            return
        pending = dict(enumerate(batch))
        started = time.perf_counter()
        answered = 0
        # A batch shares one token limit: the largest its jobs ask for (a reason's
        # answer ends at its own end-of-sequence long before a pitch's limit).
        limit = max(j.max_new_tokens or self.max_new_tokens for j in batch)
        conversations = [j.conversation for j in batch]
        if getattr(self.backend, "stops_early", False):
            # each answer ends once it holds what its text keeps, not at the token limit
            until = [answer_done(j.facts.kind) for j in batch]
            stream = self.backend.stream(conversations, max_new_tokens=limit, until=until)
        else:
            stream = self.backend.stream(conversations, max_new_tokens=limit)
        try:
            for n, answer in stream:
                job = pending.pop(n, None)
                if job is None:
                    continue
                answered += 1
                self._finish(job, answer)
                yield
                now = time.perf_counter()
                if pending and all(
                    j.owner.deadline is not None and now >= j.owner.deadline
                    for j in pending.values()
                ):
                    break  # everyone still waiting is out of time
            reason = "latency budget" if pending else ""
            self._deliver_templates(pending, reason or "no answer from the language model")
        except GenerationError as exc:
            logger.warning("language model failed, using template text: %s", exc)
            self._deliver_templates(pending, f"generation failed: {exc}"[:300])
        except Exception as exc:
            self._deliver_templates(pending, f"generation failed: {exc}"[:300])
            raise
        finally:
            self._after_run(stream, pending, answered, started)

    def _after_run(
        self, stream: Any, pending: dict[int, Job], answered: int, started: float
    ) -> None:
        """Close the backend's stream, queue again the jobs a stopped batch left, and
        update the seconds-per-answer estimate."""
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        if pending:  # the leading caller stopped mid-batch: others still wait
            with self._cv:
                self._queue[:0] = list(pending.values())
                self._cv.notify_all()
        if answered:
            per_item = (time.perf_counter() - started) / answered
            self._seconds_per_item = (
                per_item
                if self._seconds_per_item is None
                else (0.5 * self._seconds_per_item + 0.5 * per_item)
            )

    def _deliver_templates(self, pending: dict[int, Job], reason: str) -> None:
        with self._cv:
            for job in pending.values():
                job.owner.done.append((job.index, self._fallback_text(job, reason)))
            pending.clear()
            self._cv.notify_all()

    def _finish(self, job: Job, answer: Any) -> None:
        """Judge one answer: deliver its text, or queue its second attempt."""
        outcome = self._judge(job, answer)
        with self._cv:
            if isinstance(outcome, Job):
                self._queue.append(outcome)
            else:
                job.owner.answered = True
                job.owner.done.append((job.index, outcome))
            self._cv.notify_all()
