"""Metrics: Fréchet distances over Inception, classifier or raw features; KID, precision/recall, NAC.

Names are loaded on first use (PEP 562): importing one light submodule (e.g. ``latent_stats``, which the
models use) or ``from rae_bench.metrics import frechet_distance`` does not import pytorch-fid and
torchvision, which cost seconds at the start of every workflow job that never extracts Inception features.
"""
from __future__ import annotations

import importlib
from typing import Any

# public name -> the submodule that defines it
_WHERE: dict[str, str] = {
    "ClassifierExtractor": "classifier",
    "EXTRACTORS": "features",
    "FID_WEIGHTS_FILE": "inception",
    "FeatureClassifier": "classifier",
    "InceptionExtractor": "inception",
    "KID_SUBSETS": "kid",
    "KID_SUBSET_SIZE": "kid",
    "RawExtractor": "features",
    "active_dims": "latent_stats",
    "build_extractor": "features",
    "build_fid_inception": "inception",
    "cluster_histograms": "prd",
    "evaluate_classifier": "classifier",
    "extract_features": "features",
    "f_beta": "prd",
    "frechet_distance": "frechet",
    "gaussian_stats": "frechet",
    "kid": "kid",
    "load_classifier": "classifier",
    "load_features": "reference",
    "load_stats": "reference",
    "majority_baseline": "classifier",
    "mmd2_unbiased": "kid",
    "nac": "latent_stats",
    "polynomial_kernel": "kid",
    "prd": "prd",
    "prd_from_histograms": "prd",
    "prd_scores": "prd",
    "random_fid_inception_state": "inception",
    "reference_stats": "reference",
    "resolve_inception_weights": "inception",
    "save_classifier": "classifier",
    "save_stats": "reference",
    "train_classifier": "classifier",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
