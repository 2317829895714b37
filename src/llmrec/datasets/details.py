"""Merging an enrichment file (descriptions, people, facts) into a catalog.

An enrichment file is JSON lines (or CSV), one record per item, keyed by the item id:

.. code-block:: json

    {"item_id": "1", "description": "A cowboy doll ...", "director": ["John Lasseter"],
     "cast": ["Tom Hanks", "Tim Allen"], "runtime_min": 81}

:func:`merge_details` appends the record's description fields and labelled people fields
to the item's text and keeps the other fields as attributes, so both the encoder (which
sees title, genres, year, then the text; see :func:`llmrec.catalog.render_item_text`) and
the text generator's fact plan see them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from llmrec._validate import check_choice, check_sequence
from llmrec.datasets.files import _records
from llmrec.errors import DatasetError, InvalidInputError, LLMRecError
from llmrec.types import Item

__all__ = ["MISSING_VALUES", "MOVIE_DETAIL_LABELS", "PLACEHOLDER_TEXTS", "merge_details"]

logger = logging.getLogger(__name__)

#: Labels under which :func:`~llmrec.datasets.load_movielens` (``details=``) writes a
#: movie's people into its text, in this order: ``"Directed by A. Written by B. Starring C, D."``
MOVIE_DETAIL_LABELS: Mapping[str, str] = {
    "director": "Directed by",
    "writer": "Written by",
    "cast": "Starring",
}
_ON_MISSING = ("keep", "drop", "error")
# Fields of a record that never become attributes: the item's own identity and text.
_ITEM_OWN = ("title", "text", "attributes")
_SCALARS = (str, int, float, bool)


def _check_names(values: Any, name: str) -> list[str]:
    out = check_sequence(values, name)
    for value in out:
        if not isinstance(value, str) or not value:
            raise InvalidInputError(f"{name} must hold field names (non-empty str), got {value!r}")
    return out


def _check_labels(labels: Any) -> dict[str, str]:
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise InvalidInputError(
            f"labels must be a mapping of field name to label, got {type(labels).__name__}"
        )
    for field, label in labels.items():
        if not isinstance(field, str) or not isinstance(label, str) or not field:
            raise InvalidInputError(f"labels must map str to str, got {field!r}: {label!r}")
    return dict(labels)


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if not text or text[-1] in ".!?\"')" else text + "."


def _names(value: Any, where: str, field: str) -> list[str]:
    """A labelled field's values: a list of scalars, or a str (``|``-separated in CSV)."""
    if isinstance(value, str):
        return [v.strip() for v in value.split("|") if v.strip()]
    if isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value):
        return [str(v).strip() for v in value if str(v).strip()]
    raise DatasetError(f"{where}: field {field!r} must be a list of names, got {value!r:.80}")


