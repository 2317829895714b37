"""The HTTP API served for real by uvicorn on loopback: typed filters, titles and items in
results, user and item reads, DELETE /items/{id}, the one error shape on every 4xx/5xx,
Swagger UI and ReDoc from bundled assets only, and /metrics scraped and parsed after
traffic."""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.request

import pytest
from conftest import build_pipeline, make_events, make_items
from test_server import KEY, _Server, call

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
parser = pytest.importorskip("prometheus_client.parser")

from llmrec.apps.server import create_app  # noqa: E402
from llmrec.types import Item  # noqa: E402


def _items() -> list[Item]:
    # Typed attributes: a float price, an int year, a bool, a list of genres.
    out = []
    for n, item in enumerate(make_items(60)):
        attributes = {
            **item.attributes,
            "price": round(5.0 + n * 0.5, 2),
            "in_stock": n % 3 != 0,
        }
        out.append(dataclasses.replace(item, attributes=attributes))
    return out


@pytest.fixture(scope="module")
def pipeline():
    items = _items()
    events, _ = make_events(items, n_users=12, per_user=8)
    return build_pipeline(items, models=()).fit(events, show_progress=False)


@pytest.fixture(scope="module")
def base_url(pipeline):
    with _Server(create_app(pipeline, api_key=KEY, max_body_bytes=200_000)) as url:
        yield url


def _recommend(base_url, body, path="/recommend"):
    status, _, text = call(base_url, "POST", path, {"user_id": "u001", "k": 60, **body})
    return status, json.loads(text)


def _error_shape(text: str) -> dict:
    body = json.loads(text)
    assert set(body) == {"error", "detail"}, body
    assert isinstance(body["error"], str) and isinstance(body["detail"], str)
    return body


# ---------------------------------------------------------------------------- filters
def test_typed_filters_over_http_match_the_library(base_url, pipeline) -> None:
    cases = [
        {"price": {"min": 10.0, "max": 20}},
        {"price": 12.5},
        {"year": [1975, 1980]},
        {"in_stock": False},
        {"genres": "scifi", "price": {"min": 25}},
        {"price": {"max": 8}},
    ]
    for filters in cases:
        status, body = _recommend(base_url, {"filters": filters, "exclude_seen": False})
        assert status == 200, (filters, body)
        got = [r["item_id"] for r in body["recommendations"]]
        want = pipeline.recommend("u001", 60, filters=filters, exclude_seen=False, generate=False)
        assert got == [r.item_id for r in want], filters
        assert got, filters  # every case matches something: the comparison is not vacuous
        for rec in body["recommendations"]:
            attributes = pipeline.catalog.get(rec["item_id"]).attributes
            for key, wanted in filters.items():
                value = attributes[key]
                if isinstance(wanted, dict):
                    assert wanted.get("min", -1e9) <= value <= wanted.get("max", 1e9)
                elif isinstance(wanted, list):
                    assert value in wanted
                elif isinstance(value, list):
                    assert wanted in value
                else:
                    assert value == wanted and type(value) is type(wanted)


def test_bool_filter_does_not_match_numbers(pipeline) -> None:
    # True == 1 to Python; a filter on a bool matches only bools, a number only numbers.
    assert not pipeline.recommend("u001", 60, filters={"year": True}, generate=False)
    assert not pipeline.recommend("u001", 60, filters={"in_stock": 1}, generate=False)
    assert pipeline.recommend("u001", 60, filters={"in_stock": True}, generate=False)


@pytest.mark.parametrize(
    "filters, words",
    [
        ({"price": {"min": 30, "max": 10}}, "min 30 above max 10"),
        ({"price": {"low": 3}}, "'min' and/or 'max'"),
        ({"price": {"min": "cheap"}}, "must be a number"),
        ({"price": [1.0, [2.0]]}, "must be a str, int, float or bool"),
        ({"price": float("nan")}, "must be a str, int, float or bool"),
    ],
)
def test_malformed_filters_are_refused(pipeline, filters, words) -> None:
    from llmrec.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=re.escape(words)):
        pipeline.recommend("u001", 5, filters=filters, generate=False)


def test_an_unknown_filter_key_warns_once_naming_the_known_keys(pipeline, caplog) -> None:
    with pytest.warns(UserWarning, match="'prize'") as caught:
        assert pipeline.recommend("u001", 5, filters={"prize": 3}, generate=False) == []
    assert len(caught) == 1
    message = str(caught[0].message)
    assert all(key in message for key in ("genres", "in_stock", "price", "year"))
    assert "prize" in caplog.text


