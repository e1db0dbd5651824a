"""Synthetic data with a known true latent dimension ``n``.

``x = f(z)`` with ``z ~ N(0, I_n)`` and ``f: R^n -> R^d`` a fixed, seeded
two-hidden-layer tanh MLP::

    f(z) = s * (W3 tanh(g2 * W2 tanh(g1 * W1 z + b1) + b2) - c)

* ``W1`` (hidden x n), ``W2`` (hidden x hidden), ``W3`` (d x hidden) have
  i.i.d. N(0, 1) entries and are divided by their largest singular value, so
  each has spectral norm exactly 1; ``b1, b2 ~ N(0, 0.5^2)``.
* ``g1, g2`` are fixed gains that give the pre-activations unit standard
  deviation on a fixed reference batch (so tanh works in its non-linear
  range), ``c`` and ``s`` centre the output and scale it to unit mean
  per-coordinate variance on that batch.  All of these are constants of the
  map: it depends only on ``(n, d, hidden, seed)``.
* tanh is 1-Lipschitz and the linear maps have norm 1, so ``f`` is
  L-Lipschitz with ``L = s * g1 * g2`` (:attr:`SyntheticMap.lipschitz`).
* Its Jacobian ``s g1 g2 W3 D2 W2 D1 W1`` (``D`` diagonal with entries
  ``tanh' > 0``) has rank ``n`` for generic weights (needs ``n <= hidden``
  and ``n <= d``): the data is an ``n``-dimensional curved manifold in
  ``R^d``, not a linear subspace.

Options: ``n`` (required), ``d`` (default 64), ``hidden`` (128), ``seed``
(0), ``n_train`` (10000), ``n_test`` (2000).  The train and test latents come
from different generators seeded from ``(seed, n)``, and the first rows do
not depend on ``n_train`` / ``n_test``.  Everything is computed in float64 on
the CPU with numpy's PCG64 streams and returned as float32, so equal options
give bit-identical tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError
from .memo import memo
from .options import as_int, normalize
from .source import DataSource

DEFAULTS: dict[str, Any] = {"n": None, "d": 64, "hidden": 128, "seed": 0, "n_train": 10000, "n_test": 2000}
REFERENCE_SIZE = 4096
BIAS_STD = 0.5

# Stream tags for numpy SeedSequence: one per independent random stream.
_TAG_WEIGHTS, _TAG_REFERENCE, _TAG_TRAIN, _TAG_TEST = 1, 2, 3, 4


def options(source: str, raw: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Validate and fill in defaults; ``n`` is required for loading (not for :func:`shape`)."""
    opts = dict(normalize(source, raw, DEFAULTS))
    for key, minimum in (("d", 1), ("hidden", 1), ("seed", 0), ("n_train", 1), ("n_test", 1)):
        opts[key] = as_int(source, key, opts[key], minimum)
    if opts["n"] is not None:
        opts["n"] = as_int(source, "n", opts["n"], 1)
        if opts["n"] > opts["d"] or opts["n"] > opts["hidden"]:
            raise ConfigError(
                f"synthetic option n={opts['n']} must be <= d={opts['d']} and <= hidden={opts['hidden']} "
                f"(the latent dimension cannot exceed the ambient or hidden width)"
            )
    return tuple(sorted(opts.items()))


def shape(opts: tuple) -> tuple[int, ...]:
    return (dict(opts)["d"],)


@dataclass(frozen=True)
class SyntheticMap:
    """The fixed map ``f: R^n -> R^d`` (float64 tensors); see the module docstring."""

    w1: torch.Tensor
    b1: torch.Tensor
    g1: float
    w2: torch.Tensor
    b2: torch.Tensor
    g2: float
    w3: torch.Tensor
    center: torch.Tensor
    scale: float

    @property
    def n(self) -> int:
        return self.w1.shape[1]

    @property
    def d(self) -> int:
        return self.w3.shape[0]

    @property
    def lipschitz(self) -> float:
        """A Lipschitz constant of the map in the Euclidean norm: ``scale * g1 * g2``."""
        return self.scale * self.g1 * self.g2

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """Map a batch ``N x n`` (any float dtype; computed in float64) to ``N x d`` float64."""
        z = z.to(torch.float64)
        h = torch.tanh(self.g1 * (z @ self.w1.T) + self.b1)
        h = torch.tanh(self.g2 * (h @ self.w2.T) + self.b2)
        return self.scale * (h @ self.w3.T - self.center)


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(list(entropy))))


def _unit_spectral(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    w = rng.standard_normal((rows, cols))
    return w / np.linalg.norm(w, ord=2)


def synthetic_map(n: int, d: int = 64, hidden: int = 128, seed: int = 0) -> SyntheticMap:
    """Build the map for ``(n, d, hidden, seed)`` (deterministic)."""
    rng = _rng(seed, n, d, hidden, _TAG_WEIGHTS)
    w1 = _unit_spectral(rng, hidden, n)
    w2 = _unit_spectral(rng, hidden, hidden)
    w3 = _unit_spectral(rng, d, hidden)
    b1 = BIAS_STD * rng.standard_normal(hidden)
    b2 = BIAS_STD * rng.standard_normal(hidden)

    ref = _rng(seed, n, d, hidden, _TAG_REFERENCE).standard_normal((REFERENCE_SIZE, n))
    pre1 = ref @ w1.T
    g1 = float(1.0 / pre1.std())
    h1 = np.tanh(g1 * pre1 + b1)
    pre2 = h1 @ w2.T
    g2 = float(1.0 / pre2.std())
    out = np.tanh(g2 * pre2 + b2) @ w3.T
    center = out.mean(axis=0)
    scale = float(1.0 / np.sqrt(out.var(axis=0).mean()))

    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float64))  # noqa: E731
    return SyntheticMap(w1=t(w1), b1=t(b1), g1=g1, w2=t(w2), b2=t(b2), g2=g2, w3=t(w3), center=t(center), scale=scale)


def latents(split: str, opts: tuple) -> torch.Tensor:
    """The true latent codes ``z`` (float64, N x n) of a split."""
    o = dict(opts)
    _require_n(o)
    count = o["n_train"] if split == "train" else o["n_test"]
    tag = _TAG_TRAIN if split == "train" else _TAG_TEST
    return torch.from_numpy(_rng(o["seed"], o["n"], tag).standard_normal((count, o["n"])))


def _require_n(o: dict) -> None:
    if o["n"] is None:
        raise ConfigError("synthetic data needs option 'n' (the true latent dimension); set it in the data options")


def images(source: str, split: str, src: DataSource | None, opts: tuple) -> torch.Tensor:
    """float32 N x d (the name matches the other datasets' readers)."""
    o = dict(opts)
    _require_n(o)
    fmap = memo(("synthetic-map", o["n"], o["d"], o["hidden"], o["seed"]),
                lambda: synthetic_map(o["n"], o["d"], o["hidden"], o["seed"]))
    with torch.no_grad():
        return fmap(latents(split, opts)).to(torch.float32)


def has_labels(opts: tuple) -> bool:
    return False


def labels(source: str, split: str, src: DataSource | None, opts: tuple) -> torch.Tensor:
    raise ConfigError("dataset 'synthetic' has no labels; use a labelled dataset (mnist, fashion_mnist, cifar10, celeba)")
