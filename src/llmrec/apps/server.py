"""HTTP API over a :class:`~llmrec.Pipeline` (extra ``server``: FastAPI + uvicorn).

    from llmrec.apps.server import create_app
    app = create_app(pipeline, api_key="secret")   # uvicorn module:app, or `llmrec serve`

Endpoints (the OpenAPI schema is served at ``/openapi.json``, docs at ``/docs``):

* ``GET /health`` -- liveness and catalog / user counts (never needs the API key).
* ``POST /recommend`` -- ranked items with explanations and, optionally, generated text.
* ``POST /recommend/stream`` -- server-sent events: one ``item`` event per recommendation
  as soon as its text is written, then ``done``.
* ``POST /events`` -- observe events (all validated before any is applied).
* ``POST /users`` -- create a user, optionally from a stated preference.
* ``DELETE /users/{user_id}`` -- forget a user.
* ``PUT /items`` -- insert or replace items; ``POST /items/delete`` -- remove items.

Errors come back as ``{"error": <LLMRecError class>, "detail": <message>}`` with 404 for
an unknown user or item, 422 for invalid input, 503 when a backend is unavailable and 401
for a missing or wrong ``X-API-Key``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from llmrec.errors import (
    BackendUnavailableError,
    ConfigError,
    LLMRecError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.types import EVENT_WEIGHTS, Event, Item

try:
    from fastapi import Depends, FastAPI, Request
    from fastapi.responses import JSONResponse, StreamingResponse
    from fastapi.security import APIKeyHeader
    from pydantic import BaseModel, ConfigDict, Field
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        f"llmrec.apps.server needs the server extra ({exc.name} is missing): "
        "pip install 'llmrec[server]'"
    ) from exc

__all__ = ["create_app", "health_status"]

MAX_K = 1000
MAX_BATCH = 10_000
Id = Field(min_length=1, max_length=512)
EventKind = Literal[tuple(sorted(EVENT_WEIGHTS))]  # type: ignore[valid-type]
AttributeValue = str | int | float | bool | list[str] | None


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendBody(_Model):
    user_id: str = Id
    k: int = Field(10, ge=1, le=MAX_K)
    query: str | None = Field(None, min_length=1, max_length=2000)
    generate: bool = False
    exclude_seen: bool = True
    filters: dict[str, str | list[str]] | None = None
    diversity: float | None = Field(None, ge=0.0, lt=1.0)
    budget_s: float | None = Field(None, gt=0.0, le=600.0)


class EventBody(_Model):
    user_id: str = Id
    item_id: str | None = Field(None, min_length=1, max_length=512)
    kind: EventKind = "click"  # type: ignore[valid-type]
    value: float | None = Field(None, ge=-1e6, le=1e6)
    timestamp: float | None = Field(None, ge=0.0, le=1e11)
    text: str | None = Field(None, min_length=1, max_length=2000)


class EventsBody(_Model):
    events: list[EventBody] = Field(min_length=1, max_length=MAX_BATCH)


class UserBody(_Model):
    user_id: str = Id
    preferences: str | None = Field(None, min_length=1, max_length=2000)


class ItemBody(_Model):
    item_id: str = Id
    title: str = Field(min_length=1, max_length=1000)
    text: str = Field("", max_length=20_000)
    attributes: dict[str, AttributeValue] = Field(default_factory=dict)


class ItemsBody(_Model):
    items: list[ItemBody] = Field(min_length=1, max_length=MAX_BATCH)


class ItemIdsBody(_Model):
    item_ids: list[str] = Field(min_length=1, max_length=MAX_BATCH)


def _status(exc: LLMRecError) -> int:
    if isinstance(exc, (UnknownUserError, UnknownItemError)):
        return 404
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 422


def _error(exc: LLMRecError) -> JSONResponse:
    return JSONResponse({"error": type(exc).__name__, "detail": str(exc)}, status_code=_status(exc))


def _event(body: EventBody) -> Event:
    fields = body.model_dump(exclude_none=True)
    return Event(**fields)


def health_status(pipeline: Any) -> dict[str, Any]:
    """The ``GET /health`` answer: liveness, catalog and user counts, the llmrec version."""
    from llmrec import __version__

    return {
        "status": "ok",
        "items": len(pipeline.catalog),
        "users": len(pipeline.profiles),
        "version": __version__,
    }


def create_app(pipeline: Any, *, api_key: str | None = None, title: str = "llmrec") -> FastAPI:
    """Build the FastAPI app serving ``pipeline``.

    Args:
        pipeline: A fitted (or cold) :class:`~llmrec.Pipeline`.
        api_key: When set, every endpoint but ``/health`` needs header ``X-API-Key``.
        title: The OpenAPI title.

    Raises:
        ConfigError: ``api_key`` is neither None nor a str.
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigError(f"api_key must be a str or None, got {type(api_key).__name__}")
    from llmrec import __version__

    app = FastAPI(
        title=title,
        version=__version__,
        description="Personalized recommendations with grounded generated text.",
    )
    secured = _add_security(app, api_key)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return health_status(pipeline)

    _add_recommend_routes(app, pipeline, secured)
    _add_write_routes(app, pipeline, secured)
    return app


