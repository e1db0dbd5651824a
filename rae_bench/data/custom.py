"""What the user-data sources (``image_folder``, ``npz``) share: options, square images, seeded splits, the cache.

Every item is centre-cropped to its largest centred square and resized (antialiased bilinear, as
CelebA is) to ``size`` x ``size``, in ``channels`` 3 (RGB; grey is replicated, alpha dropped) or 1
(grey, PIL's luminance).  Items of each split come in a seeded random order (``split_seed``), so the
first ``n_train`` training items and the first ``n_samples`` test items are random subsets, not the
first classes of a sorted listing.  Preprocessed splits are cached as uint8 ``.npy`` files in
``src.cache/custom/``, named by a fingerprint of the options and of the source files (paths, sizes,
modification times): changed images get a new cache file.
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import ConfigError
from ..nets import IMAGE_SIZES
from .files import cached_npy
from .options import as_int, normalize
from .source import DataSource

CACHE_FOLDER = "custom"
PREPROCESS_VERSION = 1
CHANNELS = (1, 3)
DEFAULT_SIZE, DEFAULT_CHANNELS, DEFAULT_TEST_FRACTION = 32, 3, 0.2
# options both sources take; ``None`` marks "not given" (test_fraction: 0.2 where a split is drawn)
COMMON_DEFAULTS: dict[str, Any] = {"size": DEFAULT_SIZE, "channels": DEFAULT_CHANNELS, "labels": False,
                                   "test_fraction": None, "split_seed": 0}
_TAG = {"train": 1, "test": 2}  # seed-sequence tags of each split's order


def common_options(source: str, raw: Mapping[str, Any] | None, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Normalize ``raw`` (unknown keys refused) and check the options both sources share."""
    opts = dict(normalize(source, raw, {**COMMON_DEFAULTS, **extra}))
    size = as_int(source, "size", opts["size"])
    if size not in IMAGE_SIZES:
        raise ConfigError(f"option 'size' of dataset '{source}' must be one of {', '.join(map(str, IMAGE_SIZES))} "
                          f"(the image sides the conv nets support), got {size}")
    channels = as_int(source, "channels", opts["channels"])
    if channels not in CHANNELS:
        raise ConfigError(f"option 'channels' of dataset '{source}' must be 3 (RGB) or 1 (grey), got {channels}")
    if not isinstance(opts["labels"], bool):
        raise ConfigError(f"option 'labels' of dataset '{source}' must be true or false, got {opts['labels']!r}")
    fraction = opts["test_fraction"]
    if fraction is not None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
            raise ConfigError(f"option 'test_fraction' of dataset '{source}' must be a number between 0 and 1 "
                              f"(exclusive), got {fraction!r}")
        fraction = float(fraction)
    opts.update(size=size, channels=channels, test_fraction=fraction,
                split_seed=as_int(source, "split_seed", opts["split_seed"], 0))
    return opts


def path_option(source: str, opts: Mapping[str, Any], key: str) -> str | None:
    """A path option: a non-empty string (or absent)."""
    value = opts.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"option '{key}' of dataset '{source}' must be a path (a non-empty string), got {value!r}")
    return value


def shape(opts: tuple) -> tuple[int, ...]:
    o = dict(opts)
    return (o["channels"], o["size"], o["size"])


def resolve(src: DataSource, path: str) -> Path:
    """An option path: ``~`` expanded; absolute, or relative to the data root."""
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else src.root / p


# --------------------------------------------------------------------------- splits and order


def _rng(seed: int, *tags: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *tags]))


def seeded_split(count: int, fraction: float, seed: int) -> dict[str, np.ndarray]:
    """Indices of ``count`` items into disjoint ``train`` and ``test`` (``round(count * fraction)``, at least one
    each), both in a seeded random order; the same ``(count, fraction, seed)`` always give the same split."""
    n_test = min(max(1, round(count * fraction)), count - 1)
    perm = _rng(seed, 0).permutation(count)
    return {"test": perm[:n_test], "train": perm[n_test:]}


def seeded_order(count: int, seed: int, split: str) -> np.ndarray:
    """A seeded random order of the ``count`` items of a given split (its own stream per split)."""
    return _rng(seed, _TAG[split]).permutation(count)


# --------------------------------------------------------------------------- images


def to_square(img: Any, size: int, channels: int) -> np.ndarray:
    """A PIL image -> uint8 ``channels`` x size x size: centre crop to its largest square, antialiased resize.

    The same pixels as torchvision's ``center_crop`` then ``resize(..., BILINEAR, antialias=True)`` on a PIL
    image (both are PIL's own crop and resize), without importing torchvision (seconds per job).
    """
    from PIL import Image  # here: 15 ms (-X importtime), paid only by jobs that read a user's images

    img = img.convert("L" if channels == 1 else "RGB")
    width, height = img.size
    side = min(width, height)
    left, top = int(round((width - side) / 2.0)), int(round((height - side) / 2.0))
    img = img.crop((left, top, left + side, top + side))
    if side != size:
        img = img.resize((size, size), Image.Resampling.BILINEAR)  # PIL's resize antialiases when shrinking
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


def fill_parallel(out: np.ndarray, item: Callable[[int], np.ndarray]) -> np.ndarray:
    """``out[i] = item(i)`` for every row, in a thread pool (PIL decodes and resizes without the GIL)."""
    count = len(out)

    def work(chunk: range) -> None:
        for i in chunk:
            out[i] = item(i)

    chunks = [range(s, min(s + 64, count)) for s in range(0, count, 64)]
    pool = ThreadPoolExecutor(max_workers=max(1, min(8, os.cpu_count() or 1)))
    try:
        for _ in pool.map(work, chunks):  # re-raises the first worker error
            pass
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # a bad image stops the rest, not after decoding them all
        raise
    pool.shutdown(wait=True)
    return out


def fingerprint(*parts: Any) -> str:
    return hashlib.sha256(repr((PREPROCESS_VERSION, *parts)).encode()).hexdigest()[:16]


def cached(src: DataSource, source: str, split: str, fp: str, shape_: tuple[int, ...],
           build: Callable[[], np.ndarray]) -> np.ndarray:
    """The preprocessed split from ``src.cache/custom/<source>_<split>_<fp>.npy``, built and saved on first use."""
    return cached_npy(src.cache / CACHE_FOLDER / f"{source}_{split}_{fp}.npy", shape_, build)
