"""The event log (format, torn and corrupt records, forget, threads) and the recovery
protocol of a pipeline: save + log replay gives back the state before a crash."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import build_pipeline, make_items

from llmrec import Event, Item, Pipeline
from llmrec.errors import (
    ConfigError,
    InvalidInputError,
    PersistenceError,
    UnknownItemError,
    UnknownUserError,
)
from llmrec.storage.eventlog import EventLog, LogRecord


def events_of(log: EventLog, after: int = 0) -> list[Event]:
    return [e for record in log.replay(after) for e in record.events]


def ev(user: str, item: str, t: float, kind: str = "click") -> Event:
    return Event(user, item, kind=kind, timestamp=t)


# --------------------------------------------------------------------------- format


def test_append_and_replay_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    batch = [
        ev("u1", "i1", 1.0),
        Event("u2", kind="query", text="ünïcödé \u2028 q", timestamp=2.0),
        Event("u1", "i2", kind="rate", value=4.5, timestamp=3.0),
    ]
    with EventLog(path) as log:
        assert log.last_sequence == 0 and len(log) == 0
        assert log.append(batch[:1]) == 1
        assert log.append(batch[1:]) == 2
        assert log.write("user", {"user_id": "u3"}) == 3
        records = list(log.replay())
        assert [r.sequence for r in records] == [1, 2, 3]
        assert [r.op for r in records] == ["events", "events", "user"]
        assert events_of(log) == batch
        assert [r.sequence for r in log.replay(after=2)] == [3]
    with EventLog(path) as log:  # reopened: same id, same records, sequence continues
        assert log.last_sequence == 3 and len(log) == 3
        assert events_of(log) == batch
        assert log.append([ev("u1", "i3", 4.0)]) == 4
    lines = path.read_bytes().splitlines()
    assert len(lines) == 5  # header + 4 records, one per line, ASCII only
    assert all(line.isascii() for line in lines)


@pytest.mark.parametrize("fsync", ["always", "batch", "never"])
def test_every_policy_keeps_records(tmp_path: Path, fsync: str) -> None:
    with EventLog(tmp_path / "e.log", fsync=fsync, batch_interval=0.01) as log:
        for n in range(20):
            log.append([ev("u", f"i{n}", float(n))])
        log.sync()
    with EventLog(tmp_path / "e.log") as log:
        assert len(events_of(log)) == 20


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        EventLog(tmp_path / "a.log", fsync="sometimes")
    with pytest.raises(ConfigError):
        EventLog(tmp_path / "a.log", batch_interval=0)
    with pytest.raises(ConfigError, match="batch_interval must be a number"):
        EventLog(tmp_path / "a.log", fsync="batch", batch_interval=True)
    with pytest.raises(ConfigError, match="fsync must be one of"):
        EventLog(tmp_path / "a.log", fsync=["always"])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        EventLog(None)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        EventLog("")
    with EventLog(tmp_path / "a.log") as log:
        with pytest.raises(InvalidInputError):
            log.append(ev("u", "i", 1.0))  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            log.append(["not an event"])  # type: ignore[list-item]
        with pytest.raises(InvalidInputError):
            log.append(5)  # type: ignore[arg-type]
        with pytest.raises(InvalidInputError):
            log.write("delete everything", {})
        with pytest.raises(InvalidInputError):
            log.write("user", {"user_id": object()})
        with pytest.raises(InvalidInputError):
            list(log.replay(after=-1))
        with pytest.raises(InvalidInputError, match="after must be"):
            list(log.replay(after=True))
        assert log.last_sequence == 0 and len(log) == 0


def test_closed_log_refuses_work(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "a.log")
    log.close()
    log.close()  # harmless
    assert log.closed
    with pytest.raises(PersistenceError, match="closed"):
        log.append([ev("u", "i", 1.0)])
    with pytest.raises(PersistenceError, match="closed"):
        list(log.replay())


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    with EventLog(tmp_path / "a.log"):
        with pytest.raises(PersistenceError, match="another"):
            EventLog(tmp_path / "a.log")
    EventLog(tmp_path / "a.log").close()  # free again once closed


def test_not_a_log(tmp_path: Path) -> None:
    (tmp_path / "x.log").write_text("hello\nworld\n")
    with pytest.raises(PersistenceError, match="not an llmrec event log"):
        EventLog(tmp_path / "x.log")


# --------------------------------------------------------------------------- damage


def _log_with(tmp_path: Path, n: int) -> Path:
    path = tmp_path / "e.log"
    with EventLog(path) as log:
        for i in range(n):
            log.append([ev("u", f"i{i}", float(i))])
    return path


@pytest.mark.parametrize("cut", [1, 5, 20, 40])
def test_torn_final_record_is_skipped_and_cut_off(tmp_path: Path, cut: int) -> None:
    path = _log_with(tmp_path, 5)
    data = path.read_bytes()
    last = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[: last + cut])  # a crash in the middle of the 5th record
    with EventLog(path) as log:
        assert log.last_sequence == 4
        assert [e.item_id for e in events_of(log)] == ["i0", "i1", "i2", "i3"]
        assert log.append([ev("u", "new", 9.0)]) == 5  # appends after the cut
    with EventLog(path) as log:
        assert [e.item_id for e in events_of(log)] == ["i0", "i1", "i2", "i3", "new"]


@pytest.mark.parametrize("tail", [b"\x00" * 300, b'deadbeef {"seq": 6}\n', b"\n"])
def test_garbage_after_the_last_record_is_a_torn_tail(tmp_path: Path, tail: bytes) -> None:
    path = _log_with(tmp_path, 3)
    with open(path, "ab") as f:
        f.write(tail)
    with EventLog(path) as log:
        assert log.last_sequence == 3
    assert path.read_bytes().endswith(b"\n") and path.read_bytes().count(b"\n") == 4


@pytest.mark.parametrize("how", ["flip", "truncate line", "garble json"])
def test_corruption_before_the_end_names_file_and_offset(tmp_path: Path, how: str) -> None:
    path = _log_with(tmp_path, 5)
    data = bytearray(path.read_bytes())
    lines = bytes(data).splitlines(keepends=True)
    offset = len(lines[0]) + len(lines[1])  # the second record
    if how == "flip":
        data[offset + 20] ^= 0x01
    elif how == "truncate line":
        del data[offset + 15 : offset + len(lines[2]) - 1]
    else:
        data[offset + 9 : offset + 10] = b"["
    path.write_bytes(bytes(data))
    with pytest.raises(PersistenceError) as info:
        EventLog(path)
    assert str(path) in str(info.value) and f"offset {offset}" in str(info.value)
    # The lock was released: the file can be repaired and reopened.
    path.write_bytes(b"".join(lines))
    EventLog(path).close()


# --------------------------------------------------------------------------- forget


def test_forget_rewrites_the_log_without_the_user(tmp_path: Path) -> None:
    path = tmp_path / "e.log"
    with EventLog(path) as log:
        log.append([ev("alice@example.com", "i1", 1.0), ev("bob", "i2", 2.0)])
        log.append([ev("alice@example.com", "i3", 3.0)])
        log.write("user", {"user_id": "alice@example.com"})
        log.append([ev("bob", "i4", 4.0)])
        assert log.forget("alice@example.com") == 3
        assert b"alice" not in path.read_bytes()
        records = list(log.replay())
        assert [e.item_id for e in events_of(log)] == ["i2", "i4"]
        assert records[-1].op == "forget"
        assert records[-1].data["user_hash"] == log.user_hash("alice@example.com")
        assert log.forget("nobody", tombstone=False) == 0
        assert log.append([ev("bob", "i5", 5.0)]) == records[-1].sequence + 1
    assert b"alice" not in path.read_bytes()
    with EventLog(path) as log:
        assert [e.item_id for e in events_of(log)] == ["i2", "i4", "i5"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


# --------------------------------------------------------------------------- threads


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "e.log"
    n_threads, per_thread = 8, 150
    with EventLog(path, fsync="always") as log:
        sequences: list[int] = []
        guard = threading.Lock()

        def work(t: int) -> None:
            for n in range(per_thread):
                seq = log.append([ev(f"u{t}", f"i{n}", float(n))])
                with guard:
                    sequences.append(seq)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(sequences) == list(range(1, n_threads * per_thread + 1))
    with EventLog(path) as log:
        events = events_of(log)
    assert len(events) == n_threads * per_thread
    for t in range(n_threads):  # each thread's events are in its own order
        mine = [e.item_id for e in events if e.user_id == f"u{t}"]
        assert mine == [f"i{n}" for n in range(per_thread)]


def test_replay_is_a_snapshot(tmp_path: Path) -> None:
    with EventLog(tmp_path / "e.log") as log:
        log.append([ev("u", "i0", 0.0)])
        records = log.replay()
        log.append([ev("u", "i1", 1.0)])
        assert [r.sequence for r in records] == [1]
        assert isinstance(next(iter(log.replay())), LogRecord)


# --------------------------------------------------------------------------- pipeline


ITEMS = make_items(60)


def small_pipeline(**options) -> Pipeline:
    return build_pipeline(ITEMS, models=(), **options)


def profiles_of(pipe: Pipeline) -> dict:
    out = {}
    for uid in sorted(pipe.profiles):
        p = pipe.profiles.get(uid)
        out[uid] = (
            p.n_events,
            [tuple(h.__dict__.values()) for h in p.history],
            sorted(p.seen),
            p.stated_preferences,
            p.tag_affinity,
            None if p.interest is None else p.interest.tobytes(),
            None if p.preference_vector is None else p.preference_vector.tobytes(),
        )
    return out


def state_of(pipe: Pipeline) -> tuple:
    return (
        profiles_of(pipe),
        sorted(pipe.catalog.item_ids()),
        pipe.retriever.popularity.counts[: pipe.catalog.n_rows].tolist(),
    )


def lived_in(pipe: Pipeline) -> None:
    """Every kind of logged change."""
    pipe.observe(ev("a", "i000", 1.0))
    pipe.observe_many(
        [
            ev("a", "i006", 2.0, "like"),
            ev("b", "i001", 3.0),
            Event("b", kind="query", text="scary ghost, mail b@x.org", timestamp=4.0),
        ]
    )
    pipe.add_user("c")
    pipe.add_user("d", preferences="cowboy sheriff saloon")
    pipe.add_items([Item("new1", "Ocean", "mermaid coral", {"genres": ["ocean"]})])
    pipe.observe(ev("c", "new1", 5.0, "purchase"))
    pipe.remove_items(["i013"])
    pipe.observe(Event("a", "i014", kind="rate", value=2, timestamp=6.0))


def test_a_never_saved_pipeline_is_rebuilt_from_its_log(tmp_path: Path) -> None:
    log_path = tmp_path / "events.log"
    pipe = small_pipeline()
    assert pipe.open_event_log(log_path) == 0
    lived_in(pipe)
    expected = state_of(pipe)
    pipe.close()
    rebuilt = small_pipeline()
    assert rebuilt.open_event_log(log_path) == 8
    assert state_of(rebuilt) == expected
    assert rebuilt.recommend("a", 5, generate=False) == pipe.recommend("a", 5, generate=False)
    rebuilt.close()


def test_recovery_replays_only_what_came_after_the_save(tmp_path: Path) -> None:
    log_path, save = tmp_path / "events.log", tmp_path / "model"
    pipe = small_pipeline()
    pipe.open_event_log(log_path, fsync="batch")
    pipe.observe(ev("a", "i000", 1.0))
    pipe.add_user("z", preferences="space robot")
    pipe.save_pretrained(save)
    lived_in(pipe)  # after the save: only in the log
    expected = state_of(pipe)
    pipe.close()

    loaded = Pipeline.from_pretrained(save, device="cpu")
    assert profiles_of(loaded)["a"][0] == 1
    assert loaded.open_event_log(log_path) == 8
    assert state_of(loaded) == expected
    # Reopening on a pipeline that has seen everything replays nothing.
    loaded.close()
    assert loaded.open_event_log(log_path) == 0
    loaded.observe(ev("a", "i020", 7.0))
    loaded.save_pretrained(save)
    loaded.close()
    again = Pipeline.from_pretrained(save, device="cpu")
    assert again.open_event_log(log_path) == 0
    assert state_of(again) == state_of(loaded)
    again.close()


def test_a_bad_call_writes_nothing_to_the_log(tmp_path: Path) -> None:
    pipe = small_pipeline()
    pipe.open_event_log(tmp_path / "e.log")
    pipe.observe(ev("a", "i000", 1.0))
    before = pipe.event_log.last_sequence
    for call in (
        lambda: pipe.observe(ev("a", "nope", 2.0)),
        lambda: pipe.observe_many([ev("a", "i001", 2.0), ev("a", "nope", 3.0)]),
        lambda: pipe.observe("not an event"),
        lambda: pipe.remove_items(["i001", "nope"]),
        lambda: pipe.add_items([Item("x", "X"), "y"]),
        lambda: pipe.forget("ghost"),
    ):
        with pytest.raises((InvalidInputError, UnknownItemError, UnknownUserError)):
            call()
    assert pipe.event_log.last_sequence == before
    pipe.close()


def test_open_event_log_refuses_a_mismatch(tmp_path: Path) -> None:
    save, log_a, log_b = tmp_path / "model", tmp_path / "a.log", tmp_path / "b.log"
    pipe = small_pipeline()
    pipe.open_event_log(log_a)
    with pytest.raises(ConfigError, match="already open"):
        pipe.open_event_log(log_b)
    pipe.observe(ev("a", "i000", 1.0))
    pipe.save_pretrained(save)
    pipe.close()
    loaded = Pipeline.from_pretrained(save, device="cpu")
    with pytest.raises(PersistenceError, match="saved with event log"):
        loaded.open_event_log(log_b)  # a different (new) log
    assert loaded.event_log is None
    assert loaded.open_event_log(log_b, allow_new=True) == 0
    loaded.close()
    keyed = small_pipeline(pseudonymize_key=b"k" * 32)
    with pytest.raises(ConfigError, match="pseudonymization"):
        keyed.open_event_log(log_a)


def test_log_lost_records_is_refused(tmp_path: Path) -> None:
    save, log_path = tmp_path / "model", tmp_path / "e.log"
    pipe = small_pipeline()
    pipe.open_event_log(log_path)
    pipe.observe(ev("a", "i000", 1.0))
    pipe.observe(ev("a", "i001", 2.0))
    pipe.save_pretrained(save)
    pipe.close()
    data = log_path.read_bytes().splitlines(keepends=True)
    log_path.write_bytes(b"".join(data[:2]))  # header + first record only
    loaded = Pipeline.from_pretrained(save, device="cpu")
    with pytest.raises(PersistenceError, match="lost records"):
        loaded.open_event_log(log_path)


def test_forget_reaches_the_log_and_leaves_a_tombstone(tmp_path: Path) -> None:
    save, log_path = tmp_path / "model", tmp_path / "e.log"
    pipe = small_pipeline()
    pipe.open_event_log(log_path)
    pipe.observe(ev("victim-7", "i000", 1.0))
    pipe.observe(ev("keeper", "i001", 2.0))
    pipe.save_pretrained(save)  # an older save that still holds the victim
    pipe.observe(ev("victim-7", "i002", 3.0))
    pipe.forget("victim-7")
    assert b"victim-7" not in log_path.read_bytes()
    pipe.close()
    # Recovering from the older save: the tombstone removes the victim again.
    loaded = Pipeline.from_pretrained(save, device="cpu")
    assert "victim-7" in loaded.profiles
    loaded.open_event_log(log_path)
    assert "victim-7" not in loaded.profiles and "keeper" in loaded.profiles
    # The victim's interactions left popularity in both, so the two agree.
    assert state_of(loaded) == state_of(pipe)
    loaded.close()


def test_observe_waits_for_the_log(tmp_path: Path) -> None:
    pipe = small_pipeline()
    pipe.open_event_log(tmp_path / "e.log", fsync="always")
    pipe.observe(ev("a", "i000", 1.0))
    assert pipe.event_log._synced == pipe.event_log.last_sequence
    pipe.close()
    assert pipe.event_log is None
    pipe.observe(ev("a", "i001", 2.0))  # without a log the pipeline still works
    with small_pipeline() as other:
        other.open_event_log(tmp_path / "f.log")
    assert other.event_log is None


def test_replay_of_a_record_that_does_not_apply(tmp_path: Path) -> None:
    log_path = tmp_path / "e.log"
    with EventLog(log_path, meta={"key_check": None}) as log:
        log.append([ev("a", "not-in-this-catalog", 1.0)])
    pipe = small_pipeline()
    with pytest.raises(PersistenceError, match="record 1"):
        pipe.open_event_log(log_path)
    assert pipe.event_log is None


def test_interest_vectors_match_exactly_after_replay(tmp_path: Path) -> None:
    pipe = small_pipeline()
    pipe.open_event_log(tmp_path / "e.log")
    rng = np.random.default_rng(0)
    for n in range(200):
        pipe.observe(ev(f"u{rng.integers(5)}", ITEMS[int(rng.integers(60))].item_id, float(n)))
    pipe.close()
    rebuilt = small_pipeline()
    rebuilt.open_event_log(tmp_path / "e.log")
    assert profiles_of(rebuilt) == profiles_of(pipe)
    rebuilt.close()
