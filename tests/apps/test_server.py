"""The HTTP API, served for real by uvicorn on loopback, and fuzzed against its own
OpenAPI schema with schemathesis."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from conftest import build_pipeline, make_events, make_items

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from llmrec.apps.server import create_app, health_status  # noqa: E402
from llmrec.errors import ConfigError  # noqa: E402

KEY = "test-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    def __init__(self, app) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="module")
def pipeline():
    items = make_items(120)
    events, _ = make_events(items, n_users=24, per_user=10)
    return build_pipeline(items, models=()).fit(events, show_progress=False)


@pytest.fixture(scope="module")
def base_url(pipeline):
    with _Server(create_app(pipeline, api_key=KEY)) as url:
        yield url


def call(base_url: str, method: str, path: str, body=None, key: str | None = KEY):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if key is not None:
        request.add_header("X-API-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read().decode()


def test_health_needs_no_key(base_url, pipeline) -> None:
    status, _, body = call(base_url, "GET", "/health", key=None)
    assert status == 200
    assert json.loads(body)["items"] == len(pipeline.catalog)
    assert json.loads(body) == health_status(pipeline)


def test_api_key_must_be_a_str(pipeline) -> None:
    with pytest.raises(ConfigError, match="api_key must be a str"):
        create_app(pipeline, api_key=1234)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", [None, "wrong", KEY + "x"])
def test_api_key_is_required(base_url, key) -> None:
    status, headers, body = call(base_url, "POST", "/recommend", {"user_id": "u001"}, key=key)
    assert status == 401 and json.loads(body)["error"] == "Unauthorized"


def test_recommend_matches_the_library(base_url, pipeline) -> None:
    status, _, body = call(base_url, "POST", "/recommend", {"user_id": "u002", "k": 5})
    assert status == 200
    got = json.loads(body)["recommendations"]
    want = pipeline.recommend("u002", 5, generate=False)
    assert [r["item_id"] for r in got] == [r.item_id for r in want]
    assert got[0]["explanation"]["signals"] and got[0]["generated"] is None


def test_errors_map_to_status_codes(base_url) -> None:
    status, _, body = call(base_url, "POST", "/recommend", {"user_id": "nobody"})
    assert status == 200  # an unknown user gets the flagged cold-start list
    assert {r["fallback"] for r in json.loads(body)["recommendations"]} == {"unknown_user"}
    status, _, body = call(base_url, "DELETE", "/users/nobody")
    assert status == 404 and json.loads(body)["error"] == "UnknownUserError"
    assert "nobody" in json.loads(body)["detail"]
    status, _, _ = call(base_url, "POST", "/recommend", {"user_id": "u001", "k": 0})
    assert status == 422
    status, _, body = call(
        base_url, "POST", "/events", {"events": [{"user_id": "u001", "item_id": "no-such-item"}]}
    )
    assert status == 404 and "no-such-item" in body
    status, _, _ = call(
        base_url, "POST", "/events", {"events": [{"user_id": "u001", "kind": "query"}]}
    )  # query needs text
    assert status == 422


def test_events_users_items_and_forget_round_trip(base_url, pipeline) -> None:
    status, _, _ = call(
        base_url,
        "POST",
        "/users",
        {"user_id": "web-user", "preferences": "space robots and aliens"},
    )
    assert status == 200
    status, _, _ = call(
        base_url,
        "POST",
        "/events",
        {"events": [{"user_id": "web-user", "item_id": "i003", "kind": "like"}]},
    )
    assert status == 200 and "i003" in pipeline.profile("web-user").seen
    item = {
        "item_id": "web-item",
        "title": "Galaxy Robots",
        "text": "space robot alien galaxy",
        "attributes": {"genres": ["scifi"], "year": 2020},
    }
    status, _, body = call(base_url, "PUT", "/items", {"items": [item]})
    assert status == 200 and "web-item" in pipeline.catalog
    status, _, body = call(
        base_url,
        "POST",
        "/recommend",
        {"user_id": "web-user", "k": 50, "filters": {"genres": "scifi"}},
    )
    assert "web-item" in [r["item_id"] for r in json.loads(body)["recommendations"]]
    status, _, _ = call(base_url, "POST", "/items/delete", {"item_ids": ["web-item"]})
    assert status == 200 and "web-item" not in pipeline.catalog
    status, _, _ = call(base_url, "DELETE", "/users/web-user")
    assert status == 200 and "web-user" not in pipeline.profiles
    status, _, _ = call(base_url, "DELETE", "/users/web-user")
    assert status == 404


def test_stream_sends_every_item_then_done(base_url) -> None:
    status, headers, body = call(base_url, "POST", "/recommend/stream", {"user_id": "u003", "k": 4})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    blocks = [b for b in body.split("\n\n") if b.strip()]
    kinds = [b.split("\n")[0] for b in blocks]
    assert kinds == ["event: item"] * 4 + ["event: done"]
    items = [json.loads(b.split("data: ", 1)[1]) for b in blocks[:4]]
    assert sorted(r["rank"] for r in items) == [1, 2, 3, 4]
    assert all(r["generated"]["text"] for r in items)
    status, _, body = call(base_url, "POST", "/recommend/stream", {"user_id": "u003", "k": 0})
    assert status == 422  # errors come before the stream opens


def test_openapi_schema_lists_every_route(base_url) -> None:
    status, _, body = call(base_url, "GET", "/openapi.json", key=None)
    paths = json.loads(body)["paths"]
    assert {
        "/health",
        "/recommend",
        "/recommend/stream",
        "/events",
        "/users",
        "/users/{user_id}",
        "/items",
        "/items/delete",
        "/items/{item_id}",
        "/metrics",
        "/admin/snapshot",
    } <= set(paths)


def _operations():
    pytest.importorskip("schemathesis")
    from schemathesis.openapi import from_dict

    app = create_app(build_pipeline(make_items(12), models=()), api_key=KEY)
    schema = from_dict(app.openapi())
    return schema, [op.ok() for op in schema.get_all_operations()]


def _fuzz(operation, base_url: str, statuses: dict[int, int]) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(
        max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(case=operation.as_strategy())
    def run(case) -> None:
        case.headers = {**(case.headers or {}), "X-API-Key": KEY}
        response = case.call(base_url=base_url, timeout=30)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (operation.label, response.text[:300])
        expected = (200, 401, 404, 422) + (
            (409,) if operation.label == "POST /admin/snapshot" else ()
        )
        assert response.status_code in expected, (operation.label, response.text[:300])

    run()


def test_fuzz_every_operation_against_its_schema(base_url, pipeline) -> None:
    # Requests generated from the app's own OpenAPI schema: never a 5xx, only documented
    # outcomes, and the pipeline stays usable.
    schema, operations = _operations()
    assert len(operations) >= 8
    statuses: dict[int, int] = {}
    for operation in operations:
        _fuzz(operation, base_url, statuses)
    assert sum(statuses.values()) >= 8 * 10 and 200 in statuses and 422 in statuses
    status, _, _ = call(base_url, "GET", "/health", key=None)
    assert status == 200
