"""Variational auto-encoder and the variants of Table 1 that change only its likelihood or KL weight.

Kingma and Welling, "Auto-encoding variational Bayes", ICLR 2014. Gaussian
encoder q(z|x) = N(mu, diag(sigma^2)), prior N(0, I), and a decoder
likelihood chosen by ``likelihood``:

* ``bernoulli``: cross-entropy on pixels in [0, 1] (Table 1's "VAE (cross-entr.)");
* ``gaussian``: N(D(z), gamma^2 I) with a fixed ``gamma`` (Table 1's "VAE (fixed variance)");
* ``gaussian_learned``: N(D(z), gamma^2 I) with a learned scalar gamma (Table 1's
  "VAE (learned variance)"), as in Dai and Wipf, "Diagnosing and enhancing VAE
  models", ICLR 2019: -log p(x|z) = ||x - D(z)||^2 / (2 gamma^2) + d log gamma
  + d/2 log(2 pi). ``gamma_update`` says how gamma is learned:
  ``gradient`` (the default): log gamma is a parameter, initialised at log
  ``gamma`` and trained by the run's optimizer, as in Dai and Wipf's code
  (daib13/TwoStageVAE, a trainable ``loggamma_x``); ``optimal``: every step
  sets gamma to its maximum-likelihood value for the batch,
  gamma^2 = ||x - D(z)||^2 / d (detached), before the update. The gradient
  form needs many epochs to get there (log gamma moves about lr per Adam
  step: 300 steps at lr 1e-3 leave gamma at 0.74 where the optimum is 0.19,
  under-weighting the reconstruction 15x), which is Dai and Wipf's point that
  gamma should reach its optimum; ``optimal`` gets there at every step, so it
  is the choice of short runs (config/config.yaml). ``gamma_min`` > 0 is a
  floor in both (projected after every update; Dai and Wipf's code has none,
  hence the default 0 = none);
* ``auto``: ``bernoulli`` for images, ``gaussian`` for vector data (the default
  of the subclasses, so that they build on any data shape).

``beta`` weights the KL term: 1 for the VAE, beta != 1 for the beta-VAE of
Higgins et al., "beta-VAE: Learning basic visual concepts with a constrained
variational framework", ICLR 2017 (Table 3's "beta-VAE" row).

``kl_warmup_steps`` > 0 ramps the KL weight linearly from 0 to ``beta`` over
that many training steps (the "warm-up" of Bowman et al. 2016 / Sonderby et
al. 2016, used by the VampPrior paper for its first 100 epochs); the step
count is a buffer, so it survives checkpoints and resumes.

Subclasses (``vampprior.py``, ``iaf.py``) change the posterior or the prior by
overriding :meth:`VAE.sample_latent` (a reparameterised z and a per-example KL
or KL estimate); the likelihood, KL weight and update stay here.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import GenerativeAE, Optimizers, register

LIKELIHOODS = ("auto", "bernoulli", "gaussian", "gaussian_learned")
GAMMA_UPDATES = ("gradient", "optimal")
LOG_2PI = math.log(2 * math.pi)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per example, summed over dimensions."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dimension (broadcasts)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension."""
    return -0.5 * (LOG_2PI + z.pow(2)).sum(-1)


