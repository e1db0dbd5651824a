"""Fréchet distance and Gaussian statistics."""
from __future__ import annotations

import numpy as np
import pytest
from pytorch_fid.fid_score import calculate_frechet_distance

from rae_bench.metrics.frechet import frechet_distance, gaussian_stats


def _random_stats(rng: np.random.Generator, d: int, rank: int | None = None):
    a = rng.normal(size=(d, rank or 2 * d))
    sigma = a @ a.T / a.shape[1]
    mu = rng.normal(size=d)
    return mu, sigma


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("d", [16, 64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pytorch_fid(d, seed):
    rng = np.random.default_rng(seed)
    mu1, s1 = _random_stats(rng, d)
    mu2, s2 = _random_stats(rng, d)
    s2 = s2 * 3.0  # different scales
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = float(calculate_frechet_distance(mu1, s1, mu2, s2))
    assert ours == pytest.approx(ref, rel=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_matches_pytorch_fid_on_sample_stats():
    """Covariances estimated from features, like a real FID computation."""
    rng = np.random.default_rng(7)
    f1 = rng.normal(size=(400, 32)) @ rng.normal(size=(32, 32))
    f2 = rng.normal(size=(300, 32)) @ rng.normal(size=(32, 32)) + 0.5
    mu1, s1 = gaussian_stats(f1)
    mu2, s2 = gaussian_stats(f2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(float(calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-6)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")
def test_matches_pytorch_fid_on_singular_sample_stats():
    """Fewer samples than dimensions, as in test_fast_paths.py's 10 Inception features: rank-9 covariances."""
    rng = np.random.default_rng(11)
    f1, f2 = rng.normal(size=(10, 256)), rng.normal(size=(10, 256)) * 2.0 + 0.3
    stats = (*gaussian_stats(f1), *gaussian_stats(f2))
    assert frechet_distance(*stats) == pytest.approx(float(calculate_frechet_distance(*stats)), rel=1e-6)


@pytest.mark.parametrize("rank", [None, 5])  # full rank and singular (rank 5 of 32)
def test_identical_stats_give_zero(rank):
    mu, sigma = _random_stats(np.random.default_rng(3), 32, rank)
    scale = np.trace(sigma) + mu @ mu
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * scale


def test_equal_covariances_give_mean_distance():
    rng = np.random.default_rng(4)
    mu1, sigma = _random_stats(rng, 24)
    mu2 = rng.normal(size=24)
    expected = float(np.sum((mu1 - mu2) ** 2))
    assert frechet_distance(mu1, sigma, mu2, sigma) == pytest.approx(expected, rel=1e-9)


def test_diagonal_closed_form():
    rng = np.random.default_rng(5)
    std1 = rng.uniform(0.1, 3.0, size=10)
    std2 = rng.uniform(0.1, 3.0, size=10)
    mu1, mu2 = rng.normal(size=10), rng.normal(size=10)
    expected = float(np.sum((mu1 - mu2) ** 2) + np.sum((std1 - std2) ** 2))
    got = frechet_distance(mu1, np.diag(std1**2), mu2, np.diag(std2**2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_one_dimensional():
    # scalars are promoted: N(1, 4) vs N(-2, 9): 3^2 + (2 - 3)^2 = 10
    assert frechet_distance(1.0, 4.0, -2.0, 9.0) == pytest.approx(10.0, rel=1e-12)


def test_symmetric_and_nonnegative():
    rng = np.random.default_rng(6)
    for _ in range(5):
        mu1, s1 = _random_stats(rng, 20, rank=int(rng.integers(3, 40)))
        mu2, s2 = _random_stats(rng, 20, rank=int(rng.integers(3, 40)))
        ab = frechet_distance(mu1, s1, mu2, s2)
        ba = frechet_distance(mu2, s2, mu1, s1)
        assert ab >= 0.0 and ba >= 0.0
        assert ab == pytest.approx(ba, rel=1e-8)


def test_does_not_use_sqrtm(monkeypatch):
    import scipy.linalg

    def forbidden(*args, **kwargs):
        raise AssertionError("scipy.linalg.sqrtm must not be used")

    monkeypatch.setattr(scipy.linalg, "sqrtm", forbidden)
    mu, sigma = _random_stats(np.random.default_rng(8), 8)
    assert frechet_distance(mu, sigma, mu + 1.0, sigma) == pytest.approx(8.0, rel=1e-9)


def test_gaussian_stats_matches_numpy():
    feats = np.random.default_rng(9).normal(size=(50, 7)).astype(np.float32)
    mu, sigma = gaussian_stats(feats)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    np.testing.assert_allclose(mu, np.mean(feats.astype(np.float64), axis=0), rtol=1e-12)
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64), rowvar=False), rtol=1e-12)
    assert sigma.shape == (7, 7)


def test_gaussian_stats_rejects_bad_input():
    with pytest.raises(ValueError, match="N x D"):
        gaussian_stats(np.zeros(5))
    with pytest.raises(ValueError, match="at least 2"):
        gaussian_stats(np.zeros((1, 3)))


def test_shape_mismatch_raises():
    rng = np.random.default_rng(10)
    mu1, s1 = _random_stats(rng, 4)
    mu2, s2 = _random_stats(rng, 5)
    with pytest.raises(ValueError, match="mean shapes differ"):
        frechet_distance(mu1, s1, mu2, s2)
    with pytest.raises(ValueError, match="sigma2 has shape"):
        frechet_distance(mu1, s1, mu1, s2)
    with pytest.raises(ValueError, match="sigma1 has shape"):
        frechet_distance(mu1, s1[:3, :3], mu1, s1)


def _decaying_stats(rng: np.random.Generator, d: int, n: int, decay: float):
    """Sample statistics of n draws with eigenvalues ~ k^-decay and a random rotation (full rank for n > d)."""
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    feats = (rng.normal(size=(n, d)) * np.arange(1, d + 1) ** (-decay / 2)) @ q.T + 0.1 * rng.normal(size=d)
    return gaussian_stats(feats)


def test_matches_sqrtm_formula_decaying_spectrum():
    """The benchmark's comparison (benchmarks/frechet_vs_sqrtm.py) at a moderate d: scipy's sqrtm called directly."""
    import scipy.linalg

    rng = np.random.default_rng(11)
    mu1, s1 = _decaying_stats(rng, 192, 1000, 1.0)
    mu2, s2 = _decaying_stats(rng, 192, 1000, 1.2)
    diff = mu1 - mu2
    ref = float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(scipy.linalg.sqrtm(s1 @ s2)).real)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(ref, rel=1e-6)
