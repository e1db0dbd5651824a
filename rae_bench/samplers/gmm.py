"""Gaussian-mixture ex-post density on the codes (scikit-learn GaussianMixture or BayesianGaussianMixture).

Ghosh et al. 2020 fit a 10-component, full-covariance GMM to the training
codes of a trained auto-encoder. We fit with scikit-learn and keep only its
fitted arrays (weights, means, covariances) so the saved state is plain
tensors; sampling rebuilds the mixture from those arrays.

``mixture: bayesian`` is the estimator behind the RAE paper's printed numbers
(its "GMM_Dirichlet"): RAE my_utility/estimate_density_and_sample.py L22-24 fits
``BayesianGaussianMixture(n_components=K, covariance_type='full',
weight_concentration_prior=1/K)`` with scikit-learn's other defaults (max_iter
100, reg_covar 1e-6, the Dirichlet-process weight prior), and configurations/
config.py L102 notes "GMM_Dirichlet FID is : 8.69", the paper's RAE-L2 MNIST
value. Variational inference drives the weights of unneeded components towards
zero, where the plain EM fit spreads weight over all K. Sampling uses the
posterior-mean weights, means and covariances, as the authors' ``sample`` does
(L112), so the saved state has the same four arrays for both mixtures.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from ..errors import ConfigError, RaeBenchError
from ..checks import short
from .base import Sampler, register_sampler


COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
MIXTURES = ("plain", "bayesian")


@register_sampler("gmm")
class GMMSampler(Sampler):
    # weight_concentration_prior None: 1 / components, the authors' (and scikit-learn's) value
    defaults = {"components": 10, "covariance_type": "full", "max_iter": 100, "reg_covar": 1e-6,
                "mixture": "plain", "weight_concentration_prior": None}

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
        if p["mixture"] not in MIXTURES:
            raise ConfigError(f"samplers.gmm.mixture '{p['mixture']}' unknown; valid: {', '.join(MIXTURES)}")
        prior = p["weight_concentration_prior"]
        if prior is not None:
            if p["mixture"] != "bayesian":
                raise ConfigError("samplers.gmm.weight_concentration_prior applies only to the Bayesian mixture; "
                                  "set mixture: bayesian or remove it")
            if isinstance(prior, bool) or not isinstance(prior, (int, float)) or not 0 < prior < float("inf"):
                raise ConfigError(f"samplers.gmm.weight_concentration_prior must be a number > 0 (or null for "
                                  f"1/components), got {short(prior)}")
        self.gmm: Any = None  # a fitted sklearn.mixture.GaussianMixture or BayesianGaussianMixture

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """The shape of each fitted array for these params on this model (scikit-learn's layout)."""
        k, m, kind = int(self.params["components"]), self.model.latent_dim, self.params["covariance_type"]
        cov = {"full": (k, m, m), "tied": (m, m), "diag": (k, m), "spherical": (k,)}[kind]
        return {"weights_": (k,), "means_": (k, m), "covariances_": cov, "precisions_cholesky_": cov}

    def _new(self) -> Any:
        # imported when used: 1.8 s (-X importtime) saved in every other job
        from sklearn.mixture import BayesianGaussianMixture, GaussianMixture

        p = self.params
        k = int(p["components"])
        common = {"n_components": k, "covariance_type": str(p["covariance_type"]), "max_iter": int(p["max_iter"]),
                  "reg_covar": float(p["reg_covar"]), "random_state": self.seed}
        if p["mixture"] == "plain":
            return GaussianMixture(**common)
        prior = p["weight_concentration_prior"]
        return BayesianGaussianMixture(**common, weight_concentration_prior=1.0 / k if prior is None else float(prior))

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
