"""Latent statistics of Table 2 of the MaskAAE paper: NAC and active dimensions.

Mondal, Chowdhury, Jayendran, Singla, Asnani, Prathosh, "MaskAAE: Latent space
optimization for adversarial auto-encoders", UAI 2020 (Table 2, presented in
``shared/paper/rae-landscape-talk.txt``).

NAC (normalised absolute correlation).  For codes ``Z`` (N test items x m
dimensions), restricted to the active dimensions ``A`` (``k = |A|``), let
``R`` be the k x k Pearson correlation matrix of the columns.  Then

    NAC = 1 / (k (k - 1)) * sum_{i != j} |R_ij|,

the mean absolute off-diagonal entry: 0 for uncorrelated codes (what an
isotropic prior asks for), 1 when every pair is perfectly (anti-)correlated.
The Table 2 caption calls it the "average off-diagonal covariance"; we use the
correlation, which is the covariance of the standardised codes, so that NAC
is scale-free (a code multiplied by a mask value or a scale factor keeps its
NAC) and comparable across models and latent sizes.

Conventions:

- Dimensions whose codes are constant over the N items (max == min, zero
  variance) have no correlation and are dropped before ``k`` is counted.
- With fewer than 2 dimensions left, NAC is undefined and :func:`nac` returns
  ``nan``.
- For MaskAAE, pass ``active = mask >= 0.1`` (the dimensions
  :func:`active_dims` counts): masked dimensions are multiplied by a mask value
  near, but not exactly, 0, and would otherwise enter the average.

Active dimensions ``m_A``: the number of mask values ``>= 0.1`` (the threshold
of the authors' code); the full latent size for models without a mask.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from rae_bench.checks import ACTIVE_THRESHOLD


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor on any device
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def _active_indices(active: Any, m: int) -> np.ndarray:
    """Sorted column indices from a boolean mask of length ``m`` or an index array."""
    a = _to_numpy(active)
    if a.ndim != 1:
        raise ValueError(f"nac: active must be a 1-D boolean mask or index array, got shape {a.shape}")
    if a.dtype == bool:
        if a.shape[0] != m:
            raise ValueError(f"nac: boolean active mask has {a.shape[0]} entries, codes have {m} dimensions")
        return np.flatnonzero(a)
    if a.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"nac: active must be boolean or integer indices, got dtype {a.dtype}")
    if a.min() < 0 or a.max() >= m:
        raise ValueError(f"nac: active indices must lie in [0, {m - 1}], got range [{a.min()}, {a.max()}]")
    if np.unique(a).size != a.size:
        raise ValueError("nac: active indices contain duplicates")
    return np.sort(a.astype(np.int64))


def nac(codes: Any, active: Any = None) -> float:
    """Normalised absolute correlation of ``codes`` (N x m, numpy or torch) over ``active`` dims.

    ``active``: boolean mask of length m or integer indices; all dimensions when
    None.  Constant (zero-variance) dimensions are excluded; ``nan`` when fewer
    than 2 dimensions remain.  See the module docstring for the definition.
    """
    z = _to_numpy(codes)
    if z.ndim != 2:
        raise ValueError(f"nac needs an N x m array of codes (rows = test items), got shape {z.shape}")
    z = z.astype(np.float64, copy=False)
    if z.shape[0] < 2:
        raise ValueError(f"nac needs at least 2 codes for a correlation, got {z.shape[0]}")
    if not np.isfinite(z).all():
        raise ValueError("nac: codes contain NaN or inf")
    if active is not None:
        z = z[:, _active_indices(active, z.shape[1])]
    z = z[:, z.max(axis=0) > z.min(axis=0)]  # drop constant dimensions
    centred = z - z.mean(axis=0)
    # Rescale each column to max |value| 1 first: no overflow or underflow when squaring.
    scale = np.abs(centred).max(axis=0)
    keep = scale > 0
    centred = centred[:, keep] / scale[keep]
    k = centred.shape[1]
    if k < 2:
        return float("nan")
    standardised = centred / np.sqrt((centred ** 2).mean(axis=0))
    corr = np.clip(standardised.T @ standardised / standardised.shape[0], -1.0, 1.0)
    off_diagonal = np.abs(corr).sum() - np.abs(np.diag(corr)).sum()
    return float(off_diagonal / (k * (k - 1)))


def active_dims(mask_values: Any, latent_dim: int, threshold: float = ACTIVE_THRESHOLD) -> int:
    """Number of mask values ``>= threshold``; ``latent_dim`` when ``mask_values`` is None.

    ``mask_values`` (numpy or torch, any shape with ``latent_dim`` entries) are
    flattened first.
    """
    if isinstance(latent_dim, bool) or int(latent_dim) != latent_dim or latent_dim < 1:
        raise ValueError(f"active_dims: latent_dim must be a positive integer, got {latent_dim!r}")
    if mask_values is None:
        return int(latent_dim)
    mask = _to_numpy(mask_values).astype(np.float64, copy=False).ravel()
    if mask.size != latent_dim:
        raise ValueError(f"active_dims: {mask.size} mask values for latent_dim {latent_dim}")
    if not np.isfinite(mask).all():
        raise ValueError("active_dims: mask values contain NaN or inf")
    return int(np.count_nonzero(mask >= threshold))
