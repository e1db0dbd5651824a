"""Feature extractors for Fréchet distances: ``inception``, ``classifier``, ``raw``.

Every extractor is a callable ``extractor(batch) -> np.ndarray (N x D)`` with a
``name``; :func:`extract_features` feeds a whole set through it in batches so
a uint8 image set is converted to float one batch at a time.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from rae_bench.data.convert import as_float_images
from rae_bench.errors import ConfigError, unknown_name
from rae_bench.metrics.classifier import ClassifierExtractor

EXTRACTORS = ("inception", "classifier", "raw")


class RawExtractor:
    """The data itself, flattened: ``x.reshape(N, -1)`` as float64 (uint8 is scaled to [0, 1] first)."""

    name = "raw"
    dim = None

    def __call__(self, x) -> np.ndarray:
        x = torch.as_tensor(x)
        x = as_float_images(x) if x.dtype == torch.uint8 else x  # float data keeps its float64 precision
        return x.detach().reshape(x.shape[0], -1).cpu().numpy().astype(np.float64, copy=False)


def build_extractor(name: str, *, classifier_path: str | os.PathLike[str] | None = None,
                    inception_weights: str | os.PathLike[str] | None = None, download: bool = False,
                    device: str | torch.device = "cpu", batch_size: int = 100, precision: str = "fp32",
                    backend: str = "auto"):
    """Build the feature extractor called ``name`` (one of :data:`EXTRACTORS`); ``precision``
    and ``backend`` apply to Inception only (see :class:`~rae_bench.metrics.inception.InceptionExtractor`)."""
    if name == "raw":
        return RawExtractor()
    if name == "inception":
        # here: pytorch-fid's network imports torchvision, 2.5 s after torch (-X importtime), which jobs
        # on the classifier or raw features never pay
        from rae_bench.metrics.inception import InceptionExtractor

        return InceptionExtractor(inception_weights, download=download, device=device, batch_size=batch_size,
                                  precision=precision, backend=backend)
    if name == "classifier":
        if classifier_path is None:
            raise ConfigError("feature extractor 'classifier' needs a classifier file; pass classifier_path (train one with the classifier rule)")
        return ClassifierExtractor(Path(classifier_path), device=device, batch_size=batch_size)
    raise unknown_name("feature extractor", name, EXTRACTORS)


def configured_extractor(name: str, features: Mapping[str, Any], *, download: bool, device: str | torch.device,
                         precision: str, classifier_path: str | os.PathLike[str] | None = None,
                         inception_weights: str | os.PathLike[str] | None = None, batch_size: int | None = None):
    """:func:`build_extractor` with the config's ``features:`` settings (``inception_weights``, ``batch_size``,
    ``backend``) for what the caller does not give."""
    return build_extractor(name, classifier_path=classifier_path,
                           inception_weights=inception_weights or features.get("inception_weights"),
                           download=download, device=device,
                           batch_size=batch_size or int(features.get("batch_size", 100)),
                           precision=precision, backend=str(features.get("backend", "auto")))


@dataclass(frozen=True)
class FeatureSpace:
    """The feature space an evaluation measures in: the extractor and what metrics.json says about it.

    ``name`` goes into metrics.json as ``extractor``; ``backend`` (the engine that ran Inception, same
    FIDs to 1e-4) as ``extractor_backend``; ``quality`` (the classifier's test ``accuracy`` and majority
    ``baseline``) as ``extractor_accuracy`` / ``extractor_baseline``, so that tables can say how good a
    feature space their numbers come from.
    """

    extractor: Callable[[Any], np.ndarray]
    name: str
    backend: str | None = None
    quality: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, extractor: Any) -> "FeatureSpace":
        """Wrap a built extractor (:func:`build_extractor`), reading its name, backend and test quality."""
        meta = getattr(extractor, "meta", None) or {}
        return cls(extractor, str(extractor.name), getattr(extractor, "backend", None), meta.get("test"))

    def features(self, data) -> np.ndarray:
        """N x D features of ``data``, fed through the extractor in batches (:func:`extract_features`)."""
        return extract_features(self.extractor, data)

    def identity(self) -> dict[str, Any]:
        """What of this space a result depends on, beyond the weights' file (its keys are stable: cached
        best-checkpoint evaluations compare them)."""
        return {"extractor_name": self.name, "extractor_quality": self.quality, "extractor_backend": self.backend}

    def metrics_entries(self) -> dict[str, Any]:
        """The ``extractor_backend`` / ``extractor_accuracy`` / ``extractor_baseline`` entries of metrics.json."""
        out: dict[str, Any] = {}
        if self.backend:
            out["extractor_backend"] = self.backend
        if self.quality and "accuracy" in self.quality:
            out["extractor_accuracy"] = float(self.quality["accuracy"])
            if self.quality.get("baseline") is not None:
                out["extractor_baseline"] = float(self.quality["baseline"])
        return out


def extract_features(extractor, data, batch_size: int = 500) -> np.ndarray:
    """Run ``extractor`` over ``data`` (N x ...) in chunks of ``batch_size``; returns N x D numpy."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n = len(data)
    if n == 0:
        raise ValueError("extract_features got an empty data set")
    chunks = [np.asarray(extractor(data[start:start + batch_size])) for start in range(0, n, batch_size)]
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=0)
