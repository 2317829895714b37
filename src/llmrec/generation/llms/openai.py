"""The ``openai`` chat backend: any server speaking the OpenAI chat-completions API.

vLLM, llama.cpp's ``llama-server``, ``python -m llama_cpp.server``, Text Generation
Inference and Ollama all serve ``POST {base_url}/chat/completions``. Only the standard
library is used (``urllib.request`` and ``json``), so this backend adds no dependency.

Each conversation is one request; the conversations of one call are sent concurrently
(``concurrency`` at a time), which lets a batching server such as vLLM run them together.
Connection errors, timeouts, HTTP 429 and HTTP 5xx are retried with exponential backoff;
any other HTTP error fails at once. Failures raise :class:`~llmrec.errors.GenerationError`
naming the URL, so :class:`~llmrec.generation.ContentGenerator` falls back to its template
text instead of failing the recommendation.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from llmrec._validate import check_bool, check_float, check_int
from llmrec.errors import ConfigError, GenerationError
from llmrec.generation.llms.base import StreamingChat

__all__ = ["BASE_URL_ENV", "OpenAIChat"]

logger = logging.getLogger(__name__)

#: Environment variable holding the default ``base_url``.
BASE_URL_ENV = "LLMREC_OPENAI_BASE_URL"
_API_KEY_ENV = "OPENAI_API_KEY"
_MAX_BACKOFF_S = 30.0
_MAX_RETRY_AFTER_S = 60.0


def _check_base_url(base_url: Any) -> str:
    if base_url is None:
        base_url = os.environ.get(BASE_URL_ENV)
        if not base_url:
            raise ConfigError(
                f"the openai backend needs base_url (e.g. 'http://localhost:8000/v1'), or the "
                f"environment variable {BASE_URL_ENV}; in a pipeline: llm='openai', "
                "llm_options={'model': ..., 'backend_options': {'base_url': ...}}"
            )
    if not isinstance(base_url, str):
        raise ConfigError(f"base_url must be a str, got {base_url!r}")
    parts = urllib.parse.urlsplit(base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            f"base_url must be an http(s) URL such as 'http://localhost:8000/v1', got {base_url!r}"
        )
    if parts.username or parts.password:
        raise ConfigError("base_url must not hold credentials; pass api_key instead")
    return base_url.strip().rstrip("/")


class OpenAIChat(StreamingChat):
    """Chat generation through an OpenAI-compatible HTTP server.

    A conversation ending with an ``assistant`` message asks for a continuation of it.
    Servers differ here: llama.cpp's ``llama-server`` continues the message by default,
    vLLM does when ``continue_final_message=True`` (which sends vLLM's
    ``continue_final_message`` and ``add_generation_prompt`` request fields), and the
    others answer afresh; :class:`~llmrec.generation.ContentGenerator` accepts either.

    Args:
        model: The served model's name; ``"default"`` asks ``GET {base_url}/models`` once
            and uses the first model listed.
        base_url: The API root, e.g. ``"http://localhost:8000/v1"``; default: the
            environment variable ``LLMREC_OPENAI_BASE_URL``.
        api_key: Sent as ``Authorization: Bearer ...``; default: the environment variable
            ``OPENAI_API_KEY``, if set. Never logged, never part of :meth:`config`.
        timeout_s: Seconds to wait for one response.
        max_retries: Retries of a request after a connection error, a timeout, HTTP 429
            or HTTP 5xx.
        backoff_s: Wait before the first retry; doubles with each retry (at most 30 s).
            A ``Retry-After`` header asking for longer (at most 60 s) is honoured.
        temperature: Sampling temperature; 0 is greedy.
        concurrency: Requests in flight at once within one call.
        continue_final_message: Send vLLM's fields for continuing a final assistant
            message. Leave off for servers that reject unknown fields (api.openai.com).
        show_progress: Show a progress bar over conversations.

    Raises:
        ConfigError: a bad argument, or no ``base_url`` and no ``LLMREC_OPENAI_BASE_URL``.
    """

    name = "openai"

    def __init__(
        self,
        model: str = "default",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        temperature: float = 0.0,
        concurrency: int = 8,
        continue_final_message: bool = False,
        show_progress: bool = False,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty str, got {model!r}")
        if api_key is not None and not isinstance(api_key, str):
            raise ConfigError("api_key must be a str or None")
        self.model_name = model
        self.base_url = _check_base_url(base_url)
        self.timeout_s = check_float(timeout_s, "timeout_s", low=0.001, high=3600)
        self.max_retries = check_int(max_retries, "max_retries", low=0, high=20)
        self.backoff_s = check_float(backoff_s, "backoff_s", low=0, high=60)
        self.temperature = check_float(temperature, "temperature", low=0, high=2)
        self.concurrency = check_int(concurrency, "concurrency", low=1, high=1024)
        self.continue_final_message = check_bool(continue_final_message, "continue_final_message")
        self.show_progress = check_bool(show_progress, "show_progress")
        key = api_key if api_key is not None else os.environ.get(_API_KEY_ENV, "")
        self._api_key = key.strip()
        self._served_model: str | None = None if model == "default" else model
        self._model_lock = threading.Lock()

    @classmethod
    def preflight(cls, **options: Any) -> None:
        """Check constructor arguments without a request (see
        :meth:`~llmrec.generation.ContentGenerator.check_config`): building this backend
        touches no network, so it is built and dropped.

        Raises:
            ConfigError: what the constructor raises (no ``base_url`` and no
                ``LLMREC_OPENAI_BASE_URL``, a bad URL, a bad option value).
        """
        cls(**options)

    @property
    def max_batch_size(self) -> int:
        """Conversations worth handing over per call: one per concurrent request."""
        return self.concurrency

    def config(self) -> dict[str, Any]:
        """JSON config that recreates this backend with ``OpenAIChat(**config)``; holds no
        API key (that comes from ``api_key=`` or ``OPENAI_API_KEY`` again)."""
        return {
            "model": self.model_name,
            "base_url": self.base_url,
            "timeout_s": self.timeout_s,
            "max_retries": self.max_retries,
            "backoff_s": self.backoff_s,
            "temperature": self.temperature,
            "concurrency": self.concurrency,
            "continue_final_message": self.continue_final_message,
        }

    # ------------------------------------------------------------------ HTTP
    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _request(self, path: str, payload: dict[str, Any] | None = None) -> Any:
        """GET (no payload) or POST JSON to ``base_url + path``, with retries; the JSON
        answer."""
        from llmrec import __version__

        url = self.base_url + path
        headers = {"Accept": "application/json", "User-Agent": f"llmrec/{__version__}"}
        data = None
        if payload is not None:
            data = json.dumps(payload).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        attempt = 0
        while True:
            request = urllib.request.Request(
                url, data=data, headers=headers, method="GET" if data is None else "POST"
            )
            retry_after = 0.0
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    body = response.read()
                break
            except urllib.error.HTTPError as exc:
                try:
                    detail = self._scrub(exc.read(500).decode("utf-8", errors="replace").strip())
                except (OSError, http.client.HTTPException):
                    detail = ""
                reason = f"HTTP {exc.code}" + (f": {detail}" if detail else "")
                if exc.code != 429 and exc.code < 500:
                    raise GenerationError(f"{url} answered {reason}") from None
                try:
                    retry_after = min(float(exc.headers.get("Retry-After", 0)), _MAX_RETRY_AFTER_S)
                except (TypeError, ValueError):  # an HTTP date; the backoff applies
                    retry_after = 0.0
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                cause = exc.reason if isinstance(exc, urllib.error.URLError) else exc
                reason = self._scrub(str(cause) or type(cause).__name__)
            if attempt >= self.max_retries:
                raise GenerationError(
                    f"{url} failed after {attempt + 1} attempt(s): {reason}"
                ) from None
            delay = max(min(self.backoff_s * 2**attempt, _MAX_BACKOFF_S), retry_after)
            attempt += 1
            logger.warning(
                "%s: %s; retry %d of %d in %.2fs",
                url,
                reason[:200],
                attempt,
                self.max_retries,
                delay,
            )
            time.sleep(delay)
        try:
            return json.loads(body)
        except ValueError:
            raise GenerationError(
                f"{url} answered with invalid JSON: "
                f"{self._scrub(body[:200].decode('utf-8', 'replace'))!r}"
            ) from None

    def _model(self) -> str:
        """The model name to send; ``"default"`` is looked up once."""
        with self._model_lock:
            if self._served_model is None:
                listing = self._request("/models")
                try:
                    self._served_model = str(listing["data"][0]["id"])
                except (KeyError, IndexError, TypeError):
                    raise GenerationError(
                        f"{self.base_url}/models lists no model; pass model=..."
                    ) from None
                logger.info("%s serves %r", self.base_url, self._served_model)
            return self._served_model

    def _complete(self, model: str, conversation: list[dict], max_new_tokens: int) -> str:
        payload: dict[str, Any] = {
            "model": model,
            "messages": conversation,
            "max_tokens": max_new_tokens,
            "temperature": self.temperature,
            "stream": False,
        }
        if self.continue_final_message and conversation[-1]["role"] == "assistant":
            payload["continue_final_message"] = True
            payload["add_generation_prompt"] = False
        answer = self._request("/chat/completions", payload)
        try:
            text = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise GenerationError(
                f"{self.base_url}/chat/completions answered without "
                f"choices[0].message.content: {str(answer)[:200]}"
            ) from None
        return (text or "").strip()

    # ------------------------------------------------------------------ generation
    def _stream(
        self, conversations: list[list[dict]], max_new_tokens: int
    ) -> Iterator[tuple[int, str]]:
        """Answers in the order they arrive.

        Raises:
            GenerationError: a request failed (after its retries); requests not yet sent
                are cancelled.
        """
        if not conversations:
            return
        model = self._model()
        from tqdm.auto import tqdm

        pool = ThreadPoolExecutor(
            max_workers=min(self.concurrency, len(conversations)),
            thread_name_prefix="llmrec-openai",
        )
        progress = tqdm(
            total=len(conversations), desc="generating", unit="text", disable=not self.show_progress
        )
        try:
            pending: dict[Future[str], int] = {
                pool.submit(self._complete, model, conversation, max_new_tokens): index
                for index, conversation in enumerate(conversations)
            }
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    index = pending.pop(future)
                    text = future.result()
                    progress.update(1)
                    yield index, text
        finally:
            progress.close()
            pool.shutdown(wait=False, cancel_futures=True)

    def __repr__(self) -> str:
        return f"OpenAIChat(model={self.model_name!r}, base_url={self.base_url!r})"