def _json_like(value: Any) -> bool:
    if value is None or isinstance(value, _SCALARS):
        return True
    if isinstance(value, list):
        return all(_json_like(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_like(v) for k, v in value.items())
    return False


#: How a source's text begins where it has none (IMDb's, for titles without a plot
#: summary, goes on "Be the first to contribute! ..."): merged as no text, or a model
#: would repeat it as the item's description.
PLACEHOLDER_TEXTS = frozenset(
    {
        "it looks like we don't have any plot summaries for this title yet.",
        "it looks like we don't have a synopsis for this title yet.",
        "add a plot »",
    }
)


#: Values a source writes for "unknown" (a data frame's missing cell written out as
#: text: ``"director": ["nan"]`` in 16 ML-100K records): merged as no value, or a text
#: would say "Directed by nan".
MISSING_VALUES = frozenset({"nan", "none", "null", "n/a"})


def _missing(value: Any) -> bool:
    if isinstance(value, float):
        return value != value  # NaN
    return isinstance(value, str) and value.strip().casefold() in MISSING_VALUES


def _known(record: dict[str, Any]) -> dict[str, Any]:
    """The record less its unknown values (a list keeps its known members)."""
    out: dict[str, Any] = {}
    for field, value in record.items():
        if isinstance(value, list):
            value = [v for v in value if not _missing(v)]
        if not _missing(value):
            out[field] = value
    return out


def _empty(value: Any) -> bool:
    return value is None or (isinstance(value, (str, list, dict)) and not value)


def _placeholder(value: Any) -> bool:
    folded = " ".join(value.casefold().split()) if isinstance(value, str) else ""
    return any(folded.startswith(p) for p in PLACEHOLDER_TEXTS)


def _read_records(path: str | os.PathLike[str], key: str) -> dict[str, tuple[str, dict]]:
    """``{item id: ("file:line", record)}``; a repeated id is an error naming both lines."""
    out: dict[str, tuple[str, dict]] = {}
    for file, number, record in _records(path, (key,)):
        where = f"{file}:{number}"
        raw = record.pop(key)
        if isinstance(raw, bool) or not isinstance(raw, (str, int)) or str(raw).strip() == "":
            raise DatasetError(f"{where}: {key!r} must be an item id (str or int), got {raw!r:.60}")
        item_id = str(raw).strip()
        if item_id in out:
            raise DatasetError(
                f"{where}: item id {item_id!r} already has details at {out[item_id][0]}"
            )
        out[item_id] = (where, record)
    return out


def _merged(
    item: Item,
    where: str,
    record: dict[str, Any],
    text_fields: list[str],
    labels: dict[str, str],
    exclude: set[str],
) -> Item:
    record = _known(record)
    parts = [item.text.strip()] if item.text.strip() else []
    for field in text_fields:
        value = record.get(field)
        if _empty(value) or _placeholder(value):
            continue
        if not isinstance(value, str):
            raise DatasetError(f"{where}: field {field!r} must be text, got {value!r:.80}")
        parts.append(_sentence(value))
    for field, label in labels.items():
        if field not in exclude and not _empty(record.get(field)):
            names = _names(record[field], where, field)
            if names:
                parts.append(_sentence(f"{label} {', '.join(names)}"))
    attributes = dict(item.attributes)
    for field, value in record.items():
        if field in exclude or field in text_fields or field in _ITEM_OWN or _empty(value):
            continue
        if not _json_like(value):
            raise DatasetError(f"{where}: field {field!r} is not JSON-like: {value!r:.80}")
        if field in labels:
            value = _names(value, where, field)
        attributes.setdefault(field, value)  # the catalog's own value wins
    try:
        return Item(item.item_id, item.title, text=" ".join(parts), attributes=attributes)
    except LLMRecError as exc:
        raise DatasetError(f"{where}: details make a bad item ({exc})") from None


def merge_details(
    items: Iterable[Item],
    path: str | os.PathLike[str],
    *,
    key: str = "item_id",
    text_fields: Sequence[str] = ("description",),
    labels: Mapping[str, str] | None = None,
    exclude: Sequence[str] = (),
    on_missing: str = "keep",
) -> list[Item]:
    """Items with the details of an enrichment file (JSON lines or CSV) merged in.

    For each item whose id has a record (the field ``key``), the new text is, in order:
    the item's own text, each of ``text_fields`` as a sentence (not a source's placeholder
    such as IMDb's "It looks like we don't have any Plot Summaries for this title yet.",
    :data:`PLACEHOLDER_TEXTS`), then each field of
    ``labels`` as ``"<label> <name>, <name>."`` (e.g. ``"Directed by John Lasseter."``).
    Values meaning "unknown" (``"nan"``, ``"None"``, ``"null"``, ``"n/a"``, NaN;
    :data:`MISSING_VALUES`) count as absent, in lists too.
    Every other non-empty field of the record becomes an attribute (lists of names for
    the ``labels`` fields); an attribute the item already has keeps its value, and the
    record's ``title``, ``text`` and the ``exclude`` fields are ignored. The encoder
    renders title, genres, year and then this text, so all fields carry signal.

    Args:
        items: The catalog (unchanged; new :class:`~llmrec.types.Item` objects are returned).
        path: The enrichment file (``.jsonl``/``.json``/``.ndjson`` or ``.csv``).
        key: The field holding the item id.
        text_fields: Free-text fields appended to the item text.
        labels: People-like fields written into the text under a label, e.g.
            :data:`MOVIE_DETAIL_LABELS`; ``None`` writes none.
        exclude: Fields to leave out entirely: names or glob patterns (``"*_url"``).
        on_missing: An item without a record is kept as it is (``"keep"``), left out
            (``"drop"``) or an error (``"error"``).

    Returns:
        The items in their input order. Records of ids not in ``items`` are ignored
        (their count is logged).

    Raises:
        DatasetError: The file is missing or malformed, a record lacks ``key``, repeats
            an id, or has a field of the wrong type (the message names file and line), or
            ``on_missing="error"`` and an item has no record.
        InvalidInputError: A bad argument.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInputError(f"key must be a field name (non-empty str), got {key!r:.60}")
    fields = _check_names(text_fields, "text_fields")
    label_map = _check_labels(labels)
    patterns = _check_names(exclude, "exclude")
    on_missing = check_choice(on_missing, "on_missing", _ON_MISSING, error=InvalidInputError)
    items = list(items)
    records = _read_records(path, key)
    skip = {f for _, r in records.values() for f in r if any(fnmatchcase(f, p) for p in patterns)}
    out: list[Item] = []
    missing: list[str] = []
    for item in items:
        if item.item_id not in records:
            missing.append(item.item_id)
            if on_missing == "keep":
                out.append(item)
            continue
        where, record = records[item.item_id]
        out.append(_merged(item, where, record, fields, label_map, skip))
    if missing and on_missing == "error":
        raise DatasetError(
            f"{path}: {len(missing):,} items have no details (first: {missing[:5]}); "
            "pass on_missing='keep' or 'drop'"
        )
    unused = len(records) - (len(items) - len(missing))
    logger.info(
        "merged details of %s into %d of %d items (%d without details %s, %d records unused)",
        Path(path).name, len(items) - len(missing), len(items), len(missing),
        "kept" if on_missing == "keep" else "dropped", unused,
    )  # fmt: skip
    return out
