"""Snapshots: ``POST /admin/snapshot`` and ``llmrec serve --snapshot-every`` save the
pipeline to its directory, then compact the event log to what the save does not hold; a
real restart (load the save, open the log) afterwards loses no acknowledged event or
forget, also with writes running during the snapshots."""

from __future__ import annotations

import threading
import time

import pytest
from conftest import small_save

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from fastapi.testclient import TestClient  # noqa: E402
from test_serve_durable import HEADERS, KEY, _Serve  # noqa: E402

from llmrec.apps.cli import event_log_path  # noqa: E402
from llmrec.apps.server import create_app  # noqa: E402
from llmrec.apps.snapshot import Snapshots  # noqa: E402
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError  # noqa: E402
from llmrec.pipeline import Pipeline  # noqa: E402
from llmrec.storage.eventlog import EventLog  # noqa: E402
from llmrec.types import Event  # noqa: E402


@pytest.fixture
def save(tmp_path):
    return small_save(tmp_path / "recsys")


def _state(pipe) -> dict:
    """What a restart must reproduce: every profile's history and the catalog."""
    return {
        "users": {
            uid: [(h.item_id, h.kind, h.weight) for h in pipe.profile(uid).history]
            for uid in sorted(pipe.profiles)
        },
        "preferences": {uid: list(pipe.profile(uid).stated_preferences) for uid in pipe.profiles},
        "items": sorted(pipe.catalog.item_ids()),
    }


def _events(client, user: str, items: list[str]) -> int:
    body = {"events": [{"user_id": user, "item_id": i, "kind": "like"} for i in items]}
    assert client.post("/events", json=body, headers=HEADERS).status_code == 200
    return len(items)


def _restart(save):
    pipe = Pipeline.from_pretrained(save, device="cpu")
    replayed = pipe.open_event_log(event_log_path(save))
    return pipe, replayed


def _lost(before: dict, after: dict) -> tuple[int, int]:
    """Acknowledged events missing after the restart, and forgotten users back."""
    events = sum(
        max(0, len(history) - len(after["users"].get(uid, [])))
        for uid, history in before["users"].items()
    )
    back = len(set(after["users"]) - set(before["users"]))
    return events, back


def test_snapshot_then_more_changes_survive_a_restart(save) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    pipe.open_event_log(event_log_path(save))
    client = TestClient(create_app(pipe, api_key=KEY, save_dir=save))
    acknowledged = _events(client, "web", ["i001", "i002", "i003"])
    assert client.delete("/users/u001", headers=HEADERS).status_code == 200
    assert client.post("/admin/snapshot").status_code == 401  # needs the key
    response = client.post("/admin/snapshot", headers=HEADERS)
    assert response.status_code == 200, response.text
    body = response.json()
    log = pipe.event_log
    assert body["sequence"] == log.last_sequence and body["compacted"] >= 2
    assert len(log) == 0 and log.base_sequence == body["sequence"]
    # After the snapshot: more events, a new user, another forget, an item change.
    acknowledged += _events(client, "web", ["i004", "i005"])
    acknowledged += _events(client, "late", ["i006"])
    assert client.delete("/users/u002", headers=HEADERS).status_code == 200
    assert client.delete("/items/i039", headers=HEADERS).status_code == 200
    before = _state(pipe)
    pipe.close()

    restarted, replayed = _restart(save)
    assert replayed == 4  # only what the snapshot does not hold
    after = _state(restarted)
    assert _lost(before, after) == (0, 0) and after == before
    assert "u001" not in restarted.profiles and "u002" not in restarted.profiles
    assert len(restarted.profile("web").history) == 5 and acknowledged == 6
    restarted.close()


def test_writes_during_snapshots_lose_nothing(save) -> None:
    # Writers keep observing while snapshots save and compact; every observe that
    # returned is acknowledged and must be there after a restart.
    pipe = Pipeline.from_pretrained(save, device="cpu")
    pipe.open_event_log(event_log_path(save), fsync="batch", batch_interval=0.01)
    snapshots = Snapshots(pipe, save)
    acknowledged = {f"w{n}": 0 for n in range(3)}
    stop = threading.Event()

    def writer(user: str) -> None:
        n = 0
        while not stop.is_set():
            pipe.observe(Event(user_id=user, item_id=f"i{n % 40:03d}", kind="click"))
            acknowledged[user] += 1
            n += 1

    threads = [threading.Thread(target=writer, args=(u,)) for u in acknowledged]
    for t in threads:
        t.start()
    results, forgotten = [], []
    try:
        for n in range(4):
            time.sleep(0.05)
            pipe.forget(f"u00{n}")  # a forget on each side of every snapshot
            forgotten.append(f"u00{n}")
            results.append(snapshots.snapshot())
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert snapshots.count == 4 and sum(r["compacted"] for r in results) > 0
    assert [r["sequence"] for r in results] == sorted(r["sequence"] for r in results)
    before = _state(pipe)
    pipe.close()
    restarted, _ = _restart(save)
    lost = sum(n - restarted.profile(u).n_events for u, n in acknowledged.items())
    back = [u for u in forgotten if u in restarted.profiles]
    print(
        f"\nserve restart after {len(results)} snapshots under 3 writers: "
        f"{sum(acknowledged.values())} acknowledged events, {lost} lost; "
        f"{len(forgotten)} forgets, {len(back)} lost; "
        f"{sum(r['compacted'] for r in results)} log records compacted"
    )
    assert sum(acknowledged.values()) > 0 and forgotten
    assert lost == 0 and not back and _state(restarted) == before
    restarted.close()


