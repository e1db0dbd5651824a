"""Variational auto-encoder.

Kingma and Welling, "Auto-encoding variational Bayes", ICLR 2014. Gaussian
encoder q(z|x) = N(mu, diag(sigma^2)), prior N(0, I), and a decoder
likelihood chosen by ``likelihood``:

* ``bernoulli``: cross-entropy on pixels in [0, 1] (Table 1's "VAE (cross-entr.)");
* ``gaussian``: N(D(z), gamma^2 I) with a fixed ``gamma`` (Table 1's "fixed variance").

``beta`` weights the KL term (1 for the VAE; Higgins et al. 2017 for beta-VAE).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..errors import ConfigError
from .base import GenerativeAE, register


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


@register("vae")
class VAE(GenerativeAE):
    enc_factor = 2
    defaults = {"likelihood": "bernoulli", "gamma": 1.0, "beta": 1.0}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.params["likelihood"] not in ("bernoulli", "gaussian"):
            raise ConfigError(f"vae likelihood '{self.params['likelihood']}' unknown; valid: bernoulli, gaussian")
        if self.params["likelihood"] == "bernoulli" and not self.is_image:
            raise ConfigError("vae likelihood 'bernoulli' needs images in [0, 1]; use likelihood: gaussian for vector data")

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def nll(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per example, averaged over the batch."""
        if self.params["likelihood"] == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        gamma = float(self.params["gamma"])
        d = x[0].numel()
        return self.squared_error(x, logits) / (2 * gamma**2) + d * (math.log(gamma) + 0.5 * math.log(2 * math.pi))

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        nll = self.nll(x, self.decoder(z))
        kl = gaussian_kl(mu, logvar).mean()
        return {"loss": nll + float(self.params["beta"]) * kl, "nll": nll, "kl": kl}
