"""llmrec.apps.ray on a local two-CPU Ray instance: encode_catalog with Ray Data, the
Ray Serve deployment with dynamic batching (slow: ~40 s on two busy cores, most of it Ray
starting processes). Skipped where Ray is not installed, apart from the checks that need
no Ray."""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import build_pipeline as build_local_pipeline
from conftest import make_items

from llmrec import BackendUnavailableError, ConfigError, Event, InvalidInputError
from llmrec.apps.ray import build_pipeline, encode_catalog, pipeline_app
from llmrec.encoding import ItemEncoder
from llmrec.errors import UnknownUserError

HAS_RAY = all(importlib.util.find_spec(name) is not None for name in ("ray", "fastapi"))
needs_ray = pytest.mark.skipif(not HAS_RAY, reason="needs the ray extra: pip install 'llmrec[ray]'")


@pytest.fixture(scope="module")
def ray_session() -> Iterator[None]:
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        if "ray.serve" in sys.modules:
            from ray import serve

            serve.shutdown()
        ray.shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------- no Ray needed
def test_missing_ray_names_the_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(BackendUnavailableError, match=r"llmrec\[ray\]"):
        encode_catalog(make_items(3), encoder="hashing")
    with pytest.raises(BackendUnavailableError, match=r"llmrec\[ray\]"):
        pipeline_app("somewhere")


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"num_workers": 0}, ConfigError),
        ({"batch_size": True}, ConfigError),
        ({"cpus_per_worker": -1}, ConfigError),
        ({"cpus_per_worker": True}, ConfigError),
        ({"num_workers": 2.0}, ConfigError),
        ({"encoder_options": {1: "x"}}, ConfigError),
        ({"encoder": object()}, ConfigError),
        ({"encoder_options": ["model"]}, ConfigError),
        ({"device": 0}, ConfigError),
    ],
)
def test_encode_catalog_checks_arguments_before_ray(kwargs, error) -> None:
    with pytest.raises(error):
        encode_catalog(make_items(3), **{"encoder": "hashing", **kwargs})


def test_encode_catalog_refuses_empty_and_non_items() -> None:
    with pytest.raises(InvalidInputError):
        encode_catalog([], encoder="hashing")
    with pytest.raises(InvalidInputError, match=r"items\[0\]"):
        encode_catalog(["a text"], encoder="hashing")  # type: ignore[list-item]


def test_build_pipeline_uses_the_vectors_and_equals_from_catalog(items, events) -> None:
    vectors = ItemEncoder("hashing", device="cpu").encode_items(items)
    built = build_pipeline(
        items,
        vectors,
        encoder="hashing",
        llm="template",
        device="cpu",
        models=(),
        show_progress=False,
    )
    reference = build_local_pipeline(items, models=())
    assert built.encoder.backend.name == "hashing"
    assert type(built.encoder.backend) is type(reference.encoder.backend)
    for pipe in (built, reference):
        pipe.observe_many(events[:200])
    users = sorted({e.user_id for e in events[:200]})
    for user in users:
        assert [r.item_id for r in built.recommend(user, 10, generate=False)] == [
            r.item_id for r in reference.recommend(user, 10, generate=False)
        ]
    # Vectors that are not the encoder's change the result: they really are used.
    shuffled = build_pipeline(
        items,
        vectors[::-1].copy(),
        encoder="hashing",
        llm="template",
        device="cpu",
        models=(),
        show_progress=False,
    )
    shuffled.observe_many(events[:200])
    assert any(
        [r.item_id for r in shuffled.recommend(u, 10, generate=False)]
        != [r.item_id for r in reference.recommend(u, 10, generate=False)]
        for u in users
    )


def test_build_pipeline_checks_the_vector_shape(items) -> None:
    with pytest.raises(InvalidInputError, match="rows"):
        build_pipeline(
            items,
            np.zeros((len(items) - 1, 256), np.float32),
            encoder="hashing",
            llm="template",
            device="cpu",
        )


# ---------------------------------------------------------------------------- Ray Data
@needs_ray
@pytest.mark.slow
@pytest.mark.parametrize("num_workers", [1, 2])
def test_encode_catalog_equals_item_encoder_in_order(ray_session, num_workers) -> None:
    items = make_items(400, seed=3)[::-1]  # ids out of order: rows follow the input
    expected = ItemEncoder("hashing", device="cpu").encode_items(items)
    vectors = encode_catalog(
        items,
        encoder="hashing",
        encoder_options={"dim": 256},
        num_workers=num_workers,
        batch_size=64,
        device="auto",
        show_progress=False,
    )
    assert vectors.dtype == np.float32 and vectors.shape == expected.shape
    np.testing.assert_array_equal(vectors, expected)


