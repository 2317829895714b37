"""MovieLens readers: GroupLens, RecBole atomic files and ml-latest CSV.

Three on-disk formats are understood; :func:`detect_format` tells them apart by the files
a directory holds:

* ``"grouplens"`` -- the original ml-100k release: ``u.data`` (tab-separated
  ``user item rating timestamp``), ``u.item`` (``|``-separated, latin-1), optional
  ``u.genre`` and ``u.user``.
* ``"recbole"`` -- RecBole atomic files: ``<name>.inter``, optional ``<name>.item`` and
  ``<name>.user``, each with a header of ``field:type`` columns.
* ``"ml-latest"`` -- ``ratings.csv`` and ``movies.csv`` of ml-latest / ml-latest-small
  (and ml-20m, ml-25m, ...).

Every reader returns a :class:`~llmrec.datasets.Dataset` in the canonical event order
(see :mod:`llmrec.datasets.dataset`).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from llmrec.datasets.dataset import Dataset, sort_events
from llmrec.datasets.files import check_unique, open_text, read_csv
from llmrec.errors import DatasetError, LLMRecError
from llmrec.storage.io import check_path
from llmrec.types import Event, Item

__all__ = [
    "GROUPLENS_GENRES",
    "detect_format",
    "read_grouplens",
    "read_movielens",
    "read_movielens_csv",
    "read_recbole",
]

logger = logging.getLogger(__name__)

#: Genre flag order of ``u.item`` when ``u.genre`` is absent.
GROUPLENS_GENRES: tuple[str, ...] = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
# Placeholder genres that mean "no genre"; they are dropped from ``attributes["genres"]``.
_NO_GENRE = frozenset({"unknown", "(no genres listed)"})
_TITLE_YEAR = re.compile(r"\((\d{4})(?:\s*[-\u2013]\s*\d{0,4})?\)\s*$")


def _year_from_title(title: str) -> int | None:
    match = _TITLE_YEAR.search(title)
    return int(match.group(1)) if match else None


def _parse_year(text: str) -> int | None:
    text = text.strip()
    if len(text) == 4 and text.isdigit() and 1800 <= int(text) <= 2200:
        return int(text)
    return None


def _make_item(
    where: str,
    item_id: str,
    title: str,
    genres: list[str],
    year: int | None,
    extra: dict[str, Any] | None = None,
) -> Item:
    """The :class:`~llmrec.types.Item` of one row; ``where`` (``file:line``) names the row
    in the :class:`~llmrec.errors.DatasetError` raised for a bad one."""
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
    try:
        return Item(item_id=item_id, title=title, text="", attributes=attributes)
    except LLMRecError as exc:
        raise DatasetError(f"{where}: {exc}") from None


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
    directory = check_path(directory, "directory")
    data = directory / "u.data"
    if not data.is_file():
        raise DatasetError(f"{data} does not exist (not a GroupLens ml-100k directory)")
    events = [_grouplens_event(data, number, line) for number, line in open_text(data, "latin-1")]
    item_file = directory / "u.item"
    items: list[Item] = []
    if item_file.is_file():
        genres = _grouplens_genres(directory / "u.genre")
        items = [
            _grouplens_item(item_file, number, line, genres)
            for number, line in open_text(item_file, "latin-1")
        ]
    else:
        logger.warning("%s is absent: items have no titles", item_file)
    users = _grouplens_users(directory / "u.user")
    return _finish(
        name or "ml-100k", check_unique(items, item_file), events, users, "grouplens", directory
    )


def _grouplens_event(data: Path, number: int, line: str) -> Event:
    cols = line.split("\t")
    if len(cols) != 4:
        cols = line.split()
    if len(cols) != 4:
        raise DatasetError(
            f"{data}:{number}: expected 4 tab-separated fields "
            f"(user item rating timestamp), got {len(cols)}: {line[:80]!r}"
        )
    return _make_event(data, number, cols[0].strip(), cols[1].strip(), cols[2], cols[3])


def _grouplens_genres(genre_file: Path) -> list[str]:
    """The genre flag order: ``u.genre`` when present, else :data:`GROUPLENS_GENRES`."""
    if not genre_file.is_file():
        return list(GROUPLENS_GENRES)
    indexed = []
    for number, line in open_text(genre_file, "latin-1"):
        genre, sep, index = line.rpartition("|")
        if not sep or not index.strip().isdigit():
            raise DatasetError(f"{genre_file}:{number}: expected 'name|index', got {line!r}")
        indexed.append((int(index), genre.strip()))
    return [g for _, g in sorted(indexed)]


def _grouplens_item(item_file: Path, number: int, line: str, genres: list[str]) -> Item:
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
    return _make_item(f"{item_file}:{number}", cols[0].strip(), cols[1], item_genres, year)


def _grouplens_users(user_file: Path) -> dict[str, dict[str, Any]]:
    users: dict[str, dict[str, Any]] = {}
    if not user_file.is_file():
        return users
    for number, line in open_text(user_file, "latin-1"):
        cols = line.split("|")
        if len(cols) != 5:
            raise DatasetError(
                f"{user_file}:{number}: expected 5 '|'-separated fields "
                f"(id|age|gender|occupation|zip), got {len(cols)}"
            )
        users[cols[0].strip()] = _user_attributes(
            {"age": cols[1], "gender": cols[2], "occupation": cols[3], "zip_code": cols[4]}
        )
    return users


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
def _read_atomic(
    path: Path, *required: str
) -> Iterator[tuple[int, dict[str, str], dict[str, str]]]:
    """Yield ``(line, {field: value}, {field: type})`` rows of a RecBole atomic file whose
    header names every ``required`` field."""
    rows = open_text(path, "utf-8")
    try:
        _, header = next(rows)
    except StopIteration:
        raise DatasetError(f"{path} is empty (expected a 'field:type' header)") from None
    names, types = [], {}
    for column in header.split("\t"):
        fname, _, ftype = column.strip().partition(":")
        names.append(fname)
        types[fname] = ftype or "token"
    missing = [f for f in required if f not in names]
    if missing:
        raise DatasetError(f"{path}: header lacks field(s) {', '.join(missing)}")
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
    directory = check_path(directory, "directory")
    name = name or _recbole_stem(directory)
    inter = directory / f"{name}.inter"
    if not inter.is_file():
        raise DatasetError(f"{inter} does not exist (not a RecBole atomic dataset)")

    events = _recbole_events(inter)
    items = _recbole_items(directory / f"{name}.item")
    users: dict[str, dict[str, Any]] = {}
    user_file = directory / f"{name}.user"
    if user_file.is_file():
        for _, row, types in _read_atomic(user_file, "user_id"):
            users[row["user_id"].strip()] = _user_attributes(
                {k: _typed(v, types[k]) for k, v in row.items() if k != "user_id"}
            )
    return _finish(
        name, check_unique(items, directory / f"{name}.item"), events, users, "recbole", directory
    )


def _recbole_events(inter: Path) -> list[Event]:
    return [
        _make_event(
            inter,
            number,
            row["user_id"].strip(),
            row["item_id"].strip(),
            row.get("rating"),
            row["timestamp"],
        )
        for number, row, _ in _read_atomic(inter, "user_id", "item_id", "timestamp")
    ]


def _recbole_items(item_file: Path) -> list[Item]:
    items: list[Item] = []
    if not item_file.is_file():
        return items
    for number, row, types in _read_atomic(item_file, "item_id"):
        title_f = _first_field(row, "movie_title", "title", "name")
        genre_f = _first_field(row, "class", "genre", "genres")
        year_f = _first_field(row, "release_year", "year")
        used = {"item_id", title_f, genre_f, year_f}
        extra = {k: _typed(v, types[k]) for k, v in row.items() if k not in used}
        genres = row[genre_f].split() if genre_f else []
        year = _parse_year(row[year_f]) if year_f else None
        title = row[title_f] if title_f else ""
        items.append(
            _make_item(f"{item_file}:{number}", row["item_id"].strip(), title, genres, year, extra)
        )
    return items


def _recbole_stem(directory: Path) -> str:
    stems = sorted(p.stem for p in directory.glob("*.inter"))
    if len(stems) == 1:
        return stems[0]
    if not stems:
        raise DatasetError(f"{directory} holds no .inter file")
    raise DatasetError(f"{directory} holds several .inter files ({', '.join(stems)}); pass name=")


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
    directory = check_path(directory, "directory")
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
        for number, row in read_csv(ratings, ("userId", "movieId", "rating", "timestamp"))
    ]
    items: list[Item] = []
    movies = directory / "movies.csv"
    if movies.is_file():
        for number, row in read_csv(movies, ("movieId", "title", "genres")):
            genres = [g.strip() for g in row["genres"].split("|")]
            items.append(
                _make_item(f"{movies}:{number}", row["movieId"].strip(), row["title"], genres, None)
            )
    return _finish(
        name or directory.resolve().name,
        check_unique(items, movies),
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
    directory = check_path(directory, "directory")
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
    path = check_path(path).expanduser()
    if path.is_file():
        if path.suffix == ".inter" and name is None:
            name = path.stem
        path = path.parent
    fmt = detect_format(path)
    if fmt == "recbole" and name is not None and not (path / f"{name}.inter").is_file():
        name = None  # the name is a label here, not the file stem
    return _READERS[fmt](path, name)
