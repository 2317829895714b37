"""HTTP API over a :class:`~llmrec.Pipeline` (extra ``server``: FastAPI, uvicorn,
prometheus-client).

    from llmrec.apps.server import create_app
    app = create_app(pipeline, api_key="secret")   # uvicorn module:app, or `llmrec serve`

Endpoints (the OpenAPI schema is served at ``/openapi.json``; Swagger UI at ``/docs`` and
ReDoc at ``/redoc``, both from assets bundled with llmrec, so they work offline):

* ``GET /health`` -- liveness and catalog / user counts (never needs the API key).
* ``GET /metrics`` -- Prometheus metrics (:mod:`llmrec.apps.metrics`).
* ``POST /recommend`` -- ranked items with titles, explanations and, optionally, generated
  text (``include_item``: each item too).
* ``POST /recommend/stream`` -- server-sent events: one ``item`` event per recommendation
  as soon as its text is written, then ``done``.
* ``POST /recommend/session`` and ``GET /items/{item_id}/similar`` -- an anonymous
  session's and an item's neighbours (where the pipeline has them).
* ``POST /events`` -- observe events (all validated before any is applied).
* ``POST /users``, ``GET /users/{user_id}`` (history, tags, stated preferences),
  ``DELETE /users/{user_id}`` (forget).
* ``PUT /items``, ``GET /items/{item_id}``, ``DELETE /items/{item_id}``
  (``POST /items/delete`` removes several; deprecated for single items).
* ``POST /admin/snapshot`` -- save the pipeline to its directory and compact the event log.

Every error comes back as ``{"error": <name>, "detail": <message>}``: 401 for a missing or
wrong ``X-API-Key``, 404 for an unknown user, item or route, 405 for a wrong method, 409
for a snapshot without a save directory, 413 for a body over ``max_body_bytes``, 422 for
invalid input (``InvalidInputError``, also for a body that fails the schema: non-finite
numbers and lone surrogates included), 503 when a backend is unavailable, 500 for a bug.
The detail never echoes input.
"""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import AsyncIterator
from http import HTTPStatus
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from llmrec.errors import ConfigError, LLMRecError

try:
    from fastapi import Depends, FastAPI, Query, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
    from fastapi.security import APIKeyHeader
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    from llmrec.apps._schemas import (
        EventsBody,
        ItemIdsBody,
        ItemsBody,
        RecommendBody,
        SessionBody,
        UserBody,
        answer,
        error_response,
        to_event,
        validation_detail,
    )
    from llmrec.apps.metrics import CONTENT_TYPE, ServerMetrics
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        f"llmrec.apps.server needs the server extra ({exc.name} is missing): "
        "pip install 'llmrec[server]'"
    ) from exc

from llmrec.apps.snapshot import Snapshots
from llmrec.types import Item

__all__ = ["MAX_BODY_BYTES", "create_app", "health_status"]

