"""One writer per run folder: an exclusive ``flock`` on ``<folder>/train.lock``.

The kernel drops a ``flock`` when its process dies (SIGKILL, out of memory, a lost node's job), so a
killed training never leaves the folder locked: the file may stay behind, but nobody holds it and the
next ``rae-bench train`` takes it over. The file names the holder (PID and host) for the refusal message.
``flock`` is per machine: on a network file system shared by several hosts it may not exclude a second
host (Snakemake's own lock on its working directory covers workflow runs).
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from pathlib import Path
from typing import Iterator

from .errors import RaeBenchError

LOCK_NAME = "train.lock"


class RunLocked(RaeBenchError):
    """Another process trains into the same run folder."""


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``folder``'s lock for the block, or raise :class:`RunLocked` at once (never waits)."""
    path = Path(folder) / LOCK_NAME
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(fd)
            os.close(fd)
            raise RunLocked(f"run folder {Path(folder)} is in use by another rae-bench train ({holder}; lock file "
                            f"{path}); wait for it to finish or stop it, then run the command again") from None
        except OSError:
            os.close(fd)
            raise
        # the holder we waited on may have removed the file before we locked it: lock the file that is there now
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on host {socket.gethostname()}\n".encode())
        yield path
    finally:
        with contextlib.suppress(OSError):
            path.unlink()  # while still holding it: a waiter that locks the unlinked file sees that and retries
        os.close(fd)


def _read(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not written its PID yet"
