"""Atomic file writes: a reader sees the old file or the new one, never half.

Every output of the suite goes through these helpers: write to a temporary
file in the same folder, flush and fsync, then ``os.replace``. A failed write
(full disk, read-only or unwritable folder, file size limit) removes the
temporary file, leaves any previous file untouched and raises
:class:`~rae_bench.errors.OutputError`, one line naming the file and the fix.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import output_error

def current_umask() -> int:
    """The process umask (read by setting it and putting it back: there is no getter before Python 3.13's os)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place on success.

    The temporary name keeps the suffix, so writers that pick a format from
    the extension (PNG, PDF, NPZ) still work.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    try:  # mkstemp makes 0600 files; give what open() would: 0666 less the umask (group-readable results)
        os.fchmod(fd, 0o666 & ~current_umask())
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise output_error(target, exc) from None
    finally:
        if tmp.exists():
            tmp.unlink()


def stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Temporary files of ``path`` left by a writer that was killed (SIGKILL skips the clean-up)."""
    target = Path(path)
    return sorted(target.parent.glob(f".{target.name}.*.tmp{target.suffix}"))


def write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    # Serialise in memory first: torch's own file writer turns ENOSPC/EFBIG into an opaque
    # RuntimeError ("unexpected pos"), a plain write raises the OSError that names the cause.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
