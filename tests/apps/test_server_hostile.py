"""Hostile request bodies never get a 5xx: non-finite numbers (``NaN``, ``Infinity``,
``1e999999``) and lone-surrogate escapes in every field of every endpoint come back as a
4xx in the server's one error shape ``{"error": ..., "detail": ...}``."""

from __future__ import annotations

import json

import pytest
from conftest import build_pipeline, make_events, make_items

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from llmrec.apps.server import create_app  # noqa: E402

KEY = "test-key"
MARK = "__HOSTILE__"
NUMBERS = ("NaN", "Infinity", "-Infinity", "1e999999", "-1e999999")
SURROGATES = ('"\\ud800"', '"x\\udc00y"', '"\\udfff\\ud800"')
TOKENS = NUMBERS + SURROGATES
LONE = "\ud800"

# (method, path, a valid body, the paths of its fields: tuples of keys and list indices).
EVENT = {"user_id": "u001", "item_id": "i003", "kind": "like", "value": 1.0, "timestamp": 5.0}
ITEM = {"item_id": "new", "title": "T", "text": "x", "attributes": {"genres": ["a"], "year": 1}}
ENDPOINTS = [
    (
        "POST",
        "/recommend",
        {
            "user_id": "u001",
            "k": 3,
            "query": "space",
            "generate": False,
            "exclude_seen": True,
            "filters": {"genres": ["scifi"], "year": "x"},
            "diversity": 0.5,
            "budget_s": 1.0,
        },
    ),
    ("POST", "/recommend/stream", {"user_id": "u001", "k": 2, "query": "space", "budget_s": 1.0}),
    ("POST", "/events", {"events": [EVENT, {"user_id": "u002", "kind": "query", "text": "q"}]}),
    ("POST", "/users", {"user_id": "new-user", "preferences": "robots"}),
    ("PUT", "/items", {"items": [ITEM]}),
    ("POST", "/items/delete", {"item_ids": ["i001", "i002"]}),
    (
        "POST",
        "/recommend/session",
        {"history": ["i001"], "k": 2, "filters": {"year": {"min": 1990, "max": 2000}}},
    ),
]


def _leaves(value, path=()):
    """Every path to a value (dict keys and list indices), the containers included."""
    if path:
        yield path
    if isinstance(value, dict):
        for key, sub in value.items():
            yield from _leaves(sub, (*path, key))
    elif isinstance(value, list):
        for n, sub in enumerate(value):
            yield from _leaves(sub, (*path, n))


def _replace(body, path, new):
    body = json.loads(json.dumps(body))
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = new
    return body


def _cases():
    """(method, path, raw body): each token in each field, and as a key of each mapping."""
    for method, url, body in ENDPOINTS:
        for path in _leaves(body):
            for token in TOKENS:
                raw = json.dumps(_replace(body, path, MARK)).replace(f'"{MARK}"', token)
                yield method, url, raw
        mappings = [()] + [p for p in _leaves(body) if isinstance(_get(body, p), dict)]
        for path in mappings:
            for token in SURROGATES:
                holder = _get(body, path)
                raw = json.dumps(_replace_key(body, path, holder)).replace(f'"{MARK}"', token)
                yield method, url, raw


def _get(body, path):
    for part in path:
        body = body[part]
    return body


def _replace_key(body, path, holder):
    extra = {**holder, MARK: "v"}
    return extra if not path else _replace(body, path, extra)


@pytest.fixture(scope="module")
def client():
    items = make_items(60)
    events, _ = make_events(items, n_users=12, per_user=6)
    pipe = build_pipeline(items, models=()).fit(events, show_progress=False)
    with TestClient(create_app(pipe, api_key=KEY), raise_server_exceptions=False) as c:
        yield c


def _send(client, method: str, url: str, raw: str):
    headers = {"Content-Type": "application/json", "X-API-Key": KEY}
    return client.request(method, url, content=raw.encode(), headers=headers)


def _assert_error_shape(response) -> dict:
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    return body


def test_hostile_bodies_get_a_4xx_in_the_error_shape(client) -> None:
    cases = list(_cases())
    assert len(cases) >= 250
    statuses: dict[int, int] = {}
    for method, url, raw in cases:
        response = _send(client, method, url, raw)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500, (url, raw, response.status_code, response.text[:200])
        if response.status_code >= 400 or any(s in raw for s in SURROGATES):
            assert 400 <= response.status_code < 500, (url, raw, response.text[:200])
            body = _assert_error_shape(response)
            assert LONE not in body["detail"] and "\udc00" not in body["detail"]
    assert statuses.get(422, 0) >= len(cases) * 0.9, statuses
    assert client.get("/health").status_code == 200


@pytest.mark.parametrize("token", TOKENS)
def test_the_detail_names_the_field_without_echoing_the_input(client, token) -> None:
    raw = '{"events": [{"user_id": "u001", "item_id": "i003", "value": TOKEN}]}'
    raw = raw.replace("TOKEN", token)
    response = _send(client, "POST", "/events", raw)
    assert response.status_code == 422
    body = _assert_error_shape(response)
    assert body["error"] == "InvalidInputError"
    assert "events" in body["detail"] and len(body["detail"]) < 1000


def test_unknown_keys_with_lone_surrogates_are_described_safely(client) -> None:
    raw = '{"user_id": "u001", "\\ud800\\udc00\\ud800": 1}'
    response = _send(client, "POST", "/recommend", raw)
    assert response.status_code == 422
    assert "\\ud800" in _assert_error_shape(response)["detail"]


@pytest.mark.parametrize(
    "raw, status",
    [
        ('{"user_id": "u001", "k": 3', 422),  # not JSON
        ('{"user_id": "u001", "k": 1' + "0" * 5000 + "}", 400),  # a number too long to read
        ("[1, 2]", 422),
        ("null", 422),
        ("", 422),
    ],
)
def test_unreadable_bodies_get_the_error_shape(client, raw, status) -> None:
    response = _send(client, "POST", "/recommend", raw)
    assert response.status_code == status
    _assert_error_shape(response)


def test_a_path_with_bad_utf8_and_unknown_routes_get_the_error_shape(client) -> None:
    for path in ("/users/%ED%A0%80", "/users/%FF", "/users/%00"):
        for method in ("DELETE", "GET"):
            response = client.request(method, path, headers={"X-API-Key": KEY})
            assert response.status_code in (404, 422)
            _assert_error_shape(response)
    for path in ("/items/%ED%A0%80", "/items/%FF/similar", "/items/%00"):
        for method in ("DELETE", "GET"):
            if method == "DELETE" and path.endswith("similar"):
                continue
            response = client.request(method, path, headers={"X-API-Key": KEY})
            assert response.status_code in (404, 422), (method, path, response.text)
            _assert_error_shape(response)
    response = client.get("/no-such-route")
    assert response.status_code == 404 and _assert_error_shape(response)["error"] == "NotFound"
    response = client.get("/recommend", headers={"X-API-Key": KEY})
    assert response.status_code == 405 and _assert_error_shape(response)
