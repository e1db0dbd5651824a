"""Image folders and ``.npz`` image files read as uint8 N x C x H x W: the readers that ``rae-bench score``
(:mod:`rae_bench.score`) and the ``image_folder`` and ``npz`` datasets share.

A folder: pytorch-fid's extensions, any case; sorted by name; all the same size; grayscale stays
1-channel, everything else becomes RGB, alpha dropped. A ``.npz``: key ``arr_0``, ``images`` or the only
array; uint8 N x H x W x C, N x H x W or N x C x H x W; or statistics (``mu``, ``sigma``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import DataError
from .files import open_image

IMAGE_EXTENSIONS = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")  # pytorch-fid's
IMAGE_KEYS = ("arr_0", "images")
GRAY_MODES = ("1", "L", "LA", "I;16", "I", "F")
NPZ_READ_ERRORS = (OSError, ValueError, EOFError)  # not a zip, truncated, pickled objects


def read_image(path: Path, mode: str) -> np.ndarray:
    try:
        with open_image(path) as img:
            return np.asarray(img.convert(mode))
    except (OSError, ValueError) as exc:  # PIL.UnidentifiedImageError is an OSError
        raise DataError(f"cannot read image {path} ({type(exc).__name__}: {exc}); "
                        f"replace or delete the file".replace("\n", " ")) from None


class ImageFolder:
    """The images of a folder as uint8 N x C x H x W, read from disk one slice at a time."""

    def __init__(self, files: list[Path], mode: str, size: tuple[int, int]):
        self.files, self.mode, self.size = files, mode, size

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: slice) -> torch.Tensor:
        if not isinstance(index, slice):
            raise TypeError("ImageFolder is read in slices: folder[start:stop]")
        arrays = [read_image(f, self.mode) for f in self.files[index]]
        batch = np.stack(arrays)
        batch = batch[:, None] if batch.ndim == 3 else batch.transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(batch))


def probe_image(path: Path) -> tuple[tuple[int, int], str]:
    """Size and mode of an image file, from its header."""
    try:
        with open_image(path) as img:  # a decompression bomb: refused from its header, with its size
            return img.size, img.mode
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read image {path} ({type(exc).__name__}); replace or delete the file") from None


def open_folder(path: Path, n: int | None = None) -> ImageFolder:
    """The first ``n`` images of a folder (sorted by name); all must have the same size."""
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    if not files:
        raise DataError(f"folder {path} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                        f"point at the folder with the image files")
    files = files[:n]
    sizes, gray = {}, True
    for f in files:
        size, mode = probe_image(f)
        sizes.setdefault(size, f)
        gray = gray and mode in GRAY_MODES
        if len(sizes) > 1:
            (s1, f1), (s2, f2) = sizes.items()
            raise DataError(f"images in {path} differ in size: {f1.name} is {s1[0]}x{s1[1]}, {f2.name} is "
                            f"{s2[0]}x{s2[1]}; resize them to one size first")
    return ImageFolder(files, "L" if gray else "RGB", next(iter(sizes)))


# --------------------------------------------------------------------------- .npz files


def images_from_array(arr: np.ndarray, where: str) -> torch.Tensor:
    """uint8 N x H x W, N x H x W x C (C = 1, 3, 4; alpha dropped) or N x C x H x W -> N x C x H x W."""
    if arr.dtype != np.uint8:
        raise DataError(f"{where} holds {arr.dtype} images; save them as uint8 0..255 "
                        f"(e.g. (x * 255).round().astype(np.uint8))")
    if arr.ndim == 3:
        arr = arr[:, None]
    elif arr.ndim == 4 and arr.shape[-1] in (1, 3, 4):
        arr = arr[..., :3].transpose(0, 3, 1, 2)
    elif not (arr.ndim == 4 and arr.shape[1] in (1, 3)):
        raise DataError(f"{where} has shape {arr.shape}; images must be N x H x W x C (C = 1, 3 or 4) or N x H x W")
    if arr.shape[0] == 0:
        raise DataError(f"{where} holds no images; save at least two")
    return torch.from_numpy(np.ascontiguousarray(arr))


def npz_content(path: Path) -> tuple[str, Any]:
    """What a ``.npz`` file holds: ``("stats", {"mu", "sigma"[, "features"]: arrays})`` (pytorch-fid's or this
    suite's statistics) or ``("images", uint8 N x C x H x W tensor)``."""
    try:
        with np.load(path, allow_pickle=False) as data:
            keys = list(data.files)
            if "mu" in keys and "sigma" in keys:
                return "stats", {k: data[k] for k in ("mu", "sigma", "features") if k in keys}
            key = next((k for k in IMAGE_KEYS if k in keys), keys[0] if len(keys) == 1 else None)
            if key is None:
                raise DataError(f"{path} has no image array (keys: {', '.join(keys) or 'none'}); save the images "
                                f"under 'arr_0' or 'images', or statistics as 'mu' and 'sigma'")
            arr = data[key]
    except NPZ_READ_ERRORS as exc:
        raise npz_read_error(path, exc) from None
    return "images", images_from_array(arr, f"{path} ['{key}']")


def npz_read_error(path: Path, exc: BaseException) -> DataError:
    return DataError(f"cannot read {path} as .npz ({type(exc).__name__}); save it with numpy.savez")
