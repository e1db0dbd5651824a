"""Cached Gaussian statistics of reference (test-set) features, as .npz files.

A file holds ``mu`` (D), ``sigma`` (D x D), ``n`` (number of feature vectors),
optionally the ``features`` themselves (float32, for precision/recall) and
scalar/string metadata; it is written atomically and read with
``allow_pickle=False``.
"""
from __future__ import annotations

import json
import math
import os
import warnings
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rae_bench.atomic import atomic_path
from rae_bench.errors import DataError
from rae_bench.metrics.frechet import gaussian_stats

_RESERVED = ("mu", "sigma", "n", "features")


def _meta_array(value: Any) -> np.ndarray:
    """A 0-d array: str/int/float/bool as is, anything else as JSON text (no pickle needed)."""
    if isinstance(value, (str, bool, int, float, np.generic)):
        return np.asarray(value)
    return np.asarray(json.dumps(value, sort_keys=True, default=str))


def save_stats(path: str | os.PathLike[str], mu: np.ndarray, sigma: np.ndarray, n: int,
               features: np.ndarray | None = None, **meta: Any) -> None:
    """Write ``mu``, ``sigma``, ``n``, ``features`` (if given) and ``meta`` to ``path`` (.npz) atomically."""
    mu = np.asarray(mu, dtype=np.float64)
    sigma = np.asarray(sigma, dtype=np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"save_stats: mu {mu.shape} and sigma {sigma.shape} do not match")
    clash = [k for k in meta if k in _RESERVED]
    if clash:
        raise ValueError(f"save_stats: metadata keys {clash} are reserved")
    arrays = {"mu": mu, "sigma": sigma, "n": np.asarray(int(n), dtype=np.int64)}
    if features is not None:
        arrays["features"] = np.asarray(features, dtype=np.float32)
    arrays.update({k: _meta_array(v) for k, v in meta.items()})
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:  # a file object: numpy adds no extra suffix
            np.savez(handle, **arrays)


def load_stats_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """All entries of a stats file (``mu``, ``sigma``, ``n``, metadata), validated."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"reference statistics file '{path}' not found; compute it with: snakemake {path}")
    try:
        check_npz_sizes(path)  # before numpy inflates anything: a zip bomb stops here
        with np.load(path, allow_pickle=False) as data:
            entries = {k: data[k] for k in data.files}
        mu = np.asarray(entries["mu"], dtype=np.float64)
        sigma = np.asarray(entries["sigma"], dtype=np.float64)
        if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
            raise ValueError(f"mu {mu.shape} / sigma {sigma.shape}")
        if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
            raise ValueError("mu or sigma holds NaN or infinite values")
        if "n" in entries and (entries["n"].shape != () or entries["n"].dtype.kind not in "iu" or int(entries["n"]) < 2):
            raise ValueError(f"n is {entries['n']!r}, not a count >= 2")
        if "features" in entries:
            feats = entries["features"]
            want = (int(entries["n"]) if "n" in entries else feats.shape[0], mu.shape[0])
            if feats.dtype.kind != "f" or feats.shape != want:
                raise ValueError(f"features of shape {feats.shape} ({feats.dtype}), expected {want} float")
            if not np.isfinite(feats).all():
                raise ValueError("features hold NaN or infinite values")
    except Exception as exc:
        raise DataError(
            f"reference statistics file '{path}' is corrupt or not a stats file ({type(exc).__name__}: {exc}); delete it to recompute"
            .replace("\n", " ")[:400]
        ) from None
    entries["mu"], entries["sigma"] = mu, sigma
    entries["n"] = int(entries["n"]) if "n" in entries else None
    for k, v in list(entries.items()):
        if k not in _RESERVED and isinstance(v, np.ndarray) and v.ndim == 0:
            entries[k] = v.item()
    return entries


MAX_NPZ_BYTES = 2**31  # all members of a stats file, uncompressed (2 GiB: 250,000 x 2048 float32 features)


def check_npz_sizes(path: Path, limit: int = MAX_NPZ_BYTES) -> None:
    """Refuse an .npz whose members declare more than ``limit`` bytes, or whose numpy headers claim more than the
    member holds, before anything is inflated. ``zipfile`` never reads past a member's declared size."""
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        declared = sum(m.file_size for m in members)
        if declared > limit:
            raise ValueError(f"its members declare {declared:,} bytes uncompressed, more than the limit of {limit:,}")
        for member in members:
            with archive.open(member) as handle:
                version = np.lib.format.read_magic(handle)
                read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(handle)
                claimed = math.prod(shape) * dtype.itemsize
                if claimed > member.file_size:
                    raise ValueError(f"member {member.filename} claims an array of shape {shape} ({claimed:,} bytes) "
                                     f"in {member.file_size:,} bytes")


def _checked_count(path: str | os.PathLike[str], entries: dict[str, Any], n: int | None) -> None:
    if n is not None and entries["n"] is not None and entries["n"] != n:
        raise DataError(f"reference statistics file '{path}' was computed from {entries['n']} test items, but {n} "
                        f"samples are asked; pass the reference file of n={n} (reference_test_n{n}.npz) or delete "
                        f"this one to recompute")


def load_stats(path: str | os.PathLike[str], n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(mu, sigma)`` from a stats file; missing or corrupt, or (with ``n``) of another count -> DataError."""
    entries = load_stats_file(path)
    _checked_count(path, entries, n)
    return entries["mu"], entries["sigma"]


def load_features(path: str | os.PathLike[str], n: int | None = None) -> np.ndarray:
    """The feature vectors stored with a stats file (for precision/recall); with ``n``, exactly ``n`` of them."""
    entries = load_stats_file(path)
    _checked_count(path, entries, n)
    if "features" not in entries:
        raise DataError(f"reference statistics file '{path}' holds no features (made by an older version); "
                        f"delete it to recompute")
    return np.asarray(entries["features"])


def reference_stats(path: str | os.PathLike[str], compute: Callable[[], np.ndarray],
                    meta: dict[str, Any] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Cached ``(mu, sigma)``: load ``path`` if present, else ``gaussian_stats(compute())``, save, return.

    With ``meta`` (e.g. ``{"extractor": "inception", "dataset": "mnist"}``) the
    values are stored in the file, and a cached file whose stored values differ
    is recomputed.  A corrupt cache file is recomputed with a warning.
    """
    path = Path(path)
    meta = dict(meta or {})
    if path.is_file():
        try:
            entries = load_stats_file(path)
        except DataError as exc:
            warnings.warn(f"{exc}; recomputing", stacklevel=2)
        else:
            stale = [k for k, v in meta.items() if k not in entries or entries[k] != _meta_array(v).item()]
            if not stale:
                return entries["mu"], entries["sigma"]
            warnings.warn(f"reference statistics '{path}' were computed with different {', '.join(stale)}; recomputing", stacklevel=2)
    features = np.asarray(compute())
    mu, sigma = gaussian_stats(features)
    save_stats(path, mu, sigma, features.shape[0], features=features, **meta)
    return mu, sigma
