"""Saving and loading a pipeline: one loop over its components.

Each component has a ``save(pipeline, path) -> config`` and a ``load(path, config, *,
device)``; the manifest (``llmrec.json``) holds every config under ``components``, the
size and SHA-256 of every file, the pseudonymization key check and how far the event log
had been applied.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmrec._validate import check_options
from llmrec.catalog import Catalog
from llmrec.device import DeviceLike
from llmrec.encoding import ItemEncoder
from llmrec.errors import (
    BackendUnavailableError,
    ConfigError,
    DeviceError,
    LLMRecError,
    PersistenceError,
)
from llmrec.pipeline._journal import Journal
from llmrec.profile import ProfileStore
from llmrec.ranking import Ranker
from llmrec.registry import available_backends
from llmrec.retrieval import Retriever
from llmrec.storage.io import (
    FORMAT_VERSION,
    atomic_directory,
    file_digests,
    read_manifest,
    verify_files,
    write_manifest,
)

if TYPE_CHECKING:
    from llmrec.pipeline.pipeline import Pipeline

__all__ = ["COMPONENTS", "Saved", "generator_choice", "generator_spec", "load", "save"]

logger = logging.getLogger(__name__)

#: Options of a generator that belong to its backend (dropped when a load overrides it).
BACKEND_OPTIONS = ("model", "backend_options")


def _versions() -> dict[str, str]:
    out = {}
    for name in ("llmrec", "torch", "transformers", "numpy", "hnswlib"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out


def generator_spec(config: Any) -> tuple[str, dict[str, Any]]:
    """``(backend, options)`` of a saved generator, such that ``ContentGenerator(backend,
    catalog=..., device=..., **options)`` rebuilds it.

    Reads the one shape saves hold (``{"backend", "options"}``, what
    :meth:`~llmrec.generation.ContentGenerator.config` returns) and the two older ones:
    ``{"llm", "config": <generator config>}`` for a generator that had been built and
    ``{"llm", "options"}`` for one that had not.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"generator config must be a mapping, got {config!r:.80}")
    if "backend" in config:
        backend, options = config["backend"], config.get("options")
    elif "config" in config:  # older save: the generator's own config names its backend
        backend, options = config["config"]["backend"], config["config"].get("options")
    else:  # older save of a generator not built yet
        backend, options = config.get("llm", "default"), config.get("options")
    if not isinstance(backend, str):
        raise ValueError(f"generator backend must be a name, got {backend!r:.80}")
    return backend, check_options(options, "generator options")


@dataclass(frozen=True)
class _Component:
    """How one component is saved into, and loaded from, its part of a save."""

    save: Callable[[Pipeline, Path], dict[str, Any]]
    load: Callable[[Path, Mapping[str, Any], DeviceLike], Any]


def _save_generator(pipe: Pipeline, path: Path) -> dict[str, Any]:
    del path  # the model is referenced by name, nothing is written
    return pipe.generator_config()


#: Every component of a save, in manifest order. The generator loads as its
#: ``(backend, options)``: its model loads on first use.
COMPONENTS: dict[str, _Component] = {
    "catalog": _Component(
        lambda pipe, path: pipe.catalog.save(path),
        lambda path, config, device: Catalog.load(path, dict(config)),
    ),
    "retriever": _Component(
        lambda pipe, path: pipe.retriever.save(path),
        lambda path, config, device: Retriever.load(path, dict(config), device=device),
    ),
    "ranker": _Component(
        lambda pipe, path: pipe.ranker.save(path),
        lambda path, config, device: Ranker.load(path, dict(config)),
    ),
    "profiles": _Component(
        lambda pipe, path: pipe.profiles.save(path),
        lambda path, config, device: ProfileStore.load(path, dict(config)),
    ),
    "encoder": _Component(
        lambda pipe, path: pipe.encoder.save(path),
        lambda path, config, device: ItemEncoder.load(path, config, device=device),
    ),
    "generator": _Component(_save_generator, lambda path, config, device: generator_spec(config)),
}


