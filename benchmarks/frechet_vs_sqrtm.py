"""Fréchet distance at d = 2048: ``rae_bench.metrics.frechet_distance`` vs the classical
formula with ``scipy.linalg.sqrtm(sigma1 @ sigma2)``.

The covariances are estimated from 10,000 draws each of two different Gaussians
with decaying spectra (eigenvalues ~ k^-1 and k^-1.2, random rotations), so both
are full rank and realistic in shape, like pool3 feature covariances.

Ours takes two symmetric eigen-solves (``eigh`` of sigma1, ``eigvalsh`` of
sigma1^(1/2) sigma2 sigma1^(1/2)); the reference takes a Schur decomposition of
the non-symmetric product inside ``sqrtm``, which is what limits it.

    python benchmarks/frechet_vs_sqrtm.py [--repeats 3] [--dim 2048] [--draws 10000]
"""
from __future__ import annotations

import argparse

import numpy as np
import scipy.linalg

from _common import interleaved, median, row, save

from rae_bench.metrics import frechet_distance, gaussian_stats

NAME = "frechet_vs_sqrtm"
TARGET = 3.0
PARITY_RTOL = 1e-6


def decaying_features(rng: np.random.Generator, n: int, d: int, decay: float) -> np.ndarray:
    """n draws of N(m, Q diag(k^-decay) Q^T) with a random rotation Q and random mean m."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    scale = np.arange(1, d + 1, dtype=np.float64) ** (-decay / 2)  # std: eigenvalue^(1/2)
    return (rng.normal(size=(n, d)) * scale) @ q.T + 0.1 * rng.normal(size=d)


def sqrtm_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """The classical formula: ||mu1 - mu2||^2 + tr(s1) + tr(s2) - 2 tr(sqrtm(s1 s2))."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean).real)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    mu1, s1 = gaussian_stats(decaying_features(rng, args.draws, args.dim, 1.0))
    mu2, s2 = gaussian_stats(decaying_features(rng, args.draws, args.dim, 1.2))
    print(f"d = {args.dim}, {args.draws} draws per covariance, min eigenvalues "
          f"{np.linalg.eigvalsh(s1)[0]:.3g} / {np.linalg.eigvalsh(s2)[0]:.3g} (full rank)")

    ours_value = frechet_distance(mu1, s1, mu2, s2)
    ref_value = sqrtm_frechet(mu1, s1, mu2, s2)
    rel = abs(ours_value - ref_value) / abs(ref_value)
    print(f"ours {ours_value:.10g}  sqrtm {ref_value:.10g}  relative difference {rel:.3g}")
    if rel > PARITY_RTOL:
        raise SystemExit(f"parity failed: relative difference {rel:.3g} > {PARITY_RTOL}")

    times = interleaved({
        "ours": lambda: frechet_distance(mu1, s1, mu2, s2),
        "scipy_sqrtm": lambda: sqrtm_frechet(mu1, s1, mu2, s2),
    }, repeats=args.repeats)
    ours, ref = median(times["ours"]), median(times["scipy_sqrtm"])
    ratio = ref / ours
    print(f"median: ours {ours:.3f} s, sqrtm formula {ref:.3f} s, {ratio:.2f}x")
    rows = [row(f"Fréchet distance, d = {args.dim} vs scipy sqrtm formula", ours=ours, reference=ref, unit="s",
                target=f">= {TARGET:g}x, same value to {PARITY_RTOL:g} rel.", met=ratio >= TARGET and rel <= PARITY_RTOL,
                runs=times, note=f"full-rank covariances of {args.draws:,} draws; relative difference {rel:.1g}")]
    save(NAME, "python benchmarks/frechet_vs_sqrtm.py", rows,
         {"parity": {"ours": ours_value, "reference": ref_value, "relative_difference": rel, "tolerance": PARITY_RTOL},
          "settings": vars(args)})


if __name__ == "__main__":
    main()
