"""Every chat backend against one behavioural suite, plus the HTTP behaviour of the
``openai`` backend (a stdlib fake server on loopback, and a real ``llama_cpp.server``)
and the ``llamacpp`` backend's own details."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from llmrec import available_backends
from llmrec.catalog import Catalog
from llmrec.errors import BackendUnavailableError, ConfigError, GenerationError, InvalidInputError
from llmrec.generation import ContentGenerator, ReasonRequest
from llmrec.generation.llms.base import ChatBackend, StreamingChat
from llmrec.generation.llms.openai import BASE_URL_ENV, OpenAIChat
from llmrec.generation.llms.template import TemplateChat
from llmrec.registry import get_backend
from llmrec.types import Item

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me why a long film about space and robots is good."},
    ],
    [{"role": "user", "content": "Name a film about a shark"}],
    [{"role": "user", "content": "Name a film"}, {"role": "assistant", "content": "You may like"}],
    [{"role": "user", "content": "Another question that is a bit longer than the first"}],
]

MOVIES = [
    ("1", "Toy Story (1995)", ["Animation", "Children's", "Comedy"]),
    ("2", "Aladdin (1992)", ["Animation", "Children's", "Comedy", "Musical"]),
    ("3", "Heat (1995)", ["Action", "Crime", "Thriller"]),
    ("4", "Die Hard (1988)", ["Action", "Thriller"]),
    ("5", "Titanic (1997)", ["Drama", "Romance"]),
    ("6", "Casablanca (1942)", ["Drama", "Romance", "War"]),
]


def movie_catalog() -> Catalog:
    return Catalog(Item(i, t, "", {"genres": g}) for i, t, g in MOVIES)


def reason_requests(catalog: Catalog) -> list[ReasonRequest]:
    return [
        ReasonRequest("u", catalog.get(t), (catalog.get(e),), {"co_occurrence": 1.0})
        for t, e in (("1", "2"), ("3", "4"), ("5", "6"))
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def has_llama_cpp() -> bool:
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- fake server


class FakeOpenAIServer:
    """A minimal OpenAI-compatible server on loopback.

    ``failures`` holds ``(status, headers)`` answers given, in order, before any success;
    ``delay(body)`` is the seconds to wait before answering; ``reply(messages)`` is the
    answer text, unless ``raw_answer`` is set (sent as is: a str raw, else as JSON).
    Every request is recorded in ``requests``.
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.delay: Callable[[dict], float] = lambda body: 0.0
        self.reply: Callable[[list[dict]], str] = lambda messages: (
            "answer to " + messages[-1]["content"]
        )
        self.raw_answer: Any = None
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = (
                    payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake.requests.append(
                    {"method": "GET", "path": self.path, "headers": dict(self.headers)}
                )
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": "fake-model"}]})
                else:
                    self._send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.requests.append(
                        {
                            "method": "POST",
                            "path": self.path,
                            "headers": dict(self.headers),
                            "body": body,
                        }
                    )
                    failure = fake.failures.pop(0) if fake.failures else None
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    if failure is not None:
                        status, headers = failure
                        # Echo the credentials, as a careless server might.
                        self._send(
                            status,
                            {"error": f"failed for {self.headers.get('Authorization')}"},
                            headers,
                        )
                        return
                    time.sleep(fake.delay(body))
                    if fake.raw_answer is not None:
                        self._send(200, fake.raw_answer)
                        return
                    text = fake.reply(body["messages"])
                    self._send(
                        200,
                        {
                            "object": "chat.completion",
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "message": {"role": "assistant", "content": text},
                                    "finish_reason": "stop",
                                }
                            ],
                        },
                    )
                except (BrokenPipeError, ConnectionResetError):  # the client gave up
                    pass
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def posts(self) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def no_openai_env(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)


# --------------------------------------------------------------------------- real server

