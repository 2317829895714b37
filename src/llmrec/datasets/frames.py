"""Items and events from data frames: :func:`from_pandas` and :func:`events_from_pandas`.

llmrec does not depend on pandas: a frame is read through its own methods, and a polars
frame (or any other with ``to_pandas()``) is converted first, which needs pandas. Rows become items and events through
the same column mapping the file readers use (:func:`~llmrec.datasets.files.item_from_record`,
:func:`~llmrec.datasets.files.event_from_record`), so a frame and a file with the same
columns give the same items and events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from llmrec.datasets.files import check_unique_ids, event_from_record, item_from_record
from llmrec.errors import BackendUnavailableError, InvalidInputError
from llmrec.types import Event, Item

__all__ = ["events_from_pandas", "from_pandas"]


def _rows(df: Any, needed: Iterable[str], what: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(row number, record)`` for each row of ``df`` (pandas, or anything with
    ``to_pandas()`` such as a polars frame); the ``needed`` columns must exist."""
    if not type(df).__module__.startswith("pandas") and hasattr(df, "to_pandas"):
        try:
            df = df.to_pandas()  # polars (and others): their to_dict is not pandas' records
        except ImportError as exc:
            raise BackendUnavailableError(
                f"{what} converts a {type(df).__name__} with to_pandas(), which needs "
                f"pandas ({exc}); install it with: pip install pandas"
            ) from None
    if not (type(df).__module__.startswith("pandas") and hasattr(df, "columns")):
        raise InvalidInputError(
            f"{what} needs a pandas DataFrame (or a polars one), got {type(df).__name__}"
        )
    columns = [str(c) for c in df.columns]
    missing = [c for c in dict.fromkeys(needed) if c not in columns]
    if missing:
        raise InvalidInputError(
            f"{what}: the frame has no column(s) {missing} (columns: {columns!r:.300}); "
            "map them with the keyword arguments, e.g. item_id='id'"
        )
    for number, record in enumerate(df.to_dict("records")):
        yield number, {str(k): v for k, v in record.items()}


def from_pandas(
    df: Any,
    *,
    item_id: str = "item_id",
    title: str = "title",
    text: str | None = "text",
    attributes: Sequence[str] | None = None,
) -> list[Item]:
    """The catalog a data frame holds, one :class:`~llmrec.Item` per row.

    Args:
        df: A pandas DataFrame, or a polars one (converted with ``to_pandas()``).
        item_id: The column holding the item id (numbers are turned into text).
        title: The column holding the title.
        text: The column holding the description; ``"text"`` may be absent, another
            name must exist; ``None``: no text.
        attributes: The columns that become attributes; ``None``: every other column.
            Missing values (NaN, None) are left out; numpy numbers become Python ones.

    Raises:
        InvalidInputError: ``df`` is not a frame, a named column is missing, a row is not
            a valid item, or an id repeats.
    """
    needed = [item_id, title, *([] if text in (None, "text") else [text])]
    needed += list(attributes or ())
    columns = {"item_id": item_id, "title": title, "text": text or "\0no text column"}
    items = [
        item_from_record(
            record,
            columns,
            where=f"from_pandas row {number}",
            attributes=attributes,
            error=InvalidInputError,
        )
        for number, record in _rows(df, needed, "from_pandas")
    ]
    return check_unique_ids(items, "from_pandas", InvalidInputError)


def events_from_pandas(
    df: Any,
    *,
    user_id: str = "user_id",
    item_id: str = "item_id",
    kind: str = "kind",
    value: str = "value",
    timestamp: str = "timestamp",
    text: str = "text",
) -> list[Event]:
    """The events a data frame holds, one :class:`~llmrec.Event` per row, in row order.

    Only the ``user_id`` column must exist; a missing ``kind`` is ``"click"``, a missing
    ``timestamp`` the row number (keeping row order). Timestamps may be seconds since the
    epoch, ISO-8601 text or datetimes (a naive one is read as UTC).

    Args:
        df: A pandas DataFrame, or a polars one (converted with ``to_pandas()``).
        user_id: The column (key) holding the user id.
        item_id: The column holding the item id.
        kind: The column holding the event kind.
        value: The column holding the rating value.
        timestamp: The column holding the timestamp.
        text: The column holding a query's text.

    Raises:
        InvalidInputError: ``df`` is not a frame, the user column is missing, or a row is
            not a valid event.
    """
    columns = {
        "user_id": user_id,
        "item_id": item_id,
        "kind": kind,
        "value": value,
        "timestamp": timestamp,
        "text": text,
    }
    return [
        event_from_record(
            record,
            columns,
            where=f"events_from_pandas row {number}",
            default_timestamp=float(number),
            error=InvalidInputError,
        )
        for number, record in _rows(df, [user_id], "events_from_pandas")
    ]
