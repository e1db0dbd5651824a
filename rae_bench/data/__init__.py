"""Datasets of the benchmark: MNIST, Fashion-MNIST, CIFAR-10, CelebA 64x64, synthetic manifolds, and the
user's own images (``image_folder``, ``npz``).

Public API::

    from rae_bench.data import DataSource, load, load_labels, data_shape, to_float, SOURCES

Images are kept uint8 (N x C x H x W) in memory; convert per batch with
:func:`to_float`.  Loaded splits are cached per process (``clear_cache``
frees them); file caches (extracted MNIST, preprocessed CelebA) live in
``DataSource.cache``.
"""
from __future__ import annotations

from .api import SOURCES, SPLITS, data_shape, has_labels, load, load_labels
from .convert import to_float
from .memo import clear_cache
from .source import DATA_ENV_VAR, DataSource

__all__ = [
    "DATA_ENV_VAR",
    "DataSource",
    "SOURCES",
    "SPLITS",
    "clear_cache",
    "data_shape",
    "has_labels",
    "load",
    "load_labels",
    "to_float",
]
