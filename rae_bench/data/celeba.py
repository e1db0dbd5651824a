"""CelebA at 64 x 64: centre crop of ``round(width * 140 / 178)`` px, then an antialiased resize to 64.

On the standard 178 x 218 aligned faces that is the usual 140 px crop; on
the offline 89 x 109 copy it is a 70 px crop, i.e. the same face region.

Two layouts under ``<root>/celeba/`` are understood; (a) is preferred:

(a) **standard** (torchvision's): ``img_align_celeba/`` +
    ``list_eval_partition.txt`` (+ ``list_attr_celeba.txt`` for labels).
    The official partitions are used: split ``"train"`` is partition 0,
    ``"test"`` is partition 2 (the validation partition 1 is not used).
    When all of torchvision's files are present (and ``src.verify``) the
    listing comes from ``torchvision.datasets.CelebA``; otherwise the same
    files are read directly.  ``options["holdout"]`` is ignored.
(b) **offline** copy: ``img_align_celeba_89x109/`` (the first 8,000 faces,
    downscaled to 89 x 109, all in the official *train* partition) and
    ``img_align_celeba_89x109.sha256`` (sha256 per file, checked when
    ``src.verify``).  As no official test image exists there, a holdout is
    taken: with the images sorted by file name, the LAST
    ``options["holdout"]`` images (default 1000) are split ``"test"`` and
    the rest ``"train"``.

Attributes come from ``list_attr_celeba.txt`` (40 columns, -1/1 mapped to
0/1, rows matched by file name), as float32 N x 40.

Decoding thousands of jpgs is slow, so each preprocessed split is cached as a
uint8 ``.npy`` in ``src.cache/celeba/``, named
``celeba64_<layout>_<split>[_holdout<h>]_<fingerprint>.npy`` (``_unverified``
before ``.npy`` when written with ``src.verify`` off), and reloaded with
``np.load`` later.  The fingerprint hashes the source folder, the file list,
the checksum manifest (or partition file) and the preprocessing version, so
a changed source gets a new cache file.  Decoding writes into a preallocated
uint8 array using a thread pool, with a tqdm progress bar.
"""
from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm

from ..atomic import atomic_path
from ..errors import ConfigError, DataError
from .files import file_digest, one_line
from .memo import memo
from .options import as_int, normalize
from .source import DataSource

SIZE = 64
SHAPE = (3, SIZE, SIZE)
CROP_FRACTION = 140 / 178
DEFAULT_HOLDOUT = 1000
PREPROCESS_VERSION = 1
N_ATTRS = 40

FOLDER = "celeba"
STANDARD_IMAGES = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
ATTR_FILE = "list_attr_celeba.txt"
OFFLINE_IMAGES = "img_align_celeba_89x109"
OFFLINE_MANIFEST = "img_align_celeba_89x109.sha256"
PARTITIONS = {"train": 0, "test": 2}

# torchvision's md5 of the text files (name -> md5).
def _tvd():
    """torchvision.datasets, imported when first needed: reading the preprocessed cache needs none of it."""
    import torchvision.datasets as tvd  # here: 1.7 s after torch (-X importtime)

    return tvd


def known_md5() -> dict[str, str]:
    return {fname: md5 for _, md5, fname in _tvd().CelebA.file_list}

HOW_TO_GET = (
    f"put the standard CelebA files under <root>/{FOLDER}/ ({STANDARD_IMAGES}/ from img_align_celeba.zip, "
    f"{PARTITION_FILE}, {ATTR_FILE}) or the offline copy ({OFFLINE_IMAGES}/ with {OFFLINE_MANIFEST}), "
    f"or set `download: true` in the data config when online"
)


def options(source: str, raw: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    opts = dict(normalize(source, raw, {"holdout": DEFAULT_HOLDOUT}))
    opts["holdout"] = as_int(source, "holdout", opts["holdout"], 0)
    return tuple(sorted(opts.items()))


def shape(opts: tuple) -> tuple[int, ...]:
    return SHAPE


# --------------------------------------------------------------------------- preprocessing


def crop_size(width: int) -> int:
    """Side of the centre crop: 140 on the 178 px wide originals, 70 on the 89 px copies."""
    return int(round(width * CROP_FRACTION))


def preprocess(img: Image.Image) -> np.ndarray:
    """A PIL face -> uint8 array 3 x 64 x 64 (centre crop, then antialiased bilinear resize)."""
    img = img.convert("RGB")
    side = crop_size(img.size[0])
    import torchvision.transforms.functional as TF  # here: 1.7 s after torch (-X importtime), preprocessing only
    from torchvision.transforms import InterpolationMode

    img = TF.center_crop(img, [side, side])
    img = TF.resize(img, [SIZE, SIZE], interpolation=InterpolationMode.BILINEAR, antialias=True)
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1)