def save(pipe: Pipeline, path: Path, *, signing_key: bytes | None = None) -> None:
    """Write every component and the manifest into ``path`` atomically (under the lock),
    signed with ``signing_key`` when given."""
    started = time.perf_counter()
    with pipe._lock, atomic_directory(path) as tmp:
        components = {name: part.save(pipe, tmp / name) for name, part in COMPONENTS.items()}
        manifest: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "kind": "pipeline",
            "versions": _versions(),
            "components": components,
            "privacy": {
                "key_check": None if pipe._pseudonymize is None else pipe._pseudonymize.key_check
            },
            "files": file_digests(tmp),
        }
        log_state = pipe._journal.state()
        if log_state is not None:
            manifest["event_log"] = log_state
        write_manifest(tmp, manifest, signing_key=signing_key)
    logger.info("saved pipeline to %s in %.2fs", path, time.perf_counter() - started)


@dataclass(frozen=True)
class Saved:
    """What a save holds, loaded.

    Attributes:
        parts: Component name -> the loaded component (the generator as its
            ``(backend, options)``).
        key_check: The pseudonymization key check the save was made under, or ``None``.
        journal: How far the save had applied its event log.
    """

    parts: dict[str, Any]
    key_check: str | None
    journal: Journal


def load(
    path: Path, *, device: DeviceLike, key_check: str | None, signing_key: bytes | None = None
) -> Saved:
    """Read and check the save in ``path``, for a pipeline whose pseudonymization key has
    ``key_check`` (``None``: no key); with ``signing_key`` the save must be signed with it.

    Raises:
        PersistenceError: the directory is missing, truncated, corrupt or from a newer
            llmrec, or its vectors do not match its encoder.
        ConfigError: the save was made under another key, or without one.
    """
    _check_is_save_dir(path)
    manifest = read_manifest(path, "pipeline", signing_key=signing_key)
    try:
        if "files" in manifest:
            verify_files(path, manifest["files"])
        saved_check = (manifest.get("privacy") or {}).get("key_check")
        journal = Journal()
        journal.restore(manifest.get("event_log"))
        configs = manifest["components"]
        parts = {
            name: part.load(path / name, configs[name], device) for name, part in COMPONENTS.items()
        }
    except (PersistenceError, BackendUnavailableError, DeviceError):
        raise
    except (
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        IndexError,
        OverflowError,
        OSError,
        LLMRecError,
    ) as exc:
        raise PersistenceError(f"corrupt save in {str(path)!r}: {exc!r}") from None
    if parts["retriever"].dim != parts["encoder"].dim:
        raise PersistenceError(
            f"saved vectors have dim {parts['retriever'].dim} but the "
            f"encoder gives {parts['encoder'].dim}"
        )
    _check_key(path, saved_check, key_check)
    return Saved(parts, saved_check, journal)


def _check_is_save_dir(path: Path) -> None:
    """Refuse a path that exists but is a file (a catalog or events file, say) with a
    message saying what a save directory is, rather than that it does not exist."""
    try:
        is_file = path.exists() and not path.is_dir()
    except OSError as exc:  # a name too long, a component that is not a folder, ...
        raise PersistenceError(f"cannot read save directory {str(path)!r:.200}: {exc}") from None
    if is_file:
        raise PersistenceError(
            f"{str(path)!r} is a file, not a save directory: from_pretrained opens the "
            "directory Pipeline.save_pretrained wrote (it holds llmrec.json and folders such "
            "as catalog/ and retriever/); to build a pipeline from a catalog file use "
            "Pipeline.from_catalog(llmrec.datasets.read_items(path))"
        )


def _check_key(path: Path, saved: str | None, given: str | None) -> None:
    if saved == given:
        return
    if saved is None:
        raise ConfigError(
            f"{str(path)!r} holds raw user ids; it cannot be opened with a pseudonymize_key"
        )
    raise ConfigError(
        f"{str(path)!r} holds pseudonymized user ids: pass the "
        "pseudonymize_key it was saved with" + ("" if given is None else " (this one differs)")
    )


