"""Append-only event log: the write-ahead record of every change made to a pipeline.

File format (text, one record per line)::

    <crc32 of the JSON, 8 hex digits> <JSON object, ASCII only>\\n

The first record is the header (``format``, ``log_id``, ``salt``, ``meta``); every other
record is ``{"seq": n, "op": ..., "data": {...}}`` with strictly increasing ``seq``. A
crash can only tear the *last* record (it is not acknowledged yet): a final record that is
incomplete or fails its checksum is skipped, and cut off when the log is next opened for
writing. A damaged record followed by intact ones is corruption, reported as a
:class:`~llmrec.PersistenceError` naming the file and the byte offset.

Durability (``fsync=``): ``"always"`` returns from :meth:`EventLog.append` only once the
record is on disk (concurrent appends share one ``fdatasync``); ``"batch"`` syncs at most
``batch_interval`` seconds later; ``"never"`` leaves it to the operating system. A record
that was written survives a crash of the *process* under every policy; the policy decides
what survives a crash of the *machine*.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from llmrec._validate import check_choice, check_float, check_instances, check_int
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError
from llmrec.storage.io import atomic_file, check_path
from llmrec.types import Event, check_id

try:  # POSIX advisory locks keep a second writer away from the same log.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["FSYNC_POLICIES", "LOG_FORMAT", "EventLog", "LogRecord"]

logger = logging.getLogger(__name__)

LOG_FORMAT = 1
FSYNC_POLICIES = ("always", "batch", "never")
#: Record kinds: observed events, a created user, upserted items, removed items, and the
#: tombstone left by :meth:`EventLog.forget`.
OPS = ("events", "user", "items", "remove", "forget")

_datasync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True)
class LogRecord:
    """One record of the log: its sequence number, its kind and its data."""

    sequence: int
    op: str
    data: Mapping[str, Any]

    @property
    def events(self) -> list[Event]:
        """The events of an ``"events"`` record."""
        if self.op != "events":
            return []
        return [Event(**e) for e in self.data["events"]]


def _encode(obj: Mapping[str, Any]) -> bytes:
    payload = json.dumps(obj, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return b"%08x %s\n" % (zlib.crc32(payload), payload)


def _decode(line: bytes) -> dict[str, Any] | None:
    """The record in ``line``, or ``None`` when the line is torn or damaged."""
    if len(line) < 11 or not line.endswith(b"\n") or line[8:9] != b" ":
        return None
    payload = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(payload):
            return None
        obj = json.loads(payload)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _is_record(obj: Mapping[str, Any]) -> bool:
    seq = obj.get("seq")
    return (
        isinstance(seq, int)
        and not isinstance(seq, bool)
        and seq > 0
        and obj.get("op") in OPS
        and isinstance(obj.get("data"), dict)
    )


def _base(header: Mapping[str, Any]) -> int:
    """The sequence a compacted log starts after (0 for a log never compacted)."""
    base = header.get("base", 0)
    return base if isinstance(base, int) and not isinstance(base, bool) and base >= 0 else 0


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class EventLog:
    """A thread-safe, append-only, checksummed log of pipeline changes.

    Args:
        path: The log file; created (with a fresh header) when missing or empty.
        fsync: ``"always"`` (an acknowledged record is on disk), ``"batch"`` (synced within
            ``batch_interval`` seconds) or ``"never"`` (the operating system decides).
        batch_interval: Seconds between syncs under ``fsync="batch"``.
        meta: JSON facts stored in the header of a *new* log (the pipeline stores its
            pseudonymization key check there); an existing log keeps its own.

    Raises:
        ConfigError: a bad ``fsync`` or ``batch_interval``.
        PersistenceError: the file cannot be opened, is not an llmrec event log, is
            corrupt before its last record, or is held by another process.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: str = "always",
        batch_interval: float = 0.2,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        check_choice(fsync, "fsync", FSYNC_POLICIES)
        batch_interval = check_float(
            batch_interval, "batch_interval", low=0, low_open=True, high=3600
        )
        if meta is not None and not isinstance(meta, Mapping):
            raise ConfigError(f"meta must be a mapping or None, got {type(meta).__name__}")
        self.path = check_path(path, "event log path").absolute()
        self.fsync = fsync
        self.batch_interval = batch_interval
        self._lock = threading.RLock()  # appends, rewrites, open/close
        self._sync_lock = threading.Lock()  # one fdatasync at a time (group commit)
        self._timer: threading.Timer | None = None
        self._fd: int | None = None
        self._lock_fd: int | None = None
        try:
            self._acquire_file_lock()
            if not self.path.exists() or self.path.stat().st_size == 0:
                self._create(dict(meta or {}))
            header, last_seq, end, count = self._scan()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            self._release_file_lock()
            if isinstance(exc, PersistenceError):
                raise
            raise PersistenceError(f"cannot open event log {str(self.path)!r}: {exc}") from None
        except BaseException:
            self._release_file_lock()
            raise
        self.log_id: str = header["log_id"]
        self.meta: dict[str, Any] = dict(header.get("meta") or {})
        self._salt = bytes.fromhex(header["salt"])
        self._base = _base(header)
        self._last_seq = last_seq
        self._synced = last_seq
        self._end = end
        self._count = count

    # ------------------------------------------------------------------ opening
    def _acquire_file_lock(self) -> None:
        if fcntl is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise PersistenceError(
                f"event log {str(self.path)!r} is open in another EventLog or process"
            ) from None
        self._lock_fd = fd

    def _release_file_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def _create(self, meta: dict[str, Any]) -> None:
        header = {
            "format": LOG_FORMAT,
            "kind": "llmrec-event-log",
            "log_id": secrets.token_hex(16),
            "salt": secrets.token_hex(16),
            "created": time.time(),
            "meta": meta,
        }
        try:
            line = _encode(header)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"meta must be JSON-serializable: {exc}") from None
        self._replace_file([line])

    def _replace_file(self, chunks: Iterable[bytes]) -> int:
        """Write ``chunks`` over the log atomically (see :func:`~llmrec.storage.io.atomic_file`);
        returns the new size."""
        size = 0
        with atomic_file(self.path, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
                size += len(chunk)
        return size

    def _corrupt(self, offset: int, why: str) -> PersistenceError:
        return PersistenceError(
            f"corrupt event log {str(self.path)!r} at byte offset {offset}: {why}"
        )

    def _scan(self) -> tuple[dict[str, Any], int, int, int]:
        """Validate the whole file; cut a torn tail off. Returns (header, last sequence,
        end of the last intact record, record count)."""
        header: dict[str, Any] | None = None
        last_seq, end, count, offset = 0, 0, 0, 0
        damaged_at: int | None = None
        with open(self.path, "rb") as f:
            for line in f:
                obj = _decode(line)
                if obj is None:
                    damaged_at = offset if damaged_at is None else damaged_at
                elif damaged_at is not None:
                    raise self._corrupt(damaged_at, "a damaged record is followed by intact ones")
                elif header is None:
                    if obj.get("kind") != "llmrec-event-log" or not isinstance(
                        obj.get("format"), int
                    ):
                        raise PersistenceError(f"{str(self.path)!r} is not an llmrec event log")
                    if obj["format"] > LOG_FORMAT:
                        raise PersistenceError(
                            f"event log {str(self.path)!r} has format {obj['format']}, newer "
                            f"than this llmrec supports ({LOG_FORMAT}); upgrade llmrec"
                        )
                    header = obj
                    last_seq = _base(obj)
                    end = offset + len(line)
                else:
                    if not _is_record(obj):
                        raise self._corrupt(offset, "not a log record")
                    if obj["seq"] <= last_seq:
                        raise self._corrupt(offset, f"sequence {obj['seq']} after {last_seq}")
                    last_seq, count = obj["seq"], count + 1
                    end = offset + len(line)
                offset += len(line)
        if header is None:
            raise PersistenceError(f"{str(self.path)!r} is not an llmrec event log (no header)")
        try:
            bytes.fromhex(header["salt"])
            str(header["log_id"])
        except (KeyError, TypeError, ValueError):
            raise self._corrupt(0, "bad header") from None
        if end < offset:
            logger.warning(
                "event log %s: dropping a torn final record (%d bytes at offset %d)",
                self.path,
                offset - end,
                end,
            )
            with open(self.path, "r+b") as f:
                f.truncate(end)
                f.flush()
                os.fsync(f.fileno())
        return header, last_seq, end, count

    # ------------------------------------------------------------------ properties
    @property
    def last_sequence(self) -> int:
        """Sequence number of the newest record (0 for an empty log)."""
        return self._last_seq

    def __len__(self) -> int:
        """Records in the log (the header not counted)."""
        return self._count

    @property
    def base_sequence(self) -> int:
        """The last record :meth:`compact` dropped (0: the log holds every record)."""
        return self._base

    @property
    def unsynced(self) -> int:
        """Records written (and, under ``fsync="batch"`` or ``"never"``, acknowledged) but
        not yet synced to disk by this log: what a machine crash could lose now."""
        return max(0, self._last_seq - self._synced)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def user_hash(self, user_id: str) -> str:
        """The salted hash by which a tombstone names a forgotten user (never the id)."""
        return hashlib.sha256(self._salt + user_id.encode("utf-8")).hexdigest()

    def _check_open(self) -> int:
        if self._fd is None:
            raise PersistenceError(f"event log {str(self.path)!r} is closed")
        return self._fd

    # ------------------------------------------------------------------ writing
    def append(self, events: Iterable[Event], *, wait: bool = True) -> int:
        """Append ``events`` as one record (a crash keeps all of them or none).

        Args:
            events: The events, in order.
            wait: Return only at the durability point of the ``fsync`` policy; with
                ``False`` call :meth:`wait` later (the pipeline does, outside its lock,
                so concurrent appends share one disk sync).

        Returns:
            The record's sequence number.

        Raises:
            InvalidInputError: an element is not an :class:`~llmrec.Event`.
            PersistenceError: the log is closed or the disk refused the write (the log is
                left as it was).
        """
        events = check_instances(events, "events", Event, "an llmrec.Event")
        return self.write("events", {"events": [e.to_dict() for e in events]}, wait=wait)

    def write(self, op: str, data: Mapping[str, Any], *, wait: bool = True) -> int:
        """Append one record of kind ``op`` (one of ``"events"``, ``"user"``, ``"items"``,
        ``"remove"``, ``"forget"``); returns its sequence number. See :meth:`append`."""
        check_choice(op, "op", OPS, error=InvalidInputError)
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"data must be a mapping, got {type(data).__name__}")
        with self._lock:
            fd = self._check_open()
            seq = self._last_seq + 1
            try:
                line = _encode({"seq": seq, "op": op, "data": dict(data)})
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(f"log record is not JSON-serializable: {exc}") from None
            try:
                _write_all(fd, line)
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, self._end)
                raise PersistenceError(
                    f"cannot append to event log {str(self.path)!r}: {exc}"
                ) from None
            self._end += len(line)
            self._last_seq = seq
            self._count += 1
        if wait:
            self.wait(seq)
        return seq

    def wait(self, sequence: int) -> None:
        """Return once record ``sequence`` has reached the ``fsync`` policy's durability
        point (on disk for ``"always"``; scheduled for ``"batch"``; at once for ``"never"``).

        Raises:
            PersistenceError: the disk reported an error while syncing.
        """
        if self.fsync == "always":
            self._sync_through(sequence)
        elif self.fsync == "batch":
            self._schedule_sync()

    def sync(self) -> None:
        """Force every written record to disk now, whatever the policy."""
        self._sync_through(self._last_seq)

    def _sync_through(self, sequence: int) -> None:
        with self._sync_lock:
            if self._synced >= sequence or self._fd is None:
                return
            # Everything written so far rides along: the other waiting threads find
            # their records synced when they get the lock (group commit).
            target = self._last_seq
            try:
                _datasync(self._fd)
            except OSError as exc:
                raise PersistenceError(f"cannot sync event log {str(self.path)!r}: {exc}") from None
            self._synced = max(self._synced, target)

    def _schedule_sync(self) -> None:
        with self._sync_lock:
            if self._timer is not None or self._fd is None:
                return
            timer = threading.Timer(self.batch_interval, self._timed_sync)
            timer.daemon = True
            self._timer = timer
            timer.start()

    def _timed_sync(self) -> None:
        with self._sync_lock:
            self._timer = None
        try:
            self.sync()
        except PersistenceError as exc:
            logger.error("%s", exc)

    # ------------------------------------------------------------------ reading
    def replay(self, after: int = 0) -> Iterator[LogRecord]:
        """Yield the records with a sequence number above ``after``, oldest first.

        The records are those present when the iteration starts.

        Raises:
            PersistenceError: a record is damaged.
        """
        after = check_int(after, "after", low=0, error=InvalidInputError)
        with self._lock:
            self._check_open()
            if after < self._base:
                raise PersistenceError(
                    f"event log {str(self.path)!r} was compacted through record {self._base} "
                    f"(a snapshot holds those); records after {after} are no longer all in "
                    "it: load the save the snapshot wrote"
                )
            end = self._end
            f = open(self.path, "rb")  # noqa: SIM115 - closed by the generator below
        return self._records(f, end, after)

    def _lines(self, f: Any, end: int) -> Iterator[tuple[int, bytes, dict[str, Any]]]:
        """``(offset, line, decoded object)`` of every line of ``f`` before byte ``end``
        (the header included); a damaged line is corruption."""
        offset = 0
        for line in f:
            if offset + len(line) > end:
                break
            obj = _decode(line)
            if obj is None:
                raise self._corrupt(offset, "checksum mismatch")
            yield offset, line, obj
            offset += len(line)

    def _records(self, f: Any, end: int, after: int) -> Iterator[LogRecord]:
        with f:
            for offset, _, obj in self._lines(f, end):
                if "seq" not in obj:
                    continue  # the header
                if not _is_record(obj):
                    raise self._corrupt(offset, "not a log record")
                if obj["seq"] > after:
                    yield LogRecord(obj["seq"], obj["op"], obj["data"])

    # ------------------------------------------------------------------ erasure
    def forget(self, user_id: str, *, tombstone: bool = True) -> int:
        """Rewrite the log without ``user_id``'s records (atomically: temporary file,
        fsync, rename) and, when anything was removed or ``tombstone`` is true, end it
        with a tombstone naming the user by a salted hash only, so a recovery from an
        older save does not bring the user back.

        Returns:
            The number of events and user records removed.
        """
        check_id(user_id, "user_id")
        with self._lock, self._sync_lock:
            self._check_open()
            kept: list[bytes] = []
            removed = 0
            with open(self.path, "rb") as f:
                for _, line, obj in self._lines(f, self._end):
                    op = obj.get("op")
                    if op == "user" and obj["data"].get("user_id") == user_id:
                        removed += 1
                        continue
                    if op == "events":
                        events = obj["data"]["events"]
                        others = [e for e in events if e.get("user_id") != user_id]
                        if len(others) != len(events):
                            removed += len(events) - len(others)
                            if not others:
                                continue
                            line = _encode({**obj, "data": {**obj["data"], "events": others}})
                    kept.append(line)
            if not removed and not tombstone:
                return 0
            seq = self._last_seq + 1
            kept.append(
                _encode(
                    {"seq": seq, "op": "forget", "data": {"user_hash": self.user_hash(user_id)}}
                )
            )
            self._swap_in(kept)
            self._last_seq = self._synced = seq
            return removed

    # ------------------------------------------------------------------ compaction
    def compact(self, through: int) -> int:
        """Drop the records up to sequence ``through`` (a snapshot holds them), atomically
        (temporary file, fsync, rename); later records and the numbering are kept.

        A replay from before ``through`` is refused afterwards (:meth:`replay`), so an
        older save cannot silently miss the dropped records.

        Returns:
            The number of records dropped.

        Raises:
            InvalidInputError: ``through`` is negative or beyond the last record.
            PersistenceError: the log is closed or cannot be rewritten (it is left as it was).
        """
        through = check_int(through, "through", low=0, error=InvalidInputError)
        with self._lock, self._sync_lock:
            self._check_open()
            if through > self._last_seq:
                raise InvalidInputError(
                    f"through must be at most the last record {self._last_seq}, got {through}"
                )
            if through <= self._base:
                return 0
            kept: list[bytes] = []
            with open(self.path, "rb") as f:
                for _, line, obj in self._lines(f, self._end):
                    if "seq" not in obj:
                        line = _encode({**obj, "base": through})
                    elif obj["seq"] <= through:
                        continue
                    kept.append(line)
            dropped = self._count - (len(kept) - 1)
            self._swap_in(kept)
            self._base = through
            return dropped

    def _swap_in(self, lines: list[bytes]) -> None:
        """Replace the file by ``lines`` (header first) and append to the new file (under
        both locks); everything in it is synced."""
        old_fd = self._fd
        try:
            size = self._replace_file(lines)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except OSError as exc:
            raise PersistenceError(f"cannot rewrite event log {str(self.path)!r}: {exc}") from None
        if old_fd is not None:
            os.close(old_fd)
        self._end = size
        self._synced = self._last_seq
        self._count = len(lines) - 1

    # ------------------------------------------------------------------ closing
    def close(self) -> None:
        """Sync (unless ``fsync="never"``) and close; closing twice is harmless."""
        with self._lock:
            if self._fd is None:
                return
            with self._sync_lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
            try:
                if self.fsync != "never":
                    self.sync()
            finally:
                with self._sync_lock:
                    os.close(self._fd)
                    self._fd = None
                self._release_file_lock()

    def __enter__(self) -> EventLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            if getattr(self, "_fd", None) is not None:
                self.close()

    def __repr__(self) -> str:
        return (
            f"EventLog({str(self.path)!r}, fsync={self.fsync!r}, records={self._count}, "
            f"last_sequence={self._last_seq})"
        )