def test_filter_bodies_over_http(base_url) -> None:
    status, body = _recommend(base_url, {"filters": {"price": {"min": 1, "max": 0}}})
    assert status == 422 and "above max" in body["detail"]
    status, body = _recommend(base_url, {"filters": {"price": {"min": 1, "step": 2}}})
    assert status == 422 and body["error"] == "InvalidInputError"
    status, body = _recommend(base_url, {"filters": {"price": 19.0}})  # a 422 before C3
    assert status == 200


# ---------------------------------------------------------------------------- results
def test_results_carry_titles_and_optionally_items(base_url, pipeline) -> None:
    status, body = _recommend(base_url, {"k": 3})
    assert status == 200
    for rec in body["recommendations"]:
        assert rec["title"] == pipeline.catalog.get(rec["item_id"]).title
        assert "item" not in rec
    for path, extra in (
        ("/recommend?include_item=true", {}),
        ("/recommend", {"include_item": True}),
    ):
        status, body = _recommend(base_url, {"k": 3, **extra}, path=path)
        assert status == 200
        for rec in body["recommendations"]:
            assert rec["item"] == pipeline.catalog.get(rec["item_id"]).to_dict()
    status, headers, text = call(
        base_url, "POST", "/recommend/stream?include_item=true", {"user_id": "u002", "k": 2}
    )
    items = [json.loads(b.split("data: ", 1)[1]) for b in text.split("\n\n") if "event: item" in b]
    assert len(items) == 2 and all(r["title"] and r["item"]["item_id"] for r in items)


def test_get_user_profile(base_url, pipeline) -> None:
    call(base_url, "POST", "/users", {"user_id": "reader", "preferences": "space robots"})
    call(
        base_url,
        "POST",
        "/events",
        {"events": [{"user_id": "reader", "item_id": i, "kind": "like"} for i in ("i004", "i010")]},
    )
    status, _, text = call(base_url, "GET", "/users/reader")
    assert status == 200
    body = json.loads(text)
    assert [h["item_id"] for h in body["history"]] == ["i010", "i004"]  # newest first
    assert body["history"][0]["title"] == pipeline.catalog.get("i010").title
    assert body["history"][0]["kind"] == "like" and body["history"][0]["weight"] > 0
    assert body["preferences"] == ["space robots"] and body["n_events"] >= 3
    genre = pipeline.catalog.get("i004").attributes["genres"][0]
    assert body["tags"][genre] > 0
    status, _, text = call(base_url, "GET", "/users/reader?history=1")
    assert [h["item_id"] for h in json.loads(text)["history"]] == ["i010"]
    status, _, text = call(base_url, "GET", "/users/nobody-here")
    assert status == 404 and _error_shape(text)["error"] == "UnknownUserError"


def test_get_and_delete_items(base_url, pipeline) -> None:
    status, _, text = call(base_url, "GET", "/items/i007")
    assert status == 200 and json.loads(text) == pipeline.catalog.get("i007").to_dict()
    item = {"item_id": "gone", "title": "Soon Gone", "text": "robot", "attributes": {"price": 1}}
    assert call(base_url, "PUT", "/items", {"items": [item]})[0] == 200
    status, _, text = call(base_url, "DELETE", "/items/gone")
    assert status == 200 and json.loads(text)["removed"] == 1 and "gone" not in pipeline.catalog
    status, _, text = call(base_url, "DELETE", "/items/gone")
    assert status == 404 and _error_shape(text)["error"] == "UnknownItemError"
    status, _, text = call(base_url, "GET", "/items/gone")
    assert status == 404 and "gone" in _error_shape(text)["detail"]


def test_schema_marks_the_old_delete_deprecated(base_url) -> None:
    paths = json.loads(call(base_url, "GET", "/openapi.json", key=None)[2])["paths"]
    assert paths["/items/delete"]["post"]["deprecated"] is True
    assert "delete" in paths["/items/{item_id}"] and "get" in paths["/items/{item_id}"]
    assert "get" in paths["/users/{user_id}"] and "/admin/snapshot" in paths
    assert "/metrics" in paths


