"""Reading text data files: lines, CSV and JSON lines, and a catalog or events file of
one's own (:func:`read_items`, :func:`read_events`). A record becomes an item or an event
through one column mapping (:func:`item_from_record`, :func:`event_from_record`), which the
data frame loaders (:mod:`.frames`) share."""

from __future__ import annotations

import csv
import json
import logging
import math
import os
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from datetime import timezone
from pathlib import Path
from typing import Any

from llmrec.catalog import Catalog
from llmrec.errors import DatasetError, LLMRecError
from llmrec.storage.io import check_path
from llmrec.types import Event, Item

__all__ = [
    "EVENT_FIELDS",
    "ITEM_FIELDS",
    "check_unique",
    "check_unique_ids",
    "event_from_record",
    "item_from_record",
    "known_item_ids",
    "open_text",
    "read_csv",
    "read_events",
    "read_items",
]

logger = logging.getLogger(__name__)

#: Columns of an items file that are not attributes.
ITEM_FIELDS = ("item_id", "title", "text")
#: Columns of an events file.
EVENT_FIELDS = ("user_id", "item_id", "kind", "value", "timestamp", "text")
#: Attribute columns of a CSV items file that hold ``|``-separated lists.
_LIST_COLUMNS = ("genres", "tags", "categories")
#: Numbers in text: whole numbers and decimals, no leading zeros ("007" and "02134" are
#: codes, kept as text), at most 15 significant digits (a longer one is an id, not a count).
_INT = re.compile(r"-?(0|[1-9]\d{0,14})")
_FLOAT = re.compile(r"-?(0|[1-9]\d{0,14})(\.\d{1,15})?([eE][-+]?\d{1,3})?")


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


def check_unique_ids(
    items: list[Item], where: str, error: type[LLMRecError] = DatasetError
) -> list[Item]:
    """Return ``items`` if no id repeats; else raise ``error`` naming the id and ``where``."""
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise error(f"{where}: item id {item.item_id!r} appears twice")
        seen.add(item.item_id)
    return items


def check_unique(items: list[Item], path: Path) -> list[Item]:
    return check_unique_ids(items, str(path))


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
                raise DatasetError(
                    f"{path}:{number}: missing field(s) {', '.join(missing)} "
                    f"(found {sorted(record)!r:.200})"
                )
            yield path, number, record
    elif suffix == ".csv":
        for number, row in read_csv(path, required):
            yield path, number, dict(row)
    else:
        raise DatasetError(f"{path}: unknown file type {suffix!r}; use .jsonl or .csv")


def _text_value(column: str, value: str) -> Any:
    """An attribute given as text (every CSV cell) as the value it spells:
    ``genres``/``tags``/``categories`` as lists of their ``|``-separated parts, numbers as
    ints or floats, the rest as text."""
    if column in _LIST_COLUMNS:
        return [v.strip() for v in value.split("|") if v.strip()]
    text = value.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        number = float(text)
        return number if math.isfinite(number) else value
    return value


def _missing(value: Any) -> bool:
    """Whether a record value means "not given": ``None``, ``""``, an empty list or a
    data frame's missing value (NaN, NaT, NA)."""
    if value is None or (isinstance(value, (str, list)) and not value):
        return True
    if type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and math.isnan(value)


