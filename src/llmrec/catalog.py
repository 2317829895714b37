"""The item catalog: stable external ids mapped to dense rows, and the text of each item."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec._validate import check_sequence
from llmrec.errors import DuplicateItemError, InvalidInputError, PersistenceError, UnknownItemError
from llmrec.storage.io import read_lines
from llmrec.types import Item

__all__ = ["Catalog", "render_item_text"]


def _refuse(value: object) -> object:
    raise TypeError(f"attribute value {value!r:.60} of type {type(value).__name__} is not JSON")


def _check_keys(value: object) -> None:
    # json.dumps turns int keys into str ones, which would not survive a save.
    if isinstance(value, dict):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise TypeError(f"attribute key {key!r} is not a str")
            _check_keys(inner)
    elif isinstance(value, (list, tuple)):
        for inner in value:
            _check_keys(inner)


def render_item_text(item: Item) -> str:
    """The text an encoder sees for ``item``: title, tags, year, then the description."""
    parts = [item.title.strip()]
    if item.tags:
        parts.append("Genres: " + ", ".join(item.tags) + ".")
    year = item.attributes.get("year")
    if isinstance(year, int) and not isinstance(year, bool):
        parts.append(f"Year: {year}.")
    if item.text.strip():
        parts.append(item.text.strip())
    return " ".join(parts)


class Catalog:
    """Items keyed by id, each with a dense row number used by vectors and indexes.

    Rows are never reused within a catalog's life: a removed item leaves an empty row, so
    row-aligned arrays held elsewhere stay valid. ``version`` increases on every change.

    Args:
        items: Initial items; ids must be unique.
    """

    def __init__(self, items: Iterable[Item] = ()) -> None:
        self._lock = threading.RLock()
        self._row_ids: list[str | None] = []
        self._rows: dict[str, int] = {}
        self._items: dict[str, Item] = {}
        # Tags as small ints, row-aligned and padded with -1, for vectorized tag lookups.
        self._tag_ids: dict[str, int] = {}
        self._row_tags = np.full((0, 1), -1, dtype=np.int32)
        self.version = 0
        items = list(items)
        if items:
            self.upsert(items)

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items

    def __iter__(self) -> Iterator[Item]:
        return iter(list(self._items.values()))

    @property
    def n_rows(self) -> int:
        """Rows allocated so far (live and removed)."""
        return len(self._row_ids)

    def get(self, item_id: str) -> Item:
        """Return the item, or raise :class:`UnknownItemError`."""
        try:
            return self._items[item_id]
        except (KeyError, TypeError):
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def row(self, item_id: str) -> int:
        """Dense row of ``item_id``."""
        try:
            return self._rows[item_id]
        except (KeyError, TypeError):
            raise UnknownItemError(f"unknown item id {item_id!r}") from None

    def rows(self, item_ids: Sequence[str]) -> np.ndarray:
        return np.fromiter((self.row(i) for i in item_ids), dtype=np.int64, count=len(item_ids))

    def item_id_at(self, row: int) -> str:
        item_id = self._row_ids[row] if 0 <= row < len(self._row_ids) else None
        if item_id is None:
            raise UnknownItemError(f"no live item at row {row}")
        return item_id

    def item_ids(self) -> list[str]:
        return list(self._items)

    def tag_id(self, tag: str) -> int | None:
        """Small integer id of a tag seen on some item (``None`` if never seen)."""
        return self._tag_ids.get(tag)

    @property
    def n_tags(self) -> int:
        return len(self._tag_ids)

    def row_tags(self, rows: np.ndarray) -> np.ndarray:
        """``(len(rows), width)`` tag ids of each row's item, padded with -1 (removed or
        untagged rows are all -1)."""
        rows = np.asarray(rows, dtype=np.int64)
        table = self._row_tags
        out = np.full((len(rows), table.shape[1]), -1, dtype=np.int32)
        inside = rows < len(table)
        out[inside] = table[rows[inside]]
        return out

    def _set_row_tags(self, row: int, tags: Sequence[str]) -> None:
        ids = [self._tag_ids.setdefault(t, len(self._tag_ids)) for t in dict.fromkeys(tags)]
        table = self._row_tags
        if row >= len(table) or len(ids) > table.shape[1]:
            grown = np.full(
                (
                    max(len(table), 2 * row + 2 if row >= len(table) else len(table)),
                    max(table.shape[1], len(ids)),
                ),
                -1,
                dtype=np.int32,
            )
            grown[: len(table), : table.shape[1]] = table
            self._row_tags = table = grown
        table[row] = -1
        table[row, : len(ids)] = ids

    # ------------------------------------------------------------------ changes
    def validate_new(self, items: Sequence[Item]) -> list[Item]:
        """Check a batch for upsert without changing anything; returns it as a list.

        Items must be :class:`~llmrec.Item` s with distinct ids whose text is valid Unicode
        and whose attributes are JSON (str keys; str, int, float, bool, None, lists and
        objects of them), since saves and the event log store them as JSON.
        """
        items = check_sequence(items, "items")
        seen: set[str] = set()
        for item in items:
            if not isinstance(item, Item):
                raise InvalidInputError(f"expected llmrec.Item, got {type(item).__name__}")
            if item.item_id in seen:
                raise DuplicateItemError(f"item id {item.item_id!r} appears twice in one batch")
            seen.add(item.item_id)
            try:
                _check_keys(item.attributes)
                json.dumps(item.to_dict(), ensure_ascii=False, default=_refuse).encode("utf-8")
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"item {item.item_id!r} cannot be stored: {exc}") from None
        return items

    def upsert(self, items: Sequence[Item], *, validated: bool = False) -> np.ndarray:
        """Insert new items and replace existing ones; returns the rows touched.

        ``validated=True`` skips :meth:`validate_new` for a batch that just passed it.
        """
        items = list(items) if validated else self.validate_new(items)
        with self._lock:
            rows = np.empty(len(items), dtype=np.int64)
            for n, item in enumerate(items):
                row = self._rows.get(item.item_id)
                if row is None:
                    row = len(self._row_ids)
                    self._row_ids.append(item.item_id)
                    self._rows[item.item_id] = row
                self._items[item.item_id] = item
                self._set_row_tags(row, item.tags)
                rows[n] = row
            self.version += 1
            return rows

    def remove(self, item_ids: Sequence[str]) -> np.ndarray:
        """Remove items (all must exist, else nothing changes); returns their rows."""
        item_ids = check_sequence(item_ids, "item_ids")
        with self._lock:
            rows = self.rows(item_ids)
            if len(set(item_ids)) != len(item_ids):
                raise DuplicateItemError("an item id appears twice in the removal list")
            for item_id, row in zip(item_ids, rows):
                del self._items[item_id]
                del self._rows[item_id]
                self._row_ids[int(row)] = None
                if row < len(self._row_tags):
                    self._row_tags[row] = -1
            self.version += 1
            return rows

    # ------------------------------------------------------------------ persistence
    def save(self, path: Path) -> dict[str, Any]:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with open(path / "items.jsonl", "w", encoding="utf-8") as f:
            for row, item_id in enumerate(self._row_ids):
                record = {"row": row}
                if item_id is not None:
                    record["item"] = self._items[item_id].to_dict()
                f.write(json.dumps(record, ensure_ascii=False) + "\n")
        return {"n_rows": len(self._row_ids), "n_items": len(self._items)}

    @classmethod
    def load(cls, path: Path, config: dict[str, Any]) -> Catalog:
        catalog = cls()
        try:
            for n, record in enumerate(read_lines(Path(path) / "items.jsonl")):
                if record["row"] != n:
                    raise ValueError(f"row {record['row']!r:.40} out of order at line {n + 1}")
                if "item" in record:
                    item = Item(**record["item"])
                    catalog._row_ids.append(item.item_id)
                    catalog._rows[item.item_id] = n
                    catalog._items[item.item_id] = item
                    catalog._set_row_tags(n, item.tags)
                else:
                    catalog._row_ids.append(None)
        except (ValueError, KeyError, TypeError, InvalidInputError) as exc:
            raise PersistenceError(f"corrupt catalog in {str(path)!r}: {exc}") from None
        if len(catalog._row_ids) != config.get("n_rows"):
            raise PersistenceError(
                f"catalog in {str(path)!r} has {len(catalog._row_ids)} rows, manifest says "
                f"{config.get('n_rows')}"
            )
        catalog.version = 1
        return catalog
