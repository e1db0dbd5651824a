"""The model's own prior (N(0, I) or whatever ``model.sample_prior`` draws)."""
from __future__ import annotations

import torch

from .base import Sampler, register_sampler


@register_sampler("prior")
class PriorSampler(Sampler):
    needs_codes = False

    def fit(self, codes: torch.Tensor | None, spread: torch.Tensor | None = None) -> None:
        """Nothing to fit: the prior was learned (or fixed) with the model."""

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return self.model.sample_prior(n, generator=generator)
