"""Your own images as ``.npz`` files, as pytorch-fid / clean-fid users keep them.

Each file is read by the reader ``rae-bench score`` uses too (:func:`rae_bench.data.readers.npz_content`):
the array under ``arr_0``, ``images`` or the only one, uint8 N x H x W x C (C = 1, 3, 4), N x H x W or N x C x H x W.

Options (``datasets.<name>.options``)::

    path           one .npz; a seeded test_fraction of it is the test split
    train, test    or two .npz files, one per split (instead of path)
    size           side the models see: 28, 32 or 64 (default 32)
    channels       3 (RGB, default) or 1 (grey)
    labels         false (default); true: each file also holds int class ids under 'labels' (N, values >= 0)
    test_fraction  with path: the share held out as the test split (default 0.2)
    split_seed     seed of that split and of the item order (default 0)

Paths are absolute, or relative to the data root.  Images already of shape channels x size x size are
used as they are; others are centre-cropped and resized like an image folder's
(see :mod:`rae_bench.data.custom`).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError, DataError
from . import custom
from .memo import memo
from .readers import npz_content
from .source import DataSource

NAME = "npz"
shape = custom.shape
LABEL_KEY = "labels"


def options(source: str, raw: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    opts = custom.common_options(source, raw, {"path": None, "train": None, "test": None})
    one, train, test = (custom.path_option(source, opts, k) for k in ("path", "train", "test"))
    if one is not None and (train is not None or test is not None):
        raise ConfigError(f"dataset '{source}' takes option 'path' (one file, split by test_fraction) or 'train' "
                          f"and 'test' (one file each), not both; remove one of them")
    if one is None and (train is None or test is None):
        raise ConfigError(f"dataset '{source}' needs option 'path' (one .npz, split by test_fraction) or both 'train' "
                          f"and 'test' (one .npz per split); add them under the dataset's options")
    if one is None and opts["test_fraction"] is not None:
        raise ConfigError(f"option test_fraction of dataset '{source}' applies to a single 'path' file, not to "
                          f"'train' and 'test' files; remove it")
    return tuple(sorted(opts.items()))


def has_labels(opts: tuple) -> bool:
    return bool(dict(opts)["labels"])


def _file(split: str, src: DataSource, opts: dict[str, Any]) -> Path:
    path = custom.resolve(src, opts["path"] if opts["path"] is not None else opts[split])
    if not path.is_file():
        raise DataError(f"npz file {path} is missing; save your images there with numpy.savez, or fix the dataset's "
                        f"option `{'path' if opts['path'] is not None else split}` "
                        f"(absolute, or relative to the data root {src.root})")
    return path


def _read(path: Path, labels: bool) -> tuple[torch.Tensor, np.ndarray | None]:
    """(uint8 N x C x H x W, int64 labels or None) of one file, memoized per file version."""
    st = path.stat()
    return memo(("npz-file", str(path.resolve()), st.st_size, st.st_mtime_ns, labels), lambda: _read_file(path, labels))


def _read_file(path: Path, labels: bool) -> tuple[torch.Tensor, np.ndarray | None]:
    kind, imgs = npz_content(path)
    if kind != "images":
        raise DataError(f"{path} holds feature statistics (mu, sigma), not images; "
                        f"save the images themselves (uint8, under 'arr_0' or 'images')")
    if imgs.shape[1] not in custom.CHANNELS:
        raise DataError(f"{path} holds images of {imgs.shape[1]} channels; save grey (1) or RGB (3) images")
    if not labels:
        return imgs, None
    with np.load(path, allow_pickle=False) as data:
        if LABEL_KEY not in data.files:
            raise DataError(f"{path} has no '{LABEL_KEY}' array (keys: {', '.join(data.files)}); save the class ids "
                            f"as labels=..., or set option `labels: false`")
        ids = data[LABEL_KEY]
    if ids.dtype.kind not in "iu" or ids.shape != (len(imgs),) or (len(ids) and ids.min() < 0):
        raise DataError(f"{path} ['{LABEL_KEY}'] must hold {len(imgs)} integer class ids >= 0 (one per image), "
                        f"got {ids.dtype} of shape {ids.shape}; fix the labels array")
    return imgs, ids.astype(np.int64)


def _split(split: str, src: DataSource, opts: tuple) -> tuple[Path, np.ndarray]:
    """(the split's file, the indices of its items in that file, in their seeded order)."""
    o = dict(opts)
    path = _file(split, src, o)
    count = len(_read(path, o["labels"])[0])
    if o["path"] is None:
        return path, custom.seeded_order(count, o["split_seed"], split)
    if count < 2:
        raise DataError(f"{path} holds {count} image; a train and a test split need at least 2")
    fraction = o["test_fraction"] if o["test_fraction"] is not None else custom.DEFAULT_TEST_FRACTION
    return path, custom.seeded_split(count, fraction, o["split_seed"])[split]


def images(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """uint8 N x channels x size x size (cached as ``.npy`` when resized)."""
    path, index = _split(split, src, opts)
    o = dict(opts)
    item_shape = custom.shape(opts)
    imgs = _read(path, o["labels"])[0]
    if tuple(imgs.shape[1:]) == item_shape:
        return imgs[torch.from_numpy(index)]
    st = path.stat()
    fp = custom.fingerprint(NAME, str(path.resolve()), st.st_size, st.st_mtime_ns, split, sorted(o.items()))

    def build() -> np.ndarray:
        from PIL import Image  # here: 15 ms (-X importtime); a cached resize needs none

        src_arr = imgs.numpy()
        out = np.empty((len(index), *item_shape), dtype=np.uint8)

        def item(i: int) -> np.ndarray:
            pixels = src_arr[index[i]]
            return custom.to_square(Image.fromarray(pixels[0] if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)),
                                    o["size"], o["channels"])

        return custom.fill_parallel(out, item)

    return torch.from_numpy(custom.cached(src, NAME, split, fp, (len(index), *item_shape), build))


def labels(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """int64 N class ids from each file's 'labels' array, in the order of :func:`images`."""
    o = dict(opts)
    if not o["labels"]:
        raise ConfigError(f"dataset '{source}' has no labels; save int class ids as 'labels' in the .npz and set "
                          f"option `labels: true`, or use `extractor: raw` (or inception) for it")
    path, index = _split(split, src, opts)
    return torch.from_numpy(_read(path, True)[1][index])
