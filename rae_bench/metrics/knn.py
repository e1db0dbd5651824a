"""Per-sample fidelity and diversity on k-nearest-neighbour balls, with blocked pairwise distances.

- k-NN precision and recall (Kynkäänniemi et al., "Improved precision and recall metric for assessing
  generative models", NeurIPS 2019): precision is the fraction of fake points inside the union of the
  real points' k-NN balls, recall the fraction of real points inside the union of the fake points' balls.
- density and coverage (Naeem et al., "Reliable fidelity and diversity metrics for generative models",
  ICML 2020): density counts, per fake point, the real balls that hold it (divided by k, averaged);
  coverage is the fraction of real points whose own ball holds at least one fake point.

These are the definitions of clovaai's reference code ``prdc`` 0.2 (``prdc/prdc.py``,
``compute_prdc``), which the tests match to 1e-6: a point's radius is the distance to its k-th nearest
neighbour *other than itself* (the (k+1)-th smallest distance of its row, self included:
``get_kth_value(distances, k=nearest_k + 1)``), balls are open (``distance < radius``), precision and
density use the real radii, recall the fake radii. Distances are Euclidean, in float64, computed as
sklearn's ``euclidean_distances`` does (``-2 x.y + |x|^2 + |y|^2``, clipped at 0, the diagonal of a set
against itself set to 0); prdc keeps float32 inputs in float32 (sklearn rounds the result), we upcast
them (our choice: fewer ties).

prdc builds the full N x M distance matrices (50,000 + 50,000 points: three 20 GB float64 matrices).
Here they are computed in strips of rows and tiles of columns, so memory holds the two feature sets
(as given), one strip of ``rows x M`` float64 distances and one tile's float64 copies: about
``rows * M * 8`` bytes beside the features (``BLOCK_ELEMENTS`` caps it).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

KNN_K = 5  # Naeem et al.'s and prdc's default nearest_k
BLOCK_ELEMENTS = 1 << 24  # float64 distances per strip: 128 MiB
TILE_ROWS = 2048  # rows of the other set upcast to float64 at a time (2048 x 2048-d: 32 MiB)


def _features(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch.Tensor, without importing torch
        x = x.detach().cpu().numpy()
    f = np.asarray(x)
    if f.ndim != 2 or not np.issubdtype(f.dtype, np.number):
        raise ValueError(f"k-NN metrics need N x D numeric feature arrays; {name} has shape {f.shape}")
    if not np.isfinite(f).all():
        raise ValueError(f"k-NN metrics: {name} contains NaN or inf; check the samples fed to the extractor")
    return f


def _sq_norms(x: np.ndarray) -> np.ndarray:
    out = np.empty(len(x))
    for s in range(0, len(x), TILE_ROWS):
        t = x[s:s + TILE_ROWS].astype(np.float64, copy=False)
        out[s:s + TILE_ROWS] = np.einsum("ij,ij->i", t, t)
    return out


def distance_strips(x: np.ndarray, y: np.ndarray, same: bool = False,
                    block_elements: int = BLOCK_ELEMENTS) -> Iterator[tuple[slice, np.ndarray]]:
    """``(rows, D)`` for consecutive row strips of the Euclidean distances between ``x`` and ``y``.

    ``D`` is ``len(rows) x len(y)`` float64; with ``same`` (``y`` is ``x``) the self-distances are 0.
    """
    xx, yy = _sq_norms(x), (None if same else _sq_norms(y))
    yy = xx if same else yy
    rows = max(1, int(block_elements) // max(1, len(y)))
    for start in range(0, len(x), rows):
        sl = slice(start, min(start + rows, len(x)))
        xb = x[sl].astype(np.float64, copy=False)
        strip = np.empty((sl.stop - sl.start, len(y)))
        for c in range(0, len(y), TILE_ROWS):
            cols = slice(c, min(c + TILE_ROWS, len(y)))
            strip[:, cols] = -2.0 * (xb @ y[cols].astype(np.float64, copy=False).T)
        strip += xx[sl, None]  # sklearn's order: -2xy, then + |x|^2, then + |y|^2
        strip += yy[None, :]
        np.maximum(strip, 0.0, out=strip)
        if same:
            idx = np.arange(sl.start, sl.stop)
            strip[idx - sl.start, idx] = 0.0
        yield sl, np.sqrt(strip, out=strip)


def knn_radii(x: np.ndarray, k: int, block_elements: int = BLOCK_ELEMENTS) -> np.ndarray:
    """Each point's distance to its k-th nearest neighbour in ``x`` other than itself."""
    radii = np.empty(len(x))
    for sl, d in distance_strips(x, x, same=True, block_elements=block_elements):
        radii[sl] = np.partition(d, k, axis=1)[:, k]  # index k of the sorted row: self (0) is index 0
    return radii


def prdc(real_features: Any, fake_features: Any, k: int = KNN_K,
         block_elements: int = BLOCK_ELEMENTS) -> dict[str, float | int]:
    """``{"knn_precision", "knn_recall", "density", "coverage", "knn_k"}`` of fake against real features."""
    real, fake = _features(real_features, "real features"), _features(fake_features, "fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"k-NN metrics: feature dimensions differ: {real.shape[1]} vs {fake.shape[1]} "
                         f"(different extractors?)")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise ValueError(f"k-NN metrics: k must be a positive integer, got {k!r}")
    k = int(k)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"k-NN metrics with k = {k} need more than {k} feature vectors per side, "
                         f"got {len(real)} and {len(fake)}; use more samples or a smaller k")
    r_real, r_fake = knn_radii(real, k, block_elements), knn_radii(fake, k, block_elements)
    fake_in_real = np.zeros(len(fake), dtype=bool)  # precision
    balls_per_fake = np.zeros(len(fake), dtype=np.int64)  # density
    real_in_fake = np.empty(len(real), dtype=bool)  # recall
    real_covered = np.empty(len(real), dtype=bool)  # coverage
    for sl, d in distance_strips(real, fake, block_elements=block_elements):
        inside = d < r_real[sl, None]
        fake_in_real |= inside.any(axis=0)
        balls_per_fake += inside.sum(axis=0)
        real_in_fake[sl] = (d < r_fake[None, :]).any(axis=1)
        real_covered[sl] = d.min(axis=1) < r_real[sl]
    return {"knn_precision": float(fake_in_real.mean()), "knn_recall": float(real_in_fake.mean()),
            "density": float(balls_per_fake.mean() / k), "coverage": float(real_covered.mean()), "knn_k": k}
