"""Persistence helpers: manifests, atomic directory writes, pickle-free arrays."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmrec._validate import check_choice
from llmrec.errors import InvalidInputError, PersistenceError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "atomic_directory",
    "atomic_file",
    "check_path",
    "default_cache_dir",
    "file_digests",
    "file_sha256",
    "fsync_directory",
    "load_array",
    "read_json",
    "read_manifest",
    "save_array",
    "verify_files",
    "write_json",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "llmrec.json"


@contextlib.contextmanager
def atomic_file(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Yield a temporary file beside ``path`` that replaces ``path`` only if the block succeeds.

    On success the file is flushed, fsynced and renamed over ``path`` with ``os.replace``,
    and the rename is made durable; on any error the temporary file is removed and ``path``
    is left as it was. Readers see either the old file or the new one, never a part.

    Args:
        path: The file to (re)place; its folder must exist.
        mode: ``"w"`` (UTF-8 text) or ``"wb"`` (bytes).
    """
    check_choice(mode, "mode", ("w", "wb"))
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_directory(path.parent)


def write_json(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path) as f:
        json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)


def read_json(path: Path) -> Any:
    """Read JSON, turning a missing or malformed file into :class:`PersistenceError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise PersistenceError(f"missing file {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise PersistenceError(f"cannot read {str(path)!r}: {exc}") from None


def save_array(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` without pickle."""
    with open(path, "wb") as f:
        np.save(f, np.ascontiguousarray(array), allow_pickle=False)


def load_array(path: Path, *, dtype: Any = None, ndim: int | None = None) -> np.ndarray:
    """Load a ``.npy`` saved by :func:`save_array`, checking dtype and rank."""
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise PersistenceError(f"missing file {str(path)!r}") from None
    except (OSError, ValueError) as exc:
        raise PersistenceError(f"corrupt array file {str(path)!r}: {exc}") from None
    if dtype is not None and array.dtype != np.dtype(dtype):
        raise PersistenceError(f"{str(path)!r} holds {array.dtype}, expected {np.dtype(dtype)}")
    if ndim is not None and array.ndim != ndim:
        raise PersistenceError(f"{str(path)!r} has {array.ndim} dimensions, expected {ndim}")
    return array


def check_path(value: Any, what: str = "path") -> Path:
    """Return ``value`` as a :class:`~pathlib.Path` if it names a file system path.

    Raises:
        InvalidInputError: ``value`` is not a str or path-like, is empty, or holds a NUL.
    """
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise InvalidInputError(f"{what} must be a str or path, got {type(value).__name__}")
    text = os.fspath(value)
    if not isinstance(text, str) or not text or "\x00" in text:
        raise InvalidInputError(f"{what} must be a non-empty path without NUL, got {text!r:.80}")
    try:
        os.fsencode(text)
    except UnicodeEncodeError:
        raise InvalidInputError(
            f"{what} cannot be encoded for the file system: {text!r:.80}"
        ) from None
    return Path(text)


