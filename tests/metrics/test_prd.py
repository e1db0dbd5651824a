"""Precision and recall for distributions (Sajjadi et al. 2018)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from rae_bench.metrics.prd import cluster_histograms, f_beta, prd, prd_from_histograms, prd_scores

EPS = 1e-10


@pytest.fixture(autouse=True)
def _one_thread():
    """k-means with one OpenMP thread: on a loaded machine (other jobs, pytest-xdist) its
    multi-threaded fits of small sets run tens of times slower; the clusterings agree."""
    with threadpool_limits(limits=1):
        yield


def _slopes(num_angles: int = 1001) -> np.ndarray:
    return np.tan(np.linspace(EPS, np.pi / 2 - EPS, num_angles))


def _mixture(rng: np.random.Generator, n: int, modes: np.ndarray, spread: float = 0.3) -> np.ndarray:
    """n points, equally many (up to one) from each mode centre, isotropic Gaussian noise."""
    idx = np.arange(n) % len(modes)
    return modes[idx] + spread * rng.normal(size=(n, modes.shape[1]))


def _mode_centres(num_modes: int = 10, dim: int = 16, seed: int = 0) -> np.ndarray:
    return 10.0 * np.random.default_rng(seed).normal(size=(num_modes, dim))


# -- prd_from_histograms: exact cases ----------------------------------------


def test_disjoint_supports_give_zero_curve():
    precision, recall = prd_from_histograms([1.0, 0.0], [0.0, 1.0])
    assert precision.shape == recall.shape == (1001,)
    np.testing.assert_array_equal(precision, 0.0)
    np.testing.assert_array_equal(recall, 0.0)


@pytest.mark.parametrize("dist", [[0.5, 0.5], [1.0, 0.0], [0.2, 0.3, 0.5]])
def test_identical_histograms_reach_one(dist):
    precision, recall = prd_from_histograms(dist, dist)
    # precision(lambda) = min(lambda, 1), recall(lambda) = min(1, 1/lambda)
    assert precision.max() == 1.0 and recall.max() == 1.0
    lam = _slopes()
    np.testing.assert_allclose(precision, np.minimum(lam, 1.0), atol=1e-12)
    np.testing.assert_allclose(recall, np.minimum(1.0, 1.0 / lam), atol=1e-12)
    assert max(f_beta(precision, recall, 8).max(), f_beta(precision, recall, 1 / 8).max()) == pytest.approx(1.0, abs=1e-12)


def test_mode_collapse_histogram_low_recall():
    """eval = [1, 0], ref = [0.5, 0.5]: precision = min(lambda/2, 1), recall = min(1/2, 1/lambda)."""
    precision, recall = prd_from_histograms([1.0, 0.0], [0.5, 0.5])
    lam = _slopes()
    np.testing.assert_allclose(precision, np.minimum(lam / 2, 1.0), atol=1e-12)
    np.testing.assert_allclose(recall, np.minimum(0.5, 1.0 / lam), atol=1e-12)
    assert precision.max() == pytest.approx(1.0, abs=1e-6)
    assert recall.max() == pytest.approx(0.5, abs=1e-6)


def test_spread_out_histogram_low_precision():
    """eval = [0.5, 0.5], ref = [1, 0]: precision = min(lambda, 1/2), recall = min(1, 1/(2 lambda))."""
    precision, recall = prd_from_histograms([0.5, 0.5], [1.0, 0.0])
    assert precision.max() == pytest.approx(0.5, abs=1e-6)
    assert recall.max() == pytest.approx(1.0, abs=1e-6)
    # Max F_8 over the exact curve is at lambda = 1/2 (p = 1/2, r = 1): 65 * 0.5 / 33.
    # The 1001-angle grid misses lambda = 1/2 by < 1e-3 in lambda.
    assert f_beta(precision, recall, 8).max() == pytest.approx(32.5 / 33.0, abs=1e-4)


def test_three_bins_partial_overlap():
    """eval = [0.5, 0.5, 0], ref = [0, 0.5, 0.5]: overlap 1/2 on the middle bin."""
    precision, recall = prd_from_histograms([0.5, 0.5, 0.0], [0.0, 0.5, 0.5], num_angles=3)
    # lambda = tan(eps) ~ eps, tan(pi/4) = 1, tan(pi/2 - eps) ~ 1/eps
    np.testing.assert_allclose(precision, [0.5 * np.tan(EPS), 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(recall, [0.5, 0.5, 0.5 * np.tan(EPS)], atol=1e-6)
    full_p, full_r = prd_from_histograms([0.5, 0.5, 0.0], [0.0, 0.5, 0.5])
    assert full_p.max() == pytest.approx(0.5, abs=1e-6)
    assert full_r.max() == pytest.approx(0.5, abs=1e-6)


def test_slope_one_gives_histogram_overlap():
    """At lambda = 1 (the middle angle), precision = recall = sum_i min(P_i, Q_i)."""
    rng = np.random.default_rng(0)
    p_hist = rng.dirichlet(np.ones(7))
    q_hist = rng.dirichlet(np.ones(7))
    precision, recall = prd_from_histograms(p_hist, q_hist, num_angles=1001)
    overlap = np.minimum(p_hist, q_hist).sum()
    assert precision[500] == pytest.approx(overlap, abs=1e-9)
    assert recall[500] == pytest.approx(overlap, abs=1e-9)
    assert np.all(np.diff(precision) >= -1e-12) and np.all(np.diff(recall) <= 1e-12)


@pytest.mark.parametrize("kwargs, match", [
    ({"eval_dist": [0.5, 0.5], "ref_dist": [1.0, 0.0, 0.0]}, "bins"),
    ({"eval_dist": [0.5, 0.6], "ref_dist": [0.5, 0.5]}, "sum to 1"),
    ({"eval_dist": [1.5, -0.5], "ref_dist": [0.5, 0.5]}, "negative"),
    ({"eval_dist": [[0.5, 0.5]], "ref_dist": [[0.5, 0.5]]}, "1-D"),
    ({"eval_dist": [0.5, 0.5], "ref_dist": [0.5, 0.5], "num_angles": 2}, "num_angles"),
    ({"eval_dist": [0.5, 0.5], "ref_dist": [0.5, 0.5], "epsilon": 0.0}, "epsilon"),
])
def test_histogram_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        prd_from_histograms(**kwargs)


# -- f_beta -------------------------------------------------------------------


def test_f_beta_values():
    assert f_beta(1.0, 1.0, 8) == pytest.approx(1.0)
    assert f_beta(0.5, 0.5, 3) == pytest.approx(0.5)
    assert f_beta(0.0, 0.0, 8) == 0.0
    assert f_beta(0.5, 1.0, 1) == pytest.approx(2 * 0.5 / 1.5)
    # (1 + 64) * 0.5 * 0.25 / (64 * 0.5 + 0.25)
    assert f_beta(0.5, 0.25, 8) == pytest.approx(65 * 0.125 / 32.25, rel=1e-12)
    p, r = np.array([0.1, 0.7, 0.0]), np.array([0.9, 0.2, 0.0])
    np.testing.assert_allclose(f_beta(p, r, 1 / 8), f_beta(r, p, 8), rtol=1e-12)
    with pytest.raises(ValueError, match="beta"):
        f_beta(0.5, 0.5, 0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        f_beta(1.5, 0.5, 8)


# -- feature sets: clustering --------------------------------------------------


def test_cluster_histograms_are_normalised_and_deterministic():
    rng = np.random.default_rng(1)
    modes = _mode_centres()
    a, b = _mixture(rng, 600, modes), _mixture(rng, 600, modes)
    e1, r1 = cluster_histograms(a, b, num_clusters=12, seed=3)
    e2, r2 = cluster_histograms(a, b, num_clusters=12, seed=3)
    assert e1.shape == r1.shape == (12,)
    assert e1.sum() == pytest.approx(1.0) and r1.sum() == pytest.approx(1.0)
    np.testing.assert_array_equal(e1, e2)
    np.testing.assert_array_equal(r1, r2)


def test_identical_feature_sets_score_one():
    rng = np.random.default_rng(2)
    feats = _mixture(rng, 1000, _mode_centres())
    precision, recall = prd(feats, feats.copy(), num_runs=3)
    assert precision.max() == pytest.approx(1.0, abs=1e-9)
    assert recall.max() == pytest.approx(1.0, abs=1e-9)
    scores = prd_scores(feats, feats, num_runs=3)
    assert scores["precision"] == pytest.approx(1.0, abs=1e-9)
    assert scores["recall"] == pytest.approx(1.0, abs=1e-9)


def test_same_distribution_scores_near_one():
    rng = np.random.default_rng(3)
    modes = _mode_centres()
    scores = prd_scores(_mixture(rng, 2000, modes), _mixture(rng, 2000, modes), num_runs=5)
    assert scores["precision"] > 0.95 and scores["recall"] > 0.95
    assert set(scores) == {"precision", "recall", "f8", "f1_8"}
    assert scores["precision"] == scores["f1_8"] and scores["recall"] == scores["f8"]
    assert all(isinstance(v, float) for v in scores.values())


def test_dropping_half_the_modes_halves_recall():
    """Eval covers 5 of 10 modes: precision(l) = min(l/2, 1), recall(l) = min(1/2, 1/l);
    max F_1/8 = 65/66 ~ 0.985, max F_8 = 32.5/64.5 ~ 0.504."""
    rng = np.random.default_rng(4)
    modes = _mode_centres()
    ref = _mixture(rng, 2000, modes)
    ev = _mixture(rng, 2000, modes[:5])
    scores = prd_scores(ev, ref, num_runs=5)
    assert scores["precision"] > 0.9
    assert 0.35 < scores["recall"] < 0.65
    assert scores["recall"] == pytest.approx(32.5 / 64.5, abs=0.05)


def test_prd_deterministic_for_fixed_seed_and_accepts_torch():
    rng = np.random.default_rng(5)
    modes = _mode_centres()
    a, b = _mixture(rng, 500, modes), _mixture(rng, 500, modes[:7])
    p1, r1 = prd(a, b, num_runs=3, seed=11)
    p2, r2 = prd(torch.from_numpy(a).float().double(), torch.from_numpy(b), num_runs=3, seed=11)
    np.testing.assert_array_equal(p1, p2)
    np.testing.assert_array_equal(r1, r2)
    assert prd_scores(a, b, num_runs=3, seed=11) == prd_scores(a, b, num_runs=3, seed=11)


def test_prd_runs_average_single_clusterings():
    """prd(num_runs=2, seed=s) is the mean of the curves of seeds s and s + 1."""
    rng = np.random.default_rng(6)
    modes = _mode_centres()
    a, b = _mixture(rng, 400, modes), _mixture(rng, 400, modes[:6])
    curves = [prd_from_histograms(*cluster_histograms(a, b, num_clusters=20, seed=s)) for s in (7, 8)]
    precision, recall = prd(a, b, num_runs=2, seed=7)
    np.testing.assert_allclose(precision, (curves[0][0] + curves[1][0]) / 2, rtol=0, atol=1e-15)
    np.testing.assert_allclose(recall, (curves[0][1] + curves[1][1]) / 2, rtol=0, atol=1e-15)


def test_unequal_sample_counts_raise():
    rng = np.random.default_rng(7)
    with pytest.raises(ValueError, match=r"300 eval and 200 reference") as info:
        prd(rng.normal(size=(300, 4)), rng.normal(size=(200, 4)))
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=r"300 eval and 200 reference"):
        cluster_histograms(rng.normal(size=(300, 4)), rng.normal(size=(200, 4)))


@pytest.mark.parametrize("eval_shape, ref_shape, match", [
    ((100,), (100,), "N x D"),
    ((100, 4), (100, 5), "dimensions differ"),
    ((5, 4), (5, 4), "cannot be clustered"),
])
def test_feature_shape_validation(eval_shape, ref_shape, match):
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match=match):
        prd(rng.normal(size=eval_shape), rng.normal(size=ref_shape), num_clusters=20)


def test_non_finite_features_raise():
    feats = np.zeros((50, 3))
    feats[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        prd(feats, np.zeros((50, 3)), num_clusters=5)


def test_clustering_is_the_reference_minibatch_kmeans_with_batch_size_100():
    """The reference prd_score.py passes no batch size, so it ran with scikit-learn's old default of 100;
    our histograms equal that clustering's, and differ from today's default (1024)."""
    from sklearn.cluster import MiniBatchKMeans

    rng = np.random.default_rng(0)
    eval_f = rng.normal(size=(1500, 8))
    ref_f = 0.5 * rng.normal(size=(1500, 8)) + 0.3
    union = np.concatenate([eval_f, ref_f])

    def hist(batch_size: int) -> np.ndarray:
        km = MiniBatchKMeans(n_clusters=20, n_init=10, batch_size=batch_size, random_state=3).fit(union)
        return np.bincount(km.labels_[:1500], minlength=20) / 1500

    ours, _ = cluster_histograms(eval_f, ref_f, num_clusters=20, seed=3)
    assert np.array_equal(ours, hist(100))
    assert not np.array_equal(ours, hist(1024))
