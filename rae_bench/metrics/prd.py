"""Precision and recall for distributions (PRD).

Sajjadi, Bachem, Lucic, Bousquet, Gelly, "Assessing generative models via
precision and recall", NeurIPS 2018; the metric of Table 4 of the FlexAE paper
(``shared/paper/rae-landscape-talk.txt``).

For two discrete distributions ``P`` (evaluated, e.g. generated samples) and
``Q`` (reference, e.g. test images) over the same bins, the PRD curve is the
set of pairs, for slopes ``lambda`` in (0, inf),

    precision(lambda) = sum_i min(lambda * Q_i, P_i)
    recall(lambda)    = precision(lambda) / lambda

evaluated at ``lambda = tan(theta)`` for ``num_angles`` equally spaced
``theta`` in ``[epsilon, pi/2 - epsilon]`` and clipped to [0, 1].  The curve
is summarised by two numbers, the maximum over the curve of

    F_beta = (1 + beta^2) p r / (beta^2 p + r)     (0 where p = r = 0)

for ``beta = 8`` (weights recall: "recall", ``F_8``) and ``beta = 1/8``
(weights precision: "precision", ``F_1/8``), as the paper and Table 4 report
them.

Feature sets become distributions as in the authors' reference code
(``prd_score.py``): the union of both sets is clustered with k-means
(scikit-learn ``MiniBatchKMeans``, ``n_init=10``) into ``num_clusters``
clusters, each side's histogram over the clusters is normalised, and the
curves of ``num_runs`` clusterings are averaged.  The two sets must hold the
same number of points (an unbalanced union biases the clustering toward the
larger set).  Departures from the reference: the clusterings are seeded
(``random_state = seed + run``) so results are reproducible.
``MiniBatchKMeans`` gets ``batch_size=100`` explicitly: the reference passes
no batch size (msmsajjadi/precision-recall-distributions, ``prd_score.py``
L126) and so ran with scikit-learn's pre-1.0 default of 100; today's default
(1024) moves F_8 / F_1/8 on a scale-0.5 test case from 0.82 / 0.98 to
0.87 / 0.92, outside the run-to-run spread.  ``F_beta``
is exact (the reference adds 1e-10 to the denominator; the difference is
below 1e-9).
"""
from __future__ import annotations

from typing import Any

import numpy as np

# Reference-implementation limits for the angle grid.
_MIN_ANGLES, _MAX_ANGLES = 3, 1_000_000
_KMEANS_N_INIT = 10  # as in the authors' prd_score.py
_KMEANS_BATCH_SIZE = 100  # scikit-learn's default when the reference code was written (it passes none)
PRD_BETA = 8.0


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """float64 numpy copy of an array-like or (any-device) torch tensor."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like, got {type(x).__name__}: {exc}") from exc


def _check_distribution(dist: np.ndarray, name: str) -> None:
    if dist.ndim != 1 or dist.shape[0] < 1:
        raise ValueError(f"prd_from_histograms: {name} must be a non-empty 1-D histogram, got shape {dist.shape}")
    if not np.isfinite(dist).all():
        raise ValueError(f"prd_from_histograms: {name} contains NaN or inf")
    if (dist < 0).any():
        raise ValueError(f"prd_from_histograms: {name} has negative entries (min {dist.min():g})")
    total = float(dist.sum())
    if abs(total - 1.0) > 1e-3:
        raise ValueError(f"prd_from_histograms: {name} must sum to 1 (a normalised histogram), sums to {total:g}")


def prd_from_histograms(eval_dist: np.ndarray, ref_dist: np.ndarray, num_angles: int = 1001,
                        epsilon: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve ``(precision, recall)`` of two normalised histograms over the same bins.

    Both outputs have ``num_angles`` entries, ordered by increasing slope
    ``lambda = tan(theta)`` (precision non-decreasing, recall non-increasing).
    ``num_angles`` must be in [3, 1e6] and ``epsilon`` in (0, 0.1), as in the
    reference implementation.
    """
    eval_dist = _to_numpy(eval_dist, "eval_dist")
    ref_dist = _to_numpy(ref_dist, "ref_dist")
    _check_distribution(eval_dist, "eval_dist")
    _check_distribution(ref_dist, "ref_dist")
    if eval_dist.shape != ref_dist.shape:
        raise ValueError(f"prd_from_histograms: eval_dist has {eval_dist.shape[0]} bins, ref_dist {ref_dist.shape[0]}; they must match")
    if isinstance(num_angles, bool) or int(num_angles) != num_angles or not _MIN_ANGLES <= num_angles <= _MAX_ANGLES:
        raise ValueError(f"num_angles must be an integer in [{_MIN_ANGLES}, {_MAX_ANGLES}], got {num_angles!r}")
    if not 0.0 < epsilon < 0.1:
        raise ValueError(f"epsilon must be in (0, 0.1), got {epsilon!r}")

    slopes = np.tan(np.linspace(epsilon, np.pi / 2 - epsilon, num=int(num_angles)))
    precision = np.minimum(slopes[:, None] * ref_dist[None, :], eval_dist[None, :]).sum(axis=1)
    recall = precision / slopes
    return np.clip(precision, 0.0, 1.0), np.clip(recall, 0.0, 1.0)


