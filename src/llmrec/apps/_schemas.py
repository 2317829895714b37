"""The HTTP API's request bodies and its one error shape, shared by
:mod:`llmrec.apps.server` and the Ray Serve deployment.

Every error is ``{"error": <name>, "detail": <message>}``; the detail never echoes the
rejected input (it may not even be encodable).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.errors import (
    BackendUnavailableError,
    LLMRecError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.types import EVENT_WEIGHTS, Event

__all__ = [
    "EventBody",
    "EventsBody",
    "ItemBody",
    "ItemIdsBody",
    "ItemsBody",
    "RecommendBody",
    "SessionBody",
    "UserBody",
]

MAX_K = 1000
MAX_BATCH = 10_000
Id = Field(min_length=1, max_length=512)
MAX_ERRORS = 5  # validation problems named in one error detail
EventKind = Literal[tuple(sorted(EVENT_WEIGHTS))]  # type: ignore[valid-type]
Finite = Annotated[float, Field(allow_inf_nan=False)]
AttributeValue = str | int | Finite | bool | list[str] | None
#: A filter value: one value, a list of them (any matches) or an inclusive numeric range.
Scalar = str | int | Finite | bool


class RangeBody(BaseModel):
    """An inclusive numeric range; either bound may be left out."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    min: Finite | None = None
    max: Finite | None = None


FilterValue = Scalar | list[Scalar] | RangeBody


def _lone_surrogate(value: Any, where: str) -> str | None:
    """Where in ``value`` (keys included) a string with a lone surrogate is, or None."""
    if isinstance(value, str):
        return None if value.isascii() or _encodes(value) else where
    if isinstance(value, dict):
        for key, sub in value.items():
            name = f"{where}.{safe_text(str(key), 64)}" if where else safe_text(str(key), 64)
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


def safe_text(text: str, limit: int = 200) -> str:
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


class _Options(_Model):
    """What a recommendation request may say besides whom it is for."""

    k: int = Field(10, ge=1, le=MAX_K)
    query: str | None = Field(None, min_length=1, max_length=2000)
    generate: bool = False
    exclude_seen: bool = True
    filters: dict[str, FilterValue] | None = Field(None, max_length=64)
    diversity: float | None = Field(None, ge=0.0, lt=1.0)
    budget_s: float | None = Field(None, gt=0.0, le=600.0)
    include_item: bool = Field(False, description="add each item (title, text, attributes)")

    def options(self) -> dict[str, Any]:
        """The keyword arguments of :meth:`~llmrec.Pipeline.recommend` but ``k`` (a range
        filter as ``{"min": x, "max": y}`` without the bounds left out)."""
        options = self.model_dump(
            include={"query", "generate", "exclude_seen", "filters", "diversity", "budget_s"}
        )
        if options["filters"] is not None:
            options["filters"] = {
                key: {b: v for b, v in value.items() if v is not None}
                if isinstance(value, dict)
                else value
                for key, value in options["filters"].items()
            }
        return options


class RecommendBody(_Options):
    user_id: str = Id


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


class SessionBody(_Options):
    """An anonymous session: recommendations from the items it touched, no stored user."""

    history: list[str] = Field(min_length=1, max_length=MAX_K)


def status_of(exc: LLMRecError) -> int:
    """The HTTP status of an llmrec error: 404 unknown id, 503 backend down, else 422."""
    if isinstance(exc, (UnknownUserError, UnknownItemError)):
        return 404
    if isinstance(exc, BackendUnavailableError):
        return 503
    return 422


def error_response(exc: LLMRecError) -> JSONResponse:
    """``exc`` in the one error shape."""
    return answer(type(exc).__name__, str(exc), status_of(exc))


def answer(error: str, detail: str, status: int, headers: Any = None) -> JSONResponse:
    """The one error shape; the detail is cut and made encodable."""
    return JSONResponse(
        {"error": error, "detail": safe_text(detail, 2000)}, status_code=status, headers=headers
    )


def _where(loc: Sequence[Any]) -> str:
    """A validation error's location, ``events[0].value``, safe to send back."""
    text = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + safe_text(str(part), 64)
    return text or "body"


def validation_detail(errors: Sequence[Any]) -> str:
    """What failed and where, never the rejected input (it may not even be encodable)."""
    parts = []
    for e in errors[:MAX_ERRORS]:
        if e.get("type") == "json_invalid":
            reason = safe_text(str((e.get("ctx") or {}).get("error", "")), 100)
            at = safe_text(str((e.get("loc") or ("?",))[-1]), 20)
            parts.append(f"body is not JSON (character {at}: {reason})")
        else:
            parts.append(f"{_where(e.get('loc', ()))}: {safe_text(str(e.get('msg', 'invalid')))}")
    more = len(errors) - MAX_ERRORS
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") if parts else "invalid"


def to_event(body: EventBody) -> Event:
    """The :class:`~llmrec.Event` a request body describes."""
    fields = body.model_dump(exclude_none=True)
    return Event(**fields)
