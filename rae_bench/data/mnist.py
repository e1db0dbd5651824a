"""MNIST and Fashion-MNIST through torchvision's own readers.

The data root (e.g. ``/work/shared/data/MNIST/raw/*.gz``) may be read only,
while torchvision wants the decompressed idx files beside the ``.gz``.  So the
``.gz`` files are staged (symlinked) into a temporary folder inside
``src.cache``; torchvision's class is built there with ``download=True``,
which checks each ``.gz`` against torchvision's md5 and extracts it without
any network access; the extracted files are then moved (``os.replace``, so
atomically) to ``src.cache/<ClassName>/raw/`` together with a stamp
(``source.json``) recording the md5/size of the ``.gz`` they came from.
Later loads reuse the extracted files while the stamp still matches, and
read the arrays torchvision parsed from them, saved once as
``<split>.parsed.pt`` beside them: a job then neither imports torchvision
(seconds per job, as it pulls in torch._dynamo) nor re-parses the idx files.

Missing ``.gz`` files are looked for in ``src.root/<ClassName>/raw/`` and
then in ``src.cache/<ClassName>/raw/`` (where an earlier download leaves
them); when ``src.download`` is true torchvision downloads the rest.
"""
from __future__ import annotations

import gzip
import json
import os
import tempfile
import zlib
from pathlib import Path
from typing import Any
from urllib.error import URLError

import torch

from ..atomic import torch_save, write_text
from ..errors import DataError
from .files import file_digest, one_line, stage_copy, stage_link
from .memo import memo
from .options import no_options as options  # noqa: F401  (MNIST takes no options)
from .source import DataSource

SHAPE = (1, 28, 28)
STAMP = "source.json"

CLASS_NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
# torchvision's (file, md5) lists of MNIST.resources / FashionMNIST.resources, so that checking the files
# needs no torchvision import (a test compares them with torchvision's)
RESOURCES: dict[str, list[tuple[str, str]]] = {
    "MNIST": [
        ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ],
    "FashionMNIST": [
        ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ],
}


def _tvd():
    """torchvision.datasets, imported when a split is first read (not when the module is)."""
    import torchvision.datasets as tvd  # here: 1.7 s after torch (-X importtime)

    return tvd

_READ_ERRORS = (RuntimeError, OSError, URLError, ValueError, AssertionError, EOFError, zlib.error, gzip.BadGzipFile)


def shape(opts: tuple) -> tuple[int, ...]:
    return SHAPE