def decode_files(paths: list[Path], sha256: list[str] | None = None, desc: str = "celeba") -> np.ndarray:
    """Decode and preprocess ``paths`` into a preallocated uint8 array N x 3 x 64 x 64.

    ``sha256`` (one hex digest per path) is checked on the bytes read.  A
    missing, corrupt or mismatching file raises a one-line DataError naming it.
    """
    count = len(paths)
    out = np.empty((count, *SHAPE), dtype=np.uint8)

    def work(chunk: range) -> int:
        for i in chunk:
            path = paths[i]
            try:
                data = path.read_bytes()
            except OSError as exc:
                raise DataError(f"CelebA image {path} cannot be read ({one_line(exc)}); {HOW_TO_GET}") from None
            if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256[i]:
                raise DataError(f"CelebA image {path} fails its sha256 checksum (corrupt or modified); "
                                f"replace it with the original file")
            try:
                with Image.open(io.BytesIO(data)) as img:
                    out[i] = preprocess(img)
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
                raise DataError(f"CelebA image {path} is corrupt ({one_line(exc)}); replace it with the original file") from None
        return len(chunk)

    step = 64
    chunks = [range(s, min(s + step, count)) for s in range(0, count, step)]
    workers = max(1, min(8, os.cpu_count() or 1))
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        with tqdm(total=count, desc=desc, unit="img", mininterval=1.0, disable=count < 100) as bar:
            for done in pool.map(work, chunks):
                bar.update(done)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return out


# --------------------------------------------------------------------------- layouts and listings


@dataclass(frozen=True)
class Listing:
    """The images of one split, in order."""

    layout: str  # "standard" or "offline"
    folder: Path  # the celeba folder
    paths: tuple[Path, ...]
    sha256: tuple[str, ...] | None  # per image (offline layout with a manifest)
    attrs: torch.Tensor | None  # float32 N x 40 when already known (torchvision listing)
    fingerprint: str
    cache_name: str


def _has_standard(folder: Path) -> bool:
    return (folder / STANDARD_IMAGES).is_dir() and (folder / PARTITION_FILE).is_file()


def _has_offline(folder: Path) -> bool:
    return (folder / OFFLINE_IMAGES).is_dir()


def locate(src: DataSource) -> tuple[str, Path]:
    """(layout, celeba folder): standard layout first (root, then an earlier download in the cache), then offline."""
    root_folder, cache_folder = src.root / FOLDER, src.cache / FOLDER
    for folder in (root_folder, cache_folder):
        if _has_standard(folder):
            return "standard", folder
    if _has_offline(root_folder):
        return "offline", root_folder
    if src.download:
        try:
            _tvd().CelebA(root=str(src.cache), split="all", target_type=[], download=True)
        except Exception as exc:  # gdown missing, network, quota: all user-fixable
            raise DataError(f"could not download CelebA ({one_line(exc)}); {HOW_TO_GET.split(', or set')[0]}") from None
        if _has_standard(cache_folder):
            return "standard", cache_folder
    raise DataError(f"CelebA not found in {root_folder}; {HOW_TO_GET}")


def _check_md5(path: Path, verify: bool) -> None:
    if not path.is_file():
        raise DataError(f"CelebA file {path} is missing; copy the original {path.name} there")
    known = known_md5() if verify else {}
    if path.name in known and file_digest(path, "md5") != known[path.name]:
        raise DataError(f"CelebA file {path} fails its md5 checksum (corrupt or not the original); "
                        f"replace it with the original {path.name}, or set `verify: false` for hand-made files")


def _fingerprint(*parts: Any) -> str:
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:12]


def listing(split: str, src: DataSource, opts: tuple) -> Listing:
    return memo(("celeba-listing", split, src, opts), lambda: _listing(split, src, dict(opts)))


