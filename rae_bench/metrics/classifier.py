"""The ``classifier`` feature extractor: a small conv net trained per dataset.

Its penultimate layer (``feature_dim`` ReLU units) is the feature space of the
Fréchet distance for datasets where ImageNet Inception features are a poor fit
(MNIST, synthetic images).  Training is seeded and, on CPU, deterministic.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from rae_bench.atomic import torch_save
from rae_bench.data import DataSource, load, load_labels
from rae_bench.data.convert import as_float_images
from rae_bench.errors import CheckpointError, DataError, TrainingDiverged


def _block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class FeatureClassifier(nn.Module):
    """Conv 32 (stride 1; stride 2 for images of 64x64 and more) -> 64 -> 128 -> 128 (stride 2), global average pool,
    Linear(128, feature_dim) + ReLU (the features), Linear(feature_dim, n_outputs)."""

    def __init__(self, data_shape: tuple[int, int, int], n_outputs: int, feature_dim: int = 128):
        super().__init__()
        data_shape = tuple(int(s) for s in data_shape)
        if len(data_shape) != 3 or min(data_shape) < 1:
            raise ValueError(f"data_shape must be (C, H, W), got {data_shape}")
        if n_outputs < 1 or feature_dim < 1:
            raise ValueError(f"n_outputs and feature_dim must be >= 1, got {n_outputs} and {feature_dim}")
        self.data_shape = data_shape
        self.n_outputs = int(n_outputs)
        self.feature_dim = int(feature_dim)
        c = data_shape[0]
        first_stride = 2 if min(data_shape[1:]) >= 64 else 1  # 64x64 faces: the same net on a 32x32 grid, 4x cheaper
        self.body = nn.Sequential(
            *_block(c, 32, first_stride), *_block(32, 64, 2), *_block(64, 128, 2), *_block(128, 128, 2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(128, self.feature_dim), nn.ReLU(inplace=True),
        )
        self.head = nn.Linear(self.feature_dim, self.n_outputs)

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.data_shape:
            raise DataError(
                f"classifier was trained on images {'x'.join(map(str, self.data_shape))}, got batch shape {tuple(x.shape)}; "
                f"use the classifier trained for this dataset"
            )

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations, N x feature_dim (``x`` float in [0, 1])."""
        self._check(x)
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _check_labels(images: torch.Tensor, labels: torch.Tensor, multilabel: bool) -> None:
    if images.ndim != 4:
        raise DataError(f"classifier images must be N x C x H x W, got shape {tuple(images.shape)}")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"classifier got {images.shape[0]} images but {labels.shape[0]} labels; pass one label row per image")
    if multilabel:
        if labels.ndim != 2:
            raise DataError(f"multilabel classifier needs labels N x K in {{0,1}}, got shape {tuple(labels.shape)}")
    elif labels.ndim != 1 or labels.dtype.is_floating_point:
        raise DataError(f"classifier needs int64 class ids of shape (N,), got {labels.dtype} {tuple(labels.shape)}; set multilabel for N x K labels")


def _loss(logits: torch.Tensor, y: torch.Tensor, multilabel: bool) -> torch.Tensor:
    if multilabel:
        return F.binary_cross_entropy_with_logits(logits, y.float())
    return F.cross_entropy(logits, y.long())


def train_classifier(images: torch.Tensor, labels: torch.Tensor, *, multilabel: bool, epochs: int, batch_size: int,
                     lr: float, seed: int, device: str | torch.device = "cpu", feature_dim: int = 128,
                     n_outputs: int | None = None, progress: bool = True) -> FeatureClassifier:
    """Train a :class:`FeatureClassifier` with Adam; returns it in eval mode on ``device``.

    ``labels``: int64 class ids (cross-entropy) or, with ``multilabel``, N x K in
    {0, 1} (BCE with logits).  ``n_outputs`` defaults to ``max id + 1`` / K.
    The initial weights and the batch order come from ``seed`` alone (the
    global RNG is left as it was), so two CPU runs give identical weights.
    """
    images = torch.as_tensor(images)
    labels = torch.as_tensor(labels)
    _check_labels(images, labels, multilabel)
    if epochs < 1 or batch_size < 1 or not lr > 0:
        raise ValueError(f"epochs, batch_size and lr must be positive, got {epochs}, {batch_size}, {lr}")
    if n_outputs is None:
        n_outputs = int(labels.shape[1]) if multilabel else int(labels.max().item()) + 1
    elif not multilabel and int(labels.max().item()) >= n_outputs:
        raise DataError(f"class id {int(labels.max().item())} >= n_outputs {n_outputs}; raise n_outputs")
    device = torch.device(device)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FeatureClassifier(tuple(images.shape[1:]), n_outputs, feature_dim)
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = images.shape[0]
    steps = math.ceil(n / batch_size)
    for epoch in range(epochs):
        order = torch.randperm(n, generator=gen)
        bar = tqdm(range(steps), desc=f"classifier epoch {epoch + 1}/{epochs}", leave=False, disable=not progress or None)
        for step in bar:
            idx = order[step * batch_size:(step + 1) * batch_size]
            if idx.numel() < 2 and steps > 1:  # a batch of one breaks BatchNorm
                continue
            x = as_float_images(images[idx].to(device)).float()
            y = labels[idx].to(device)
            loss = _loss(model(x), y, multilabel)
            if not torch.isfinite(loss):
                raise TrainingDiverged(f"classifier loss became {loss.item()} in epoch {epoch + 1}; lower the classifier learning rate")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    return model.eval()