# ---------------------------------------------------------------------------- errors
def test_one_error_shape_for_every_status(base_url) -> None:
    seen = []
    cases = [
        ("POST", "/recommend", {"user_id": "u001"}, "wrong-key"),  # 401
        ("GET", "/no/such/route", None, KEY),  # 404 route
        ("GET", "/items/no-such-item", None, KEY),  # 404 LLMRecError
        ("PUT", "/recommend", {"user_id": "u001"}, KEY),  # 405
        ("PUT", "/items", {"items": [{"item_id": "x", "title": "t" * 300_000}]}, KEY),  # 413
        ("POST", "/recommend", {"user_id": "u001", "k": "many"}, KEY),  # 422 schema
        ("POST", "/recommend", {"user_id": "u001", "filters": {"p": {"min": 2, "max": 1}}}, KEY),
        ("POST", "/admin/snapshot", None, KEY),  # 409: no save directory
    ]
    for method, path, body, key in cases:
        status, _, text = call(base_url, method, path, body, key=key)
        seen.append((status, _error_shape(text)["error"]))
    assert sorted(status for status, _ in seen) == [401, 404, 404, 405, 409, 413, 422, 422]
    names = {name for _, name in seen}
    assert {"Unauthorized", "NotFound", "UnknownItemError", "MethodNotAllowed"} <= names
    assert {"ContentTooLarge", "InvalidInputError", "ConfigError"} <= names


def test_a_bug_is_a_500_in_the_same_shape(pipeline) -> None:
    from fastapi.testclient import TestClient

    class Broken:
        catalog, profiles = pipeline.catalog, pipeline.profiles
        retriever, ranker, generator = pipeline.retriever, pipeline.ranker, pipeline.generator
        event_log = None

        def recommend(self, *args, **kwargs):
            raise RuntimeError("a bug with a secret inside")

    client = TestClient(create_app(Broken()), raise_server_exceptions=False)
    response = client.post("/recommend", json={"user_id": "u001"})
    assert response.status_code == 500
    body = _error_shape(response.text)
    assert body["error"] == "InternalServerError" and "secret" not in body["detail"]