def _listing(split: str, src: DataSource, opts: dict) -> Listing:
    layout, folder = locate(src)
    if layout == "standard":
        return _standard_listing(split, src, folder)
    return _offline_listing(split, src, folder, opts["holdout"])


def _standard_listing(split: str, src: DataSource, folder: Path) -> Listing:
    image_dir = folder / STANDARD_IMAGES
    partition = folder / PARTITION_FILE
    attrs = None
    tv_files = [folder / fname for _, _, fname in _tvd().CelebA.file_list if not fname.endswith((".zip", ".7z"))]
    if src.verify and all(p.is_file() for p in tv_files):
        for p in tv_files:
            _check_md5(p, True)  # names the bad file; torchvision would only say "corrupted"
        try:
            ds = _tvd().CelebA(root=str(folder.parent), split=split, target_type="attr", download=False)
        except (RuntimeError, OSError, ValueError) as exc:
            raise DataError(f"CelebA in {folder} cannot be read by torchvision ({one_line(exc)}); {HOW_TO_GET}") from None
        names = list(ds.filename)
        attrs = ds.attr.to(torch.float32)
    else:
        _check_md5(partition, src.verify)
        wanted = PARTITIONS[split]
        names = []
        with open(partition) as handle:
            for lineno, line in enumerate(handle, 1):
                fields = line.split()
                if not fields:
                    continue
                if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                    raise DataError(f"CelebA file {partition} line {lineno} is not '<image> <0|1|2>'; "
                                    f"replace it with the original {PARTITION_FILE}")
                if int(fields[1]) == wanted:
                    names.append(fields[0])
    if not names:
        raise DataError(f"CelebA file {partition} lists no image of partition {PARTITIONS[split]} ({split}); "
                        f"replace it with the original {PARTITION_FILE}")
    st = partition.stat()
    fp = _fingerprint("standard", str(folder.resolve()), split, len(names), names[0], names[-1],
                      st.st_size, st.st_mtime_ns, PREPROCESS_VERSION, SIZE)
    return Listing("standard", folder, tuple(image_dir / n for n in names), None, attrs, fp,
                   f"celeba{SIZE}_standard_{split}_{fp}")