@torch.inference_mode()
def evaluate_classifier(model: FeatureClassifier, images: torch.Tensor, labels: torch.Tensor, multilabel: bool,
                        batch_size: int = 500) -> dict[str, Any]:
    """``{"accuracy": ..., "n": N}``; multilabel accuracy is the mean over attributes and images."""
    images = torch.as_tensor(images)
    labels = torch.as_tensor(labels)
    _check_labels(images, labels, multilabel)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    correct = 0.0
    for start in range(0, images.shape[0], batch_size):
        x = as_float_images(images[start:start + batch_size].to(device)).float()
        y = labels[start:start + batch_size].to(device)
        logits = model(x)
        if multilabel:
            correct += ((logits > 0) == (y > 0.5)).float().mean(dim=1).sum().item()
        else:
            correct += (logits.argmax(dim=1) == y).sum().item()
    model.train(was_training)
    return {"accuracy": correct / images.shape[0], "n": int(images.shape[0])}


def majority_baseline(train_labels: torch.Tensor, test_labels: torch.Tensor, multilabel: bool) -> float:
    """Test accuracy of always answering the training set's majority: per attribute (multilabel, averaged
    over attributes) or the most frequent class. A feature classifier must clearly beat it."""
    train_labels, test_labels = torch.as_tensor(train_labels), torch.as_tensor(test_labels)
    if multilabel:
        majority = (train_labels.float().mean(0) >= 0.5).float()
        return float(((test_labels > 0.5).float() == majority).float().mean())
    counts = torch.bincount(train_labels.long())
    return float((test_labels.long() == int(counts.argmax())).float().mean())


def save_classifier(model: FeatureClassifier, path: str | os.PathLike[str], meta: dict | None = None) -> None:
    """Write ``{"state", "data_shape", "n_outputs", "feature_dim", "meta"}`` atomically (``meta``: plain values only)."""
    obj = {
        "state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "data_shape": list(model.data_shape),
        "n_outputs": model.n_outputs,
        "feature_dim": model.feature_dim,
        "meta": dict(meta or {}),
    }
    torch_save(obj, path)


def train_dataset_classifier(spec: Mapping[str, Any], src: DataSource, out: str | os.PathLike[str],
                             device: str | torch.device) -> dict[str, Any]:
    """Train a dataset's feature classifier as ``spec`` says (config.resolve.classifier_spec: source, options,
    n_train, epochs, batch_size, lr, seed), write it to ``out`` and return its test quality with the
    majority-class baseline (``rae-bench train-classifier``)."""
    n_train = spec.get("n_train")  # first N training images, as the generative runs use
    images = load(spec["source"], "train", src, spec.get("options"))[:n_train]
    labels = load_labels(spec["source"], "train", src, spec.get("options"))[:n_train]
    multilabel = labels.dtype.is_floating_point
    model = train_classifier(images, labels, multilabel=multilabel, epochs=int(spec.get("epochs", 3)),
                             batch_size=int(spec.get("batch_size", 128)), lr=float(spec.get("lr", 1e-3)),
                             seed=int(spec.get("seed", 0)), device=device)
    test_x = load(spec["source"], "test", src, spec.get("options"))
    test_y = load_labels(spec["source"], "test", src, spec.get("options"))
    quality = evaluate_classifier(model, test_x, test_y, multilabel)
    quality["baseline"] = majority_baseline(labels, test_y, multilabel)
    save_classifier(model, out, {"source": spec["source"], "test": quality})
    return quality


def load_classifier(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[FeatureClassifier, dict]:
    """Load a file written by :func:`save_classifier`; returns (model in eval mode, meta)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"classifier file '{path}' not found; train it with: snakemake {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"classifier file '{path}' is unreadable or truncated ({type(exc).__name__}); delete it and run: snakemake {path}"
        ) from exc
    try:
        model = FeatureClassifier(tuple(obj["data_shape"]), int(obj["n_outputs"]), int(obj["feature_dim"]))
        model.load_state_dict(obj["state"])
        meta = dict(obj.get("meta") or {})
    except Exception as exc:
        raise CheckpointError(
            f"'{path}' is not a classifier file ({type(exc).__name__}); delete it and run: snakemake {path}"
        ) from exc
    return model.to(device, memory_format=torch.channels_last).eval(), meta  # faster convolutions, same fp32 math


class ClassifierExtractor:
    """Penultimate-layer features of a trained classifier; images uint8 or float [0, 1] -> float32 N x feature_dim."""

    name = "classifier"

    def __init__(self, path: str | os.PathLike[str], *, device: str | torch.device = "cpu", batch_size: int = 500):
        self.path = Path(path)
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model, self.meta = load_classifier(self.path, self.device)
        self.dim = self.model.feature_dim

    def __call__(self, images) -> np.ndarray:
        images = torch.as_tensor(images)
        out = np.empty((images.shape[0], self.dim), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, images.shape[0], self.batch_size):
                x = as_float_images(images[start:start + self.batch_size].to(self.device)).float()
                feats = self.model.features(x)
                out[start:start + feats.shape[0]] = feats.cpu().numpy()
        return out
