"""Persistence helpers: manifests, atomic directory writes, pickle-free arrays."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import math
import os
import shutil
import stat
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmrec._validate import check_choice
from llmrec.errors import ConfigError, InvalidInputError, PersistenceError

__all__ = [
    "CHECKSUM_NAME",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "MAX_DIM",
    "MAX_JSON_BYTES",
    "MAX_JSON_DEPTH",
    "atomic_directory",
    "atomic_file",
    "check_path",
    "default_cache_dir",
    "file_digests",
    "file_sha256",
    "fsync_directory",
    "check_tree",
    "load_array",
    "open_regular",
    "check_signing_key",
    "parse_json",
    "read_json",
    "read_lines",
    "read_manifest",
    "save_array",
    "verify_files",
    "write_json",
    "write_manifest",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "llmrec.json"
#: Beside the manifest: the SHA-256 of its bytes, in ``sha256sum`` format, so an edited
#: manifest (or one whose ``files`` list was dropped) is refused.
CHECKSUM_NAME = "llmrec.sha256"
#: Beside the manifest when a save is signed: the HMAC-SHA256 of the manifest's bytes under
#: the user's key. The manifest lists every file's SHA-256, so the signature covers them all.
SIGNATURE_NAME = "llmrec.sig"
#: Shortest signing key accepted (bytes): HMAC-SHA256 keys below this are guessable.
MIN_SIGNING_KEY = 16
#: A save is untrusted input: JSON documents (and each JSONL line) above this are refused.
MAX_JSON_BYTES = 64 << 20
#: Deepest JSON nesting a save may hold; saves nest a few levels, attacks thousands.
MAX_JSON_DEPTH = 64
#: Largest vector dimension a saved component may declare.
MAX_DIM = 1 << 16


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


def open_regular(path: Path, *, max_bytes: int | None = None) -> IO[bytes]:
    """Open ``path`` for reading in binary, if it is a regular file and not a link.

    The file is opened with ``O_NOFOLLOW`` (and ``O_NONBLOCK``, so a FIFO cannot block the
    open) and checked with ``fstat``, so a link, device or FIFO put in place of a save's
    file is never read.

    Raises:
        PersistenceError: ``path`` is missing, a symlink, not a regular file, larger than
            ``max_bytes``, or unreadable.
    """
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise PersistenceError(f"missing file {str(path)!r}") from None
    except OSError as exc:
        if os.path.islink(path):
            raise PersistenceError(f"{str(path)!r} is a symlink; a save holds files only") from None
        raise PersistenceError(f"cannot read {str(path)!r}: {exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise PersistenceError(f"{str(path)!r} is not a regular file")
        if max_bytes is not None and info.st_size > max_bytes:
            raise PersistenceError(
                f"{str(path)!r} is {info.st_size} bytes, more than the {max_bytes} allowed"
            )
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    with open_regular(path, max_bytes=max_bytes) as f:
        data = f.read(max_bytes + 1)  # the file may have grown since fstat
    if len(data) > max_bytes:
        raise PersistenceError(f"{str(path)!r} is larger than the {max_bytes} bytes allowed")
    return data


def _depth_ok(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return False
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return True


def parse_json(text: str | bytes, where: str) -> Any:
    """Parse one JSON document from a save, nested at most :data:`MAX_JSON_DEPTH` deep.

    Raises:
        PersistenceError: the text is not JSON, or nests too deep (naming ``where``).
    """
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        deep = True
    except (ValueError, UnicodeDecodeError) as exc:
        raise PersistenceError(f"cannot read {where}: {exc}") from None
    else:
        deep = not _depth_ok(value, MAX_JSON_DEPTH)
    if deep:
        raise PersistenceError(f"{where} nests JSON deeper than {MAX_JSON_DEPTH} levels")
    return value


def read_json(path: Path) -> Any:
    """Read a JSON document of a save (a regular file of at most :data:`MAX_JSON_BYTES`).

    Raises:
        PersistenceError: the file is missing, not a regular file, too large, malformed or
            too deeply nested.
    """
    return parse_json(_read_bytes(path, MAX_JSON_BYTES), repr(str(path)))


def read_lines(path: Path) -> Iterator[Any]:
    """Yield the JSON value of each line of a JSONL file of a save.

    Each line is bounded like a JSON document (:data:`MAX_JSON_BYTES`,
    :data:`MAX_JSON_DEPTH`).

    Raises:
        PersistenceError: the file is missing or not a regular file, or a line is too
            long, malformed or too deeply nested (naming the file and line).
    """
    with open_regular(path) as f:
        for n, line in enumerate(iter(lambda: f.readline(MAX_JSON_BYTES + 1), b""), 1):
            if len(line) > MAX_JSON_BYTES:
                raise PersistenceError(f"{str(path)!r} line {n} is longer than allowed")
            yield parse_json(line, f"{str(path)!r} line {n}")


def save_array(path: Path, array: np.ndarray) -> None:
    """Save ``array`` as ``.npy`` without pickle.

    The data goes through Python's own ``write`` rather than numpy's ``tofile``: on a
    short write (a full disk, a file-size limit) that raises an ``OSError`` with the
    operating system's errno and reason, where ``tofile`` reports only the byte counts.
    """
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject:
        raise ValueError("object arrays are not saved (no pickle)")
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
        if array.size:
            f.write(memoryview(array.reshape(-1)).cast("B"))


def load_array(path: Path, *, dtype: Any = None, ndim: int | None = None) -> np.ndarray:
    """Load a ``.npy`` saved by :func:`save_array`, checking dtype and rank.

    The header's shape is checked against the file's size before anything is allocated.

    Raises:
        PersistenceError: the file is missing, not a regular file, corrupt, or of another
            dtype or rank.
    """
    fmt = np.lib.format
    with open_regular(path) as f:
        try:
            version = fmt.read_magic(f)
            if version == (1, 0):
                shape, fortran, header_dtype = fmt.read_array_header_1_0(f)
            else:
                shape, fortran, header_dtype = fmt.read_array_header_2_0(f)
            if header_dtype.hasobject:
                raise ValueError("object arrays are not loaded")
            body = os.fstat(f.fileno()).st_size - f.tell()
            if math.prod(shape) * header_dtype.itemsize != body:
                raise ValueError(f"header shape {shape} does not match the {body} data bytes")
            f.seek(0)
            array = np.load(f, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
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
    with open(path, "rb") as f:
        return _sha256(f)


def _sha256(f: IO[bytes]) -> str:
    digest = hashlib.sha256()
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


def _listed_path(root: Path, relative: Any) -> Path:
    """``root / relative`` for a name from a manifest's file list: a relative POSIX path
    with no ``..``, ``.`` or empty part, none of whose folders is a symlink."""
    parts = relative.split("/") if isinstance(relative, str) else []
    if not parts or any(part in ("", ".", "..") or "\\" in part for part in parts):
        raise PersistenceError(f"corrupt manifest in {str(root)!r}: bad file name {relative!r:.80}")
    path = root
    for part in parts[:-1]:
        path = path / part
        if path.is_symlink():
            raise PersistenceError(f"{str(path)!r} is a symlink; a save holds files only")
    return path / parts[-1]


def verify_files(root: Path, digests: Any) -> None:
    """Check that every file listed by :func:`file_digests` is present and unchanged.

    Raises:
        PersistenceError: a listed file is missing, truncated, altered or not a regular
            file, a listed name leaves ``root``, or ``digests`` is not a digest map.
    """
    root = Path(root)
    if not isinstance(digests, dict):
        raise PersistenceError(f"corrupt manifest in {str(root)!r}: bad file list")
    for relative, expected in digests.items():
        path = _listed_path(root, relative)
        if not isinstance(expected, dict):
            raise PersistenceError(f"corrupt manifest in {str(root)!r}: bad entry {relative!r}")
        with open_regular(path) as f:
            size = os.fstat(f.fileno()).st_size
            if size != expected.get("size"):
                raise PersistenceError(
                    f"{str(path)!r} is {size} bytes, the save wrote "
                    f"{expected.get('size')!r:.40}: truncated or altered"
                )
            try:
                actual = _sha256(f)
            except OSError as exc:
                raise PersistenceError(f"cannot read {str(path)!r}: {exc}") from None
        if actual != expected.get("sha256"):
            raise PersistenceError(f"{str(path)!r} does not match its checksum: corrupt")


def check_tree(root: Path) -> None:
    """Check that a save directory holds only regular files and real folders.

    Walks ``root`` without following links, so a symlinked component folder, a link in
    place of a file, a FIFO or a device is refused before any file is opened.

    Raises:
        PersistenceError: naming the first entry that is not a regular file or folder.
    """
    stack = [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            raise PersistenceError(f"cannot read save folder {str(folder)!r}: {exc}") from None
        for entry in entries:
            if entry.is_symlink():
                raise PersistenceError(
                    f"{entry.path!r} is a symlink; a save holds files and folders only"
                )
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
            elif not entry.is_file(follow_symlinks=False):
                raise PersistenceError(f"{entry.path!r} is not a regular file")


def check_signing_key(key: Any) -> bytes | None:
    """``key`` as bytes (``None`` stays ``None``): at least :data:`MIN_SIGNING_KEY` bytes.

    Raises:
        ConfigError: not bytes, or too short.
    """
    if key is None:
        return None
    if not isinstance(key, (bytes, bytearray)) or len(key) < MIN_SIGNING_KEY:
        raise ConfigError(
            f"signing_key must be bytes of at least {MIN_SIGNING_KEY} bytes (for example "
            f"secrets.token_bytes(32)), got {type(key).__name__}"
            + (f" of {len(key)} bytes" if isinstance(key, (bytes, bytearray)) else "")
        )
    return bytes(key)


def _signature(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def write_manifest(
    directory: Path, manifest: dict[str, Any], *, signing_key: bytes | None = None
) -> None:
    """Write ``manifest`` as ``llmrec.json`` in ``directory`` and its checksum beside it,
    and with ``signing_key`` its signature (:data:`SIGNATURE_NAME`)."""
    data = json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False).encode("utf-8")
    with atomic_file(Path(directory) / MANIFEST_NAME, "wb") as f:
        f.write(data)
    with atomic_file(Path(directory) / CHECKSUM_NAME) as f:
        f.write(f"{hashlib.sha256(data).hexdigest()}  {MANIFEST_NAME}\n")
    signature = Path(directory) / SIGNATURE_NAME
    if signing_key is not None:
        with atomic_file(signature) as f:
            f.write(f"{_signature(signing_key, data)}  {MANIFEST_NAME}\n")
    elif os.path.lexists(signature):  # a stale signature would no longer match
        signature.unlink()


def _check_signed(directory: Path, data: bytes, manifest: dict[str, Any], key: bytes) -> None:
    """Refuse a manifest not signed with ``key`` (the caller asked for a signed save)."""
    where = repr(str(directory))
    if not os.path.lexists(directory / SIGNATURE_NAME):
        raise PersistenceError(
            f"{where} is not signed ({SIGNATURE_NAME} is missing) but a signing_key was "
            "given: load it without signing_key only if you trust where it came from"
        )
    text = _read_bytes(directory / SIGNATURE_NAME, 4096).decode("ascii", errors="replace")
    given = text.split(maxsplit=1)[0] if text.strip() else ""
    if not hmac.compare_digest(given, _signature(key, data)):
        raise PersistenceError(
            f"{where} is not signed with this signing_key: the save was altered, or signed "
            "with another key"
        )
    if "files" not in manifest:
        raise PersistenceError(f"{str(directory / MANIFEST_NAME)!r} lists no files")


def _check_sealed(directory: Path, data: bytes, manifest: dict[str, Any]) -> None:
    """Refuse a manifest that does not match its checksum file. A save without one
    predates it and is read unchecked."""
    seal = directory / CHECKSUM_NAME
    if not os.path.lexists(seal):
        return
    text = _read_bytes(seal, 4096).decode("ascii", errors="replace")
    expected = text.split(maxsplit=1)[0] if text.strip() else ""
    if expected != hashlib.sha256(data).hexdigest():
        raise PersistenceError(
            f"{str(directory / MANIFEST_NAME)!r} does not match {CHECKSUM_NAME}: "
            "the manifest was edited or is corrupt"
        )
    if "files" not in manifest:
        raise PersistenceError(f"{str(directory / MANIFEST_NAME)!r} lists no files")


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


def read_manifest(
    directory: Path, expected_kind: str, *, signing_key: bytes | None = None
) -> dict[str, Any]:
    """Read and check ``llmrec.json`` in ``directory``.

    The directory must hold only regular files and folders (:func:`check_tree`), and the
    manifest must match its checksum file (:data:`CHECKSUM_NAME`) where there is one, and
    with ``signing_key`` its signature (:data:`SIGNATURE_NAME`), which must be there.

    Raises:
        PersistenceError: the directory or manifest is missing or corrupt, holds a link or
            special file, belongs to a different kind of object, was written by a newer
            format version, or does not match its checksum.
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
    check_tree(directory)
    data = _read_bytes(directory / MANIFEST_NAME, MAX_JSON_BYTES)
    manifest = parse_json(data, repr(str(directory / MANIFEST_NAME)))
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
            f"{str(directory)!r} holds a {manifest.get('kind')!r:.80}, expected {expected_kind!r}"
        )
    _check_sealed(directory, data, manifest)
    if signing_key is not None:
        _check_signed(directory, data, manifest, signing_key)
    return manifest


def default_cache_dir() -> Path:
    """``$LLMREC_CACHE``, else ``$XDG_CACHE_HOME/llmrec``, else ``~/.cache/llmrec``."""
    explicit = os.environ.get("LLMREC_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "llmrec"