def images(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """uint8 N x 1 x 28 x 28."""
    return _dataset(source, split, src)[0].unsqueeze(1)


def labels(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """int64 N class ids 0..9."""
    return _dataset(source, split, src)[1].long()


def _dataset(source: str, split: str, src: DataSource) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 N x 28 x 28 images, N labels) of one split."""
    return memo(("mnist-dataset", source, split, src), lambda: _read(CLASS_NAMES[source], split == "train", src))


def _parsed_path(cache_raw: Path, train: bool) -> Path:
    return cache_raw / f"{'train' if train else 'test'}.parsed.pt"


def _arrays(dataset: tvd.MNIST, cache_raw: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The parsed arrays of a torchvision dataset, saved for later loads (atomically: jobs run side by side)."""
    arrays = (dataset.data.contiguous(), dataset.targets.contiguous())
    torch_save({"data": arrays[0], "targets": arrays[1]}, _parsed_path(cache_raw, train))
    return arrays


def _read(name: str, train: bool, src: DataSource) -> tuple[torch.Tensor, torch.Tensor]:
    root_raw = src.root / name / "raw"
    cache_raw = src.cache / name / "raw"
    resources = RESOURCES[name]

    # Where each .gz is: the data root first, then an earlier download in the cache.
    found: dict[str, Path] = {}
    missing: list[str] = []
    for fname, _ in resources:
        for cand in (root_raw / fname, cache_raw / fname):
            if cand.is_file():
                found[fname] = cand
                break
        else:
            missing.append(fname)
    if missing and not src.download:
        raise DataError(f"{name} file {root_raw / missing[0]} is missing; "
                        f"copy the original {missing[0]} there, or set `download: true` in the data config when online")

    stamp: dict[str, dict[str, Any]] = {}
    for fname, md5 in resources:
        if fname not in found:
            continue
        path = found[fname]
        st = path.stat()
        entry: dict[str, Any] = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
        if src.verify:
            digest = file_digest(path, "md5")
            if digest != md5:
                raise DataError(
                    f"{name} file {path} fails its md5 checksum (corrupt or incomplete copy); "
                    f"replace it with the original file, or delete it and set `download: true` when online"
                )
            entry["md5"] = digest
        stamp[fname] = entry

    if not missing and _stamp_matches(cache_raw, stamp, src.verify, resources):
        try:  # the arrays parsed from these very files (written after the stamp, removed before re-extracting)
            parsed = torch.load(_parsed_path(cache_raw, train), weights_only=True)
            return parsed["data"], parsed["targets"]
        except (OSError, RuntimeError, KeyError, TypeError, EOFError, ValueError):
            pass
        try:
            cls = getattr(_tvd(), name)
            return _arrays(cls(root=str(src.cache), train=train, download=False), cache_raw, train)
        except _READ_ERRORS:
            pass  # extracted files unusable: rebuild them below
    return _arrays(_extract(getattr(_tvd(), name), train, src, found, missing, stamp), cache_raw, train)


def _check_idx_headers(name: str, tmp_raw: Path, found: dict[str, Path]) -> None:
    """Explain an unreadable extracted idx file: no items (an empty split) or images not 28 x 28 grey."""
    for fname, source in found.items():
        extracted = tmp_raw / os.path.splitext(fname)[0]
        try:
            with open(extracted, "rb") as handle:
                header = handle.read(4)
                ndim = header[3] if len(header) == 4 else 0
                dims = [int.from_bytes(handle.read(4), "big") for _ in range(ndim)]
        except OSError:
            continue
        if len(dims) >= 1 and dims[0] == 0:
            raise DataError(f"{name} file {source} holds no items (an empty split); "
                            f"replace it with the original {fname}")
        if "images" in fname and len(dims) >= 1 and dims[1:] != [28, 28]:
            raise DataError(f"{name} file {source} holds images of shape {' x '.join(map(str, dims[1:]))}, "
                            f"expected 28 x 28 single-channel; replace it with the original {fname}")


def _stamp_matches(cache_raw: Path, stamp: dict, verify: bool, resources: list) -> bool:
    if not all((cache_raw / os.path.splitext(fname)[0]).is_file() for fname, _ in resources):
        return False
    try:
        old = json.loads((cache_raw / STAMP).read_text())
    except (OSError, ValueError):
        return False
    keys = ("md5",) if verify else ("path", "size", "mtime_ns")
    for fname, entry in stamp.items():
        prev = old.get(fname)
        if not isinstance(prev, dict) or any(prev.get(k) != entry.get(k) for k in keys):
            return False
    return True


def _extract(cls: type[tvd.MNIST], train: bool, src: DataSource, found: dict[str, Path], missing: list[str],
             stamp: dict) -> tvd.MNIST:
    name = cls.__name__
    cache_raw = src.cache / name / "raw"
    src.cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".staging-{name}-", dir=src.cache) as tmp:
        tmp_raw = Path(tmp) / name / "raw"
        tmp_raw.mkdir(parents=True)
        # A download may rewrite a staged file, so stage copies then; links otherwise.
        for fname, path in found.items():
            (stage_copy if missing else stage_link)(path, tmp_raw / fname)
        if not src.verify:
            # torchvision would md5-check (and try to re-download) on download=True: extract here instead.
            for fname, path in found.items():
                try:
                    _tvd().utils.extract_archive(str(tmp_raw / fname), str(tmp_raw))
                except _READ_ERRORS as exc:
                    raise DataError(f"{name} file {path} is corrupt ({one_line(exc)}); replace it with the original file") from None
        try:
            dataset = cls(root=tmp, train=train, download=src.verify or bool(missing))
        except _READ_ERRORS as exc:
            _check_idx_headers(name, tmp_raw, found)  # name the file and what is wrong with it, if we can
            what = f"could not download {', '.join(missing)}" if missing else "could not read the extracted files"
            raise DataError(
                f"{name}: {what} ({one_line(exc)}); copy the original .gz files into {src.root / name / 'raw'}"
            ) from None

        # Move the results into the cache: extracted idx files, and any .gz that was downloaded.
        cache_raw.mkdir(parents=True, exist_ok=True)
        (cache_raw / STAMP).unlink(missing_ok=True)
        for split_train in (True, False):
            _parsed_path(cache_raw, split_train).unlink(missing_ok=True)
        for fname, md5 in cls.resources:
            os.replace(tmp_raw / os.path.splitext(fname)[0], cache_raw / os.path.splitext(fname)[0])
            if fname in missing:
                os.replace(tmp_raw / fname, cache_raw / fname)
                path = cache_raw / fname
                st = path.stat()
                stamp[fname] = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
                                "md5": file_digest(path, "md5")}
    write_text(cache_raw / STAMP, json.dumps(stamp, indent=2, sort_keys=True) + "\n")
    return dataset