#: Largest request body accepted by default (a 10,000-item upsert fits).
MAX_BODY_BYTES = 64 * 1024 * 1024
#: Most history entries ``GET /users/{user_id}`` returns.
MAX_HISTORY = 500
STATIC = "/static"


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
    save_dir: str | Path | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> FastAPI:
    """Build the FastAPI app serving ``pipeline``.

    Args:
        pipeline: A fitted (or cold) :class:`~llmrec.Pipeline`.
        api_key: When set, every endpoint but ``/health`` and the bundled static assets
            needs header ``X-API-Key`` (``/docs``, ``/redoc`` and ``/openapi.json`` only
            with ``docs_need_key``).
        title: The OpenAPI title.
        docs_need_key: ``/docs``, ``/redoc`` and ``/openapi.json`` need the key too.
        save_dir: The pipeline's save directory: ``POST /admin/snapshot`` saves there
            (``app.state.snapshots`` is the :class:`~llmrec.apps.snapshot.Snapshots`).
        max_body_bytes: Larger request bodies get a 413.

    Raises:
        ConfigError: ``api_key`` is neither None nor a str, ``docs_need_key`` is not a
            bool, or it is true without an ``api_key``; a bad ``max_body_bytes``.
    """
    from llmrec._validate import check_int

    if api_key is not None and not isinstance(api_key, str):
        raise ConfigError(f"api_key must be a str or None, got {type(api_key).__name__}")
    if not isinstance(docs_need_key, bool):
        raise ConfigError(f"docs_need_key must be a bool, got {type(docs_need_key).__name__}")
    if docs_need_key and api_key is None:
        raise ConfigError("docs_need_key=True needs an api_key")
    max_body_bytes = check_int(max_body_bytes, "max_body_bytes", low=1)
    from llmrec import __version__

    app = FastAPI(
        title=title,
        version=__version__,
        description="Personalized recommendations with grounded generated text.",
        docs_url=None,
        redoc_url=None,
        **({} if not docs_need_key else {"openapi_url": None}),
    )
    snapshots = None if save_dir is None else Snapshots(pipeline, save_dir)
    metrics = ServerMetrics(pipeline, lambda: None if snapshots is None else snapshots.last)
    app.state.snapshots, app.state.metrics = snapshots, metrics
    app.add_middleware(_Guard, metrics=metrics, max_body_bytes=max_body_bytes)
    add_error_handlers(app)
    secured = _add_security(app, api_key)
    _add_docs(app, secured if docs_need_key else [], docs_need_key)

    @app.get("/health")
    def health() -> dict[str, Any]:
        return health_status(pipeline)

    @app.get("/metrics", dependencies=secured, response_class=Response)
    def prometheus() -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    _add_recommend_routes(app, pipeline, secured, metrics)
    _add_user_routes(app, pipeline, secured)
    _add_item_routes(app, pipeline, secured)
    _add_admin_routes(app, snapshots, secured)
    return app


# ---------------------------------------------------------------------------- plumbing
class _Guard:
    """ASGI middleware: counts and times every request, refuses bodies over the limit."""

    def __init__(self, app: Any, metrics: ServerMetrics, max_body_bytes: int) -> None:
        self.app, self.metrics, self.limit = app, metrics, max_body_bytes

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status, seen = time.perf_counter(), [500], [0]

        async def counting_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        async def limited_receive() -> Any:
            message = await receive()
            seen[0] += len(message.get("body", b""))
            if seen[0] > self.limit:
                raise HTTPException(413, self._too_large)
            return message

        try:
            if self._declared(scope) > self.limit:
                await answer("ContentTooLarge", self._too_large, 413)(scope, receive, counting_send)
            else:
                await self.app(scope, limited_receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                route, scope["method"], status[0], time.perf_counter() - started
            )

    @property
    def _too_large(self) -> str:
        return f"the request body is over {self.limit} bytes; send fewer items per request"

    @staticmethod
    def _declared(scope: Any) -> int:
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    return int(value)
                except ValueError:
                    return 0
        return 0


class _Unauthorized(Exception):
    pass


def add_error_handlers(app: FastAPI) -> None:
    """Every error in the one JSON shape, none echoing the request."""

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return answer("InvalidInputError", validation_detail(exc.errors()), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        try:
            name = HTTPStatus(exc.status_code).phrase.title().replace(" ", "")
        except ValueError:
            name = "HTTPError"
        name = "ContentTooLarge" if exc.status_code == 413 else name  # one name on every Python
        return answer(name, str(exc.detail), exc.status_code, getattr(exc, "headers", None))

    @app.exception_handler(LLMRecError)
    async def llmrec_error(request: Request, exc: LLMRecError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(Exception)
    async def bug(request: Request, exc: Exception) -> JSONResponse:
        return answer("InternalServerError", "an internal error; see the server log", 500)


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
        return answer(
            "Unauthorized",
            "missing or wrong X-API-Key",
            401,
            headers={"WWW-Authenticate": "APIKey"},
        )

    return [Depends(check_key)]


def _add_docs(app: FastAPI, secured: list[Any], own_schema: bool) -> None:
    """``/docs`` and ``/redoc`` from the bundled assets (``/static``), and with
    ``own_schema`` an ``/openapi.json`` behind the key."""
    static = resources.files("llmrec.apps") / "static"
    app.mount(STATIC, StaticFiles(directory=str(static)), name="static")
    if own_schema:

        @app.get("/openapi.json", dependencies=secured, include_in_schema=False)
        def openapi() -> JSONResponse:
            return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=secured, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - docs",
            swagger_js_url=f"{root}{STATIC}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC}/swagger-ui/favicon-32x32.png",
        )

    @app.get("/redoc", dependencies=secured, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_redoc_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC}/redoc/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC}/swagger-ui/favicon-32x32.png",
            with_google_fonts=False,
        )


