"""``llmrec serve`` is durable by default: every change answered with 200 is in the event
log next to the save, and a restart replays it (forgetting included). Also the API key
in front of ``/docs``, ``/redoc`` and ``/openapi.json``."""

from __future__ import annotations

import shutil

import pytest
from conftest import small_save

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402

import llmrec.apps.server as server  # noqa: E402
from llmrec.apps.cli import event_log_path, main  # noqa: E402
from llmrec.errors import ConfigError  # noqa: E402
from llmrec.pipeline import Pipeline  # noqa: E402

KEY = "test-key"
HEADERS = {"X-API-Key": KEY}
NEW_ITEM = {"item_id": "web-item", "title": "Galaxy Robots", "text": "space robot alien"}


@pytest.fixture
def save(tmp_path):
    return small_save(tmp_path / "recsys")


class _Serve:
    """Runs ``llmrec serve`` with uvicorn replaced: ``during`` gets a client and the
    pipeline, while the server would be up."""

    def __init__(self, monkeypatch) -> None:
        self.monkeypatch = monkeypatch
        self.pipes: list = []
        real = server.create_app

        def spy(pipe, **options):
            self.pipes.append(pipe)
            return real(pipe, **options)

        monkeypatch.setattr(server, "create_app", spy)

    def __call__(self, save, *options: str, during=None) -> int:
        def run(app, **_):
            with TestClient(app, raise_server_exceptions=False) as client:
                if during is not None:
                    during(client, self.pipes[-1])

        self.monkeypatch.setattr(uvicorn, "run", run)
        return main(["serve", str(save), "--device", "cpu", "--api-key", KEY, "-q", *options])


def _changes(client, pipe) -> None:
    """Events, a new user, a new item and a forgotten user: each answered 200."""
    body = {"events": [{"user_id": "web", "item_id": "i003", "kind": "like"}]}
    assert client.post("/events", json=body, headers=HEADERS).status_code == 200
    body = {"user_id": "stated", "preferences": "space robots"}
    assert client.post("/users", json=body, headers=HEADERS).status_code == 200
    body = {"items": [NEW_ITEM]}
    assert client.put("/items", json=body, headers=HEADERS).status_code == 200
    assert client.delete("/users/u001", headers=HEADERS).status_code == 200
    assert "u001" not in pipe.profiles


def _changed(pipe) -> bool:
    return (
        "i003" in pipe.profile("web").seen
        and "stated" in pipe.profiles
        and "web-item" in pipe.catalog
        and "u001" not in pipe.profiles
    )


def test_changes_and_forget_survive_a_restart(save, monkeypatch) -> None:
    serve = _Serve(monkeypatch)
    assert serve(save, during=_changes) == 0
    assert event_log_path(save) == save.parent / "recsys.events.log"
    assert event_log_path(save).is_file()
    assert serve(save) == 0 and _changed(serve.pipes[-1])
    # Forget survives a second restart, and the user's records are gone from the log.
    assert serve(save) == 0 and "u001" not in serve.pipes[-1].profiles
    log = event_log_path(save).read_text()
    assert '"u001"' not in log and "web-item" in log
    # The save itself is untouched: a server without the log starts from it.
    assert serve(save, "--no-event-log") == 0
    pipe = serve.pipes[-1]
    assert "web" not in pipe.profiles and "u001" in pipe.profiles


def test_a_200_is_in_the_log_before_the_answer(save, tmp_path) -> None:
    # What a crash leaves: the log as it is on disk while the server still runs.
    pipe = Pipeline.from_pretrained(save, device="cpu")
    pipe.open_event_log(tmp_path / "live.log", fsync="never")
    with TestClient(server.create_app(pipe, api_key=KEY)) as client:
        _changes(client, pipe)
        shutil.copy(tmp_path / "live.log", tmp_path / "crashed.log")
    recovered = Pipeline.from_pretrained(save, device="cpu")
    assert recovered.open_event_log(tmp_path / "crashed.log") == 4
    assert _changed(recovered)
    pipe.close()
    recovered.close()


def test_event_log_options(save, tmp_path, monkeypatch, capsys) -> None:
    serve = _Serve(monkeypatch)
    custom = tmp_path / "logs" / "mine.log"
    custom.parent.mkdir()
    assert serve(save, "--event-log", str(custom), "--fsync", "batch", during=_changes) == 0
    assert custom.is_file() and not event_log_path(save).exists()
    assert "fsync=batch" in capsys.readouterr().out
    assert serve(save, "--event-log", str(custom), "--fsync", "never") == 0
    assert _changed(serve.pipes[-1])
    # --no-event-log: nothing is written, nothing is replayed.
    assert serve(save, "--no-event-log", during=_changes) == 0
    assert not event_log_path(save).exists()
    assert "lost when the server stops" in capsys.readouterr().out
    assert serve(save, "--no-event-log", "--fsync", "always") == 2
    assert "--fsync" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        serve(save, "--no-event-log", "--event-log", str(custom))
    with pytest.raises(SystemExit):
        serve(save, "--fsync", "sometimes")


def test_a_second_server_on_the_same_log_is_refused(save, monkeypatch, capsys) -> None:
    serve = _Serve(monkeypatch)
    codes: list[int] = []

    def second(client, pipe) -> None:
        codes.append(main(["serve", str(save), "--device", "cpu", "-q"]))

    assert serve(save, during=second) == 0
    assert codes == [2] and "llmrec: error" in capsys.readouterr().err


# ---------------------------------------------------------------------------- docs key
DOCS = ("/docs", "/redoc", "/openapi.json")


def test_docs_are_public_by_default(save) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    client = TestClient(server.create_app(pipe, api_key=KEY))
    for path in DOCS:
        assert client.get(path).status_code == 200, path


def test_docs_need_key(save) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    app = server.create_app(pipe, api_key=KEY, docs_need_key=True)
    client = TestClient(app)
    for path in DOCS:
        for headers in ({}, {"X-API-Key": "wrong"}):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, path
            assert response.json()["error"] == "Unauthorized"
        assert client.get(path, headers=HEADERS).status_code == 200, path
    schema = client.get("/openapi.json", headers=HEADERS).json()
    assert "/recommend" in schema["paths"] and "/docs" not in schema["paths"]
    assert "/openapi.json" in client.get("/docs", headers=HEADERS).text
    assert client.get("/health").status_code == 200


def test_docs_need_key_needs_a_key(save) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    with pytest.raises(ConfigError, match="needs an api_key"):
        server.create_app(pipe, docs_need_key=True)
    with pytest.raises(ConfigError, match="must be a bool"):
        server.create_app(pipe, api_key=KEY, docs_need_key="yes")  # type: ignore[arg-type]


def test_serve_docs_need_key(save, monkeypatch) -> None:
    serve = _Serve(monkeypatch)
    statuses: list[int] = []

    def docs(client, pipe) -> None:
        statuses.extend(client.get(path).status_code for path in DOCS)
        statuses.extend(client.get(path, headers=HEADERS).status_code for path in DOCS)

    assert serve(save, "--docs-need-key", "--no-event-log", during=docs) == 0
    assert statuses == [401] * 3 + [200] * 3
    statuses.clear()
    assert serve(save, "--no-event-log", during=docs) == 0
    assert statuses == [200] * 6
