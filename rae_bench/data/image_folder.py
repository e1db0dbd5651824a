"""Your own images: a folder of image files (pytorch-fid's extensions: png, jpg, ...), made square.

Options (``datasets.<name>.options``)::

    path           the folder: absolute, or relative to the data root (required)
    size           side the models see: 28, 32 or 64 (default 32)
    channels       3 (RGB, default) or 1 (grey)
    labels         false (default): no labels; true: one subfolder per class, class ids = sorted folder names
    test_fraction  share held out as the test split when the folder has no train/ and test/ (default 0.2)
    split_seed     seed of that split and of the item order (default 0)

Layouts: ``path/train/`` and ``path/test/`` give the split; otherwise a seeded ``test_fraction`` of
``path/`` is the test split.  Each of these folders holds the images themselves, or (``labels: true``)
only class subfolders of images.  Images may differ in size: each is centre-cropped to a square and
resized (see :mod:`rae_bench.data.custom`).  Hidden files and folders are ignored.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError, DataError
from . import custom
from .files import one_line, open_image
from .memo import memo
from .readers import IMAGE_EXTENSIONS
from .source import DataSource

NAME = "image_folder"
shape = custom.shape
SPLIT_FOLDERS = ("train", "test")


def options(source: str, raw: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    opts = custom.common_options(source, raw, {"path": None})
    if custom.path_option(source, opts, "path") is None:
        raise ConfigError(f"dataset '{source}' needs option 'path' (the image folder: absolute, or relative to "
                          f"the data root); add it under the dataset's options")
    return tuple(sorted(opts.items()))


def has_labels(opts: tuple) -> bool:
    return bool(dict(opts)["labels"])


@dataclass(frozen=True)
class Listing:
    """The files of one split in their (seeded) order, with class ids when the folder has labels."""

    files: tuple[Path, ...]
    labels: np.ndarray | None  # int64 per file
    classes: tuple[str, ...]
    fingerprint: str


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _images_in(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]


def _subfolders(folder: Path) -> list[Path]:
    return [p for p in _visible(folder) if p.is_dir()]


def _collect(folder: Path, labels: bool) -> tuple[list[Path], dict[str, list[Path]]]:
    """(loose images, class name -> images) of one folder, checked against the ``labels`` option."""
    loose = _images_in(folder)
    subs = _subfolders(folder)
    if not labels:
        if loose:
            return loose, {}
        if subs:
            raise DataError(f"image folder {folder} holds no images itself but subfolders ({', '.join(s.name for s in subs[:5])}); "
                            f"set option `labels: true` to read them as classes, or point `path` at a folder of images")
        raise DataError(f"image folder {folder} holds no images ({', '.join(IMAGE_EXTENSIONS)}); put your images there")
    if loose:
        raise DataError(f"image folder {folder} holds images outside class subfolders (e.g. {loose[0].name}); with "
                        f"`labels: true` every image must be in a class subfolder: move them, or set `labels: false`")
    classes = {s.name: _images_in(s) for s in subs}
    if not classes:
        raise DataError(f"image folder {folder} holds no class subfolders; with `labels: true` put each class's "
                        f"images in its own subfolder, or set `labels: false`")
    empty = [name for name, files in classes.items() if not files]
    if empty:
        raise DataError(f"class folder {folder / empty[0]} holds no images ({', '.join(IMAGE_EXTENSIONS)}); "
                        f"put images there or remove it")
    return [], classes


def _flatten(loose: list[Path], classes: dict[str, list[Path]], names: tuple[str, ...]
             ) -> tuple[list[Path], np.ndarray | None]:
    if not classes:
        return loose, None
    files = [f for name in names for f in classes.get(name, [])]
    ids = [i for i, name in enumerate(names) for _ in classes.get(name, [])]
    return files, np.asarray(ids, dtype=np.int64)


def listing(split: str, src: DataSource, opts: tuple) -> Listing:
    return memo(("image-folder-listing", split, src, opts), lambda: _listing(split, src, dict(opts)))


def _listing(split: str, src: DataSource, opts: dict[str, Any]) -> Listing:
    root = custom.resolve(src, opts["path"])
    if not root.is_dir():
        what = "is not a folder" if root.exists() else "is missing"
        raise DataError(f"image folder {root} {what}; put your images there, or fix option `path` "
                        f"(absolute, or relative to the data root {src.root})")
    present = [name for name in SPLIT_FOLDERS if (root / name).is_dir()]
    labels = opts["labels"]
    if present:
        if len(present) == 1:
            missing = next(n for n in SPLIT_FOLDERS if n not in present)
            raise DataError(f"image folder {root} has a {present[0]}/ subfolder but no {missing}/; add {missing}/, "
                            f"or rename {present[0]}/ to split the images by option test_fraction")
        if opts["test_fraction"] is not None:
            raise ConfigError(f"image folder {root} is split by its train/ and test/ subfolders; "
                              f"remove option test_fraction (it applies to folders without them)")
        train_loose, train_classes = _collect(root / "train", labels)
        loose, classes = (train_loose, train_classes) if split == "train" else _collect(root / "test", labels)
        names = tuple(sorted(train_classes))
        unknown = sorted(set(classes) - set(names))
        if unknown:
            raise DataError(f"class folder {root / 'test' / unknown[0]} has no counterpart in {root / 'train'}/; "
                            f"add training images of that class or remove it")
        files, ids = _flatten(loose, classes, names)
        order = custom.seeded_order(len(files), opts["split_seed"], split)
    else:
        loose, classes = _collect(root, labels)
        names = tuple(sorted(classes))
        files, ids = _flatten(loose, classes, names)
        if len(files) < 2:
            raise DataError(f"image folder {root} holds {len(files)} image; a train and a test split need at least 2")
        fraction = opts["test_fraction"] if opts["test_fraction"] is not None else custom.DEFAULT_TEST_FRACTION
        order = custom.seeded_split(len(files), fraction, opts["split_seed"])[split]
    files = [files[i] for i in order]
    ids = ids[order] if ids is not None else None
    stats = []
    for f in files:
        st = f.stat()
        stats.append((str(f.relative_to(root)), st.st_size, st.st_mtime_ns))
    fp = custom.fingerprint(NAME, str(root.resolve()), split, sorted(opts.items()), stats)
    return Listing(tuple(files), ids, names, fp)


def _decode(path: Path, size: int, channels: int) -> np.ndarray:
    from PIL import Image  # here: 15 ms (-X importtime); a cached folder is read without it

    try:
        with open_image(path) as img:  # a decompression bomb: refused from its header, with its size
            return custom.to_square(img, size, channels)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"image {path} cannot be read ({one_line(exc)}); replace or delete the file") from None


def images(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """uint8 N x channels x size x size, through the ``.npy`` cache."""
    lst = listing(split, src, opts)
    o = dict(opts)
    item_shape = custom.shape(opts)

    def build() -> np.ndarray:
        out = np.empty((len(lst.files), *item_shape), dtype=np.uint8)
        return custom.fill_parallel(out, lambda i: _decode(lst.files[i], o["size"], o["channels"]))

    return torch.from_numpy(custom.cached(src, NAME, split, lst.fingerprint, (len(lst.files), *item_shape), build))


def labels(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """int64 N class ids (the index of each image's class subfolder among the sorted train/ class names)."""
    if not has_labels(opts):
        raise ConfigError(f"dataset '{source}' at {dict(opts)['path']} has no labels; set option `labels: true` "
                          f"with one subfolder per class, or use `extractor: raw` (or inception) for it")
    lst = listing(split, src, opts)
    return torch.from_numpy(lst.labels)
