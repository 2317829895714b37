"""Tests of the enrichment merge, the k-core filter and ml-latest-small (fetch and read)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest

from llmrec.catalog import render_item_text
from llmrec.datasets import (
    MOVIE_DETAIL_LABELS,
    Dataset,
    core_filter,
    fetch_movielens_latest_small,
    load_movielens,
    merge_details,
)
from llmrec.datasets import fetch as fetching
from llmrec.errors import DatasetError, InvalidInputError
from llmrec.types import Event, Item


def _jsonl(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _catalog() -> list[Item]:
    return [
        Item("1", "Toy Story", attributes={"genres": ["Animation"], "year": 1995}),
        Item("2", "Heat", text="A heist film.", attributes={"genres": ["Crime"]}),
        Item("3", "Fargo", attributes={"genres": ["Crime"]}),
    ]


DETAILS = (
    {
        "item_id": "1",
        "title": "Toy Story (1995)",
        "description": "A cowboy doll is jealous of a new spaceman toy",
        "director": ["John Lasseter"],
        "cast": ["Tom Hanks", "Tim Allen"],
        "runtime_min": 81,
        "genres": ["Wrong"],
        "imdb_url": "http://example.org/tt1",
    },
    {"item_id": 2, "description": "Two men on opposite sides of the law.", "director": []},
    {"item_id": "99", "description": "Not in the catalog."},
)


# --------------------------------------------------------------------------- merge_details
def test_merge_details_text_order_and_attributes(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "details.jsonl", *DETAILS)
    items = _catalog()
    merged = merge_details(items, path, labels=MOVIE_DETAIL_LABELS, exclude=("*url",))
    assert [i.item_id for i in merged] == ["1", "2", "3"]
    toy, heat, fargo = merged
    assert toy.title == "Toy Story"  # the catalog's title, not the record's
    assert toy.text == (
        "A cowboy doll is jealous of a new spaceman toy. Directed by John Lasseter. "
        "Starring Tom Hanks, Tim Allen."
    )
    assert toy.attributes == {
        "genres": ["Animation"],  # the catalog's own value wins over the record's
        "year": 1995,
        "director": ["John Lasseter"],
        "cast": ["Tom Hanks", "Tim Allen"],
        "runtime_min": 81,
    }
    # the item's own text comes first; an empty people list writes nothing
    assert heat.text == "A heist film. Two men on opposite sides of the law."
    assert "director" not in heat.attributes
    assert fargo == items[2]  # no record: kept unchanged
    assert items[0].text == ""  # the input is not modified
    # the encoder sees title, genres, year, then description and people
    rendered = render_item_text(toy)
    assert rendered.index("Animation") < rendered.index("cowboy") < rendered.index("Tom Hanks")


def test_merge_details_without_labels_keeps_people_as_attributes_only(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", DETAILS[0])
    toy = merge_details(_catalog(), path)[0]
    assert toy.text == "A cowboy doll is jealous of a new spaceman toy."
    assert toy.attributes["cast"] == ["Tom Hanks", "Tim Allen"]
    assert toy.attributes["imdb_url"] == "http://example.org/tt1"  # nothing excluded


def test_a_placeholder_description_is_no_text(tmp_path: Path) -> None:
    none_yet = (
        "It looks like we don't have any Plot  Summaries for this title yet.\nBe the first "
        'to contribute! Just click the "Edit page" button at the bottom of the page.'
    )
    path = _jsonl(
        tmp_path / "d.jsonl", {"item_id": "2", "description": none_yet, "runtime_min": 170}
    )
    heat = merge_details(_catalog(), path)[1]
    assert heat.text == "A heist film." and heat.attributes["runtime_min"] == 170


def test_unknown_values_are_no_values(tmp_path: Path) -> None:
    # A data frame's missing cells written out as text: no "Directed by nan." in the text.
    record = {
        "item_id": "2",
        "description": "NaN",
        "director": ["nan"],
        "cast": ["Al Pacino", "None"],
        "age_rating": "n/a",
        "runtime_min": 170,
    }
    path = _jsonl(tmp_path / "d.jsonl", record)
    heat = merge_details(_catalog(), path, labels=MOVIE_DETAIL_LABELS)[1]
    assert heat.text == "A heist film. Starring Al Pacino."
    assert heat.attributes == {"genres": ["Crime"], "cast": ["Al Pacino"], "runtime_min": 170}


def test_merge_details_on_missing(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", *DETAILS)
    assert [i.item_id for i in merge_details(_catalog(), path, on_missing="drop")] == ["1", "2"]
    with pytest.raises(DatasetError, match=r"1 items have no details \(first: \['3'\]\)"):
        merge_details(_catalog(), path, on_missing="error")
    with pytest.raises(InvalidInputError, match="on_missing must be one of"):
        merge_details(_catalog(), path, on_missing="skip")


def test_merge_details_other_key_and_csv(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text(
        "sku,description,brand,cast\n1,Soft toy.,Acme,Tom Hanks|Tim Allen\n", encoding="utf-8"
    )
    toy = merge_details(_catalog(), path, key="sku", labels={"cast": "With"})[0]
    assert toy.text == "Soft toy. With Tom Hanks, Tim Allen."
    assert toy.attributes["brand"] == "Acme"
    assert toy.attributes["cast"] == ["Tom Hanks", "Tim Allen"]


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        (['{"item_id": "1"}', "{not json"], r"d\.jsonl:2: not a JSON object"),
        (['{"item_id": "1"}', '["a list"]'], r"d\.jsonl:2: expected a JSON object"),
        (['{"description": "no id"}'], r"d\.jsonl:1: missing field\(s\) item_id"),
        (['{"item_id": "1"}', '{"item_id": 1}'], r"d\.jsonl:2: .*already has details at .*:1"),
        (['{"item_id": true}'], r"d\.jsonl:1: 'item_id' must be an item id"),
        (['{"item_id": "1", "description": 5}'], r"d\.jsonl:1: field 'description' must be text"),
        (['{"item_id": "1", "cast": {"a": 1}}'], r"d\.jsonl:1: field 'cast' must be a list"),
    ],
)
def test_merge_details_bad_lines_name_file_and_line(
    tmp_path: Path, lines: list[str], match: str
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=match):
        merge_details(_catalog(), path, labels=MOVIE_DETAIL_LABELS)


def test_merge_details_bad_arguments(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "d.jsonl", DETAILS[0])
    with pytest.raises(DatasetError, match="no such file"):
        merge_details(_catalog(), tmp_path / "absent.jsonl")
    with pytest.raises(InvalidInputError, match="key must be"):
        merge_details(_catalog(), path, key="")
    with pytest.raises(InvalidInputError, match="text_fields must be a sequence"):
        merge_details(_catalog(), path, text_fields="description")
    with pytest.raises(InvalidInputError, match="labels must be a mapping"):
        merge_details(_catalog(), path, labels=["cast"])
    too_long = _jsonl(tmp_path / "long.jsonl", {"item_id": "1", "description": "x" * 100_001})
    with pytest.raises(DatasetError, match=r"long\.jsonl:1: details make a bad item"):
        merge_details(_catalog(), too_long)


def test_load_movielens_with_details(tmp_path: Path) -> None:
    directory = tmp_path / "ml"
    directory.mkdir()
    (directory / "u.data").write_text("1\t1\t5\t10\n1\t2\t4\t20\n2\t1\t3\t30\n")
    genres = "|".join(["0"] * 19)
    (directory / "u.item").write_text(
        f"1|Toy Story (1995)|01-Jan-1995||x|{genres}\n2|Heat (1995)|01-Jan-1995||x|{genres}\n"
    )
    details = _jsonl(tmp_path / "details.jsonl", *DETAILS)
    ds = load_movielens(path=directory, details=details)
    toy = ds.item_map()["1"]
    assert toy.text.endswith("Directed by John Lasseter. Starring Tom Hanks, Tim Allen.")
    assert "imdb_url" not in toy.attributes  # links are not facts
    assert toy.attributes["runtime_min"] == 81
    assert len(ds.events) == 3
    with pytest.raises(InvalidInputError, match="details must be a str or path"):
        load_movielens(path=directory, details=3)


# --------------------------------------------------------------------------- k-core
def _events(pairs: list[tuple[str, str]]) -> list[Event]:
    return [Event(u, i, timestamp=float(n)) for n, (u, i) in enumerate(pairs)]


def test_core_filter_is_iterative() -> None:
    # Items a, b, c have 2 users each; user u3 has only one event, on c. Dropping u3
    # leaves c with one user, and dropping c leaves u2 with one event: the 2-core is
    # u1 and... nothing else survives but u1/u2 on a and b.
    pairs = [("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b"), ("u2", "c"), ("u3", "c")]
    ds = Dataset(
        "toy",
        [Item(i, i.upper()) for i in "abcd"],
        _events(pairs),
        users={"u1": {}, "u3": {"age": 3}},
    )
    core = core_filter(ds, 2)
    assert [(e.user_id, e.item_id) for e in core.events] == pairs[:4]
    assert [i.item_id for i in core.items] == ["a", "b"]
    assert core.users == {"u1": {}}
    assert len(ds.events) == 6  # the input is not modified
    # a 3-core: every user needs 3 events; u2 has 3 but then a and b have too few users
    assert core_filter(ds, 3).events == []
    assert core_filter(ds, 1) is ds and core_filter(ds, 0) is ds


def test_core_filter_keeps_query_events_of_remaining_users() -> None:
    events = _events([("u1", "a"), ("u1", "b"), ("u2", "a"), ("u2", "b")])
    events.insert(1, Event("u1", None, kind="query", text="heists", timestamp=0.5))
    events.append(Event("u9", None, kind="query", text="gone", timestamp=9.0))
    core = core_filter(Dataset("toy", [], events), 2)
    assert [e.kind for e in core.events] == ["click", "query", "click", "click", "click"]


@pytest.mark.parametrize("bad", [True, -1, 2.0, "5"])
def test_core_filter_bad_k(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="min_interactions must be an int >= 0"):
        core_filter(Dataset("toy", [], []), bad)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- ml-latest-small
def write_latest(directory: Path, *, newline: str = "\n") -> Path:
    """A synthetic ml-latest-small copy: 6 users x 7 movies, movie 7 rated once."""
    directory.mkdir(parents=True, exist_ok=True)
    movies = ["movieId,title,genres"] + [
        f'{m},"Movie {m}, The ({1990 + m})",Drama|Comedy' for m in range(1, 7)
    ]
    movies.append("7,Lonely (2000),(no genres listed)")
    ratings = ["userId,movieId,rating,timestamp"]
    ratings += [
        f"{u},{m},{(u + m) % 5 + 1}.0,{1000 * u + m}" for u in range(1, 7) for m in range(1, 7)
    ]
    ratings.append("6,7,4.5,99999")
    (directory / "movies.csv").write_bytes((newline.join(movies) + newline).encode())
    (directory / "ratings.csv").write_bytes((newline.join(ratings) + newline).encode())
    return directory


def _pin(monkeypatch: pytest.MonkeyPatch, directory: Path) -> None:
    monkeypatch.setattr(
        fetching,
        "ML_LATEST_SMALL_SHA256",
        {
            name: hashlib.sha256((directory / name).read_bytes()).hexdigest()
            for name in ("ratings.csv", "movies.csv")
        },
    )


def test_load_latest_small_from_a_directory_with_5_core(tmp_path: Path) -> None:
    directory = write_latest(tmp_path / "copy")
    ds = load_movielens("ml-latest-small", path=directory)
    assert ds.name == "ml-latest-small" and ds.source == "ml-latest"
    assert len(ds.items) == 7 and len(ds.events) == 37
    assert ds.item_map()["1"].title == "Movie 1, The (1991)"
    assert ds.item_map()["7"].attributes["genres"] == []
    core = load_movielens("ml-latest-small", path=directory, min_interactions=5)
    assert len(core.items) == 6 and len(core.events) == 36 and len(core.user_ids) == 6
    assert all(e.item_id != "7" for e in core.events)
    with pytest.raises(InvalidInputError, match="min_interactions"):
        load_movielens(path=directory, min_interactions=-5)


def _serve_zip(monkeypatch: pytest.MonkeyPatch, source: Path, calls: list[str]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in ("ratings.csv", "movies.csv"):
            archive.writestr(f"ml-latest-small/{name}", (source / name).read_bytes())
        archive.writestr("ml-latest-small/README.txt", "readme")
        archive.writestr("ml-latest-small/../evil.txt", "x")

    def fake_urlopen(url: str, timeout: float | None = None) -> io.BytesIO:
        calls.append(url)
        return io.BytesIO(buffer.getvalue())

    monkeypatch.setattr(fetching.urllib.request, "urlopen", fake_urlopen)


def test_fetch_latest_small_verifies_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_latest(tmp_path / "source", newline="\r\n")  # as GroupLens ships them
    _pin(monkeypatch, write_latest(tmp_path / "lf"))  # the pin is of the \n form
    calls: list[str] = []
    _serve_zip(monkeypatch, source, calls)
    cache = tmp_path / "cache"
    ds = load_movielens("ml-latest-small", cache_dir=cache, min_interactions=5)
    assert calls == [fetching.ML_LATEST_SMALL_URL]
    target = cache / "datasets" / "ml-latest-small"
    assert sorted(p.name for p in target.iterdir()) == ["README.txt", "movies.csv", "ratings.csv"]
    assert [p.name for p in target.parent.iterdir()] == ["ml-latest-small"]  # no staging left
    assert len(ds.events) == 36
    assert fetch_movielens_latest_small(cache) == target and len(calls) == 1  # cached
    # a cached copy that no longer matches the pin is reported, not read
    (target / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,5,1\n")
    with pytest.raises(DatasetError, match="ratings.csv has sha256 .*delete .* to fetch it again"):
        load_movielens("ml-latest-small", cache_dir=cache)


def test_fetch_latest_small_sha_mismatch_and_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fetching, "ML_LATEST_SMALL_SHA256", {"ratings.csv": "0" * 64})
    calls: list[str] = []
    _serve_zip(monkeypatch, write_latest(tmp_path / "source"), calls)
    with pytest.raises(DatasetError, match="expected 0000.*different release"):
        fetch_movielens_latest_small(tmp_path / "cache", timeout=1)
    assert not (tmp_path / "cache" / "datasets" / "ml-latest-small").exists()

    def no_network(url: str, timeout: float | None = None) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(fetching.urllib.request, "urlopen", no_network)
    with pytest.raises(DatasetError, match="(?s)network is unreachable.*load_movielens"):
        load_movielens("ml-latest-small", cache_dir=tmp_path / "cache")
    with pytest.raises(DatasetError, match="fetch=False"):
        load_movielens("ml-latest-small", cache_dir=tmp_path / "cache", fetch=False)
    with pytest.raises(InvalidInputError, match="timeout must be a positive"):
        fetch_movielens_latest_small(tmp_path, timeout=0)


# --------------------------------------------------------------------------- the demo
def test_demo_passes_details_to_load_movielens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import llmrec.datasets
    from llmrec.apps import cli

    seen: dict[str, object] = {}

    def fake_load(name: str | None = None, **options: object) -> Dataset:
        seen.update(options, name=name)
        raise DatasetError("stop here")

    monkeypatch.setattr(llmrec.datasets, "load_movielens", fake_load)
    path = tmp_path / "details.jsonl"
    assert cli.main(["demo", "--details", str(path), "--no-text"]) == 2
    assert seen == {"name": "ml-100k", "details": str(path)}
    assert "stop here" in capsys.readouterr().err
    assert cli.main(["demo", "--no-text"]) == 2
    assert seen["details"] is None
