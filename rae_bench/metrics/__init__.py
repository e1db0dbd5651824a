"""Metrics: Fréchet distances over Inception, classifier or raw features.

The Inception names (pytorch-fid's network, which imports torchvision: seconds at the start of every job)
load on first use (PEP 562 ``__getattr__``); everything else is imported here.
"""
import importlib

from rae_bench.metrics.frechet import frechet_distance, gaussian_stats
from rae_bench.metrics.features import EXTRACTORS, FeatureSpace, RawExtractor, build_extractor, extract_features

from rae_bench.metrics.classifier import (
    ClassifierExtractor,
    FeatureClassifier,
    evaluate_classifier,
    load_classifier,
    majority_baseline,
    save_classifier,
    train_classifier,
    train_dataset_classifier,
)
from rae_bench.metrics.reference import load_features, load_stats, reference_stats, save_stats

__all__ = [
    "EXTRACTORS",
    "FID_WEIGHTS_FILE",
    "ClassifierExtractor",
    "FeatureClassifier",
    "FeatureSpace",
    "InceptionExtractor",
    "RawExtractor",
    "build_extractor",
    "build_fid_inception",
    "evaluate_classifier",
    "extract_features",
    "frechet_distance",
    "gaussian_stats",
    "load_classifier",
    "load_features",
    "load_stats",
    "majority_baseline",
    "random_fid_inception_state",
    "reference_stats",
    "resolve_inception_weights",
    "save_classifier",
    "save_stats",
    "train_classifier",
    "train_dataset_classifier",
]

# Precision/recall for distributions (Table 4) and latent statistics (Table 2).
from rae_bench.metrics.prd import cluster_histograms, f_beta, prd, prd_from_histograms, prd_scores
from rae_bench.metrics.latent_stats import active_dims, nac

__all__ += [
    "active_dims",
    "cluster_histograms",
    "f_beta",
    "nac",
    "prd",
    "prd_from_histograms",
    "prd_scores",
]

# Kernel Inception Distance (torch-fidelity's definition).
from rae_bench.metrics.kid import KID_SUBSET_SIZE, KID_SUBSETS, kid, mmd2_unbiased, polynomial_kernel

__all__ += ["KID_SUBSETS", "KID_SUBSET_SIZE", "kid", "mmd2_unbiased", "polynomial_kernel"]

# k-NN precision/recall and density/coverage (prdc's definitions); FID extrapolated to N = infinity.
from rae_bench.metrics.knn import KNN_K, knn_radii, prdc
from rae_bench.metrics.fid_infinity import FID_INFINITY_POINTS, fid_infinity

__all__ += ["FID_INFINITY_POINTS", "KNN_K", "fid_infinity", "knn_radii", "prdc"]

# Inception: loaded on first use
_LAZY = {name: "rae_bench.metrics.inception" for name in (
    "FID_WEIGHTS_FILE",
    "InceptionExtractor",
    "build_fid_inception",
    "random_fid_inception_state",
    "resolve_inception_weights",
)}



def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name]), name)
    globals()[name] = value
    return value

# Bootstrap replicates of Rec./Gen. FID over the test items and samples (the agreement intervals, claims).
from rae_bench.metrics.bootstrap import fid_bootstrap

__all__ += ["fid_bootstrap"]
