"""NAC and active dimensions (Table 2 of the MaskAAE paper)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rae_bench.metrics.latent_stats import active_dims, nac

# Two centred, orthogonal columns: in-sample correlation exactly 0.
_X = np.array([1.0, -1.0, 1.0, -1.0, 2.0, -2.0, 2.0, -2.0])
_Y = np.array([1.0, 1.0, -1.0, -1.0, 3.0, 3.0, -3.0, -3.0])


def test_independent_gaussian_codes_near_zero():
    codes = np.random.default_rng(0).normal(size=(5000, 8))
    value = nac(codes)
    assert 0.0 <= value < 0.05


def test_perfectly_anticorrelated_pair_is_one():
    x = np.random.default_rng(1).normal(size=300)
    assert nac(np.stack([x, -2.0 * x], axis=1)) == pytest.approx(1.0, abs=1e-12)


def test_two_correlated_pairs_give_one_third():
    """Pairs (x, -2x) and (y, 3y + 1) with x, y uncorrelated: |R| has 4 ones among
    the 12 off-diagonal entries, so NAC = 4/12 = 1/3."""
    assert np.dot(_X - _X.mean(), _Y - _Y.mean()) == 0.0
    codes = np.stack([_X, -2.0 * _X, _Y, 3.0 * _Y + 1.0], axis=1)
    assert nac(codes) == pytest.approx(1.0 / 3.0, abs=1e-12)


def test_scale_free():
    rng = np.random.default_rng(2)
    codes = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    scaled = codes * np.array([1e-3, 1.0, 50.0, 7.0, 1e4]) + 3.0
    assert nac(scaled) == pytest.approx(nac(codes), abs=1e-12)


def test_active_subset_is_respected():
    rng = np.random.default_rng(3)
    noise = rng.normal(size=(8, 2))
    codes = np.column_stack([_X, -2.0 * _X, _Y, 3.0 * _Y, noise])
    # active = the first pair only -> 1; both pairs -> 1/3; boolean and index forms agree
    assert nac(codes, active=np.array([True, True, False, False, False, False])) == pytest.approx(1.0, abs=1e-12)
    assert nac(codes, active=np.array([0, 1])) == pytest.approx(1.0, abs=1e-12)
    assert nac(codes, active=np.array([3, 2, 1, 0])) == pytest.approx(1.0 / 3.0, abs=1e-12)
    assert nac(codes, active=torch.tensor([True, True, True, True, False, False])) == pytest.approx(1.0 / 3.0, abs=1e-12)
    assert nac(codes) != pytest.approx(1.0 / 3.0, abs=1e-6)


def test_constant_dimensions_are_excluded():
    codes = np.column_stack([_X, np.full(8, 0.1), -2.0 * _X, np.zeros(8), _Y, 3.0 * _Y])
    assert nac(codes) == pytest.approx(1.0 / 3.0, abs=1e-12)
    # one varying dimension left: undefined
    assert math.isnan(nac(np.column_stack([_X, np.full(8, 0.1), np.zeros(8)])))


def test_fewer_than_two_dims_is_nan():
    codes = np.random.default_rng(4).normal(size=(50, 3))
    assert math.isnan(nac(codes[:, :1]))
    assert math.isnan(nac(codes, active=np.array([False, True, False])))
    assert math.isnan(nac(codes, active=np.array([], dtype=np.int64)))


def test_torch_codes_match_numpy():
    codes = np.random.default_rng(5).normal(size=(200, 6))
    codes[:, 1] += 0.8 * codes[:, 0]
    assert nac(torch.from_numpy(codes).float()) == pytest.approx(nac(codes), abs=1e-6)
    assert nac(torch.from_numpy(codes)) == pytest.approx(nac(codes), abs=1e-15)


@pytest.mark.parametrize("codes, active, match", [
    (np.zeros(10), None, "N x m"),
    (np.ones((1, 3)), None, "at least 2"),
    (np.array([[np.nan, 1.0], [0.0, 2.0]]), None, "NaN"),
    (np.ones((4, 3)), np.array([True, False]), "3 dimensions"),
    (np.ones((4, 3)), np.array([0, 3]), "indices"),
    (np.ones((4, 3)), np.array([1, 1]), "duplicates"),
    (np.ones((4, 3)), np.array([0.0, 1.0]), "boolean or integer"),
])
def test_nac_validation(codes, active, match):
    with pytest.raises(ValueError, match=match):
        nac(codes, active)


def test_active_dims_threshold():
    mask = np.array([0.0, 0.05, 0.1, 0.0999, 0.5, 0.99])
    assert active_dims(mask, 6) == 3  # 0.1, 0.5, 0.99 (>= threshold)
    assert active_dims(mask, 6, threshold=0.5) == 2
    assert active_dims(mask, 6, threshold=0.0) == 6
    assert active_dims(torch.tensor(mask).reshape(1, 6), 6) == 3
    assert isinstance(active_dims(mask, 6), int)


def test_active_dims_without_mask_is_latent_dim():
    assert active_dims(None, 64) == 64


def test_active_dims_validation():
    with pytest.raises(ValueError, match="4 mask values"):
        active_dims(np.ones(4), 5)
    with pytest.raises(ValueError, match="latent_dim"):
        active_dims(None, 0)
    with pytest.raises(ValueError, match="NaN"):
        active_dims(np.array([np.nan, 1.0]), 2)
