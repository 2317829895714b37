"""The event-log protocol of a pipeline: write before apply, wait after the lock, replay.

Every change is written with :meth:`Journal.write` while the pipeline's lock is held and
before the change is applied, then waited for with :meth:`Journal.wait` after the lock is
released: the log's order is the order of application, and concurrent writers share one
disk sync.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmrec.errors import ConfigError, LLMRecError, PersistenceError
from llmrec.pipeline import _changes
from llmrec.storage.eventlog import EventLog, LogRecord
from llmrec.types import Item

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = ["Journal", "Ticket"]

logger = logging.getLogger(__name__)

#: What :meth:`Journal.write` returns and :meth:`Journal.wait` takes.
Ticket = tuple[EventLog, int] | None


class Journal:
    """The open event log of one pipeline, and how far the pipeline has applied it.

    Attributes:
        log: The open log, or ``None``.
        log_id: The id of the log the pipeline's state follows (kept after :meth:`close`
            and across a save), or ``None`` if it never had one.
        sequence: The last record of that log included in the pipeline's state.
    """

    def __init__(self) -> None:
        self.log: EventLog | None = None
        self.log_id: str | None = None
        self.sequence = 0

    # ------------------------------------------------------------------ live changes
    def write(self, op: str, data: Mapping[str, Any]) -> Ticket:
        """Log one change (call under the pipeline's lock, before applying it)."""
        log = self.log
        if log is None:
            return None
        seq = log.write(op, data, wait=False)
        self.sequence = seq
        return log, seq

    @staticmethod
    def wait(ticket: Ticket) -> None:
        """Return once the change of ``ticket`` is durable (call after the lock)."""
        if ticket is not None:
            ticket[0].wait(ticket[1])

    def forget(self, uid: str, *, tombstone: bool) -> int:
        """Drop ``uid``'s records from the open log (under the lock); returns how many."""
        if self.log is None:
            return 0
        removed = self.log.forget(uid, tombstone=tombstone)
        self.sequence = self.log.last_sequence
        return removed

    # ------------------------------------------------------------------ save state
    def state(self) -> dict[str, Any] | None:
        """The manifest's ``event_log`` entry, or ``None`` if no log was ever opened."""
        if self.log_id is None:
            return None
        return {"log_id": self.log_id, "sequence": self.sequence}

    def restore(self, state: Any) -> None:
        """Take the ``event_log`` entry of a manifest (``None``: no log)."""
        if state is None:
            return
        log_id, sequence = str(state["log_id"]), state["sequence"]
        if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
            raise ValueError(f"bad event log sequence {sequence!r}")
        self.log_id, self.sequence = log_id, sequence

    # ------------------------------------------------------------------ open / close
    def _start(self, log: EventLog, key_check: str | None, allow_new: bool) -> int:
        """Check ``log`` against this pipeline; returns the sequence to replay after."""
        if log.meta.get("key_check") != key_check:
            raise ConfigError(
                f"event log {str(log.path)!r} was written "
                + (
                    "without pseudonymization"
                    if log.meta.get("key_check") is None
                    else "under another pseudonymization key"
                )
                + ("" if key_check is None else " than this pipeline's")
            )
        if self.log_id is None:
            return 0
        if self.log_id != log.log_id:
            if not (allow_new and log.last_sequence == 0):
                raise PersistenceError(
                    f"this pipeline was saved with event log {self.log_id} at record "
                    f"{self.sequence}, but {str(log.path)!r} is log {log.log_id}; "
                    "open that log to recover (allow_new=True starts a new one)"
                )
            return 0
        if self.sequence > log.last_sequence:
            raise PersistenceError(
                f"the save includes record {self.sequence} of event log "
                f"{str(log.path)!r}, which ends at {log.last_sequence}: the log lost records"
            )
        return self.sequence

    def open(
        self,
        pipe: Pipeline,
        path: str | Path,
        *,
        fsync: str,
        batch_interval: float,
        allow_new: bool,
    ) -> int:
        """Open the log at ``path``, replay what the pipeline has not seen, and log every
        later change to it (under the pipeline's lock). Returns the records replayed."""
        key_check = None if pipe._pseudonymize is None else pipe._pseudonymize.key_check
        if self.log is not None:
            raise ConfigError(f"an event log is already open ({self.log.path}); close() it first")
        log = EventLog(
            path, fsync=fsync, batch_interval=batch_interval, meta={"key_check": key_check}
        )
        try:
            replayed = self._replay(pipe, log, self._start(log, key_check, allow_new))
        except BaseException:
            log.close()
            raise
        self.log, self.log_id, self.sequence = log, log.log_id, log.last_sequence
        logger.info(
            "opened event log %s (fsync=%s), replayed %d records", log.path, fsync, replayed
        )
        return replayed

    def close(self) -> None:
        """Sync and close the open log, if any (under the pipeline's lock)."""
        if self.log is not None:
            self.log.close()
            self.log = None

    # ------------------------------------------------------------------ replay
    def _replay(self, pipe: Pipeline, log: EventLog, after: int) -> int:
        count = 0
        for record in log.replay(after):
            try:
                apply_record(pipe, record, log)
            except (LLMRecError, KeyError, TypeError, ValueError) as exc:
                raise PersistenceError(
                    f"cannot replay record {record.sequence} of event log {str(log.path)!r}: {exc}"
                ) from None
            self.sequence = record.sequence
            count += 1
        return count


def apply_record(pipe: Pipeline, record: LogRecord, log: EventLog) -> None:
    """Apply one logged change exactly as the live call applied it (under the lock)."""
    data = record.data
    if record.op == "events":
        events = record.events
        _changes.check_items_known(pipe, events)
        _changes.apply_events(pipe, events, _changes.text_vectors(pipe, events))
    elif record.op == "user":
        pipe.profiles.get_or_create(data["user_id"])
    elif record.op == "items":
        items = pipe.catalog.validate_new([Item(**d) for d in data["items"]])
        vectors = pipe.encoder.encode_items(items)
        rows = pipe.catalog.upsert(items, validated=True)
        pipe.retriever.upsert(rows, vectors)
    elif record.op == "remove":
        pipe.retriever.remove(pipe.catalog.remove(list(data["item_ids"])))
    elif record.op == "forget":
        for uid in list(pipe.profiles):
            if log.user_hash(uid) == data["user_hash"]:
                _changes.drop_user(pipe, uid)