def _check_features(eval_features: Any, ref_features: Any, num_clusters: int) -> tuple[np.ndarray, np.ndarray]:
    """Validated float64 N x D feature arrays of equal size."""
    eval_f = _to_numpy(eval_features, "eval_features")
    ref_f = _to_numpy(ref_features, "ref_features")
    for name, f in (("eval_features", eval_f), ("ref_features", ref_f)):
        if f.ndim != 2:
            raise ValueError(f"PRD needs N x D feature arrays; {name} has shape {f.shape}")
        if not np.isfinite(f).all():
            raise ValueError(f"PRD: {name} contains NaN or inf; check the samples fed to the extractor")
    if eval_f.shape[0] != ref_f.shape[0]:
        raise ValueError(
            f"PRD needs equal numbers of eval and reference samples (an unbalanced union biases the clustering), "
            f"got {eval_f.shape[0]} eval and {ref_f.shape[0]} reference samples")
    if eval_f.shape[1] != ref_f.shape[1]:
        raise ValueError(f"PRD: feature dimensions differ: eval {eval_f.shape[1]}, reference {ref_f.shape[1]} (different extractors?)")
    if isinstance(num_clusters, bool) or int(num_clusters) != num_clusters or num_clusters < 1:
        raise ValueError(f"num_clusters must be a positive integer, got {num_clusters!r}")
    if 2 * eval_f.shape[0] < num_clusters:
        raise ValueError(f"PRD: {2 * eval_f.shape[0]} points in all cannot be clustered into {num_clusters} clusters")
    return eval_f, ref_f


def _cluster(eval_f: np.ndarray, ref_f: np.ndarray, num_clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.cluster import MiniBatchKMeans  # here: 1.8 s (-X importtime), only in jobs that score PRD

    data = np.concatenate([eval_f, ref_f], axis=0)
    kmeans = MiniBatchKMeans(n_clusters=int(num_clusters), n_init=_KMEANS_N_INIT, batch_size=_KMEANS_BATCH_SIZE,
                             random_state=int(seed))
    labels = kmeans.fit(data).labels_
    n = eval_f.shape[0]
    eval_hist = np.bincount(labels[:n], minlength=num_clusters).astype(np.float64) / n
    ref_hist = np.bincount(labels[n:], minlength=num_clusters).astype(np.float64) / ref_f.shape[0]
    return eval_hist, ref_hist


def cluster_histograms(eval_features, ref_features, num_clusters: int = 20,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histograms ``(eval, ref)`` over ``num_clusters`` k-means clusters of the union.

    ``eval_features`` and ``ref_features`` are N x D (numpy or torch) with the
    same N and D.  The clustering is ``MiniBatchKMeans(n_init=10,
    random_state=seed)``; each histogram sums to 1.
    """
    eval_f, ref_f = _check_features(eval_features, ref_features, num_clusters)
    return _cluster(eval_f, ref_f, int(num_clusters), seed)


def prd(eval_features, ref_features, num_clusters: int = 20, num_angles: int = 1001, num_runs: int = 10,
        seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """PRD curve ``(precision, recall)`` of two feature sets, averaged over ``num_runs`` clusterings.

    Run ``k`` clusters with seed ``seed + k``.  Defaults are the paper's
    (20 clusters, 1001 angles, 10 runs).
    """
    if isinstance(num_runs, bool) or int(num_runs) != num_runs or num_runs < 1:
        raise ValueError(f"num_runs must be a positive integer, got {num_runs!r}")
    eval_f, ref_f = _check_features(eval_features, ref_features, num_clusters)
    precisions, recalls = [], []
    for run in range(int(num_runs)):
        eval_hist, ref_hist = _cluster(eval_f, ref_f, int(num_clusters), seed + run)
        p, r = prd_from_histograms(eval_hist, ref_hist, num_angles=num_angles)
        precisions.append(p)
        recalls.append(r)
    return np.mean(precisions, axis=0), np.mean(recalls, axis=0)


def f_beta(precision, recall, beta: float) -> np.ndarray:
    """``F_beta = (1 + beta^2) p r / (beta^2 p + r)`` element-wise; 0 where ``p = r = 0``.

    ``precision`` and ``recall`` broadcast together and must lie in [0, 1];
    ``beta > 0``.  ``f_beta(p, r, 1 / b) == f_beta(r, p, b)``.
    """
    p = _to_numpy(precision, "precision")
    r = _to_numpy(recall, "recall")
    if not beta > 0 or not np.isfinite(beta):
        raise ValueError(f"f_beta: beta must be a positive finite number, got {beta!r}")
    for name, a in (("precision", p), ("recall", r)):
        if not np.isfinite(a).all() or (a < 0).any() or (a > 1).any():
            raise ValueError(f"f_beta: {name} values must lie in [0, 1]")
    try:
        p, r = np.broadcast_arrays(p, r)
    except ValueError as exc:
        raise ValueError(f"f_beta: precision shape {p.shape} and recall shape {r.shape} do not broadcast") from exc
    b2 = float(beta) ** 2
    denom = b2 * p + r
    safe = np.where(denom > 0, denom, 1.0)
    return np.where(denom > 0, (1.0 + b2) * p * r / safe, 0.0)


def prd_scores(eval_features, ref_features, **kw) -> dict[str, float]:
    """Table 4 summary of :func:`prd` (keyword arguments pass through to it).

    Returns plain floats: ``f8`` = max ``F_8`` (reported as recall),
    ``f1_8`` = max ``F_1/8`` (reported as precision), and the same values
    under ``recall`` and ``precision``.
    """
    precision, recall = prd(eval_features, ref_features, **kw)
    f8 = float(np.max(f_beta(precision, recall, PRD_BETA)))
    f1_8 = float(np.max(f_beta(precision, recall, 1.0 / PRD_BETA)))
    return {"precision": f1_8, "recall": f8, "f8": f8, "f1_8": f1_8}