def fsync_directory(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - Windows cannot open directories
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on directories
        pass
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fsync_directory(Path(dirpath))


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(root: Path, *, exclude: tuple[str, ...] = (MANIFEST_NAME,)) -> dict[str, Any]:
    """``{relative path: {"size": bytes, "sha256": hex}}`` of every file under ``root``."""
    root = Path(root)
    out: dict[str, Any] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if relative in exclude:
            continue
        out[relative] = {"size": path.stat().st_size, "sha256": file_sha256(path)}
    return out


def verify_files(root: Path, digests: Any) -> None:
    """Check that every file listed by :func:`file_digests` is present and unchanged.

    Raises:
        PersistenceError: a listed file is missing, truncated or altered, or ``digests``
            is not a digest map.
    """
    root = Path(root)
    if not isinstance(digests, dict):
        raise PersistenceError(f"corrupt manifest in {str(root)!r}: bad file list")
    for relative, expected in digests.items():
        path = root / relative
        if not isinstance(expected, dict) or ".." in Path(relative).parts:
            raise PersistenceError(f"corrupt manifest in {str(root)!r}: bad entry {relative!r}")
        try:
            size = path.stat().st_size
        except OSError:
            raise PersistenceError(f"missing file {str(path)!r} in the save") from None
        if size != expected.get("size"):
            raise PersistenceError(
                f"{str(path)!r} is {size} bytes, the save wrote "
                f"{expected.get('size')}: truncated or altered"
            )
        try:
            actual = file_sha256(path)
        except OSError as exc:
            raise PersistenceError(f"cannot read {str(path)!r}: {exc}") from None
        if actual != expected.get("sha256"):
            raise PersistenceError(f"{str(path)!r} does not match its checksum: corrupt")


# Saves to one directory are serialized within a process; across processes the
# rename protocol below keeps a complete save in place whatever happens.
_TARGET_LOCKS: dict[str, threading.Lock] = {}
_TARGET_LOCKS_GUARD = threading.Lock()


def _target_lock(target: Path) -> threading.Lock:
    with _TARGET_LOCKS_GUARD:
        return _TARGET_LOCKS.setdefault(str(target), threading.Lock())


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # no permission to signal it: it exists
        return True
    return True


def _discard(directory: Path, target: Path) -> None:
    """Remove ``directory`` (an old save of ``target``): renamed to a trash name first,
    so a crash halfway never leaves a partial tree under a name recovery would trust."""
    trash = target.with_name(f".{target.name}.trash-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(directory, trash)
    except OSError:
        return
    shutil.rmtree(trash, ignore_errors=True)


def _cleanup(target: Path) -> None:
    """Finish what a crashed save left: restore the previous save if the crash fell
    between the two renames, and remove stale temporary, old and trash directories."""
    _recover(target)
    for path in target.parent.glob(f".{target.name}.*"):
        if not path.is_dir():
            continue
        kind, _, rest = path.name[len(target.name) + 2 :].partition("-")
        if kind == "tmp":
            pid = rest.split("-", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                shutil.rmtree(path, ignore_errors=True)
        elif kind == "old" and target.exists():
            _discard(path, target)
        elif kind == "trash":
            shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def atomic_directory(target: Path, *, marker: str | None = MANIFEST_NAME) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    The new tree is fsynced, the old ``target`` (if any) is renamed aside, the new one is
    renamed into place, and the old one is removed. A crash at any point leaves either the
    previous save or the new one at ``target`` (or, between the two renames, the previous
    one under ``.<name>.old-*``, which :func:`read_manifest` and the next save restore).

    Args:
        target: The directory to (re)place.
        marker: A file every directory this function wrote holds; an existing, non-empty
            ``target`` without it is refused rather than replaced (``None``: no check).

    Raises:
        PersistenceError: ``target`` is a file or a foreign directory, or the file system
            refused a write.
    """
    target = check_path(target, "save path").absolute()
    with _target_lock(target):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            _cleanup(target)
            if target.exists():
                if not target.is_dir():
                    raise PersistenceError(f"{str(target)!r} exists and is not a directory")
                if marker is not None and not (target / marker).exists() and any(target.iterdir()):
                    raise PersistenceError(
                        f"{str(target)!r} is a non-empty directory that is not an llmrec save; "
                        "refusing to replace it"
                    )
            tmp = Path(
                tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-{os.getpid()}-")
            )
        except OSError as exc:
            if isinstance(exc, PersistenceError):
                raise
            raise PersistenceError(f"cannot save to {str(target)!r}: {exc}") from None
        old = None
        try:
            yield tmp
            _fsync_tree(tmp)
            if target.exists():
                old = target.with_name(f".{target.name}.old-{time.time_ns():020d}")
                os.replace(target, old)
            os.replace(tmp, target)
            fsync_directory(target.parent)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if old is not None and not target.exists():
                with contextlib.suppress(OSError):
                    os.replace(old, target)
            if isinstance(exc, OSError) and not isinstance(exc, PersistenceError):
                raise PersistenceError(f"cannot save to {str(target)!r}: {exc}") from None
            raise
        if old is not None:
            _discard(old, target)


def _recover(target: Path) -> None:
    if target.exists():
        return
    olds = sorted(
        p for p in target.parent.glob(f".{target.name}.old-*") if (p / MANIFEST_NAME).is_file()
    )
    if olds:
        with contextlib.suppress(OSError):
            os.replace(olds[-1], target)


def read_manifest(directory: Path, expected_kind: str) -> dict[str, Any]:
    """Read and check ``llmrec.json`` in ``directory``.

    Raises:
        PersistenceError: the directory or manifest is missing or corrupt, belongs to a
            different kind of object, or was written by a newer format version.
    """
    directory = check_path(directory, "save path")
    absolute = directory.absolute()
    try:
        with _target_lock(absolute):
            _recover(absolute)
        exists = directory.is_dir()
    except OSError as exc:
        raise PersistenceError(f"cannot read save directory {str(directory)!r}: {exc}") from None
    if not exists:
        raise PersistenceError(f"save directory {str(directory)!r} does not exist")
    manifest = read_json(directory / MANIFEST_NAME)
    if not isinstance(manifest, dict) or "format_version" not in manifest:
        raise PersistenceError(f"{str(directory / MANIFEST_NAME)!r} is not an llmrec manifest")
    version = manifest["format_version"]
    if not isinstance(version, int) or version < 1:
        raise PersistenceError(f"invalid format_version {version!r} in {str(directory)!r}")
    if version > FORMAT_VERSION:
        raise PersistenceError(
            f"{str(directory)!r} was written with format version {version}, newer than this "
            f"llmrec supports ({FORMAT_VERSION}); upgrade llmrec to load it"
        )
    if manifest.get("kind") != expected_kind:
        raise PersistenceError(
            f"{str(directory)!r} holds a {manifest.get('kind')!r}, expected {expected_kind!r}"
        )
    return manifest


def default_cache_dir() -> Path:
    """``$LLMREC_CACHE``, else ``$XDG_CACHE_HOME/llmrec``, else ``~/.cache/llmrec``."""
    explicit = os.environ.get("LLMREC_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llmrec"