def _scalar(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (JSON-storable); others unchanged."""
    item = getattr(value, "item", None)
    return item() if callable(item) and type(value).__module__ == "numpy" else value


def _as_id(value: Any) -> Any:
    """An id as text: ``7`` (or ``7.0`` from a data frame column with gaps) -> ``"7"``."""
    value = _scalar(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def _column(
    record: Mapping[str, Any], field: str, column: str, where: str, error: type[LLMRecError]
) -> Any:
    if column not in record:
        raise error(
            f"{where}: no column {column!r} for {field} (columns: {sorted(map(str, record))!r:.300});"
            f" name it with {field}=..."
        )
    return record[column]


def item_from_record(
    record: Mapping[str, Any],
    columns: Mapping[str, str],
    *,
    where: str,
    attributes: Iterable[str] | None = None,
    error: type[LLMRecError] = DatasetError,
) -> Item:
    """The :class:`~llmrec.Item` a record (a file line, a data frame row) describes.

    Args:
        record: Column name -> value.
        columns: ``item_id``, ``title`` and ``text`` -> the column holding each; the
            ``text`` column may be absent from the record.
        where: Where the record comes from, for messages (``"items.csv:3"``).
        attributes: The columns that become attributes (``None``: every other column; an
            ``"attributes"`` mapping is merged in). Missing values are left out.
        error: The error class raised.

    Raises:
        LLMRecError: (``error``) a mapped column is missing or the item is invalid.
    """
    item_id = _column(record, "item_id", columns["item_id"], where, error)
    title = _column(record, "title", columns["title"], where, error)
    text = record.get(columns["text"])
    mapped = set(columns.values())
    if attributes is None:
        nested = record.get("attributes")
        out = dict(nested) if isinstance(nested, Mapping) and "attributes" not in mapped else {}
        keys = [k for k in record if k not in mapped and k != "attributes"]
    else:
        out, keys = {}, list(attributes)
        for key in keys:
            _column(record, "attributes", key, where, error)
    for key in keys:
        value = _scalar(record[key])
        if not _missing(value):
            out[str(key)] = value
    try:
        return Item(
            item_id=_as_id(item_id),
            title=str(_scalar(title)) if not _missing(title) else "",
            text="" if _missing(text) else str(_scalar(text)),
            attributes=out,
        )
    except LLMRecError as exc:
        raise error(f"{where}: bad item ({exc})") from None


def read_items(
    path: str | os.PathLike[str],
    *,
    item_id: str = "item_id",
    title: str = "title",
    text: str = "text",
) -> list[Item]:
    """Read a catalog file: JSON lines or CSV with an id, a title and an optional text.

    In JSON lines, ``attributes`` (an object) holds the item's facts, and any other key is
    an attribute too. In CSV, every other column is an attribute. An attribute given as
    text (every CSV cell) is read as what it spells: ``genres``, ``tags`` and
    ``categories`` are ``|``-separated lists and numbers become ints or floats (``year``
    ``1995``, ``price`` ``19.99``; ``007`` or ``02134`` stay text, as do ids and titles).

    Args:
        path: The ``.jsonl`` or ``.csv`` file.
        item_id: The column (key) holding the item id.
        title: The column holding the title.
        text: The column holding the description (optional in the file).

    Raises:
        DatasetError: The file is missing, malformed, lacks a named column, or repeats an
            item id.
    """
    columns = {"item_id": item_id, "title": title, "text": text}
    mapped = {*columns.values(), "attributes"}
    items = []
    for file, number, record in _records(path, (item_id, title)):
        # Text values are read alike in both formats (a CSV cell is always text).
        record = {
            k: _text_value(k, v) if k not in mapped and isinstance(v, str) else v
            for k, v in record.items()
        }
        items.append(item_from_record(record, columns, where=f"{file}:{number}"))
    if not items:
        raise DatasetError(f"{path}: no items")
    return check_unique(items, Path(path))


def _number(value: Any, what: str) -> float:
    if isinstance(value, str):
        value = value.strip()
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r:.80}") from None


def _seconds(value: Any) -> Any:
    """A timestamp as seconds since the epoch: numbers and numeric text as floats,
    ISO-8601 text as :class:`~llmrec.Event` reads it, a ``datetime`` (or a data frame's
    or numpy's timestamp) by its value, a naive one read as UTC."""
    if type(value).__name__ == "datetime64":
        value = value.astype("datetime64[us]")  # its item() is a datetime, not nanoseconds
    value = _scalar(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return value  # ISO-8601 (or an error) is Event's to read
    to_seconds = getattr(value, "timestamp", None)
    if callable(to_seconds):
        tzinfo = getattr(value, "tzinfo", False)
        if tzinfo is None and hasattr(value, "replace"):
            value = value.replace(tzinfo=timezone.utc)
        return float(value.timestamp())
    return value


def event_from_record(
    record: Mapping[str, Any],
    columns: Mapping[str, str],
    *,
    where: str,
    default_timestamp: float,
    error: type[LLMRecError] = DatasetError,
) -> Event:
    """The :class:`~llmrec.Event` a record (a file line, a data frame row) describes.

    Args:
        record: Column name -> value.
        columns: ``user_id``, ``item_id``, ``kind``, ``value``, ``timestamp`` and ``text``
            -> the column holding each; only ``user_id`` must be present.
        where: Where the record comes from, for messages (``"events.csv:3"``).
        default_timestamp: The timestamp of a record without one.
        error: The error class raised.

    Raises:
        LLMRecError: (``error``) the user column is missing or the event is invalid.
    """
    user = _column(record, "user_id", columns["user_id"], where, error)
    get = {field: record.get(column) for field, column in columns.items()}
    try:
        return Event(
            user_id=_as_id(user),
            item_id=None if _missing(get["item_id"]) else _as_id(get["item_id"]),
            kind="click" if _missing(get["kind"]) else str(get["kind"]),
            value=None if _missing(get["value"]) else _number(_scalar(get["value"]), "value"),
            timestamp=default_timestamp
            if _missing(get["timestamp"])
            else _seconds(get["timestamp"]),
            text=None if _missing(get["text"]) else str(get["text"]),
        )
    except (ValueError, TypeError, LLMRecError) as exc:
        raise error(f"{where}: bad event ({exc})") from None


def known_item_ids(items: Iterable[Item | str] | Collection[str]) -> Collection[str]:
    """The item ids ``items`` (Items, ids, or a collection of ids such as a
    :class:`~llmrec.Catalog`) stands for, as something ``in`` answers quickly."""
    if isinstance(items, (set, frozenset, Mapping, Catalog)):
        return items
    return {item.item_id if isinstance(item, Item) else item for item in items}


def read_events(
    path: str | os.PathLike[str],
    *,
    items: Iterable[Item | str] | None = None,
    skip_unknown: bool = False,
    user_id: str = "user_id",
    item_id: str = "item_id",
    kind: str = "kind",
    value: str = "value",
    timestamp: str = "timestamp",
    text: str = "text",
) -> list[Event]:
    """Read an events file: JSON lines or CSV with a user id and optional item id, ``kind``
    (default ``"click"``), ``value``, ``timestamp`` (seconds since the epoch or ISO-8601
    such as ``2024-03-01T12:00:00Z``; default: the row number, keeping file order) and
    ``text`` (for ``kind="query"``). Returned in file order.

    Args:
        path: The ``.jsonl`` or ``.csv`` file.
        items: The catalog the events must name (Items, ids, or a
            :class:`~llmrec.Catalog`); ``None``: not checked here.
        skip_unknown: With ``items``, leave out events naming an item not in it (their
            number is logged) instead of refusing the file.
        user_id: The column (key) holding the user id.
        item_id: The column holding the item id.
        kind: The column holding the event kind.
        value: The column holding the rating value.
        timestamp: The column holding the timestamp.
        text: The column holding a query's text.

    Raises:
        DatasetError: The file is missing, a row is not a valid event, or (with ``items``
            and without ``skip_unknown``) a row names an unknown item; the message names
            the file and line.
    """
    columns = {
        "user_id": user_id,
        "item_id": item_id,
        "kind": kind,
        "value": value,
        "timestamp": timestamp,
        "text": text,
    }
    known = None if items is None else known_item_ids(items)
    events, skipped = [], 0
    for file, number, record in _records(path, (user_id,)):
        event = event_from_record(
            record, columns, where=f"{file}:{number}", default_timestamp=float(number)
        )
        if known is not None and event.item_id is not None and event.item_id not in known:
            if not skip_unknown:
                raise DatasetError(
                    f"{file}:{number}: unknown item id {event.item_id!r:.80} (not in the "
                    "catalog); pass skip_unknown=True to leave such events out"
                )
            skipped += 1
            continue
        events.append(event)
    if skipped:
        logger.warning("%s: skipped %d event(s) naming items not in the catalog", path, skipped)
    return events