def test_snapshot_without_a_log_still_saves(save) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    client = TestClient(create_app(pipe, save_dir=save))
    _events(client, "kept", ["i001"])
    body = client.post("/admin/snapshot").json()
    assert body["compacted"] == 0
    assert "kept" in Pipeline.from_pretrained(save, device="cpu").profiles


def test_serve_snapshot_every(save, monkeypatch, capsys) -> None:
    serve = _Serve(monkeypatch)
    states = []

    def traffic(client, pipe) -> None:
        snapshots = client.app.state.snapshots
        _events(client, "web", ["i001", "i002"])
        deadline = time.monotonic() + 30
        while snapshots.count < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert snapshots.count >= 1
        _events(client, "web", ["i003"])
        assert client.delete("/users/u003", headers=HEADERS).status_code == 200
        states.append(_state(pipe))

    assert serve(save, "--snapshot-every", "0.2", during=traffic) == 0
    assert "every 0.2s" in capsys.readouterr().out
    assert serve(save) == 0
    after = _state(serve.pipes[-1])
    assert _lost(states[0], after) == (0, 0) and after == states[0]
    assert serve(save, "--snapshot-every", "0") == 2
    assert "--snapshot-every" in capsys.readouterr().err


def test_serve_takes_the_api_key_from_the_environment(save, monkeypatch) -> None:
    import uvicorn

    from llmrec.apps.cli import main

    codes: list[int] = []

    def run(app, **_):
        with TestClient(app) as client:
            for key in (None, "from-env", KEY):
                headers = {} if key is None else {"X-API-Key": key}
                body = {"user_id": "u004"}
                codes.append(client.post("/recommend", json=body, headers=headers).status_code)

    monkeypatch.setattr(uvicorn, "run", run)
    monkeypatch.setenv("LLMREC_API_KEY", "from-env")
    base = ["serve", str(save), "--device", "cpu", "-q", "--no-event-log"]
    assert main(base) == 0 and codes == [401, 200, 401]
    codes.clear()
    assert main([*base, "--api-key", KEY]) == 0 and codes == [401, 401, 200]  # argv wins
    codes.clear()
    monkeypatch.setenv("LLMREC_API_KEY", "")
    assert main(base) == 0 and codes == [200, 200, 200]  # empty: no key
    assert main([*base, "--api-key", ""]) == 2


# ---------------------------------------------------------------------------- the log
def test_compact_keeps_later_records_and_numbering(tmp_path) -> None:
    path = tmp_path / "x.log"
    with EventLog(path) as log:
        for n in range(5):
            log.append([Event(user_id=f"u{n}", item_id="i1")])
        assert log.compact(3) == 3 and len(log) == 2 and log.base_sequence == 3
        assert log.compact(2) == 0  # already compacted past it
        assert [r.sequence for r in log.replay(3)] == [4, 5]
        with pytest.raises(PersistenceError, match="compacted through record 3"):
            list(log.replay(0))
        with pytest.raises(InvalidInputError, match="at most the last record 5"):
            log.compact(6)
        assert log.append([Event(user_id="u9", item_id="i1")]) == 6
        log.forget("u4")  # a rewrite keeps the base
    with EventLog(path) as log:
        assert log.base_sequence == 3 and log.last_sequence == 7
        # u3's record 4, u9's record 6 and the tombstone 7 (u4's record 5 is forgotten).
        assert [(r.sequence, r.op) for r in log.replay(3)] == [
            (4, "events"),
            (6, "events"),
            (7, "forget"),
        ]
        assert log.compact(7) == 3 and len(log) == 0
    with EventLog(path) as log:  # empty after compaction: the numbering still holds
        assert log.last_sequence == 7 and log.append([Event(user_id="a", item_id="b")]) == 8


def test_a_save_older_than_the_compaction_is_refused(save, tmp_path) -> None:
    pipe = Pipeline.from_pretrained(save, device="cpu")
    pipe.open_event_log(event_log_path(save))
    pipe.observe(Event(user_id="web", item_id="i001", kind="like"))
    old = tmp_path / "old-save"
    pipe.save_pretrained(old)  # includes record 1
    pipe.observe(Event(user_id="web", item_id="i002", kind="like"))
    Snapshots(pipe, save).snapshot()  # compacts through record 2
    pipe.close()
    stale = Pipeline.from_pretrained(old, device="cpu")
    with pytest.raises(PersistenceError, match="compacted through record 2"):
        stale.open_event_log(event_log_path(save))


def test_periodic_snapshots_check_their_interval(save) -> None:
    snapshots = Snapshots(Pipeline.from_pretrained(save, device="cpu"), save)
    for bad in (0, -1, float("nan"), True, "10"):
        with pytest.raises(ConfigError, match="every must be"):
            snapshots.start(bad)
    snapshots.start(60)
    with pytest.raises(ConfigError, match="already run"):
        snapshots.start(60)
    snapshots.stop()
    snapshots.stop()  # twice is harmless
