"""The llmrec exception tree.

Every error llmrec raises on purpose derives from :class:`LLMRecError` *and* from the
built-in exception callers already catch, so ``except ValueError`` keeps working::

    LLMRecError
    ├── ConfigError(ValueError)              a constructor or call argument is invalid
    │   └── InvalidInputError(ValueError)    bad data: NaN vectors, empty text, k <= 0, ...
    │       ├── InvalidEventError            a malformed Event
    │       └── DuplicateItemError           an item id given twice
    ├── UnknownItemError(KeyError)           an item id that is not in the catalog
    ├── UnknownUserError(KeyError)           a user id with no profile
    ├── DeviceError(RuntimeError)            an explicit device that is absent
    ├── BackendUnavailableError(ImportError) an optional library is missing (with the pip hint)
    ├── PersistenceError(OSError)            a missing, corrupt or newer save directory
    ├── DatasetError(OSError)                a dataset that cannot be read, fetched or verified
    └── GenerationError(RuntimeError)        the language model failed

An argument of the wrong type or out of range raises :class:`ConfigError` (configuration)
or :class:`InvalidInputError` (data), never a bare ``TypeError``; ``bool`` is never taken
for a number. The checks are those of ``llmrec._validate``.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "DatasetError",
    "DeviceError",
    "DuplicateItemError",
    "GenerationError",
    "InvalidEventError",
    "InvalidInputError",
    "LLMRecError",
    "PersistenceError",
    "UnknownItemError",
    "UnknownUserError",
]


class LLMRecError(Exception):
    """Base class of every error llmrec raises on purpose."""


class ConfigError(LLMRecError, ValueError):
    """An argument or configuration value is invalid."""


class InvalidInputError(ConfigError):
    """Input data is invalid (NaN or wrong-dimension vectors, empty or huge text, k <= 0)."""


class InvalidEventError(InvalidInputError):
    """An :class:`~llmrec.Event` is malformed."""


class DuplicateItemError(InvalidInputError):
    """The same item id was given more than once."""


class _KeyErrorMessage(KeyError):
    # KeyError.__str__ repr()s its argument; a message reads better unquoted.
    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UnknownItemError(LLMRecError, _KeyErrorMessage):
    """An item id is not in the catalog."""


class UnknownUserError(LLMRecError, _KeyErrorMessage):
    """A user id has no profile."""


class DeviceError(LLMRecError, RuntimeError):
    """A device was asked for explicitly and is not available."""


class BackendUnavailableError(LLMRecError, ImportError):
    """A backend's optional library is not installed; the message gives the pip command."""


class PersistenceError(LLMRecError, OSError):
    """A save directory is missing, corrupt, or written by a newer llmrec."""


class DatasetError(LLMRecError, OSError):
    """A dataset cannot be read, fetched or verified."""


class GenerationError(LLMRecError, RuntimeError):
    """The language model failed to produce text."""


def __getattr__(name: str) -> object:
    if name not in ("NotFittedError",):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from llmrec._compat import removed_name

    return removed_name(__name__, name)
