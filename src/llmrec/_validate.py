"""The argument validators every module uses.

Each returns the value in its canonical type or raises an :class:`~llmrec.LLMRecError`
subclass naming the argument, the accepted range and the value given. ``bool`` is never
accepted where a number is expected (``True`` is an ``int`` to Python, not to llmrec), and
NaN is never accepted as a number.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from llmrec.errors import ConfigError, InvalidInputError, LLMRecError

__all__ = [
    "check_bool",
    "check_choice",
    "check_float",
    "check_instances",
    "check_int",
    "check_options",
    "check_sequence",
    "check_unicode",
    "check_vectors",
]


def _bound(value: float) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _range(
    kind: str, low: float | None, high: float | None, low_open: bool, high_open: bool
) -> str:
    if low is not None and high is not None:
        return (
            f"{kind} in {'(' if low_open else '['}{_bound(low)}, {_bound(high)}"
            f"{')' if high_open else ']'}"
        )
    if low is not None:
        if low == (0 if low_open else 1) and kind == "an int":
            return "a positive int"
        if low == 0 and low_open:
            return f"a positive {kind.split()[-1]}"
        return f"{kind} {'>' if low_open else '>='} {_bound(low)}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {_bound(high)}"
    return kind


def check_int(
    value: Any,
    name: str,
    *,
    low: int | None = None,
    high: int | None = None,
    error: type[LLMRecError] = ConfigError,
) -> int:
    """``value`` as an ``int`` in ``[low, high]`` (numpy integers accepted, bools not)."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if ok and (low is None or value >= low) and (high is None or value <= high):
        return int(value)
    raise error(f"{name} must be {_range('an int', low, high, False, False)}, got {value!r:.80}")


def check_float(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    error: type[LLMRecError] = ConfigError,
) -> float:
    """``value`` as a finite-or-bounded ``float`` in the given range (bools and NaN refused).

    ``low_open``/``high_open`` exclude the bound itself. Infinity passes only where no
    bound excludes it.
    """
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )
    if ok:
        try:
            number = float(value)
        except OverflowError:  # an int beyond float range counts as infinite
            number = math.inf if value > 0 else -math.inf
        ok = not math.isnan(number)
    if ok:
        above = low is None or (number > low if low_open else number >= low)
        below = high is None or (number < high if high_open else number <= high)
        if above and below:
            return number
    kind = _range("a number", low, high, low_open, high_open)
    raise error(f"{name} must be {kind}, got {value!r:.80}")


def check_bool(value: Any, name: str, *, error: type[LLMRecError] = ConfigError) -> bool:
    """``value`` if it is a ``bool`` (or numpy bool); ``1``, ``"yes"`` and the like refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise error(f"{name} must be a bool, got {value!r:.60}")


def check_choice(
    value: Any, name: str, choices: tuple[Any, ...], *, error: type[LLMRecError] = ConfigError
) -> Any:
    """``value`` if it is one of ``choices``."""
    if isinstance(value, Mapping) or not _hashable(value) or value not in choices:
        raise error(f"{name} must be one of {list(choices)}, got {value!r:.80}")
    return value


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def check_options(options: Any, name: str) -> dict[str, Any]:
    """Keyword options as a dict (``None`` -> ``{}``), keys argument names."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ConfigError(f"{name} must be a mapping, got {type(options).__name__}")
    bad = [key for key in options if not isinstance(key, str) or not key.isidentifier()]
    if bad:
        raise ConfigError(f"{name} keys must be argument names, got {bad[0]!r:.60}")
    return dict(options)


def check_sequence(values: Any, name: str) -> list[Any]:
    """``values`` as a list; a str, bytes or mapping (a common slip) is refused."""
    if isinstance(values, (str, bytes, Mapping)):
        raise InvalidInputError(f"{name} must be a sequence, not a {type(values).__name__}")
    try:
        return list(values)
    except TypeError:
        raise InvalidInputError(f"{name} must be iterable, got {type(values).__name__}") from None


def check_instances(values: Any, name: str, cls: type, label: str) -> list[Any]:
    """``values`` as a list whose every element is a ``cls`` (``label`` names it in errors,
    e.g. ``"an llmrec.Event"``); a single ``cls`` instead of a sequence is refused."""
    if isinstance(values, cls):
        raise InvalidInputError(f"{name} must be a sequence of {cls.__name__}, not a single one")
    out = check_sequence(values, name)
    for n, value in enumerate(out):
        if not isinstance(value, cls):
            raise InvalidInputError(f"{name}[{n}] must be {label}, got {type(value).__name__}")
    return out


def check_unicode(text: str, name: str) -> str:
    """``text`` if it encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(f"{name} is not valid Unicode (lone surrogates)") from None
    return text


def check_vectors(vectors: Any, dim: int, name: str = "vectors") -> np.ndarray:
    """``vectors`` as a C-contiguous float32 ``(n, dim)`` array of finite values."""
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a float array: {exc}") from None
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise InvalidInputError(f"{name} must have shape (n, {dim}), got {np.shape(vectors)}")
    if not np.isfinite(array).all():
        bad = int(np.argwhere(~np.isfinite(array))[0][0])
        raise InvalidInputError(f"{name} row {bad} contains NaN or inf")
    return np.ascontiguousarray(array)
