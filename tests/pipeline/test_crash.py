"""Crash test: a child process is killed with SIGKILL 50 times at random points while it
logs events and saves; every time, the last acknowledged save loads and the event log
replays every acknowledged event (tests/crash_child.py is the child)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import make_items

from llmrec import Pipeline

pytestmark = [
    pytest.mark.slow,  # ~40-50 s, mostly waiting for the kills
    pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork"),
]

N_CRASHES = 50
CHILD = Path(__file__).with_name("crash_child.py")


def read_acks(path: Path) -> list[list[str]]:
    if not path.exists():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]  # a line cut by the kill is not an ack
    return [line.split(" ") for line in complete.splitlines()]


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return False


def recover(workdir: Path) -> Pipeline:
    save = workdir / "model"
    if (save / "llmrec.json").exists() or any(workdir.glob(".model.old-*")):
        pipe = Pipeline.from_pretrained(save, device="cpu")
    else:  # killed before the first save completed: rebuild from the catalog and log
        pipe = Pipeline.from_catalog(
            make_items(120),
            encoder="hashing",
            llm="template",
            device="cpu",
            models=(),
            show_progress=False,
        )
    return pipe


def test_sigkill_during_logging_and_saving_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(2026)
    server = subprocess.Popen(
        [sys.executable, str(CHILD), str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )
    acked_events: Counter = Counter()
    acked_items: set[str] = set()
    last_saved = -1
    phases: Counter = Counter()
    points: Counter = Counter()
    started = time.perf_counter()
    try:
        for round_ in range(N_CRASHES):
            mode = "external" if round_ % 2 == 0 else "internal"
            countdown = rng.randint(1, 400)
            server.stdin.write(f"fork {round_} {rng.randint(0, 10**6)} {mode} {countdown}\n")
            server.stdin.flush()
            pid = int(server.stdout.readline().split()[1])
            acks_file = tmp_path / f"acks-{round_}.txt"
            if mode == "external":
                ready = wait_for(
                    lambda f=acks_file: any(a[0] in ("R", "X") for a in read_acks(f)), 60
                )
                assert ready, "the child never became ready"
                time.sleep(rng.uniform(0.0, 0.5))
                os.kill(pid, signal.SIGKILL)
            line = server.stdout.readline()
            status = int(line.split()[1])
            acks = read_acks(acks_file)
            errors = [" ".join(a) for a in acks if a[0] == "X"]
            assert not errors, errors[0]
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, acks[-3:]
            # Where did the kill land?
            if mode == "internal":
                phase, point = next((a[1], a[2]) for a in acks if a[0] == "K")
                points[f"{phase}:{point}"] += 1
            else:
                markers = [a[0] for a in acks if a[0] in ("saving", "S", "R")]
                phase = "save" if markers and markers[-1] == "saving" else "log"
            phases[phase] += 1
            for a in acks:
                if a[0] == "E":
                    acked_events[(a[1], a[2], float(a[3]))] += 1
                elif a[0] == "I":
                    acked_items.add(a[1])
                elif a[0] == "S":
                    last_saved = max(last_saved, int(a[1]))

            # Recover in this process: the last complete save loads ...
            pipe = recover(tmp_path)
            if last_saved >= 0:
                assert pipe._journal.sequence >= last_saved
            # ... and the log replays every acknowledged event and item.
            pipe.open_event_log(tmp_path / "events.log")
            logged = Counter(
                (e.user_id, e.item_id, e.timestamp)
                for r in pipe.event_log.replay()
                for e in r.events
            )
            missing = acked_events - logged
            assert not missing, f"round {round_}: lost {sum(missing.values())} events"
            assert acked_items <= set(pipe.catalog.item_ids())
            per_user = Counter(user for user, _, _ in logged.elements())
            for user, n in per_user.items():
                assert pipe.profile(user).n_events == n
            pipe.close()
    finally:
        server.stdin.close()
        server.wait(timeout=60)
    elapsed = time.perf_counter() - started

    # A save made now cleans up whatever the crashes left behind.
    pipe = recover(tmp_path)
    pipe.open_event_log(tmp_path / "events.log")
    pipe.save_pretrained(tmp_path / "model")
    pipe.close()
    leftovers = sorted(
        p.name
        for p in tmp_path.iterdir()
        if p.name.startswith(".") and not p.name.startswith(".events")
    )
    assert leftovers == []
    assert sum(phases.values()) == N_CRASHES
    assert phases["save"] >= 5 and phases["log"] >= 5, phases
    print(
        f"\ncrash: {N_CRASHES} SIGKILLs ({dict(phases)}; self-inflicted at {dict(points)}), "
        f"{sum(acked_events.values())} "
        f"events and {len(acked_items)} items acknowledged, 0 lost; {elapsed:.1f}s"
    )
