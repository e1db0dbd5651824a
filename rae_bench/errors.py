"""User-facing errors: one line that names the problem and the fix.

The CLI catches :class:`RaeBenchError` and prints ``error: <message>`` without
a traceback; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations


class RaeBenchError(Exception):
    """A problem the user can fix (bad config, missing file, diverged run)."""


class DataError(RaeBenchError):
    """A dataset file is missing, corrupt or of the wrong shape."""


class ConfigError(RaeBenchError):
    """A config value is unknown or invalid."""


class CheckpointError(RaeBenchError):
    """A checkpoint or sampler state cannot be used."""


class OutputError(RaeBenchError):
    """An output cannot be written (full disk, read-only or unwritable folder); earlier files are kept."""


class TrainingDiverged(RaeBenchError):
    """A loss became NaN or infinite."""


def unknown_name(kind: str, name: str, valid: list[str] | tuple[str, ...]) -> ConfigError:
    """The standard error for a name that is not in a registry."""
    return ConfigError(f"unknown {kind} '{name}'; valid {kind}s: {', '.join(sorted(valid))}")
