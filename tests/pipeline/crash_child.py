"""Fork server for tests/test_crash.py (not a test module).

It imports llmrec once, then for each ``fork <round> <seed> <mode> <countdown>`` line on
stdin forks a child that recovers the pipeline in the work directory (save + event log),
then observes events, adds items and saves, forever, writing one acknowledgement line per
completed call to ``acks-<round>.txt``. The child dies by SIGKILL: sent by the test after
a random delay (``mode=external``) or by itself at the ``countdown``-th write, sync, rename
or removal it makes (``mode=internal``; a write is torn in half first).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sys
import traceback
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/, for conftest

from conftest import make_items  # noqa: E402

import llmrec.storage.eventlog  # noqa: E402
from llmrec import Event, Item, Pipeline  # noqa: E402

ITEMS = make_items(120)
USERS = [f"c{n:02d}" for n in range(12)]
_write = os.write  # acknowledgements bypass the fault injection


def child(workdir: Path, round_: int, seed: int, mode: str, countdown: int) -> None:
    import torch

    torch.set_num_threads(1)
    acks = os.open(workdir / f"acks-{round_}.txt", os.O_WRONLY | os.O_CREAT | os.O_APPEND)

    def ack(line: str) -> None:
        _write(acks, (line + "\n").encode())

    state = {"left": countdown, "phase": "start"}

    def die(name: str) -> None:
        ack(f"K {state['phase']} {name}")
        os.kill(os.getpid(), signal.SIGKILL)

    def inject(name: str, real):
        def wrapped(*args, **kwargs):
            state["left"] -= 1
            if state["left"] == 0:
                if name == "write" and len(args[1]) > 1:
                    real(args[0], bytes(args[1])[: len(args[1]) // 2])  # a torn write
                die(name)
            return real(*args, **kwargs)

        return wrapped

    save, log = workdir / "model", workdir / "events.log"
    if (save / "llmrec.json").exists() or any(workdir.glob(".model.old-*")):
        pipe = Pipeline.from_pretrained(save, device="cpu")
    else:
        pipe = Pipeline.from_catalog(
            ITEMS, encoder="hashing", llm="template", device="cpu", models=(), show_progress=False
        )
    pipe.open_event_log(log, fsync="always")
    ack(f"R {pipe.event_log.last_sequence}")
    if mode == "internal":
        os.write = inject("write", os.write)
        os.fsync = inject("fsync", os.fsync)
        os.replace = inject("replace", os.replace)
        shutil.rmtree = inject("rmtree", shutil.rmtree)
        llmrec.storage.eventlog._datasync = inject("fdatasync", llmrec.storage.eventlog._datasync)
    rng = random.Random(seed)
    counter = 0
    while True:
        state["phase"] = "log"
        for _ in range(rng.randint(3, 25)):
            counter += 1
            timestamp = round_ * 1_000_000 + counter
            if rng.random() < 0.05:
                item = Item(f"r{round_}-{counter}", f"Crash item {counter}", "space robot")
                pipe.add_items([item])
                ack(f"I {item.item_id}")
                continue
            event = Event(rng.choice(USERS), rng.choice(ITEMS).item_id, timestamp=timestamp)
            pipe.observe(event)
            ack(f"E {event.user_id} {event.item_id} {timestamp}")
        state["phase"] = "save"
        ack("saving")
        pipe.save_pretrained(save)
        ack(f"S {pipe._journal.sequence}")


def main() -> None:
    workdir = Path(sys.argv[1])
    for line in sys.stdin:
        _, round_, seed, mode, countdown = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                child(workdir, int(round_), int(seed), mode, int(countdown))
            except BaseException:  # noqa: BLE001 - reported to the test, which fails
                with open(workdir / f"acks-{round_}.txt", "a") as f:
                    f.write("X " + traceback.format_exc().replace("\n", " | ") + "\n")
            finally:
                os._exit(1)  # only reached if the child failed before being killed
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {status}", flush=True)


if __name__ == "__main__":
    main()