# ---------------------------------------------------------------------------- routes
def result_json(pipeline: Any, rec: Any, include_item: bool) -> dict[str, Any]:
    """A recommendation as JSON, with its item's title (and the item itself)."""
    out = rec.to_dict()
    try:
        item = pipeline.catalog.get(rec.item_id)
    except LLMRecError:  # removed since it was ranked
        item = None
    out["title"] = None if item is None else item.title
    if include_item:
        out["item"] = None if item is None else item.to_dict()
    return out


IncludeItem = Annotated[
    bool, Query(description="add each recommended item (title, text, attributes)")
]


def _add_recommend_routes(
    app: FastAPI, pipeline: Any, secured: list[Any], metrics: ServerMetrics
) -> None:
    def results(recs: list[Any], include: bool) -> list[dict[str, Any]]:
        metrics.observe_recommendations(recs)
        return [result_json(pipeline, r, include) for r in recs]

    @app.post("/recommend", dependencies=secured)
    def recommend(body: RecommendBody, include_item: IncludeItem = False) -> dict[str, Any]:
        recs = pipeline.recommend(body.user_id, body.k, **body.options())
        include = include_item or body.include_item
        return {"user_id": body.user_id, "recommendations": results(recs, include)}

    @app.post(
        "/recommend/stream",
        dependencies=secured,
        response_class=StreamingResponse,
        responses={200: {"content": {"text/event-stream": {}}}},
    )
    async def recommend_stream(
        body: RecommendBody, include_item: IncludeItem = False
    ) -> StreamingResponse:
        options = body.options()
        options.pop("generate")  # a stream always writes the texts
        # Rank first, so a bad request gets a plain JSON error before the stream opens.
        stream = pipeline.arecommend_stream(body.user_id, body.k, **options)
        try:
            first = await anext(stream)
        except StopAsyncIteration:
            first = None
        include = include_item or body.include_item
        events = sse(first, stream, lambda rec: results([rec], include)[0])
        return StreamingResponse(events, media_type="text/event-stream")

    @app.post("/recommend/session", dependencies=secured)
    def recommend_session(body: SessionBody, include_item: IncludeItem = False) -> Any:
        """Recommendations for an anonymous session from the items it touched (oldest
        first); no user is stored or changed."""
        recs = pipeline.recommend_session(body.history, body.k, **body.options())
        return {"recommendations": results(recs, include_item or body.include_item)}

    @app.get("/items/{item_id}/similar", dependencies=secured)
    def similar(
        item_id: str, k: int = Query(10, ge=1, le=1000), include_item: IncludeItem = False
    ) -> dict[str, Any]:
        """The ``k`` items most like ``item_id`` (itself left out)."""
        recs = pipeline.similar_items(item_id, k)
        return {"item_id": item_id, "recommendations": results(recs, include_item)}


async def sse(first: Any, stream: AsyncIterator[Any], render: Any) -> AsyncIterator[str]:
    """Server-sent events: one ``item`` per recommendation (``render(rec)`` as JSON), then
    ``done`` with the count."""
    count = 0
    if first is not None:
        count += 1
        yield f"event: item\ndata: {json.dumps(render(first))}\n\n"
        async for rec in stream:
            count += 1
            yield f"event: item\ndata: {json.dumps(render(rec))}\n\n"
    yield f"event: done\ndata: {json.dumps({'count': count})}\n\n"


