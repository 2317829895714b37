"""The Ray Serve deployment behind :func:`llmrec.apps.ray.pipeline_app`.

Imported only when Ray Serve is installed. Annotations here stay real objects (no
``from __future__ import annotations``): FastAPI reads the body models from them.
"""

import asyncio
import dataclasses
import hmac
import io
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from ray import serve

from llmrec import __version__
from llmrec.apps._schemas import EventsBody, RecommendBody, answer, to_event
from llmrec.apps.server import add_error_handlers, health_status, result_json, sse
from llmrec.pipeline import Pipeline
from llmrec.types import Event, Recommendation

__all__ = ["PipelineDeployment", "pack_pipeline"]

#: Batch sizes a replica remembers (for ``batch_sizes``).
BATCH_HISTORY = 1000

api = FastAPI(
    title="llmrec (Ray Serve)",
    version=__version__,
    description="Personalized recommendations with grounded generated text.",
)


add_error_handlers(api)  # the server's one error shape, never echoing input


class _Unauthorized(Exception):
    pass


@api.exception_handler(_Unauthorized)
async def _unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
    return answer(
        "Unauthorized", "missing or wrong X-API-Key", 401, headers={"WWW-Authenticate": "APIKey"}
    )


@dataclasses.dataclass
class _Call:
    user_id: str
    options: dict[str, Any]


def pack_pipeline(pipeline: Pipeline) -> bytes:
    """A saved pipeline as tar bytes, so it reaches replicas on any node."""
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="llmrec-") as tmp:
        pipeline.save_pretrained(Path(tmp) / "pipeline")
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(Path(tmp) / "pipeline", arcname="pipeline")
    return buffer.getvalue()


def _unpack(data: bytes, directory: str) -> Path:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
        # The archive is our own save; the "data" filter exists from Python 3.10.12.
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(directory, **safe)
    return Path(directory) / "pipeline"


@serve.deployment(name="llmrec")
@serve.ingress(api)
class PipelineDeployment:
    """One replica: a loaded Pipeline; concurrent ``recommend`` calls are answered together
    by :meth:`Pipeline.recommend_batch <llmrec.Pipeline.recommend_batch>`."""

    def __init__(
        self,
        source: str | bytes,
        pipeline_options: Mapping[str, Any],
        max_batch_size: int,
        batch_wait_timeout_s: float,
        api_key: str | None = None,
    ) -> None:
        self._api_key = api_key
        self._tmp = None
        if isinstance(source, bytes):
            self._tmp = tempfile.TemporaryDirectory(prefix="llmrec-replica-")
            source = str(_unpack(source, self._tmp.name))
        self.pipeline = Pipeline.from_pretrained(source, **dict(pipeline_options))
        self._batch_sizes: list[int] = []
        self._recommend_batched.set_max_batch_size(max_batch_size)
        self._recommend_batched.set_batch_wait_timeout_s(batch_wait_timeout_s)

    async def recommend(self, user_id: str, k: int = 10, **options: Any) -> list[Recommendation]:
        """:meth:`Pipeline.recommend <llmrec.Pipeline.recommend>`, batched with the concurrent
        calls this replica receives."""
        result, error = await self._recommend_batched(_Call(user_id, {"k": k, **options}))
        if error is not None:
            raise error
        return result

    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.01)
    async def _recommend_batched(self, calls: list[_Call]) -> list[tuple[Any, Any]]:
        self._batch_sizes = (self._batch_sizes + [len(calls)])[-BATCH_HISTORY:]
        return await asyncio.to_thread(self._run_batch, calls)

    def _run_batch(self, calls: list[_Call]) -> list[tuple[Any, Any]]:
        # recommend_batch takes one set of options: group the calls that share theirs.
        groups: list[tuple[dict[str, Any], list[int]]] = []
        for n, call in enumerate(calls):
            for options, members in groups:
                if options == call.options:
                    members.append(n)
                    break
            else:
                groups.append((call.options, [n]))
        outcomes: list[tuple[Any, Any]] = [(None, None)] * len(calls)
        for options, members in groups:
            try:
                results = self.pipeline.recommend_batch(
                    [calls[n].user_id for n in members], **options
                )
                for n, result in zip(members, results):
                    outcomes[n] = (result, None)
            except Exception:  # noqa: BLE001 - one bad call must not fail the others
                for n in members:
                    try:
                        outcomes[n] = (self.pipeline.recommend(calls[n].user_id, **options), None)
                    except Exception as exc:  # noqa: BLE001 - raised to its own caller
                        outcomes[n] = (None, exc)
        return outcomes

    async def observe(self, event: Event) -> None:
        """:meth:`Pipeline.observe <llmrec.Pipeline.observe>` on this replica."""
        await self.pipeline.aobserve(event)

    async def observe_many(self, events: Sequence[Event]) -> None:
        """:meth:`Pipeline.observe_many <llmrec.Pipeline.observe_many>` on this replica."""
        await self.pipeline.aobserve_many(events)

    def batch_sizes(self) -> list[int]:
        """Sizes of the last recommend batches this replica ran, oldest first."""
        return list(self._batch_sizes)

    def _check_key(self, request: Request) -> None:
        """The same ``X-API-Key`` check as :func:`llmrec.apps.server.create_app`."""
        if self._api_key is None:
            return
        key = request.headers.get("x-api-key")
        if key is None or not hmac.compare_digest(key.encode(), self._api_key.encode()):
            raise _Unauthorized()

    @api.get("/health")
    def health(self) -> dict[str, Any]:
        return health_status(self.pipeline)

    @api.post("/recommend")
    async def recommend_http(self, body: RecommendBody, request: Request) -> dict[str, Any]:
        self._check_key(request)
        recs = await self.recommend(body.user_id, body.k, **body.options())
        out = [result_json(self.pipeline, r, body.include_item) for r in recs]
        return {"user_id": body.user_id, "recommendations": out}

    @api.post("/recommend/stream")
    async def recommend_stream_http(
        self, body: RecommendBody, request: Request
    ) -> StreamingResponse:
        """Server-sent events as from :mod:`llmrec.apps.server` (not batched with others)."""
        self._check_key(request)
        options = body.options()
        options.pop("generate")
        stream = self.pipeline.arecommend_stream(body.user_id, body.k, **options)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = None
        events = sse(first, stream, lambda rec: result_json(self.pipeline, rec, body.include_item))
        return StreamingResponse(events, media_type="text/event-stream")

    @api.post("/events")
    async def observe_http(self, body: EventsBody, request: Request) -> dict[str, int]:
        self._check_key(request)
        events = [to_event(e) for e in body.events]
        await self.observe_many(events)
        return {"observed": len(events)}
