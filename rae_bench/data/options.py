"""Validation of the per-dataset ``options`` mapping (unknown keys are refused)."""
from __future__ import annotations

from typing import Any, Mapping

from ..errors import ConfigError


def no_options(source: str, raw: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """For datasets that take no options: refuse any (``None`` values count as absent)."""
    return normalize(source, raw, {})


def normalize(source: str, raw: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Fill defaults, refuse unknown keys; a hashable, sorted ``((key, value), ...)``.

    A default of ``None`` marks a required key that has no default.
    """
    raw = dict(raw or {})
    given = {k: v for k, v in raw.items() if v is not None}
    unknown = sorted(str(k) for k in given if k not in defaults)
    if unknown:
        if defaults:
            valid = ", ".join(sorted(defaults))
            raise ConfigError(f"unknown option(s) {', '.join(unknown)} for dataset '{source}'; valid options: {valid}")
        raise ConfigError(f"dataset '{source}' takes no options, got: {', '.join(unknown)}; remove them from the data config")
    merged = {**defaults, **given}
    return tuple(sorted(merged.items()))


def as_int(source: str, key: str, value: Any, minimum: int | None = None) -> int:
    """An integer option (bools, and floats or strings that are not whole numbers, are refused)."""
    bad = ConfigError(f"option '{key}' of dataset '{source}' must be an integer, got {value!r}")
    if isinstance(value, bool):
        raise bad
    if isinstance(value, int):
        number = value
    elif isinstance(value, (float, str)):
        try:
            as_float = float(value)
            number = int(as_float)
        except (ValueError, OverflowError):
            raise bad from None
        if number != as_float:
            raise bad
    else:
        raise bad
    if minimum is not None and number < minimum:
        raise ConfigError(f"option '{key}' of dataset '{source}' must be >= {minimum}, got {number}")
    return number
