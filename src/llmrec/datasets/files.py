"""Reading text data files: lines, CSV and JSON lines, and a catalog or events file of
one's own (:func:`read_items`, :func:`read_events`)."""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from llmrec.errors import DatasetError, LLMRecError
from llmrec.storage.io import check_path
from llmrec.types import Event, Item

__all__ = [
    "EVENT_FIELDS",
    "ITEM_FIELDS",
    "check_unique",
    "open_text",
    "read_csv",
    "read_events",
    "read_items",
]

#: Columns of an items file that are not attributes.
ITEM_FIELDS = ("item_id", "title", "text")
#: Columns of an events file.
EVENT_FIELDS = ("user_id", "item_id", "kind", "value", "timestamp", "text")
#: Attribute columns of a CSV items file that hold ``|``-separated lists.
_LIST_COLUMNS = ("genres", "tags", "categories")


def open_text(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line number, line without newline)`` for non-blank lines of ``path``."""
    try:
        with open(path, encoding=encoding, newline="") as f:
            for number, line in enumerate(f, 1):
                line = line.rstrip("\r\n")
                if line.strip():
                    yield number, line
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not {encoding} text ({exc})") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def check_unique(items: list[Item], path: Path) -> list[Item]:
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise DatasetError(f"{path}: item id {item.item_id!r} appears twice")
        seen.add(item.item_id)
    return items


def read_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            fields = reader.fieldnames or []
            missing = [c for c in required if c not in fields]
            if missing:
                raise DatasetError(
                    f"{path}: header lacks column(s) {', '.join(missing)} (found {fields})"
                )
            for row in reader:
                if None in row or any(row.get(c) is None for c in required):
                    raise DatasetError(
                        f"{path}:{reader.line_num}: expected {len(fields)} comma-separated "
                        f"fields ({', '.join(fields)})"
                    )
                yield reader.line_num, row
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not utf-8 text ({exc})") from None
    except csv.Error as exc:
        raise DatasetError(f"{path}: malformed CSV ({exc})") from None
    except DatasetError:
        raise
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _records(
    path: str | os.PathLike[str], required: tuple[str, ...]
) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """Yield ``(path, line, record)`` from a JSON-lines (``.jsonl``/``.json``) or CSV file."""
    path = check_path(path)
    if not path.is_file():
        raise DatasetError(f"no such file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, line in open_text(path, "utf-8"):
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DatasetError(f"{path}:{number}: not a JSON object ({exc})") from None
            if not isinstance(record, dict):
                raise DatasetError(f"{path}:{number}: expected a JSON object, got {line[:60]!r}")
            missing = [c for c in required if c not in record]
            if missing:
                raise DatasetError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
            yield path, number, record
    elif suffix == ".csv":
        for number, row in read_csv(path, required):
            yield path, number, dict(row)
    else:
        raise DatasetError(f"{path}: unknown file type {suffix!r}; use .jsonl or .csv")


def read_items(path: str | os.PathLike[str]) -> list[Item]:
    """Read a catalog file: JSON lines or CSV with ``item_id``, ``title``, optional ``text``.

    In JSON lines, ``attributes`` (an object) holds the item's facts, and any other key is
    an attribute too. In CSV, every other column is an attribute; ``genres``, ``tags`` and
    ``categories`` are ``|``-separated lists and whole numbers (``year``) become ints.

    Raises:
        DatasetError: The file is missing, malformed, or repeats an item id.
    """
    items = []
    for file, number, record in _records(path, ("item_id", "title")):
        attributes = dict(record.pop("attributes", None) or {})
        for key, value in record.items():
            if key in ITEM_FIELDS or value in (None, ""):
                continue
            if isinstance(value, str) and key in _LIST_COLUMNS:
                value = [v.strip() for v in value.split("|") if v.strip()]
            elif isinstance(value, str) and re.fullmatch(r"-?\d{1,9}", value.strip()):
                value = int(value)
            attributes[key] = value
        try:
            items.append(
                Item(
                    item_id=str(record["item_id"]),
                    title=str(record["title"]),
                    text=str(record.get("text") or ""),
                    attributes=attributes,
                )
            )
        except LLMRecError as exc:
            raise DatasetError(f"{file}:{number}: bad item ({exc})") from None
    if not items:
        raise DatasetError(f"{path}: no items")
    return check_unique(items, Path(path))


def read_events(path: str | os.PathLike[str]) -> list[Event]:
    """Read an events file: JSON lines or CSV with ``user_id`` and ``item_id`` and optional
    ``kind`` (default ``"click"``), ``value``, ``timestamp`` (seconds; default: the row
    number, keeping file order) and ``text`` (for ``kind="query"``). Returned in file order.

    Raises:
        DatasetError: The file is missing or a row is not a valid event.
    """
    events = []
    for file, number, record in _records(path, ("user_id",)):
        try:
            value = record.get("value")
            timestamp = record.get("timestamp")
            events.append(
                Event(
                    user_id=str(record["user_id"]),
                    item_id=str(record["item_id"])
                    if record.get("item_id") not in (None, "")
                    else None,
                    kind=str(record.get("kind") or "click"),
                    value=None if value in (None, "") else float(value),
                    timestamp=float(number) if timestamp in (None, "") else float(timestamp),
                    text=str(record["text"]) if record.get("text") not in (None, "") else None,
                )
            )
        except (ValueError, TypeError, LLMRecError) as exc:
            raise DatasetError(f"{file}:{number}: bad event ({exc})") from None
    return events
