"""Persistence helpers: manifests, atomic directory writes, pickle-free arrays."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.errors import PersistenceError

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "atomic_directory",
    "load_array",
    "read_json",
    "read_manifest",
    "save_array",
    "write_json",
]

FORMAT_VERSION = 1
MANIFEST_NAME = "llmrec.json"


def write_json(path: Path, obj: Any) -> None:
    """Write JSON to ``path`` atomically (temporary file, fsync, rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(obj, f, indent=2, sort_keys=True, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def _fsync_tree(root: Path) -> None:
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                os.fsync(f.fileno())
        fd = os.open(dirpath, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``target`` only if the block succeeds.

    The new tree is fsynced, the old ``target`` (if any) is renamed aside, the new one is
    renamed into place, and the old one is removed. A crash at any point leaves either the
    previous save or the new one at ``target`` (or, between the two renames, the previous
    one at ``target.old-*``, which :func:`read_manifest` recovers).
    """
    target = Path(target).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
    try:
        yield tmp
        _fsync_tree(tmp)
        old = None
        if target.exists():
            if not target.is_dir():
                raise PersistenceError(f"{str(target)!r} exists and is not a directory")
            old = target.with_name(f"{target.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _recover(target: Path) -> None:
    if target.exists():
        return
    olds = sorted(target.parent.glob(f"{target.name}.old-*"), key=lambda p: p.stat().st_mtime)
    if olds:
        os.replace(olds[-1], target)


def read_manifest(directory: Path, expected_kind: str) -> dict[str, Any]:
    """Read and check ``llmrec.json`` in ``directory``.

    Raises:
        PersistenceError: the directory or manifest is missing or corrupt, belongs to a
            different kind of object, or was written by a newer format version.
    """
    directory = Path(directory)
    _recover(directory.absolute())
    if not directory.is_dir():
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