# Starts llama_cpp.server; on CPUs with AMX the model is loaded without llama.cpp's extra
# buffer types (the server has no setting for it), as LlamaCppChat does.
_SERVER_LAUNCHER = """
import contextlib, runpy, sys
from llmrec.generation.llms.llamacpp import cpu_has_amx, llama_model_params_without_extra_buffers
sys.argv = ["llama_cpp.server", *sys.argv[1:]]
guard = llama_model_params_without_extra_buffers() if cpu_has_amx() else contextlib.nullcontext()
with guard:
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    """``python -m llama_cpp.server`` with the embedded GGUF on a free loopback port."""
    if not has_llama_cpp():
        pytest.skip("llama-cpp-python is not installed (scripts/setup.sh installs it)")
    from llmrec.generation.llms.base import default_llm_path

    port = free_port()
    # The server's log goes to a file: llama.cpp writes tens of KB while loading, and an
    # unread pipe would fill and block the server before it starts listening.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed at teardown
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _SERVER_LAUNCHER,
            "--model",
            str(default_llm_path()),
            "--model_alias",
            "smollm2",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "2048",
            "--n_threads",
            "1",
            "--n_threads_batch",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    url = f"http://127.0.0.1:{port}/v1"

    def log_tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-2000:]

    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}: {log_tail()}")
            try:
                with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"llama_cpp.server did not answer /v1/models within 120 s: {log_tail()}"
                )
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


# --------------------------------------------------------------------------- conformance


def _template(request) -> ChatBackend:
    return TemplateChat()


def _transformers(request) -> ChatBackend:
    from llmrec.generation.llms.transformers import TransformersChat

    return TransformersChat(device="cpu")


def _llamacpp(request) -> ChatBackend:
    if not has_llama_cpp():
        pytest.skip("llama-cpp-python is not installed (scripts/setup.sh installs it)")
    from llmrec.generation.llms.llamacpp import LlamaCppChat

    return LlamaCppChat(device="cpu", n_threads=1)


def _openai_fake(request) -> ChatBackend:
    server = FakeOpenAIServer()
    request.addfinalizer(server.close)
    return OpenAIChat(base_url=server.url, backoff_s=0.01)


def _openai_llama_server(request) -> ChatBackend:
    return OpenAIChat(base_url=request.getfixturevalue("llama_server"), timeout_s=120)


# name -> (factory, answers depend only on the conversation). llama_cpp.server reuses its
# KV cache across requests, so a repeated prompt may be answered slightly differently.
BACKENDS: dict[str, tuple[Callable[[Any], ChatBackend], bool]] = {
    "template": (_template, True),
    "transformers": (_transformers, True),
    "llamacpp": (_llamacpp, True),
    "openai-fake-server": (_openai_fake, True),
    "openai-llama-server": (_openai_llama_server, False),
}
SLOW = {"transformers", "llamacpp", "openai-llama-server"}


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(name, marks=[pytest.mark.slow] if name in SLOW else [], id=name)
        for name in BACKENDS
    ],
)
def backend_case(request) -> tuple[str, ChatBackend, bool]:
    factory, deterministic = BACKENDS[request.param]
    return request.param, factory(request), deterministic


def test_llamacpp_and_openai_are_registered() -> None:
    assert {"llamacpp", "openai", "template", "transformers"} <= set(available_backends("llms"))


def test_backend_follows_the_protocol_and_is_registered(backend_case) -> None:
    _, chat, _ = backend_case
    assert isinstance(chat, ChatBackend)
    assert chat.name in available_backends("llms")
    assert get_backend("llms", chat.name) is type(chat)


def test_generate_answers_every_conversation_in_order(backend_case) -> None:
    name, chat, deterministic = backend_case
    out = chat.generate(CONVERSATIONS, max_new_tokens=8)
    assert isinstance(out, list) and len(out) == len(CONVERSATIONS)
    assert all(isinstance(text, str) for text in out)
    if name != "template":
        assert all(text.strip() for text in out), out
    if name == "openai-fake-server":
        assert out == ["answer to " + c[-1]["content"] for c in CONVERSATIONS]
    if deterministic:
        assert chat.generate(CONVERSATIONS[::-1], max_new_tokens=8) == out[::-1]
    assert chat.generate([], max_new_tokens=8) == []


def test_stream_yields_every_index_exactly_once(backend_case) -> None:
    _, chat, deterministic = backend_case
    pairs = list(chat.stream(CONVERSATIONS, max_new_tokens=8))
    assert Counter(i for i, _ in pairs) == Counter(range(len(CONVERSATIONS)))
    assert all(isinstance(text, str) for _, text in pairs)
    if deterministic:
        assert dict(pairs) == dict(enumerate(chat.generate(CONVERSATIONS, max_new_tokens=8)))
    assert list(chat.stream([], max_new_tokens=8)) == []


@pytest.mark.parametrize(
    "conversations",
    [
        [[]],
        ["not a conversation"],
        "not a list of conversations",
        [[{"role": "robot", "content": "beep"}]],
        [[{"role": "user"}]],
        [[{"role": "user", "content": 42}]],
        42,
        [["not a message"]],
        [42],
    ],
    ids=[
        "empty-conversation",
        "str-conversation",
        "str",
        "bad-role",
        "no-content",
        "int-content",
        "int",
        "str-message",
        "int-conversation",
    ],
)
def test_malformed_conversations_are_invalid_input(backend_case, conversations) -> None:
    _, chat, _ = backend_case
    with pytest.raises(InvalidInputError):
        chat.generate(conversations, max_new_tokens=8)
    with pytest.raises(InvalidInputError):
        chat.stream(conversations, max_new_tokens=8)  # checked before the first next()


@pytest.mark.parametrize("max_new_tokens", [0, -3, True, 2.5, "8"])
def test_bad_max_new_tokens_is_a_config_error_naming_it(backend_case, max_new_tokens) -> None:
    _, chat, _ = backend_case
    with pytest.raises(ConfigError, match="max_new_tokens"):
        chat.generate(CONVERSATIONS[:1], max_new_tokens=max_new_tokens)
    with pytest.raises(ConfigError, match=repr(max_new_tokens).replace(".", r"\.")):
        chat.stream(CONVERSATIONS[:1], max_new_tokens=max_new_tokens)


def test_config_is_json_and_round_trips(backend_case) -> None:
    _, chat, _ = backend_case
    config = chat.config()
    assert json.loads(json.dumps(config)) == config
    assert type(chat)(**config).config() == config


# --------------------------------------------------------------------------- the stream check


def _streaming_backends() -> list[type[StreamingChat]]:
    from llmrec.generation.llms.llamacpp import LlamaCppChat
    from llmrec.generation.llms.transformers import TransformersChat

    return [TransformersChat, LlamaCppChat, OpenAIChat, TemplateChat]


@pytest.mark.parametrize("cls", _streaming_backends(), ids=lambda cls: cls.name)
def test_every_streaming_backend_checks_its_input_at_the_call(cls, monkeypatch) -> None:
    # No model is loaded: the check runs before the backend's own code is reached.
    assert "stream" not in vars(cls) and "generate" not in vars(cls)
    chat = object.__new__(cls)
    reached: list[Any] = []
    monkeypatch.setattr(
        cls,
        "_stream",
        lambda self, conversations, max_new_tokens: (
            reached.append((conversations, max_new_tokens)) or iter([(0, "fine")])
        ),
    )
    with pytest.raises(InvalidInputError):
        chat.stream([[{"role": "robot", "content": "beep"}]], max_new_tokens=8)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        chat.stream(CONVERSATIONS[:1], max_new_tokens=True)
    assert reached == []
    assert chat.generate([({"role": "user", "content": "Hi"},)], max_new_tokens=8) == ["fine"]
    assert reached == [([[{"role": "user", "content": "Hi"}]], 8)]  # checked, as plain lists


def test_a_streaming_chat_needs_only_its_stream() -> None:
    class Echo(StreamingChat):
        name = "echo"

        def config(self) -> dict[str, Any]:
            return {}

        def _stream(self, conversations, max_new_tokens):
            for index in reversed(range(len(conversations))):
                yield index, conversations[index][-1]["content"][:max_new_tokens]

    echo = Echo()
    assert isinstance(echo, ChatBackend)
    assert echo.generate(CONVERSATIONS[:2], max_new_tokens=4) == ["Hi", "Tell"]
    with pytest.raises(InvalidInputError):
        echo.stream("not a list of conversations")
    with pytest.raises(TypeError):
        type("Incomplete", (StreamingChat,), {})()  # _stream is abstract


@pytest.mark.parametrize(
    "module", ["llmrec.generation.llms.openai", "llmrec.generation.llms.llamacpp"]
)
def test_openai_and_llamacpp_do_not_import_transformers(module) -> None:
    # llmrec itself imports torch (devices, encoders), so transformers is what is checked.
    code = (
        f"import sys, {module}\n"
        "heavy = [m for m in ('transformers', 'llmrec.generation.llms.transformers',\n"
        "                     'llmrec.generation.llms._llama') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------- openai: HTTP


def chat_for(fake: FakeOpenAIServer, **options: Any) -> OpenAIChat:
    options.setdefault("backoff_s", 0.01)
    return OpenAIChat(base_url=fake.url, **options)


def test_request_body_and_default_model_lookup(fake) -> None:
    chat = chat_for(fake)
    assert chat.generate(CONVERSATIONS[:2], max_new_tokens=12) == [
        "answer to Hi",
        "answer to " + CONVERSATIONS[1][-1]["content"],
    ]
    chat.generate(CONVERSATIONS[:1], max_new_tokens=12)
    assert [r["path"] for r in fake.requests if r["method"] == "GET"] == ["/v1/models"]  # once
    posts = fake.posts()
    assert {r["path"] for r in posts} == {"/v1/chat/completions"}
    body = next(r["body"] for r in posts if r["body"]["messages"] == CONVERSATIONS[1])
    assert body["model"] == "fake-model" and body["max_tokens"] == 12
    assert body["temperature"] == 0 and body["stream"] is False
    assert "continue_final_message" not in body
    assert posts[0]["headers"]["Content-Type"] == "application/json"
    assert "Authorization" not in posts[0]["headers"]


def test_named_model_is_sent_without_a_lookup(fake) -> None:
    chat_for(fake, model="served-name").generate(CONVERSATIONS[:1])
    assert all(r["method"] == "POST" for r in fake.requests)
    assert fake.posts()[0]["body"]["model"] == "served-name"


def test_continue_final_message_is_sent_only_for_a_final_assistant_message(fake) -> None:
    chat_for(fake, continue_final_message=True).generate(CONVERSATIONS[2:4])
    bodies = {r["body"]["messages"][-1]["role"]: r["body"] for r in fake.posts()}
    assert bodies["assistant"]["continue_final_message"] is True
    assert bodies["assistant"]["add_generation_prompt"] is False
    assert "continue_final_message" not in bodies["user"]


def test_503_twice_then_ok_is_retried(fake) -> None:
    fake.failures = [(503, {}), (503, {})]
    started = time.perf_counter()
    assert chat_for(fake, max_retries=3).generate(CONVERSATIONS[:1]) == ["answer to Hi"]
    assert len(fake.posts()) == 3
    assert time.perf_counter() - started < 2.0  # 0.01 s, then 0.02 s of backoff


def test_429_honours_retry_after(fake) -> None:
    fake.failures = [(429, {"Retry-After": "0.3"})]
    started = time.perf_counter()
    assert chat_for(fake, max_retries=1).generate(CONVERSATIONS[:1]) == ["answer to Hi"]
    assert len(fake.posts()) == 2 and time.perf_counter() - started >= 0.3


def test_gives_up_after_max_retries_naming_the_url(fake) -> None:
    fake.failures = [(500, {})] * 5
    with pytest.raises(GenerationError, match="3 attempt") as info:
        chat_for(fake, max_retries=2).generate(CONVERSATIONS[:1])
    assert f"{fake.url}/chat/completions" in str(info.value) and "HTTP 500" in str(info.value)
    assert len(fake.posts()) == 3


@pytest.mark.parametrize("status", [400, 401, 404, 422])
def test_client_errors_are_not_retried(fake, status) -> None:
    fake.failures = [(status, {})] * 3
    with pytest.raises(GenerationError, match=f"HTTP {status}"):
        chat_for(fake, max_retries=3).generate(CONVERSATIONS[:1])
    assert len(fake.posts()) == 1


def test_timeout_raises_generation_error_naming_the_url(fake) -> None:
    fake.delay = lambda body: 2.0
    started = time.perf_counter()
    with pytest.raises(GenerationError, match="timed out") as info:
        chat_for(fake, timeout_s=0.2, max_retries=1).generate(CONVERSATIONS[:1])
    assert fake.url in str(info.value)
    assert len(fake.posts()) == 2 and time.perf_counter() - started < 1.5


def test_unreachable_server_raises_generation_error_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    chat = OpenAIChat("m", base_url=url, max_retries=2, backoff_s=0.01)
    with pytest.raises(GenerationError, match="3 attempt") as info:
        chat.generate(CONVERSATIONS[:1])
    assert f"{url}/chat/completions" in str(info.value)
    assert isinstance(info.value, RuntimeError)


def test_malformed_answers_raise_generation_error(fake) -> None:
    fake.reply = lambda messages: None  # content null is an empty answer
    assert chat_for(fake).generate(CONVERSATIONS[:1]) == [""]
    fake.raw_answer = {"choices": []}
    with pytest.raises(GenerationError, match="choices"):
        chat_for(fake, model="m").generate(CONVERSATIONS[:1])
    fake.raw_answer = "not json"
    with pytest.raises(GenerationError, match="invalid JSON"):
        chat_for(fake, model="m").generate(CONVERSATIONS[:1])


def test_api_key_is_sent_but_never_shown(fake) -> None:
    secret = "sk-test-0123456789"
    chat = chat_for(fake, api_key=secret)
    chat.generate(CONVERSATIONS[:1])
    assert fake.posts()[0]["headers"]["Authorization"] == f"Bearer {secret}"
    assert secret not in repr(chat) and secret not in json.dumps(chat.config())
    fake.failures = [(401, {})]  # the fake echoes the Authorization header back
    with pytest.raises(GenerationError, match="401") as info:
        chat.generate(CONVERSATIONS[:1])
    assert secret not in str(info.value) and "***" in str(info.value)


def test_api_key_and_base_url_default_to_the_environment(fake, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.setenv(BASE_URL_ENV, fake.url + "/")
    chat = OpenAIChat(backoff_s=0.01)
    assert chat.base_url == fake.url
    chat.generate(CONVERSATIONS[:1])
    assert fake.posts()[0]["headers"]["Authorization"] == "Bearer sk-from-env"
    assert "sk-from-env" not in json.dumps(chat.config())


def test_missing_base_url_is_a_config_error_naming_the_variable() -> None:
    with pytest.raises(ConfigError, match=BASE_URL_ENV):
        OpenAIChat()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("timeout_s", 0),
        ("timeout_s", "10"),
        ("max_retries", -1),
        ("max_retries", 1.5),
        ("backoff_s", -1),
        ("temperature", -0.5),
        ("temperature", 3),
        ("concurrency", 0),
        ("concurrency", True),
        ("continue_final_message", "yes"),
        ("continue_final_message", 1),
        ("show_progress", 1),
        ("max_retries", True),
        ("timeout_s", True),
        ("model", ""),
        ("base_url", "ftp://example.org/v1"),
        ("base_url", "localhost:8000"),
        ("base_url", "http://user:secret@example.org/v1"),
        ("api_key", 123),
    ],
)
def test_bad_options_are_config_errors_naming_them(option, value) -> None:
    options: dict[str, Any] = {"base_url": "http://127.0.0.1:9/v1", option: value}
    with pytest.raises(ConfigError, match=option) as info:
        OpenAIChat(**options)
    if option == "base_url" and "secret" in value:
        assert "secret" not in str(info.value)


def test_conversations_are_sent_concurrently_and_stream_in_completion_order(fake) -> None:
    fake.delay = lambda body: 0.8 if body["messages"][-1]["content"] == "Hi" else 0.05
    chat = chat_for(fake, concurrency=4)
    assert chat.max_batch_size == 4
    order = [i for i, _ in chat.stream(CONVERSATIONS)]
    assert order[-1] == 0 and sorted(order) == list(range(len(CONVERSATIONS)))
    assert 2 <= fake.max_in_flight <= 4


def test_a_failed_request_fails_the_call_and_the_generator_falls_back(fake) -> None:
    fake.failures = [(400, {})]
    chat = chat_for(fake, model="m", concurrency=1)
    with pytest.raises(GenerationError):
        chat.generate(CONVERSATIONS[:2])
    catalog = movie_catalog()
    fake.failures = [(400, {})] * 10
    gen = ContentGenerator(chat, catalog=catalog, cache_size=0)
    out = gen.generate(reason_requests(catalog)[:1])
    assert out[0].source == "template" and "generation failed" in out[0].fallback_reason


def test_content_generator_by_name_over_a_fake_server(fake) -> None:
    fake.reply = lambda messages: "Toy Story is a fine pick, and fans of Aladdin also enjoyed it."
    catalog = movie_catalog()
    gen = ContentGenerator(
        "openai",
        catalog=catalog,
        model="fake-model",
        backend_options={"base_url": fake.url, "api_key": "sk-x"},
    )
    assert isinstance(gen.backend, OpenAIChat)
    out = gen.generate(reason_requests(catalog)[:1])
    assert out[0].source == "llm", out
    assert out[0].text.startswith("Toy Story is a fine pick")
    config = gen.config()
    assert config["backend"] == "openai" and config["options"]["model"] == "fake-model"
    assert config["options"]["backend_options"]["base_url"] == fake.url
    assert "sk-x" not in json.dumps(config)
    again = ContentGenerator(config["backend"], catalog=catalog, **config["options"])
    assert again.backend.config() == gen.backend.config()


# --------------------------------------------------------------------------- llamacpp


def test_llamacpp_without_llama_cpp_names_the_pip_command(monkeypatch) -> None:
    from llmrec.generation.llms.llamacpp import LlamaCppChat

    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes the import fail
    with pytest.raises(BackendUnavailableError, match="pip install") as info:
        LlamaCppChat()
    assert "llama-cpp-python" in str(info.value) and isinstance(info.value, ImportError)


@pytest.mark.skipif(not has_llama_cpp(), reason="llama-cpp-python is not installed")
# llama-cpp-python's LlamaModel.__del__ trips over the half-built model of a failed load.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_llamacpp_bad_arguments(tmp_path) -> None:
    from llmrec.generation.llms.llamacpp import LlamaCppChat

    with pytest.raises(ConfigError, match="no-such.gguf"):
        LlamaCppChat(str(tmp_path / "no-such.gguf"))
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="notes.txt"):
        LlamaCppChat(str(tmp_path / "notes.txt"))
    with pytest.raises(ConfigError, match="n_ctx"):
        LlamaCppChat(n_ctx=0)
    with pytest.raises(ConfigError, match="n_threads"):
        LlamaCppChat(n_threads=0)
    (tmp_path / "broken.gguf").write_bytes(b"GGUF not really")
    with pytest.raises(GenerationError, match="broken.gguf"):
        LlamaCppChat(str(tmp_path / "broken.gguf"), device="cpu")


def test_physical_cores_and_amx_detection_are_sane() -> None:
    from llmrec.generation.llms.llamacpp import cpu_has_amx, physical_cores

    assert 1 <= physical_cores() <= (os.cpu_count() or 1)
    assert isinstance(cpu_has_amx(), bool)


@pytest.fixture(scope="module")
def llamacpp_chat():
    if not has_llama_cpp():
        pytest.skip("llama-cpp-python is not installed (scripts/setup.sh installs it)")
    from llmrec.generation.llms.llamacpp import LlamaCppChat

    return LlamaCppChat(device="cpu", n_threads=1)


@pytest.mark.slow
def test_llamacpp_prefill_continues_the_assistant_message(llamacpp_chat) -> None:
    prompt, stops = llamacpp_chat._prompt(CONVERSATIONS[3])
    assert prompt.endswith("<|im_start|>assistant\nYou may like") and stops == ["<|im_end|>"]
    fresh, _ = llamacpp_chat._prompt(CONVERSATIONS[0])
    assert fresh.endswith("<|im_start|>assistant\n")
    assert llamacpp_chat.config() == {"model": "default", "n_ctx": 2048, "n_threads": 1}
    assert llamacpp_chat.max_batch_size == 1


@pytest.mark.slow
def test_llamacpp_answers_do_not_depend_on_earlier_calls(llamacpp_chat) -> None:
    first = llamacpp_chat.generate(CONVERSATIONS[1:2], max_new_tokens=24)
    assert llamacpp_chat.generate(CONVERSATIONS[1:2], max_new_tokens=24) == first
    llamacpp_chat.generate(CONVERSATIONS[:1], max_new_tokens=24)
    assert llamacpp_chat.generate(CONVERSATIONS[1:2], max_new_tokens=24) == first


@pytest.mark.slow
def test_llamacpp_on_an_amx_cpu_loads_without_extra_buffers(monkeypatch, llamacpp_chat) -> None:
    import llama_cpp

    from llmrec.generation.llms import llamacpp

    monkeypatch.setattr(llamacpp, "cpu_has_amx", lambda: True)
    chat = llamacpp.LlamaCppChat(device="cpu", n_threads=1)
    assert chat.extra_buffers is False
    assert chat._llm.model_params.use_extra_bufts is False
    assert llama_cpp.llama_cpp.llama_model_default_params().use_extra_bufts is True  # restored
    conversation = CONVERSATIONS[2:3]
    assert chat.generate(conversation, max_new_tokens=16) == llamacpp_chat.generate(
        conversation, max_new_tokens=16
    )


@pytest.mark.slow
def test_content_generator_over_llamacpp_writes_verified_reasons() -> None:
    if not has_llama_cpp():
        pytest.skip("llama-cpp-python is not installed")
    catalog = movie_catalog()
    gen = ContentGenerator(
        "llamacpp", catalog=catalog, device="cpu", backend_options={"n_threads": 1}
    )
    requests = reason_requests(catalog)
    out = gen.generate(requests)
    assert all(o.text.strip() for o in out)
    assert sum(o.source == "llm" for o in out) >= 1, out  # the rest fall back, flagged
    for o, r in zip(out, requests):
        if o.source == "llm":  # verified: names its own item, pastes no fact label
            assert r.item.title.split(" (")[0] in o.text and "Genres:" not in o.text
    assert gen.config()["backend"] == "llamacpp"


# --------------------------------------------------------------------------- real server


@pytest.mark.slow
def test_content_generator_over_a_real_openai_compatible_server(llama_server) -> None:
    catalog = movie_catalog()
    gen = ContentGenerator(
        "openai", catalog=catalog, backend_options={"base_url": llama_server, "timeout_s": 120}
    )
    requests = reason_requests(catalog)
    out = gen.generate(requests)
    assert all(o.text.strip() for o in out)
    assert any(o.source == "llm" for o in out), out
    for o, r in zip(out, requests):
        assert r.item.title.split(" (")[0] in o.text
    assert gen.backend._served_model == "smollm2"
