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
from sklearn.mixture import GaussianMixture

from ..errors import RaeBenchError
from .base import Sampler, register_sampler


@register_sampler("gmm")
class GMMSampler(Sampler):
    defaults = {"components": 10, "covariance_type": "full", "max_iter": 100, "reg_covar": 1e-6}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gmm: GaussianMixture | None = None

    def _new(self) -> GaussianMixture:
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
        self.gmm = self._new()
        for key, value in state.items():
            setattr(self.gmm, key, value.numpy())
        self.gmm.converged_ = True