def generator_choice(
    saved: tuple[str, dict[str, Any]],
    llm: Any,
    llm_options: Mapping[str, Any] | None,
    *,
    allow_remote: bool = False,
    allow_llms: frozenset[str] = frozenset(),
) -> tuple[Any, dict[str, Any]]:
    """The ``llm`` and ``llm_options`` a loaded pipeline gets: the saved ones, unless
    overridden; a backend override drops the saved options that belong to the saved
    backend (:data:`BACKEND_OPTIONS`).

    A save is input that may come from elsewhere, so the generator it names is only
    trusted within bounds the caller sets: see :func:`check_saved_generator`."""
    backend, options = saved
    same = llm is None or _backend_name(llm) == _backend_name(backend)
    if not same:
        options = {k: v for k, v in options.items() if k not in BACKEND_OPTIONS}
    elif llm_options is None:  # the save alone decides where prompts go
        check_saved_generator(backend, options, allow_remote=allow_remote, allow_llms=allow_llms)
    if (
        same
        and isinstance(backend, str)
        and backend != "default"
        and backend not in available_backends("llms")
    ):
        raise ConfigError(
            f"the save's generator uses the llm backend {backend!r}, which is not registered "
            "here: register it (llmrec.register_backend) or pass llm= to from_pretrained "
            "(for example llm='template')"
        )
    return (backend if llm is None else llm, options if llm_options is None else dict(llm_options))


def _backend_name(llm: Any) -> Any:
    return "transformers" if llm == "default" else llm


#: Built-in generator backends that run inside this process.
LOCAL_LLMS = frozenset({"default", "transformers", "template", "llamacpp"})
#: Built-in generator backends that send prompts over the network.
REMOTE_LLMS = frozenset({"openai"})


def _addresses(value: Any, found: list[str]) -> list[str]:
    """Every string inside ``value`` (nested mappings and lists) that reads as a network
    address (``scheme://...``), in order."""
    if isinstance(value, str):
        if "://" in value:
            found.append(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            _addresses(item, found)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _addresses(item, found)
    return found


def check_saved_generator(
    backend: Any,
    options: Mapping[str, Any],
    *,
    allow_remote: bool = False,
    allow_llms: frozenset[str] = frozenset(),
) -> None:
    """Refuse a saved generator the loading caller did not allow.

    Without the caller's consent a save must not send prompts (the user's liked titles,
    queries) and the process's API keys to a server the save names, nor run a backend
    the caller did not choose. Allowed are the in-process built-ins (:data:`LOCAL_LLMS`)
    with no network address in their options, and the names in ``allow_llms``;
    a network backend (:data:`REMOTE_LLMS`) or an address needs ``allow_remote=True``.

    Raises:
        PersistenceError: the save's generator is not allowed; the message names it and
            the two ways out (opt in, or override ``llm=``).
    """
    name = _backend_name(backend)
    addresses = _addresses(dict(options), [])
    remote = name in REMOTE_LLMS or bool(addresses)
    if remote and not allow_remote:
        where = f" at {addresses[0][:80]!r}" if addresses else ""
        raise PersistenceError(
            f"the save sends generation to a network service ({backend!r}{where}): pass "
            "allow_remote=True to from_pretrained (--allow-remote in the CLI) if you trust where "
            "the save came from, "
            "or choose the generator yourself (llm='default', llm='template', ...)"
        )
    if not remote and name not in LOCAL_LLMS and backend not in allow_llms:
        raise PersistenceError(
            f"the save's generator names the llm backend {backend!r}, which the caller did "
            f"not allow: pass allow_llms={{{backend!r}}} to from_pretrained if you trust "
            "where the save came from, or choose the generator yourself (llm='template')"
        )
