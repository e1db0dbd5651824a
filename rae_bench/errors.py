"""User-facing errors: one line that names the problem and the fix.

The CLI catches :class:`RaeBenchError` and prints ``error: <message>`` without
a traceback; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path


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


WRITE_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
WRITE_DENIED = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR)
WRITE_ERRNOS = WRITE_FULL + WRITE_DENIED  # a write the file system refused: the user can fix these


def output_error(path: str | os.PathLike[str], exc: OSError) -> OutputError:
    """One line for a write that the file system refused, with the fix for its cause."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in WRITE_FULL:
        fix = "free disk space (or raise the quota / file size limit) and run the command again"
    elif exc.errno in WRITE_DENIED:
        fix = f"make {Path(path).parent} writable (or choose another output folder) and run the command again"
    else:
        fix = "check the output folder and run the command again"
    return OutputError(f"cannot write {path}: {reason}; {fix}; earlier results are kept")