# ---------------------------------------------------------------------------- docs
ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\s*:\s*["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_refer_only_to_local_assets(base_url, page) -> None:
    status, headers, html = call(base_url, "GET", page, key=None)
    assert status == 200 and headers["content-type"].startswith("text/html")
    refs = [a or b for a, b in ASSET.findall(html)]
    assert refs and not [r for r in refs if "://" in r or r.startswith("//")], refs
    assert "http://" not in html and "https://" not in html
    for ref in refs:
        with urllib.request.urlopen(base_url + ref, timeout=30) as response:
            assert response.status == 200 and len(response.read()) > 10, ref
    assets = [r for r in refs if r.endswith(".js")]
    assert assets and all(r.startswith("/static/") for r in assets)


# ---------------------------------------------------------------------------- metrics
def _samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def _value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_after_traffic(tmp_path) -> None:
    items = make_items(40)
    events, _ = make_events(items, n_users=6, per_user=6)
    pipe = build_pipeline(items, models=()).fit(events, show_progress=False)
    pipe.open_event_log(tmp_path / "events.log", fsync="never")
    app = create_app(pipe, api_key=KEY, save_dir=tmp_path / "save")
    with _Server(app) as url:
        status, _, _ = call(url, "GET", "/metrics", key=None)
        assert status == 401  # protected like the other routes
        for _ in range(3):
            assert _recommend(url, {"k": 4, "generate": True})[0] == 200
        assert _recommend(url, {"k": 4, "generate": True})[0] == 200  # the same texts: cached
        for _ in range(2):
            assert call(url, "POST", "/recommend", {"user_id": "ghost-x"})[0] in (200, 404)
        body = {"events": [{"user_id": "u002", "item_id": "i001", "kind": "click"}]}
        assert call(url, "POST", "/events", body)[0] == 200
        status, headers, text = call(url, "GET", "/metrics")
        assert status == 200 and headers["content-type"].startswith("text/plain")
        samples = _samples(text)
        assert (
            _value(
                samples,
                "llmrec_http_requests_total",
                route="/recommend",
                method="POST",
                status="200",
            )
            >= 4
        )
        assert (
            _value(
                samples, "llmrec_http_requests_total", route="/metrics", method="GET", status="401"
            )
            == 1
        )
        assert (
            _value(
                samples, "llmrec_http_requests_total", route="/events", method="POST", status="200"
            )
            == 1
        )
        count = _value(
            samples, "llmrec_http_request_duration_seconds_count", route="/recommend", method="POST"
        )
        assert count >= 4
        for stage in ("retrieve", "rank", "generate"):
            n = _value(samples, "llmrec_stage_duration_seconds_count", stage=stage)
            assert n >= 4, stage
            assert _value(samples, "llmrec_stage_duration_seconds_sum", stage=stage) > 0
        texts = sum(v for (name, _), v in samples.items() if name == "llmrec_generated_texts_total")
        assert texts == 16
        assert (
            _value(
                samples, "llmrec_generated_texts_total", source="template", fallback_reason="none"
            )
            + sum(
                v
                for (name, labels), v in samples.items()
                if name == "llmrec_generated_texts_total" and ("source", "template") in labels
            )
            >= 16
        )  # the template backend writes every text
        hits = _value(samples, "llmrec_generator_cache_total", result="hit")
        misses = _value(samples, "llmrec_generator_cache_total", result="miss")
        assert hits + misses == 16 and hits >= 4
        assert _value(samples, "llmrec_event_log_records") == 1
        assert _value(samples, "llmrec_seconds_since_snapshot") == -1
        assert call(url, "POST", "/admin/snapshot")[0] == 200
        samples = _samples(call(url, "GET", "/metrics")[2])
        assert 0 <= _value(samples, "llmrec_seconds_since_snapshot") < 60
        assert _value(samples, "llmrec_event_log_records") == 0  # compacted into the save
    pipe.close()


def test_two_apps_count_apart(pipeline) -> None:
    from fastapi.testclient import TestClient

    first, second = create_app(pipeline), create_app(pipeline)
    TestClient(first).post("/recommend", json={"user_id": "u003", "k": 2})
    one = _samples(TestClient(first).get("/metrics").text)
    two = _samples(TestClient(second).get("/metrics").text)
    labels = {"route": "/recommend", "method": "POST", "status": "200"}
    assert _value(one, "llmrec_http_requests_total", **labels) == 1
    assert _value(two, "llmrec_http_requests_total", **labels) == 0
    # Both apps time the shared pipeline's stages, once each per call.
    assert _value(one, "llmrec_stage_duration_seconds_count", stage="rank") == _value(
        two, "llmrec_stage_duration_seconds_count", stage="rank"
    )


# ---------------------------------------------------------------------------- C1 routes
def test_session_and_similar_items_match_the_library(base_url, pipeline) -> None:
    body = {"history": ["i001", "i007"], "k": 5, "filters": {"price": {"max": 30}}}
    status, _, text = call(base_url, "POST", "/recommend/session", body)
    assert status == 200, text
    got = json.loads(text)["recommendations"]
    want = pipeline.recommend_session(["i001", "i007"], 5, filters={"price": {"max": 30}})
    assert [r["item_id"] for r in got] == [r.item_id for r in want] and got
    assert all(r["title"] for r in got) and not {"i001", "i007"} & {r["item_id"] for r in got}
    status, _, text = call(base_url, "GET", "/items/i003/similar?k=4&include_item=true")
    assert status == 200, text
    got = json.loads(text)["recommendations"]
    assert [r["item_id"] for r in got] == [r.item_id for r in pipeline.similar_items("i003", 4)]
    assert len(got) == 4 and "i003" not in [r["item_id"] for r in got]
    assert all(r["item"]["item_id"] == r["item_id"] for r in got)
    status, _, text = call(base_url, "GET", "/items/nope/similar")
    assert status == 404 and _error_shape(text)["error"] == "UnknownItemError"
    status, _, text = call(base_url, "POST", "/recommend/session", {"history": ["nope"]})
    assert status in (404, 422) and set(json.loads(text)) == {"error", "detail"}


def test_an_unknown_user_gets_the_fallback_and_it_is_counted(pipeline) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(pipeline))
    response = client.post("/recommend", json={"user_id": "first-visit", "k": 3})
    assert response.status_code == 200
    recs = response.json()["recommendations"]
    assert len(recs) == 3 and all(r.get("fallback") == "unknown_user" for r in recs)
    samples = _samples(client.get("/metrics").text)
    assert _value(samples, "llmrec_recommendations_total", fallback="unknown_user") == 3


def test_a_streamed_body_over_the_limit_is_a_413(pipeline) -> None:
    from fastapi.testclient import TestClient

    client = TestClient(create_app(pipeline, max_body_bytes=1000))

    def chunks():  # no Content-Length: the limit is counted while the body arrives
        yield b'{"items": [{"item_id": "big", "title": "'
        for _ in range(10):
            yield b"t" * 500
        yield b'"}]}'

    headers = {"Content-Type": "application/json"}
    response = client.put("/items", content=chunks(), headers=headers)
    assert response.status_code == 413, response.text
    assert _error_shape(response.text)["error"] == "ContentTooLarge"
    assert "big" not in pipeline.catalog
    small = {"items": [{"item_id": "small", "title": "S"}]}
    assert client.put("/items", json=small).status_code == 200
    assert client.delete("/items/small").status_code == 200
