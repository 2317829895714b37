"""The public surface of ``llmrec`` and its exception tree."""

from __future__ import annotations

import pytest

import llmrec
from llmrec import errors

EXPECTED_ALL = [
    "BackendUnavailableError",
    "Catalog",
    "ConfigError",
    "ContentGenerator",
    "DatasetError",
    "DeviceError",
    "DuplicateItemError",
    "Event",
    "EventLog",
    "Explanation",
    "Fact",
    "GeneratedText",
    "GenerationError",
    "InvalidEventError",
    "InvalidInputError",
    "Item",
    "ItemEncoder",
    "LLMRecError",
    "PersistenceError",
    "Pipeline",
    "ProfileStore",
    "Ranker",
    "ReasonRequest",
    "Recommendation",
    "Retriever",
    "UnknownItemError",
    "UnknownUserError",
    "UserProfile",
    "__version__",
    "available_backends",
    "events_from_pandas",
    "from_pandas",
    "register_backend",
    "resolve_device",
    "verify_text",
]


def test_all_is_sorted() -> None:
    assert llmrec.__all__ == sorted(llmrec.__all__)


def test_all_has_no_duplicates() -> None:
    assert len(set(llmrec.__all__)) == len(llmrec.__all__)


def test_all_equals_the_expected_public_surface() -> None:
    assert llmrec.__all__ == EXPECTED_ALL


@pytest.mark.parametrize("name", EXPECTED_ALL)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(llmrec, name) is not None


@pytest.mark.parametrize("name", ["Candidate", "NotFittedError"])
def test_unused_names_of_0_1_still_resolve_with_a_warning(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"{name} is unused"):
        assert getattr(llmrec, name) is not None


@pytest.mark.parametrize(
    "old, new, name",
    [
        ("llmrec.generator", "llmrec.generation", "ContentGenerator"),
        ("llmrec.retriever", "llmrec.retrieval", "Retriever"),
        ("llmrec.encoder", "llmrec.encoding", "ItemEncoder"),
        ("llmrec.ranker", "llmrec.ranking", "Ranker"),
        ("llmrec.eventlog", "llmrec.storage.eventlog", "EventLog"),
        ("llmrec.io", "llmrec.storage.io", "atomic_directory"),
        ("llmrec.report", "llmrec.evaluation.report", "write_report"),
        ("llmrec.cli", "llmrec.apps.cli", "main"),
        ("llmrec.server", "llmrec.apps.server", "create_app"),
        ("llmrec.distributed", "llmrec.apps.ray", "encode_catalog"),
        ("llmrec.backends.encoders", "llmrec.encoding.transformers", "TransformersEncoder"),
        ("llmrec.backends.indexes", "llmrec.retrieval.indexes", "HNSWIndex"),
        ("llmrec.backends.llms", "llmrec.generation.llms.transformers", "TransformersChat"),
        ("llmrec.backends.remote", "llmrec.generation.llms.openai", "OpenAIChat"),
        ("llmrec.backends.llamacpp", "llmrec.generation.llms.llamacpp", "LlamaCppChat"),
        ("llmrec.models.cf", "llmrec.retrieval.models.ease", "EASESource"),
        ("llmrec.models.sequential", "llmrec.retrieval.models.sequential", "SequentialSource"),
    ],
)
def test_old_module_paths_are_warning_aliases_of_the_new_ones(
    old: str, new: str, name: str
) -> None:
    import importlib
    import sys

    pytest.importorskip("fastapi") if "server" in new else None
    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to {new}"):
        module = importlib.import_module(old)
    if old not in SPLIT:
        assert module is importlib.import_module(new)
    assert getattr(module, name) is getattr(importlib.import_module(new), name)


#: Old modules whose names went to several new modules: each old name still imports.
SPLIT = {
    "llmrec.backends.llms": {
        "TemplateChat": "llmrec.generation.llms.template",
        "TransformersChat": "llmrec.generation.llms.transformers",
        "default_llm_path": "llmrec.generation.llms.base",
        "cache_root": None,
    },
    "llmrec.backends.encoders": {
        "HashingEncoder": "llmrec.encoding.hashing",
        "TransformersEncoder": "llmrec.encoding.transformers",
        "check_texts": "llmrec.encoding.base",
    },
}


@pytest.mark.parametrize("old", sorted(SPLIT))
def test_split_old_modules_keep_every_name(old: str) -> None:
    import importlib
    import sys

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=f"{old} moved to"):
        module = importlib.import_module(old)
    for name, home in SPLIT[old].items():
        value = getattr(module, name)
        if home is not None:
            assert value is getattr(importlib.import_module(home), name)
    assert module.cache_root() if old.endswith("llms") else module.HashingEncoder


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        llmrec.no_such_thing  # noqa: B018


def test_version_is_a_string() -> None:
    assert isinstance(llmrec.__version__, str) and llmrec.__version__.count(".") >= 1


def test_error_module_all_matches_its_classes() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.LLMRecError)
        assert getattr(llmrec, name) is cls


@pytest.mark.parametrize(
    ("cls", "builtins"),
    [
        (errors.ConfigError, (ValueError,)),
        (errors.InvalidInputError, (ValueError, errors.ConfigError)),
        (errors.InvalidEventError, (ValueError, errors.InvalidInputError)),
        (errors.DuplicateItemError, (ValueError, errors.InvalidInputError)),
        (errors.UnknownItemError, (KeyError,)),
        (errors.UnknownUserError, (KeyError,)),
        (errors.BackendUnavailableError, (ImportError,)),
        (errors.PersistenceError, (OSError,)),
        (errors.DatasetError, (OSError,)),
        (errors.DeviceError, (RuntimeError,)),
        (errors.GenerationError, (RuntimeError,)),
    ],
)
def test_errors_inherit_llmrec_error_and_the_builtin(cls: type, builtins: tuple[type, ...]) -> None:
    assert issubclass(cls, errors.LLMRecError)
    for base in builtins:
        assert issubclass(cls, base)
    exc = cls("boom")
    with pytest.raises(errors.LLMRecError):
        raise exc
    for base in builtins:
        with pytest.raises(base):
            raise cls("boom")


@pytest.mark.parametrize("cls", [errors.UnknownItemError, errors.UnknownUserError])
def test_key_errors_have_unquoted_messages(cls: type) -> None:
    exc = cls("unknown item id 'x'")
    assert str(exc) == "unknown item id 'x'"
    # A plain KeyError would repr() its argument.
    assert str(KeyError("unknown item id 'x'")) != str(exc)


def test_key_error_without_args_is_empty() -> None:
    assert str(errors.UnknownItemError()) == ""


def test_catching_builtin_catches_llmrec_errors() -> None:
    with pytest.raises(ValueError):
        llmrec.Item("", "title")
    with pytest.raises(KeyError):
        llmrec.Catalog().get("missing")
