"""Gaussian statistics of feature sets and the Fréchet distance between them.

The Fréchet distance between N(mu1, S1) and N(mu2, S2) is

    ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)).

``tr((S1 S2)^(1/2))`` is the sum of the square roots of the eigenvalues of
``S1 S2``.  ``S1 S2`` is not symmetric, but it is similar to the symmetric PSD
matrix ``S1^(1/2) S2 S1^(1/2)``, so the eigenvalues come from two symmetric
eigenproblems (``eigh``/``eigvalsh``), which are stable and never complex,
unlike ``scipy.linalg.sqrtm`` on the non-symmetric product.
"""
from __future__ import annotations

import numpy as np


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (float64, ``ddof=1`` like pytorch-fid) of an N x D array."""
    feats = np.asarray(features, dtype=np.float64)
    if feats.ndim != 2:
        raise ValueError(f"gaussian_stats needs an N x D feature array, got shape {feats.shape}")
    if feats.shape[0] < 2:
        raise ValueError(f"gaussian_stats needs at least 2 feature vectors for a covariance, got {feats.shape[0]}")
    if not np.isfinite(feats).all():
        raise ValueError("gaussian_stats got non-finite features (NaN or inf); check the samples fed to the extractor")
    mu = feats.mean(axis=0)
    sigma = np.atleast_2d(np.cov(feats, rowvar=False))
    return mu, sigma


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix (negative eigenvalues clipped to 0)."""
    w, v = np.linalg.eigh(sigma)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    s1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    s2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    if mu1.ndim != 1 or mu2.ndim != 1:
        raise ValueError(f"frechet_distance: means must be vectors, got shapes {mu1.shape} and {mu2.shape}")
    if mu1.shape != mu2.shape:
        raise ValueError(f"frechet_distance: mean shapes differ: {mu1.shape} vs {mu2.shape} (features from different extractors?)")
    d = mu1.shape[0]
    for name, s in (("sigma1", s1), ("sigma2", s2)):
        if s.shape != (d, d):
            raise ValueError(f"frechet_distance: {name} has shape {s.shape}, expected ({d}, {d}) to match the means")
    for name, a in (("mu1", mu1), ("sigma1", s1), ("mu2", mu2), ("sigma2", s2)):
        if not np.isfinite(a).all():
            raise ValueError(f"frechet_distance: {name} contains NaN or inf")

    # Symmetrize away round-off asymmetry before the symmetric eigen-solvers.
    s1 = 0.5 * (s1 + s1.T)
    s2 = 0.5 * (s2 + s2.T)
    root1 = _psd_sqrt(s1)
    m = root1 @ s2 @ root1
    m = 0.5 * (m + m.T)
    eig = np.clip(np.linalg.eigvalsh(m), 0.0, None)
    tr_covmean = float(np.sqrt(eig).sum())

    diff = mu1 - mu2
    value = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)
    # The exact value is >= 0; a negative result is round-off only.
    return max(value, 0.0)
