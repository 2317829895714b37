"""Snapshots of a served pipeline: save it to its directory, then compact its event log.

    snapshots = Snapshots(pipeline, "recsys")   # the directory `llmrec serve` loaded
    snapshots.snapshot()                         # POST /admin/snapshot does this
    snapshots.start(every=600)                   # llmrec serve --snapshot-every 600

A snapshot writes the whole pipeline with :meth:`~llmrec.Pipeline.save_pretrained`
(atomically: a crash leaves the previous save or the new one) and records in it how far
the event log had been applied; only then are the log records the save holds dropped
(:meth:`~llmrec.EventLog.compact`). The changes made meanwhile stay in the log, so a
restart (load the save, open the log) loses nothing that was acknowledged.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from llmrec._validate import check_float
from llmrec.errors import ConfigError
from llmrec.storage.io import read_manifest

__all__ = ["Snapshots"]

logger = logging.getLogger(__name__)


class Snapshots:
    """Snapshots of ``pipeline`` into ``directory``, on demand or periodically.

    Args:
        pipeline: The served :class:`~llmrec.Pipeline`.
        directory: Its save directory (replaced by each snapshot).

    Attributes:
        last: ``time.time()`` of the last finished snapshot, or ``None``.
        count: Snapshots taken.
    """

    def __init__(self, pipeline: Any, directory: str | Path) -> None:
        self.pipeline = pipeline
        self.directory = Path(directory)
        self.last: float | None = None
        self.count = 0
        self._lock = threading.Lock()  # one snapshot at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def snapshot(self) -> dict[str, Any]:
        """Save the pipeline, then drop the log records the save holds.

        Returns:
            ``{"directory", "sequence" (the last log record in the save, or None without
            a log), "compacted" (records dropped from the log), "seconds"}``.

        Raises:
            PersistenceError: the save could not be written (the previous one is intact
                and the log untouched).
        """
        with self._lock:
            started = time.perf_counter()
            self.pipeline.save_pretrained(self.directory)
            state = read_manifest(self.directory, "pipeline").get("event_log") or {}
            sequence, compacted = state.get("sequence"), 0
            log = self.pipeline.event_log
            # Compact only the log the save follows, and only through what it holds.
            if log is not None and sequence is not None and state.get("log_id") == log.log_id:
                compacted = log.compact(sequence)
            self.last, self.count = time.time(), self.count + 1
            seconds = time.perf_counter() - started
        logger.info(
            "snapshot to %s: log record %s, %d records compacted (%.2fs)",
            self.directory,
            sequence,
            compacted,
            seconds,
        )
        return {
            "directory": str(self.directory),
            "sequence": sequence,
            "compacted": compacted,
            "seconds": round(seconds, 4),
        }

    # ------------------------------------------------------------------ periodic
    def start(self, every: float) -> None:
        """Take a snapshot every ``every`` seconds in a background thread until :meth:`stop`.

        Raises:
            ConfigError: ``every`` is not a positive number, or snapshots already run.
        """
        every = check_float(every, "every", low=0, low_open=True, high=1e7)
        if self._thread is not None:
            raise ConfigError("periodic snapshots already run; stop() them first")
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._run, args=(every,), name="llmrec-snapshots", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop periodic snapshots (a snapshot in progress finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                self.snapshot()
            except Exception:  # noqa: BLE001 - a failed snapshot must not stop the next
                logger.exception("periodic snapshot to %s failed", self.directory)
