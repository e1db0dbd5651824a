"""Small file helpers shared by the dataset readers: checksums, staging, messages."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_digest(path: str | os.PathLike[str], algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm, usedforsecurity=False) if algorithm == "md5" else hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            h.update(block)
    return h.hexdigest()


def one_line(exc: BaseException) -> str:
    """The first non-empty line of an exception message (or its type name)."""
    for line in str(exc).splitlines():
        line = line.strip()
        if line:
            return line
    return type(exc).__name__


def stage_link(source: Path, target: Path) -> None:
    """Make ``target`` point at ``source`` (symlink, falling back to a copy)."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def stage_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (a real, writable file)."""
    import shutil

    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
