"""Backend registry: names, errors and registration."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from llmrec import available_backends, register_backend
from llmrec.encoding.hashing import HashingEncoder
from llmrec.errors import BackendUnavailableError, ConfigError
from llmrec.registry import _REGISTRY, get_backend
from llmrec.retrieval.indexes import ExactIndex, HNSWIndex


@pytest.fixture
def restore_registry() -> Iterator[None]:
    saved = {kind: dict(entries) for kind, entries in _REGISTRY.items()}
    yield
    for kind, entries in saved.items():
        _REGISTRY[kind].clear()
        _REGISTRY[kind].update(entries)


@pytest.mark.parametrize(
    ("kind", "names"),
    [
        ("encoders", {"hashing", "transformers"}),
        ("indexes", {"exact", "hnsw"}),
        ("llms", {"template", "transformers"}),
        ("models", {"ease", "sequential"}),
    ],
)
def test_available_backends_lists_the_builtins_sorted(kind: str, names: set[str]) -> None:
    listed = available_backends(kind)
    assert names <= set(listed)
    assert listed == sorted(listed)


def test_unknown_kind_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="'widgets'"):
        available_backends("widgets")


def test_builtins_resolve_to_their_classes() -> None:
    assert get_backend("encoders", "hashing") is HashingEncoder
    assert get_backend("indexes", "exact") is ExactIndex
    assert get_backend("indexes", "hnsw") is HNSWIndex


def test_unknown_name_lists_the_registered_names() -> None:
    with pytest.raises(ConfigError) as info:
        get_backend("indexes", "faiss-magic")
    message = str(info.value)
    assert "'faiss-magic'" in message
    for name in available_backends("indexes"):
        assert repr(name) in message


def test_missing_module_raises_backend_unavailable_with_pip_hint(restore_registry) -> None:
    register_backend("encoders", "ghost", "llmrec_ghost_module_xyz:GhostEncoder")
    with pytest.raises(BackendUnavailableError) as info:
        get_backend("encoders", "ghost")
    message = str(info.value)
    assert "pip install llmrec_ghost_module_xyz" in message
    assert "'ghost'" in message
    assert isinstance(info.value, ImportError)


def test_missing_module_with_extra_names_the_extra(restore_registry) -> None:
    register_backend("indexes", "ghost", "llmrec_ghost_module_xyz:GhostIndex", extra="ghost")
    with pytest.raises(BackendUnavailableError, match=r"pip install 'llmrec\[ghost\]'"):
        get_backend("indexes", "ghost")


def test_register_backend_with_a_class(restore_registry) -> None:
    class TinyEncoder(HashingEncoder):
        name = "tiny"

    register_backend("encoders", "tiny", TinyEncoder)
    assert "tiny" in available_backends("encoders")
    assert get_backend("encoders", "tiny") is TinyEncoder
    from llmrec import ItemEncoder

    encoder = ItemEncoder("tiny", dim=16, device="cpu")
    assert isinstance(encoder.backend, TinyEncoder)
    assert encoder.encode_texts(["hello"]).shape == (1, 16)


def test_register_backend_with_a_dotted_path(restore_registry) -> None:
    register_backend("indexes", "exact2", "llmrec.retrieval.indexes:ExactIndex")
    assert get_backend("indexes", "exact2") is ExactIndex


def test_registration_is_undone_by_the_fixture() -> None:
    assert "tiny" not in available_backends("encoders")
    assert "ghost" not in available_backends("encoders")


@pytest.mark.parametrize("name", ["", None, 3])
def test_register_backend_rejects_bad_names(name, restore_registry) -> None:
    with pytest.raises(ConfigError):
        register_backend("encoders", name, HashingEncoder)  # type: ignore[arg-type]


def test_register_backend_rejects_unknown_kinds() -> None:
    with pytest.raises(ConfigError):
        register_backend("gadgets", "x", HashingEncoder)
