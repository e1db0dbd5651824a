"""Small file helpers shared by the dataset readers: checksums, staging, messages."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..atomic import atomic_path
from ..errors import DataError


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
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        target.symlink_to(source.resolve())
    except OSError:
        shutil.copyfile(source, target)


def stage_copy(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` (a real, writable file)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)


def cached_npy(path: Path, shape: tuple[int, ...], build: Callable[[], np.ndarray]) -> np.ndarray:
    """The uint8 array stored at ``path`` if it has ``shape``; else ``build()`` it and save it there atomically.

    A damaged or mismatching cache file is rebuilt.
    """
    if path.is_file():
        try:
            arr = np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            arr = None
        if arr is not None and arr.dtype == np.uint8 and arr.shape == shape:
            return arr
    arr = build()
    with atomic_path(path) as tmp:
        np.save(tmp, arr)
    return arr


def image_header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) from an image file's header, without PIL's decompression-bomb check (which raises
    before it tells the size); None when no PIL format reads the header."""
    from PIL import Image  # here: 15 ms (-X importtime), which the built-in datasets never pay

    Image.init()
    with open(path, "rb") as fp:
        prefix = fp.read(16)
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            if accept and not accept(prefix):
                continue
            fp.seek(0)
            try:
                return tuple(factory(fp, str(path)).size)  # type: ignore[return-value]
            except Exception:  # noqa: BLE001 - not this format: try the next, as Image.open does
                continue
    return None


def open_image(path: str | os.PathLike[str]):
    """``PIL.Image.open`` of a user's image, refusing a decompression bomb from its header: an image of more
    than ``PIL.Image.MAX_IMAGE_PIXELS`` pixels (PIL only warns below twice that) is one DataError line
    naming the file and its pixel size, before any pixel is decoded."""
    from PIL import Image  # here: 15 ms (-X importtime), which the built-in datasets never pay

    limit = Image.MAX_IMAGE_PIXELS
    size = image_header_size(path) if limit else None
    if size is not None and size[0] * size[1] > limit:
        raise DataError(f"image {path} is {size[0]}x{size[1]} pixels ({size[0] * size[1]:,}), more than the limit "
                        f"of {limit:,} (a decompression bomb?); downscale it or remove it from the folder")
    return Image.open(path)
