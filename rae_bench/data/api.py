"""The dataset registry: ``load``, ``load_labels`` and ``data_shape`` dispatch on the source name."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any, Mapping

import torch

from ..errors import unknown_name
from .memo import memo
from .source import DataSource

SOURCES: tuple[str, ...] = ("mnist", "fashion_mnist", "cifar10", "celeba", "synthetic", "image_folder", "npz")
SPLITS: tuple[str, ...] = ("train", "test")

# source -> reader module, imported on first use (a job that reads CelebA never imports the MNIST reader)
_READERS: dict[str, str] = {
    "mnist": "mnist",
    "fashion_mnist": "mnist",
    "cifar10": "cifar",
    "celeba": "celeba",
    "synthetic": "synthetic",
    "image_folder": "image_folder",  # the user's own data
    "npz": "npz",
}


def _reader(source: str) -> ModuleType:
    if source not in _READERS:
        raise unknown_name("dataset", str(source), SOURCES)
    return importlib.import_module(f"{__package__}.{_READERS[source]}")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise unknown_name("split", str(split), SPLITS)


def load(source: str, split: str, src: DataSource, options: Mapping[str, Any] | None = None) -> torch.Tensor:
    """The whole split, cached in memory (treat the tensor as read only).

    Images: uint8 N x C x H x W (mnist/fashion_mnist 1x28x28, cifar10 3x32x32,
    celeba 3x64x64, image_folder/npz C x size x size); synthetic: float32 N x d.  Convert batches with ``to_float``.
    """
    reader = _reader(source)
    _check_split(split)
    opts = reader.options(source, options)
    return memo(("images", source, split, src, opts), lambda: reader.images(source, split, src, opts))


def load_labels(source: str, split: str, src: DataSource, options: Mapping[str, Any] | None = None) -> torch.Tensor:
    """int64 N class ids (mnist, fashion_mnist, cifar10, image_folder/npz with ``labels: true``);
    float32 N x 40 in {0, 1} (celeba attributes).

    synthetic, and image_folder/npz without ``labels: true``, have no labels: ConfigError.
    """
    reader = _reader(source)
    _check_split(split)
    opts = reader.options(source, options)
    return memo(("labels", source, split, src, opts), lambda: reader.labels(source, split, src, opts))


def data_shape(source: str, options: Mapping[str, Any] | None = None) -> tuple[int, ...]:
    """Shape of one example, without loading anything: (1,28,28), (3,32,32), (3,64,64) or (d,)."""
    reader = _reader(source)
    return tuple(reader.shape(reader.options(source, options)))


def has_labels(source: str, options: Mapping[str, Any] | None = None) -> bool:
    """Whether ``load_labels`` can work for these options, judged without reading any file."""
    reader = _reader(source)
    check = getattr(reader, "has_labels", None)  # readers whose labels depend on options say so
    return True if check is None else bool(check(reader.options(source, options)))
