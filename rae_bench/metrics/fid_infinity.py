"""FID extrapolated to infinitely many samples (Chong & Forsyth, "Effectively Unbiased FID and Inception
Score and where to find them", CVPR 2020).

FID is biased upwards by a term that falls as 1/N in the number N of generated samples, so FIDs of runs
with different N cannot be compared. FID-infinity fits FID against 1/N by least squares over several N
and reads the fit at 1/N = 0. Their code (mchong6/FID_IS_infinity, ``score_infinity.py``,
``calculate_FID_infinity``) draws 15 subset sizes evenly spaced from 5,000 to 50,000 generated images
(a tenth of N up to N), takes each subset from a fresh shuffle of the generated features, and compares
it with the reference statistics of the whole reference set. We keep that design at our N: ``points``
sizes from ``N // 10`` (at least 2) to N, shuffles from ``np.random.RandomState(seed)`` (our choice).
"""
from __future__ import annotations

import numpy as np

from .frechet import frechet_distance, gaussian_stats

FID_INFINITY_POINTS = 15  # Chong & Forsyth's num_points


def fid_infinity_sizes(n: int, points: int = FID_INFINITY_POINTS) -> np.ndarray:
    """The subset sizes: ``points`` integers evenly spaced from ``n // 10`` (at least 2) to ``n``."""
    lo = max(2, n // 10)
    if n < 3 or points < 2:
        raise ValueError(f"FID-infinity needs at least 3 samples and 2 points, got {n} samples and {points} points")
    return np.unique(np.linspace(lo, n, points).astype(np.int64))


def fid_infinity(features: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray,
                 points: int = FID_INFINITY_POINTS, seed: int = 0) -> dict[str, float | int | list]:
    """``{"fid_inf", "fid_inf_points", "fid_inf_min_n"}``: the intercept of FID against 1/N at 1/N = 0."""
    feats = np.asarray(features, dtype=np.float64)
    sizes = fid_infinity_sizes(len(feats), int(points))
    rng = np.random.RandomState(int(seed))
    fids = []
    for size in sizes:
        pick = rng.permutation(len(feats))[:size]
        fids.append(frechet_distance(*gaussian_stats(feats[pick]), mu_ref, sigma_ref))
    slope, intercept = np.polyfit(1.0 / sizes, np.asarray(fids), 1)
    return {"fid_inf": float(intercept), "fid_inf_points": int(len(sizes)), "fid_inf_min_n": int(sizes[0])}
