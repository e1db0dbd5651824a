"""CIFAR-10 through ``torchvision.datasets.CIFAR10`` (standard ``cifar-10-batches-py`` layout).

The batch files are looked for in ``src.root/cifar-10-batches-py`` and then
in ``src.cache/cifar-10-batches-py`` (where a download goes).  With
``src.verify`` torchvision checks the md5 of every batch file; without it a
tiny subclass only checks that the files exist, so torchvision's own pickle
parsing still runs (used for hand-made fixture files).
"""
from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torchvision.datasets as tvd

from ..errors import DataError
from .files import file_digest, one_line
from .memo import memo
from .options import no_options as options  # noqa: F401  (CIFAR-10 takes no options)
from .source import DataSource

SHAPE = (3, 32, 32)
BASE = tvd.CIFAR10.base_folder  # "cifar-10-batches-py"
ARCHIVE = tvd.CIFAR10.filename  # "cifar-10-python.tar.gz"

_PARSE_ERRORS = (pickle.UnpicklingError, KeyError, ValueError, TypeError, EOFError, AttributeError, IndexError)


class UncheckedCIFAR10(tvd.CIFAR10):
    """torchvision's CIFAR10 that only checks the files exist (no md5)."""

    def _check_integrity(self) -> bool:
        return all(os.path.isfile(os.path.join(self.root, self.base_folder, f)) for f, _ in self.train_list + self.test_list)

    def _load_meta(self) -> None:
        path = os.path.join(self.root, self.base_folder, self.meta["filename"])
        if not os.path.isfile(path):
            raise RuntimeError(f"Dataset metadata file {path} not found")
        with open(path, "rb") as infile:
            data = pickle.load(infile, encoding="latin1")
            self.classes = data[self.meta["key"]]
        self.class_to_idx = {_class: i for i, _class in enumerate(self.classes)}


def _files() -> list[tuple[str, str]]:
    cls = tvd.CIFAR10
    return [(f, m) for f, m in cls.train_list + cls.test_list] + [(cls.meta["filename"], cls.meta["md5"])]


def shape(opts: tuple) -> tuple[int, ...]:
    return SHAPE


def images(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """uint8 N x 3 x 32 x 32."""
    return _split(split, src)[0]


def labels(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """int64 N class ids 0..9."""
    return _split(split, src)[1]


def _split(split: str, src: DataSource) -> tuple[torch.Tensor, torch.Tensor]:
    return memo(("cifar10-split", split, src), lambda: _read(split == "train", src))


def _how_to_get(src: DataSource) -> str:
    return (f"download {ARCHIVE} from {tvd.CIFAR10.url} and extract it under {src.root}, "
            f"or set `download: true` in the data config when online")


def _read(train: bool, src: DataSource) -> tuple[torch.Tensor, torch.Tensor]:
    files = _files()
    root = None
    for base in (src.root, src.cache):
        if all((base / BASE / f).is_file() for f, _ in files):
            root = base
            break
    if root is None:
        if src.download:
            root = _download(src)
        else:
            folder = src.root / BASE
            if not folder.is_dir():
                raise DataError(f"CIFAR-10 folder {folder} is missing; {_how_to_get(src)}")
            first = next(f for f, _ in files if not (folder / f).is_file())
            raise DataError(f"CIFAR-10 file {folder / first} is missing; {_how_to_get(src)}")

    cls = tvd.CIFAR10 if src.verify else UncheckedCIFAR10
    try:
        dataset = cls(root=str(root), train=train, download=False)
    except RuntimeError as exc:
        if src.verify:
            for fname, md5 in files:
                path = root / BASE / fname
                if file_digest(path, "md5") != md5:
                    raise DataError(
                        f"CIFAR-10 file {path} fails its md5 checksum (corrupt, incomplete or not the original); "
                        f"{_how_to_get(src)}"
                    ) from None
        raise DataError(f"CIFAR-10 in {root / BASE} cannot be read ({one_line(exc)}); {_how_to_get(src)}") from None
    except _PARSE_ERRORS as exc:
        raise DataError(f"CIFAR-10 batch files in {root / BASE} cannot be parsed ({one_line(exc)}); "
                        f"{_how_to_get(src)}") from None

    data = np.asarray(dataset.data)
    if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
        raise DataError(f"CIFAR-10 batch files in {root / BASE} hold {data.dtype} data of shape {data.shape[1:]}, "
                        f"expected uint8 rows of 3072; {_how_to_get(src)}")
    imgs = torch.from_numpy(np.ascontiguousarray(data.transpose(0, 3, 1, 2)))
    labs = torch.as_tensor(np.asarray(dataset.targets, dtype=np.int64))
    if labs.shape[0] != imgs.shape[0]:
        raise DataError(f"CIFAR-10 batch files in {root / BASE} hold {imgs.shape[0]} images but {labs.shape[0]} labels; "
                        f"{_how_to_get(src)}")
    return imgs, labs


def _download(src: DataSource) -> Path:
    """Let torchvision download and extract into a staging folder, then move it into the cache."""
    src.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".staging-cifar10-", dir=src.cache) as tmp:
        try:
            tvd.CIFAR10(root=tmp, train=True, download=True)
        except (RuntimeError, OSError, URLError) as exc:
            raise DataError(f"could not download CIFAR-10 ({one_line(exc)}); "
                            f"download {ARCHIVE} from {tvd.CIFAR10.url} and extract it under {src.root}") from None
        target = src.cache / BASE
        if target.exists():
            shutil.rmtree(target)
        os.replace(Path(tmp) / BASE, target)
        archive = Path(tmp) / ARCHIVE
        if archive.is_file():
            os.replace(archive, src.cache / ARCHIVE)
    return src.cache
