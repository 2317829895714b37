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

Every error comes back as ``{"error": <name>, "detail": <message>}``: 404 for an unknown
user or item, 422 for invalid input (``InvalidInputError``, also for a body that fails the
schema: non-finite numbers and lone surrogates included), 503 when a backend is
unavailable and 401 for a missing or wrong ``X-API-Key``. The detail never echoes input.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import AsyncIterator, Sequence
from http import HTTPStatus
from typing import Annotated, Any, Literal

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
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
    from fastapi.security import APIKeyHeader
    from pydantic import BaseModel, ConfigDict, Field, model_validator
    from starlette.exceptions import HTTPException
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        f"llmrec.apps.server needs the server extra ({exc.name} is missing): "
        "pip install 'llmrec[server]'"
    ) from exc

__all__ = ["create_app", "health_status"]

MAX_K = 1000
MAX_BATCH = 10_000
Id = Field(min_length=1, max_length=512)
MAX_ERRORS = 5  # validation problems named in one error detail
EventKind = Literal[tuple(sorted(EVENT_WEIGHTS))]  # type: ignore[valid-type]
Finite = Annotated[float, Field(allow_inf_nan=False)]
AttributeValue = str | int | Finite | bool | list[str] | None


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in ``value`` (keys included) a string with a lone surrogate is, or None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else where
    if isinstance(value, dict):
        for key, sub in value.items():
            name = f"{where}.{_safe(str(key), 64)}" if where else _safe(str(key), 64)
            if isinstance(key, str) and not _encodes(key):
                return f"{name} (a key)"
            found = _lone_surrogate(sub, name)
            if found:
                return found
    elif isinstance(value, list):
        for n, sub in enumerate(value):
            found = _lone_surrogate(sub, f"{where}[{n}]")
            if found:
                return found
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _safe(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates written as escapes."""
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_unicode(cls, data: Any) -> Any:
        where = _lone_surrogate(data, "")
        if where is not None:
            raise ValueError(f"{where or 'a string'} is not valid Unicode (a lone surrogate)")
        return data


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
    return _answer(type(exc).__name__, str(exc), _status(exc))


def _answer(error: str, detail: str, status: int, headers: Any = None) -> JSONResponse:
    """The one error shape; the detail is cut and made encodable."""
    return JSONResponse(
        {"error": error, "detail": _safe(detail, 2000)}, status_code=status, headers=headers
    )


def _where(loc: Sequence[Any]) -> str:
    """A validation error's location, ``events[0].value``, safe to send back."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + _safe(str(part), 64)
    return text or "body"


def _validation_detail(errors: Sequence[Any]) -> str:
    """What failed and where, never the rejected input (it may not even be encodable)."""
    parts = []
    for e in errors[:MAX_ERRORS]:
        if e.get("type") == "json_invalid":
            reason = _safe(str((e.get("ctx") or {}).get("error", "")), 100)
            at = _safe(str((e.get("loc") or ("?",))[-1]), 20)
            parts.append(f"body is not JSON (character {at}: {reason})")
        else:
            parts.append(f"{_where(e.get('loc', ()))}: {_safe(str(e.get('msg', 'invalid')))}")
    more = len(errors) - MAX_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") if parts else "invalid"


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


def create_app(
    pipeline: Any,
    *,
    api_key: str | None = None,
    title: str = "llmrec",
    docs_need_key: bool = False,
) -> FastAPI:
    """Build the FastAPI app serving ``pipeline``.

    Args:
        pipeline: A fitted (or cold) :class:`~llmrec.Pipeline`.
        api_key: When set, every endpoint but ``/health`` needs header ``X-API-Key``
            (``/docs``, ``/redoc`` and ``/openapi.json`` only with ``docs_need_key``).
        title: The OpenAPI title.
        docs_need_key: ``/docs``, ``/redoc`` and ``/openapi.json`` need the key too.

    Raises:
        ConfigError: ``api_key`` is neither None nor a str, ``docs_need_key`` is not a
            bool, or it is true without an ``api_key``.
    """
    if api_key is not None and not isinstance(api_key, str):
        raise ConfigError(f"api_key must be a str or None, got {type(api_key).__name__}")
    if not isinstance(docs_need_key, bool):
        raise ConfigError(f"docs_need_key must be a bool, got {type(docs_need_key).__name__}")
    if docs_need_key and api_key is None:
        raise ConfigError("docs_need_key=True needs an api_key")
    from llmrec import __version__

    public_docs = {} if not docs_need_key else dict(openapi_url=None, docs_url=None, redoc_url=None)
    app = FastAPI(
        title=title,
        version=__version__,
        description="Personalized recommendations with grounded generated text.",
        **public_docs,
    )
    _add_error_handlers(app)
    secured = _add_security(app, api_key)
    if docs_need_key:
        _add_secured_docs(app, secured)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return health_status(pipeline)

    _add_recommend_routes(app, pipeline, secured)
    _add_write_routes(app, pipeline, secured)
    return app


class _Unauthorized(Exception):
    pass


def _add_error_handlers(app: FastAPI) -> None:
    """Every error in the one JSON shape, none echoing the request."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _answer("InvalidInputError", _validation_detail(exc.errors()), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        try:
            name = HTTPStatus(exc.status_code).phrase.title().replace(" ", "")
        except ValueError:
            name = "HTTPError"
        return _answer(name, str(exc.detail), exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(LLMRecError)
    async def llmrec_error(request: Request, exc: LLMRecError) -> JSONResponse:
        return _error(exc)


def _add_security(app: FastAPI, api_key: str | None) -> list[Any]:
    """The API-key dependency of secured routes (and the answer to a missing key)."""
    header = APIKeyHeader(name="X-API-Key", auto_error=False)

    def check_key(key: str | None = Depends(header)) -> None:
        if api_key is not None and (
            key is None or not hmac.compare_digest(key.encode(), api_key.encode())
        ):
            raise _Unauthorized()

    @app.exception_handler(_Unauthorized)
    async def unauthorized(request: Request, exc: _Unauthorized) -> JSONResponse:
        return _answer(
            "Unauthorized",
            "missing or wrong X-API-Key",
            401,
            headers={"WWW-Authenticate": "APIKey"},
        )

    return [Depends(check_key)]


def _add_secured_docs(app: FastAPI, secured: list[Any]) -> None:
    """``/openapi.json``, ``/docs`` and ``/redoc`` behind the API key."""

    @app.get("/openapi.json", dependencies=secured, include_in_schema=False)
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=secured, include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - docs")

    @app.get("/redoc", dependencies=secured, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=f"{app.title} - ReDoc")


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