class _Unauthorized(Exception):
    pass


def _add_security(app: FastAPI, api_key: str | None) -> list[Any]:
    """Error handlers (one JSON error shape) and the API-key dependency of secured routes."""
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def check_key(key: str | None = Depends(header)) -> None:
        if api_key is not None and (
            key is None or not hmac.compare_digest(key.encode(), api_key.encode())
        ):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return JSONResponse(
            {"error": "Unauthorized", "detail": "missing or wrong X-API-Key"},
            status_code=401,
            headers={"WWW-Authenticate": "APIKey"},
        )

    @app.exception_handler(LLMRecError)
    async def llmrec_error(request: Request, exc: LLMRecError) -> JSONResponse:
        return _error(exc)

    return [Depends(check_key)]


def _add_recommend_routes(app: FastAPI, pipeline: Any, secured: list[Any]) -> None:
    @app.post("/recommend", dependencies=secured)
    def recommend(body: RecommendBody) -> dict[str, Any]:
        recs = pipeline.recommend(
            body.user_id,
            body.k,
            query=body.query,
            exclude_seen=body.exclude_seen,
            filters=body.filters,
            generate=body.generate,
            diversity=body.diversity,
            budget_s=body.budget_s,
        )
        return {"user_id": body.user_id, "recommendations": [r.to_dict() for r in recs]}

    @app.post(
        "/recommend/stream",
        dependencies=secured,
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def recommend_stream(body: RecommendBody) -> StreamingResponse:
        # Rank first, so a bad request gets a plain JSON error before the stream opens.
        stream = pipeline.arecommend_stream(
            body.user_id,
            body.k,
            query=body.query,
            exclude_seen=body.exclude_seen,
            filters=body.filters,
            diversity=body.diversity,
            budget_s=body.budget_s,
        )
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = None
        return StreamingResponse(_sse(first, stream), media_type="text/event-stream")


async def _sse(first: Any, stream: AsyncIterator[Any]) -> AsyncIterator[str]:
    """Server-sent events: one ``item`` per recommendation, then ``done`` with the count."""
    count = 0
    if first is not None:
        count += 1
        yield f"event: item\ndata: {json.dumps(first.to_dict())}\n\n"
        async for rec in stream:
            count += 1
            yield f"event: item\ndata: {json.dumps(rec.to_dict())}\n\n"
    yield f"event: done\ndata: {json.dumps({'count': count})}\n\n"


def _add_write_routes(app: FastAPI, pipeline: Any, secured: list[Any]) -> None:
    @app.post("/events", dependencies=secured)
    def observe(body: EventsBody) -> dict[str, int]:
        events = [_event(e) for e in body.events]
        pipeline.observe_many(events)
        return {"observed": len(events)}

    @app.post("/users", dependencies=secured)
    def add_user(body: UserBody) -> dict[str, str]:
        pipeline.add_user(body.user_id, body.preferences)
        return {"user_id": body.user_id}

    @app.delete("/users/{user_id}", dependencies=secured)
    def forget(user_id: str) -> dict[str, str]:
        pipeline.forget(user_id)
        return {"forgotten": user_id}

    @app.put("/items", dependencies=secured)
    def upsert_items(body: ItemsBody) -> dict[str, int]:
        items = [Item(**i.model_dump()) for i in body.items]
        pipeline.add_items(items)
        return {"upserted": len(items), "items": len(pipeline.catalog)}

    @app.post("/items/delete", dependencies=secured)
    def delete_items(body: ItemIdsBody) -> dict[str, int]:
        pipeline.remove_items(body.item_ids)
        return {"removed": len(body.item_ids), "items": len(pipeline.catalog)}