@register("vae")
class VAE(GenerativeAE):
    enc_factor = 2
    defaults = {"likelihood": "bernoulli", "gamma": 1.0, "gamma_min": 0.0, "gamma_update": "gradient", "beta": 1.0,
                "kl_warmup_steps": 0}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        lik = self.params["likelihood"]
        if lik not in LIKELIHOODS:
            raise ConfigError(f"{self.name} likelihood '{lik}' unknown; valid: {', '.join(LIKELIHOODS)}")
        if lik == "auto":
            lik = "bernoulli" if self.is_image else "gaussian"
        if lik == "bernoulli" and not self.is_image:
            raise ConfigError(f"{self.name} likelihood 'bernoulli' needs images in [0, 1]; "
                              "use likelihood: gaussian (or gaussian_learned) for vector data")
        self.likelihood = lik
        gamma, gamma_min = float(self.params["gamma"]), float(self.params["gamma_min"])
        if gamma <= 0 or gamma_min < 0 or gamma < gamma_min:
            raise ConfigError(f"{self.name} needs gamma > 0 and 0 <= gamma_min <= gamma; got gamma={gamma}, "
                              f"gamma_min={gamma_min}")
        if self.params["gamma_update"] not in GAMMA_UPDATES:
            raise ConfigError(f"{self.name} gamma_update '{self.params['gamma_update']}' unknown; "
                              f"valid: {', '.join(GAMMA_UPDATES)}")
        self.optimal_gamma = lik == "gaussian_learned" and self.params["gamma_update"] == "optimal"
        if self.optimal_gamma:  # set in closed form every step, not trained
            self.register_buffer("log_gamma", torch.tensor(math.log(gamma)))
        elif lik == "gaussian_learned":
            self.log_gamma = nn.Parameter(torch.tensor(math.log(gamma)))
        warmup = int(self.params["kl_warmup_steps"])
        if warmup < 0:
            raise ConfigError(f"{self.name} kl_warmup_steps must be >= 0, got {warmup}")
        if warmup > 0:  # only then, so that checkpoints without warm-up keep their keys
            self.register_buffer("kl_step", torch.zeros((), dtype=torch.long))

    # -- posterior -----------------------------------------------------
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the Gaussian q(z|x)."""
        mu, logvar = self.encoder(x)[:, : 2 * self.latent_dim].chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.posterior(x)[0]

    def encode_with_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        mu, logvar = self.posterior(x)
        return mu, (0.5 * logvar).exp()

    def sample_latent(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised z ~ q(z|x) and the per-example KL(q(z|x) || p(z)) (closed form here).

        ``eps`` (N(0, I) noise of shape batch x latent_dim) fixes the draw, for tests.
        """
        mu, logvar = self.posterior(x)
        eps = torch.randn_like(mu) if eps is None else eps
        return mu + eps * (0.5 * logvar).exp(), gaussian_kl(mu, logvar)

    # -- likelihood ----------------------------------------------------
    @property
    def gamma(self) -> torch.Tensor | float:
        """The decoder's standard deviation (a detached tensor when learned)."""
        if self.likelihood == "gaussian_learned":
            return self.log_gamma.detach().exp()
        return float(self.params["gamma"])

    def nll(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """-log p(x|z) per example, averaged over the batch."""
        if self.likelihood == "bernoulli":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        d = x[0].numel()
        if self.likelihood == "gaussian_learned":
            sq = self.squared_error(x, logits)
            if self.optimal_gamma and self.training:
                self.set_optimal_gamma(sq.detach() / d)
            log_gamma = self.log_gamma
            return sq * torch.exp(-2 * log_gamma) / 2 + d * (log_gamma + 0.5 * LOG_2PI)
        gamma = float(self.params["gamma"])
        return self.squared_error(x, logits) / (2 * gamma**2) + d * (math.log(gamma) + 0.5 * LOG_2PI)

    @torch.no_grad()
    def set_optimal_gamma(self, mse: torch.Tensor) -> None:
        """gamma^2 = the mean squared error per element (the maximum-likelihood gamma), above gamma_min."""
        gamma_min = float(self.params["gamma_min"])
        log_gamma = 0.5 * torch.log(mse.clamp_min(max(gamma_min, 1e-6) ** 2))
        self.log_gamma.copy_(log_gamma.to(self.log_gamma.dtype))

    # -- objective and update ------------------------------------------
    def kl_weight(self) -> float:
        beta = float(self.params["beta"])
        warmup = int(self.params["kl_warmup_steps"])
        return beta if warmup == 0 else beta * min(1.0, float(self.kl_step) / warmup)

    def unfinished_warmup(self) -> str | None:
        warmup = int(self.params["kl_warmup_steps"])
        if warmup and int(self.kl_step) < warmup:
            return f"KL warm-up stopped at step {int(self.kl_step)} of {warmup}"
        return None

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, kl = self.sample_latent(x)
        nll = self.nll(x, self.decoder(z))
        kl = kl.mean()
        terms = {"loss": nll + self.kl_weight() * kl, "nll": nll, "kl": kl}
        if self.likelihood == "gaussian_learned":
            terms["gamma"] = self.gamma
        if int(self.params["kl_warmup_steps"]) > 0:
            terms["kl_weight"] = torch.tensor(self.kl_weight())
        return terms

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        terms = super().train_step(x, optimizers)
        self.after_update()
        return terms

    def after_update(self) -> None:
        """Bookkeeping after each optimizer step (subclasses with their own ``train_step`` call it too):
        project log gamma onto [log gamma_min, inf) and advance the KL warm-up."""
        gamma_min = float(self.params["gamma_min"])
        if self.likelihood == "gaussian_learned" and gamma_min > 0:
            with torch.no_grad():  # projected gradient step: gamma >= gamma_min
                self.log_gamma.clamp_(min=math.log(gamma_min))
        if int(self.params["kl_warmup_steps"]) > 0:
            self.kl_step += 1
