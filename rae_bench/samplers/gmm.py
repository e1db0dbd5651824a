"""Gaussian-mixture ex-post density on the codes (scikit-learn GaussianMixture).

Ghosh et al. 2020 fit a 10-component, full-covariance GMM to the training
codes of a trained auto-encoder. We fit with scikit-learn and keep only its
fitted arrays (weights, means, covariances) so the saved state is plain
tensors; sampling rebuilds a GaussianMixture from those arrays.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError, RaeBenchError
from .base import Sampler, register_sampler


COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


@register_sampler("gmm")
class GMMSampler(Sampler):
    defaults = {"components": 10, "covariance_type": "full", "max_iter": 100, "reg_covar": 1e-6}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # unknown keys and types (integers, numbers, strings) are checked there
        p = self.params
        if p["components"] < 1 or p["max_iter"] < 1:
            raise ConfigError(f"samplers.gmm.components and max_iter must be integers >= 1, got components="
                              f"{p['components']}, max_iter={p['max_iter']}")
        if p["covariance_type"] not in COVARIANCE_TYPES:
            raise ConfigError(f"samplers.gmm.covariance_type '{p['covariance_type']}' unknown; "
                              f"valid: {', '.join(COVARIANCE_TYPES)}")
        if not p["reg_covar"] > 0:
            raise ConfigError(f"samplers.gmm.reg_covar must be a number > 0, got {p['reg_covar']}")
        self.gmm: Any = None  # a fitted sklearn.mixture.GaussianMixture

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each fitted array for these params on this model (scikit-learn's layout)."""
        k, m, kind = int(self.params["components"]), self.model.latent_dim, self.params["covariance_type"]
        cov = {"full": (k, m, m), "tied": (m, m), "diag": (k, m), "spherical": (k,)}[kind]
        return {"weights_": (k,), "means_": (k, m), "covariances_": cov, "precisions_cholesky_": cov}

    def _new(self) -> "GaussianMixture":
        from sklearn.mixture import GaussianMixture  # imported when used: seconds saved in every other job

        return GaussianMixture(n_components=int(self.params["components"]),
                               covariance_type=str(self.params["covariance_type"]),
                               max_iter=int(self.params["max_iter"]), reg_covar=float(self.params["reg_covar"]),
                               random_state=self.seed)

    def fit(self, codes: torch.Tensor | None, spread: torch.Tensor | None = None) -> None:
        assert codes is not None
        k = int(self.params["components"])
        if codes.shape[0] < k:
            raise RaeBenchError(f"cannot fit a {k}-component GMM on {codes.shape[0]} codes; "
                                f"use more training data or fewer components (samplers.gmm.components)")
        self.gmm = self._new().fit(codes.detach().cpu().double().numpy())

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        assert self.gmm is not None, "fit or load the sampler first"
        # scikit-learn draws from its own RandomState: derive it from the torch generator for reproducibility
        self.gmm.random_state = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
        x, _ = self.gmm.sample(n)
        # GaussianMixture.sample returns components in blocks; shuffle so a sample grid mixes them
        perm = torch.randperm(n, generator=generator)
        device = next(self.model.parameters()).device
        return torch.from_numpy(x).float()[perm].to(device)

    def state_dict(self) -> dict[str, Any]:
        assert self.gmm is not None
        return {k: torch.from_numpy(np.asarray(getattr(self.gmm, k)))
                for k in ("weights_", "means_", "covariances_", "precisions_cholesky_")}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        expect = self.state_shapes()
        if not isinstance(state, Mapping) or set(state) != set(expect):
            raise ValueError(f"its arrays are {sorted(map(str, state)) if isinstance(state, Mapping) else state!r}, "
                             f"expected {sorted(expect)}")
        for key, shape in expect.items():
            value = state[key]
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
                raise ValueError(f"{key} has shape {got}, expected {shape} for these params on this model")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"{key} holds NaN or infinite values")
        self.gmm = self._new()
        for key, value in state.items():
            setattr(self.gmm, key, value.numpy())
        self.gmm.converged_ = True
