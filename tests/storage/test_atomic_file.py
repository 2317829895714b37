"""One atomic-write helper: ``atomic_file`` replaces a file whole or not at all, and every
writer of a whole file (JSON, predictions, the event log's rewrite) goes through it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmrec import Event
from llmrec.errors import ConfigError, InvalidInputError
from llmrec.evaluation import read_predictions, write_predictions
from llmrec.storage import io as storage_io
from llmrec.storage.eventlog import EventLog
from llmrec.storage.io import atomic_file, read_json, write_json


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_atomic_file_replaces_on_success(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    with atomic_file(target) as f:
        f.write("new ü")
        assert target.read_text(encoding="utf-8") == "old"  # not visible before the end
    assert target.read_text(encoding="utf-8") == "new ü"
    with atomic_file(target, "wb") as f:
        f.write(b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_atomic_file_keeps_the_old_file_on_error(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old", encoding="utf-8")
    with pytest.raises(RuntimeError, match="boom"), atomic_file(target) as f:
        f.write("half")
        raise RuntimeError("boom")
    assert target.read_text(encoding="utf-8") == "old"
    assert _leftovers(tmp_path) == []


def test_atomic_file_refuses_a_bad_mode(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mode must be one of"), atomic_file(tmp_path / "a", "a"):
        pass


@pytest.fixture
def failing_replace(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make the rename of atomic_file fail, recording what it tried to replace."""
    tried: list[str] = []

    def replace(src: str, dst: str) -> None:
        tried.append(os.fspath(dst))
        raise OSError("disk full")

    monkeypatch.setattr(storage_io.os, "replace", replace)
    return tried


def test_write_json_goes_through_atomic_file(tmp_path: Path, failing_replace) -> None:
    target = tmp_path / "m.json"
    target.write_text('{"v": 1}', encoding="utf-8")
    with pytest.raises(OSError, match="disk full"):
        write_json(target, {"v": 2})
    assert failing_replace == [str(target)]
    assert read_json(target) == {"v": 1} and _leftovers(tmp_path) == []


def test_write_predictions_goes_through_atomic_file(tmp_path: Path, failing_replace) -> None:
    target = tmp_path / "p.jsonl"
    target.write_text('{"user_id": "u", "items": ["a"]}\n', encoding="utf-8")
    with pytest.raises(OSError, match="disk full"):
        write_predictions(target, {"u": ["b"]})
    assert failing_replace == [str(target)]
    assert read_predictions(target) == {"u": ["a"]} and _leftovers(tmp_path) == []


def test_write_predictions_refuses_a_non_path() -> None:
    with pytest.raises(InvalidInputError, match="path must be a str or path"):
        write_predictions(5, {})  # type: ignore[arg-type]


def test_event_log_rewrite_goes_through_atomic_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "events.log"
    with EventLog(path) as log:
        log.append([Event(user_id="u1", item_id="a"), Event(user_id="u2", item_id="b")])
        before = path.read_bytes()
        tried: list[str] = []

        def replace(src: str, dst: str) -> None:
            tried.append(os.fspath(dst))
            raise OSError("disk full")

        monkeypatch.setattr(storage_io.os, "replace", replace)
        with pytest.raises(OSError, match="disk full"):
            log.forget("u1")
        assert tried == [str(path)]
        assert path.read_bytes() == before and _leftovers(tmp_path) == []
        monkeypatch.undo()
        assert log.forget("u1") == 1
        assert [e.user_id for r in log.replay() for e in r.events] == ["u2"]


def test_a_short_array_write_reports_the_os_reason(tmp_path) -> None:
    """A write cut short (a full disk; here a file-size limit) raises the OS error with its
    errno, not numpy's 'N requested and M written'."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        f"""
        import errno, resource, signal
        from pathlib import Path
        import numpy as np
        from llmrec.storage.io import save_array
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
        try:
            save_array(Path({str(tmp_path / "a.npy")!r}), np.zeros(100_000))
        except OSError as exc:
            print(exc.errno == errno.EFBIG, "requested" not in str(exc))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "True"], out
