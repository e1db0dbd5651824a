"""VAE with a VampPrior (Table 3's "VAE-Vamprior" row).

Tomczak and Welling, "VAE with a VampPrior", AISTATS 2018. The prior is the
variational mixture of posteriors

    p(z) = 1/K sum_k q(z | u_k),

with K learned pseudo-inputs u_k (data-shaped parameters) pushed through the
model's own encoder. The pseudo-inputs of images go through a sigmoid so that
they stay in [0, 1] (no non-linearity for continuous, here vector, data): this
is our choice. The authors' code (jmtomczak/vae_vampprior, ``models/Model.py``
L23) uses ``Hardtanh(0, 1)``, whose gradient is zero outside [0, 1]; with the
code's initialisation N(-0.05, 0.01^2) (``pseudo_mean``, ``pseudo_std``, its
defaults, which we keep) every pseudo-input would start clipped at 0 with no
gradient, while the sigmoid keeps them trainable. The paper uses K = 500
(``--number_components``); our default ``components: 50`` is for speed,
configs set the paper's value. The KL warm-up of the authors' code (linear
over the first 100 epochs, ``utils/training.py`` L19-24) is the VAE's
``kl_warmup_steps``.

The KL term has no closed form and is estimated with the posterior sample, as
in the paper: KL ~ log q(z|x) - log p(z) at z ~ q(z|x).

BatchNorm: the paper's nets have none, ours do. The pseudo-inputs are encoded
with the encoder's BatchNorm layers in inference mode (running statistics,
which the pseudo-inputs never update), in training as at sampling time. So
the prior is one and the same function of (encoder, u) whether the model is
training or evaluated, and the data statistics are not mixed with the
pseudo-inputs'.

``sample_prior`` draws k uniformly and z ~ q(z | u_k); ``log_prior(z)`` is
log p(z) per example.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

from ..errors import ConfigError
from .base import register
from .vae import VAE, log_normal_diag


@contextmanager
def batchnorm_in_inference_mode(module: nn.Module) -> Iterator[None]:
    """Run ``module``'s BatchNorm layers on their running statistics (and leave those unchanged)."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    modes = [m.training for m in norms]
    for m in norms:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(norms, modes):
            m.train(mode)


@register("vae_vamp")
class VAEVampPrior(VAE):
    defaults = {**VAE.defaults, "likelihood": "auto", "components": 50, "pseudo_mean": -0.05, "pseudo_std": 0.01}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        k = int(self.params["components"])
        if k < 1:
            raise ConfigError(f"vae_vamp needs components >= 1, got {k}")
        # in place: an out-of-place op on the meta device (config validation) imports torch._dynamo (on_meta)
        init = torch.randn(k, *self.data_shape).mul_(float(self.params["pseudo_std"]))
        init.add_(float(self.params["pseudo_mean"]))
        self.pseudo_params = nn.Parameter(init)

    @property
    def n_components(self) -> int:
        return self.pseudo_params.shape[0]

    def pseudo_inputs(self) -> torch.Tensor:
        """The K pseudo-inputs u_k, data-shaped (in [0, 1] for images)."""
        return torch.sigmoid(self.pseudo_params) if self.is_image else self.pseudo_params

    def prior_components(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Means and log-variances (K x latent_dim) of the mixture components q(z | u_k)."""
        with batchnorm_in_inference_mode(self.encoder):
            return self.posterior(self.pseudo_inputs())

    def log_prior(self, z: torch.Tensor) -> torch.Tensor:
        """log p(z) = logsumexp_k log q(z | u_k) - log K, per row of ``z`` (n x latent_dim)."""
        mu, logvar = self.prior_components()
        per_component = log_normal_diag(z.unsqueeze(1), mu.unsqueeze(0), logvar.unsqueeze(0))  # n x K
        return torch.logsumexp(per_component, dim=1) - math.log(self.n_components)

    def sample_latent(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.posterior(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + eps * (0.5 * logvar).exp()
        return z, log_normal_diag(z, mu, logvar) - self.log_prior(z)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        k = torch.randint(self.n_components, (n,), generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator)
        mu, logvar = self.prior_components()
        k, eps = k.to(mu.device), eps.to(mu.device)
        return mu[k] + eps * (0.5 * logvar[k]).exp()
