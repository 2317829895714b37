"""Prometheus metrics of one HTTP app (``GET /metrics``; needs ``prometheus-client``).

Each app owns a :class:`ServerMetrics` with its own ``CollectorRegistry`` (no global
state: two apps in one process count apart). What it exports:

* ``llmrec_http_requests_total{route, method, status}`` and
  ``llmrec_http_request_duration_seconds{route, method}``: every request, by route template.
* ``llmrec_stage_duration_seconds{stage}``: time in ``retrieve`` (candidate retrieval),
  ``rank`` (ranker scoring and ordering) and ``generate`` (text writing) per call.
* ``llmrec_generated_texts_total{source, fallback_reason}``: texts by source (``llm`` or
  ``template``) and why a template stood in; the template share is
  ``source="template"`` over all.
* ``llmrec_generator_cache_total{result}``: generated texts served from the generator's
  cache (``hit``) or written (``miss``).
* ``llmrec_recommendations_total{fallback}``: recommended items, by cold-start fallback
  (``none`` for a normal ranking).
* ``llmrec_event_log_unsynced_records``: records acknowledged but not yet synced to disk
  (0 under ``fsync="always"``), ``llmrec_event_log_records`` and
  ``llmrec_seconds_since_snapshot`` (``-1`` before the first snapshot).
"""

from __future__ import annotations

import functools
import time
import weakref
from collections.abc import Callable, Iterable
from typing import Any

from llmrec.errors import BackendUnavailableError

try:
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
    from prometheus_client import generate_latest as _generate_latest
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise BackendUnavailableError(
        "the /metrics endpoint needs prometheus-client: pip install 'llmrec[server]'"
    ) from exc

__all__ = ["CONTENT_TYPE", "STAGES", "ServerMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
#: The timed stages of a recommendation call.
STAGES = ("retrieve", "rank", "generate")
#: Latency buckets in seconds (1 ms to 2 min: ranking is fast, generation can be slow).
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)
# Component methods timed per stage: (component attribute, method name, stage).
_TIMED = (
    ("retriever", "candidates", "retrieve"),
    ("ranker", "score", "rank"),
    ("ranker", "order", "rank"),
    ("generator", "generate", "generate"),
)


class ServerMetrics:
    """The metrics of one app serving ``pipeline``.

    Args:
        pipeline: The served :class:`~llmrec.Pipeline`; its retriever, ranker and
            generator are timed by :meth:`instrument`.
        last_snapshot: Returns the time (``time.time()``) of the last snapshot, or None.
    """

    def __init__(self, pipeline: Any, last_snapshot: Callable[[], float | None] = lambda: None):
        self.pipeline = pipeline
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "llmrec_http_requests", "HTTP requests", ("route", "method", "status"), registry=r
        )
        self.latency = Histogram(
            "llmrec_http_request_duration_seconds",
            "HTTP request latency",
            ("route", "method"),
            buckets=BUCKETS,
            registry=r,
        )
        self.stages = Histogram(
            "llmrec_stage_duration_seconds",
            "Time per pipeline stage call",
            ("stage",),
            buckets=BUCKETS,
            registry=r,
        )
        self.texts = Counter(
            "llmrec_generated_texts",
            "Generated texts by source and fallback reason",
            ("source", "fallback_reason"),
            registry=r,
        )
        self.cache = Counter(
            "llmrec_generator_cache", "Generated texts from the cache", ("result",), registry=r
        )
        self.recommended = Counter(
            "llmrec_recommendations", "Recommended items by fallback", ("fallback",), registry=r
        )
        Gauge(
            "llmrec_event_log_unsynced_records",
            "Event log records acknowledged but not yet synced to disk",
            registry=r,
        ).set_function(lambda: _log_value(pipeline, "unsynced"))
        Gauge("llmrec_event_log_records", "Records in the open event log", registry=r).set_function(
            lambda: _log_value(pipeline, "__len__")
        )
        Gauge(
            "llmrec_seconds_since_snapshot",
            "Seconds since the last snapshot (-1: none yet)",
            registry=r,
        ).set_function(lambda: _since(last_snapshot()))
        for stage in STAGES:
            self.stages.labels(stage)  # exported at 0 before the first call
        self.instrument()

    # ------------------------------------------------------------------ recording
    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route, method).observe(seconds)

    def observe_recommendations(self, recs: Iterable[Any]) -> None:
        """Count the texts, cache hits and fallbacks of returned recommendations."""
        for rec in recs:
            self.recommended.labels(getattr(rec, "fallback", None) or "none").inc()
            text = rec.generated
            if text is None:
                continue
            self.texts.labels(text.source, text.fallback_reason or "none").inc()
            self.cache.labels("hit" if text.cached else "miss").inc()

    def observe_stage(self, stage: str, seconds: float) -> None:
        """Time one stage call."""
        self.stages.labels(stage).observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return _generate_latest(self.registry)

    # ------------------------------------------------------------------ stage timing
    def instrument(self) -> None:
        """Time the pipeline's stage methods for this app.

        Each method is wrapped once per pipeline component (on the instance, the class is
        untouched); every app serving the pipeline registers itself with the wrapper, so
        two apps over one pipeline both see its calls and nothing is timed twice.
        """
        for attribute, method, stage in _TIMED:
            component = getattr(self.pipeline, attribute)
            current = getattr(component, method)
            listeners = getattr(current, "_llmrec_listeners", None)
            if listeners is None:
                listeners = weakref.WeakSet()
                setattr(component, method, _timed(current, stage, listeners))
            listeners.add(self)


def _timed(method: Callable[..., Any], stage: str, listeners: Any) -> Callable[..., Any]:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            seconds = time.perf_counter() - started
            for metrics in list(listeners):
                metrics.observe_stage(stage, seconds)

    timed._llmrec_listeners = listeners  # type: ignore[attr-defined]
    return timed


def _log_value(pipeline: Any, what: str) -> float:
    log = pipeline.event_log
    if log is None:
        return 0.0
    return float(len(log) if what == "__len__" else getattr(log, what))


def _since(when: float | None) -> float:
    return -1.0 if when is None else max(0.0, time.time() - when)