def _profile(pipeline: Any, user_id: str, history: int) -> dict[str, Any]:
    """``GET /users/{user_id}``: the newest ``history`` events, tag affinities, statements."""
    profile = pipeline.profile(user_id)
    entries = list(profile.history)[-history:][::-1]  # a copy: the profile may change
    titles = {}
    for entry in entries:
        try:
            titles[entry.item_id] = pipeline.catalog.get(entry.item_id).title
        except LLMRecError:
            titles[entry.item_id] = None
    tags = sorted(dict(profile.tag_affinity).items(), key=lambda kv: -abs(kv[1]))[:50]
    return {
        "user_id": user_id,
        "n_events": profile.n_events,
        "n_seen": len(profile.seen),
        "history": [
            {
                "item_id": e.item_id,
                "title": titles[e.item_id],
                "kind": e.kind,
                "weight": float(e.weight),
                "timestamp": float(e.timestamp),
            }
            for e in entries
        ],
        "tags": {tag: float(weight) for tag, weight in tags},
        "preferences": list(profile.stated_preferences),
    }


def _add_user_routes(app: FastAPI, pipeline: Any, secured: list[Any]) -> None:
    @app.post("/events", dependencies=secured)
    def observe(body: EventsBody) -> dict[str, int]:
        events = [to_event(e) for e in body.events]
        pipeline.observe_many(events)
        return {"observed": len(events)}

    @app.post("/users", dependencies=secured)
    def add_user(body: UserBody) -> dict[str, str]:
        pipeline.add_user(body.user_id, body.preferences)
        return {"user_id": body.user_id}

    @app.get("/users/{user_id}", dependencies=secured)
    def get_user(user_id: str, history: int = Query(50, ge=0, le=MAX_HISTORY)) -> dict[str, Any]:
        return _profile(pipeline, user_id, history)

    @app.delete("/users/{user_id}", dependencies=secured)
    def forget(user_id: str) -> dict[str, str]:
        pipeline.forget(user_id)
        return {"forgotten": user_id}


def _add_item_routes(app: FastAPI, pipeline: Any, secured: list[Any]) -> None:
    @app.put("/items", dependencies=secured)
    def upsert_items(body: ItemsBody) -> dict[str, int]:
        items = [Item(**i.model_dump()) for i in body.items]
        pipeline.add_items(items)
        return {"upserted": len(items), "items": len(pipeline.catalog)}

    @app.get("/items/{item_id}", dependencies=secured)
    def get_item(item_id: str) -> dict[str, Any]:
        return pipeline.catalog.get(item_id).to_dict()

    @app.delete("/items/{item_id}", dependencies=secured)
    def delete_item(item_id: str) -> dict[str, int]:
        pipeline.remove_items([item_id])
        return {"removed": 1, "items": len(pipeline.catalog)}

    @app.post(
        "/items/delete",
        dependencies=secured,
        deprecated=True,
        description="Remove several items at once; for one item use DELETE /items/{item_id}.",
    )
    def delete_items(body: ItemIdsBody) -> dict[str, int]:
        pipeline.remove_items(body.item_ids)
        return {"removed": len(body.item_ids), "items": len(pipeline.catalog)}


def _add_admin_routes(app: FastAPI, snapshots: Snapshots | None, secured: list[Any]) -> None:
    @app.post(
        "/admin/snapshot",
        dependencies=secured,
        responses={409: {"description": "the server has no save directory"}},
    )
    def snapshot() -> Any:
        """Save the pipeline to its directory (atomically), then drop the event-log
        records the save holds. The changes made meanwhile stay in the log."""
        if snapshots is None:
            return answer(
                "ConfigError",
                "this server has no save directory: serve a save (llmrec serve SAVE) or "
                "pass create_app(save_dir=...)",
                409,
            )
        return snapshots.snapshot()