def _read_manifest(manifest: Path, image_dir: Path) -> dict[str, str]:
    """file name -> sha256 from a ``sha256sum`` file (paths relative to the celeba folder)."""
    entries: dict[str, str] = {}
    with open(manifest) as handle:
        for lineno, line in enumerate(handle, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DataError(f"CelebA manifest {manifest} line {lineno} is not '<sha256>  <path>'; "
                                f"replace it with the original {OFFLINE_MANIFEST}")
            rel = parts[1].lstrip("*")
            name = Path(rel).name
            if Path(rel).parent.name not in ("", image_dir.name):
                raise DataError(f"CelebA manifest {manifest} line {lineno} names {rel}, outside {image_dir.name}/; "
                                f"replace it with the original {OFFLINE_MANIFEST}")
            entries[name] = parts[0].lower()
    return entries


def _offline_listing(split: str, src: DataSource, folder: Path, holdout: int) -> Listing:
    image_dir = folder / OFFLINE_IMAGES
    manifest = folder / OFFLINE_MANIFEST
    digests: dict[str, str] | None = None
    if manifest.is_file():
        digests = _read_manifest(manifest, image_dir)
        names = sorted(digests)
        source_id: Any = file_digest(manifest, "sha256")
    elif src.verify:
        raise DataError(f"CelebA checksum file {manifest} is missing; copy the original {OFFLINE_MANIFEST} there, "
                        f"or set `verify: false` in the data config to use the images unchecked")
    else:
        names = sorted(p.name for p in image_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
        source_id = image_dir.stat().st_mtime_ns
    total = len(names)
    if total == 0:
        raise DataError(f"CelebA folder {image_dir} holds no images; {HOW_TO_GET}")
    if holdout >= total:
        raise ConfigError(f"celeba option holdout={holdout} must be smaller than the {total} offline images "
                          f"(the last `holdout` images form the test split)")
    if split == "test" and holdout == 0:
        raise ConfigError("celeba option holdout=0 leaves the offline copy without a test split; set holdout >= 1")
    names = names[: total - holdout] if split == "train" else names[total - holdout:]
    sha = tuple(digests[n] for n in names) if (digests is not None and src.verify) else None
    fp = _fingerprint("offline", str(folder.resolve()), split, holdout, total, names[0], names[-1],
                      source_id, PREPROCESS_VERSION, SIZE)
    return Listing("offline", folder, tuple(image_dir / n for n in names), sha, None, fp,
                   f"celeba{SIZE}_offline_{split}_holdout{holdout}_{fp}")


# --------------------------------------------------------------------------- images and labels


def images(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """uint8 N x 3 x 64 x 64 (through the .npy cache)."""
    return torch.from_numpy(_images_array(split, src, opts))


def _images_array(split: str, src: DataSource, opts: tuple) -> np.ndarray:
    lst = listing(split, src, opts)
    cache_dir = src.cache / FOLDER
    verified = cache_dir / f"{lst.cache_name}.npy"
    unverified = cache_dir / f"{lst.cache_name}_unverified.npy"
    for path in (verified,) if src.verify else (verified, unverified):
        arr = _try_load(path, len(lst.paths))
        if arr is not None:
            return arr
    arr = decode_files(list(lst.paths), list(lst.sha256) if lst.sha256 is not None else None,
                       desc=f"celeba {lst.layout} {split} -> {SIZE}x{SIZE}")
    with atomic_path(verified if src.verify else unverified) as tmp:
        np.save(tmp, arr)
    return arr


def _try_load(path: Path, count: int) -> np.ndarray | None:
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None  # a damaged cache file is rebuilt
    if arr.dtype != np.uint8 or arr.shape != (count, *SHAPE):
        return None
    return arr


def labels(source: str, split: str, src: DataSource, opts: tuple) -> torch.Tensor:
    """float32 N x 40 in {0, 1}, rows in the same order as :func:`images`."""
    lst = listing(split, src, opts)
    if lst.attrs is not None:
        return lst.attrs
    attr_path = lst.folder / ATTR_FILE
    _check_md5(attr_path, src.verify)
    st = attr_path.stat()
    names, index, values = memo(("celeba-attr-file", str(attr_path.resolve()), st.st_size, st.st_mtime_ns),
                                lambda: read_attr_file(attr_path))
    rows = []
    for path in lst.paths:
        row = index.get(path.name)
        if row is None:
            raise DataError(f"CelebA file {attr_path} has no row for {path.name}; "
                            f"replace it with the original {ATTR_FILE}")
        rows.append(row)
    return torch.from_numpy((values[np.asarray(rows, dtype=np.int64)] > 0).astype(np.float32))


def read_attr_file(path: Path) -> tuple[list[str], dict[str, int], np.ndarray]:
    """Parse ``list_attr_celeba.txt``: count line, 40 names, rows ``<image> -1 1 ...``.

    Returns (attribute names, image name -> row, int8 array of -1/1 values).
    """
    import pandas as pd  # here: 0.23 s (-X importtime), reading the attribute file only

    bad = f"replace it with the original {ATTR_FILE}"
    with open(path, "rb") as handle:
        try:
            count = int(handle.readline().strip())
        except ValueError:
            raise DataError(f"CelebA file {path} does not start with the image count; {bad}") from None
        names = handle.readline().decode("utf-8", "replace").split()
        if len(names) != N_ATTRS:
            raise DataError(f"CelebA file {path} names {len(names)} attributes, expected {N_ATTRS}; {bad}")
        try:
            frame = pd.read_csv(handle, sep=r"\s+", header=None, index_col=0, dtype={0: str}, engine="c")
        except (ValueError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise DataError(f"CelebA file {path} cannot be parsed ({one_line(exc)}); {bad}") from None
    if frame.shape != (count, N_ATTRS):
        raise DataError(f"CelebA file {path} has {frame.shape[0]} rows of {frame.shape[1]} values, "
                        f"expected {count} rows of {N_ATTRS}; {bad}")
    values = frame.to_numpy()
    if values.dtype.kind not in "iu" or not np.isin(values, (-1, 1)).all():
        raise DataError(f"CelebA file {path} holds values other than -1/1; {bad}")
    index = {str(name): i for i, name in enumerate(frame.index)}
    return names, index, values.astype(np.int8)