# ---------------------------------------------------------------------------- Ray Serve
@needs_ray
@pytest.mark.slow
def test_serve_batches_concurrent_calls_and_equals_the_local_pipeline(
    ray_session, pipeline_factory, events
) -> None:
    from ray import serve

    local = pipeline_factory(models=())
    port = _free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    app = pipeline_app(
        local,
        max_batch_size=8,
        batch_wait_timeout_s=0.2,
        pipeline_options={"device": "cpu", "llm": "template"},
        api_key="ray-key",
    )
    handle = serve.run(app, name="llmrec-test", route_prefix="/", blocking=False)

    users = sorted({e.user_id for e in events})[:16]
    # Submitted together, so the replica finds several waiting per batch.
    responses = [handle.recommend.remote(u, 5, generate=True) for u in users]
    unknown = handle.recommend.remote("nobody-at-all", 5, fallback=False)
    results = [r.result(timeout_s=60) for r in responses]
    with pytest.raises(UnknownUserError):
        unknown.result(timeout_s=60)  # fails alone; its batch-mates were answered
    for user, recs in zip(users, results):
        expected = local.recommend(user, 5, generate=True)
        assert [r.item_id for r in recs] == [r.item_id for r in expected]
        np.testing.assert_allclose([r.score for r in recs], [r.score for r in expected], rtol=1e-6)
        assert [r.text for r in recs] == [r.text for r in expected]
    sizes = handle.batch_sizes.remote().result(timeout_s=60)
    assert sum(sizes) == len(users) + 1
    assert max(sizes) > 1, sizes

    # Calls with different options share a batch and still get their own answers.
    mixed = [handle.recommend.remote(users[0], k) for k in (1, 2, 3)]
    assert [len(r.result(timeout_s=60)) for r in mixed] == [1, 2, 3]

    # observe passes through to the replica's pipeline.
    event = Event("newcomer", local.catalog.item_ids()[0], kind="like", timestamp=2e9)
    handle.observe.remote(event).result(timeout_s=60)
    local.observe(event)
    got = handle.recommend.remote("newcomer", 5, generate=False).result(timeout_s=60)
    assert [r.item_id for r in got] == [
        r.item_id for r in local.recommend("newcomer", 5, generate=False)
    ]

    # HTTP: the server's request bodies and error format.
    def post(path: str, body: dict, key: str | None = "ray-key", raw: bool = False) -> tuple:
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["X-API-Key"] = key
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(), headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                data = response.read().decode()
                return response.status, data if raw else json.loads(data)
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    # The API key: every HTTP route but /health needs it, in the server's error shape.
    valid = {"user_id": users[0], "k": 2}
    for key in (None, "wrong"):
        for path, body in (
            ("/recommend", valid),
            ("/recommend/stream", valid),
            ("/events", {"events": [{"user_id": "web", "item_id": event.item_id}]}),
        ):
            status, answer = post(path, body, key=key)
            assert status == 401 and answer["error"] == "Unauthorized", (path, answer)
    status, answer = post("/recommend", {"user_id": users[0], "k": "x"})
    assert status == 422 and set(answer) == {"error", "detail"}  # the one error shape
    status, text = post("/recommend/stream", {"user_id": users[0], "k": 3}, raw=True)
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert status == 200 and [b.split("\n")[0] for b in blocks] == ["event: item"] * 3 + [
        "event: done"
    ]
    streamed = sorted(json.loads(b.split("data: ", 1)[1])["item_id"] for b in blocks[:3])
    assert streamed == sorted(r.item_id for r in local.recommend(users[0], 3, generate=False))

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda u: post("/recommend", {"user_id": u, "k": 3}), users[:4]))
    for user, (status, body) in zip(users[:4], answers):
        assert status == 200
        assert all(
            r["title"] == local.catalog.get(r["item_id"]).title for r in body["recommendations"]
        )
        assert [r["item_id"] for r in body["recommendations"]] == [
            r.item_id for r in local.recommend(user, 3, generate=False)
        ]
    status, body = post("/recommend", {"user_id": "nobody-at-all"})
    assert status == 200  # the flagged cold-start list
    assert {r["fallback"] for r in body["recommendations"]} == {"unknown_user"}
    assert post("/recommend", {"user_id": users[0], "k": 0})[0] == 422
    status, body = post("/events", {"events": [{"user_id": "web", "item_id": event.item_id}]})
    assert (status, body) == (200, {"observed": 1})
    serve.delete("llmrec-test")
