"""VAE with the implicit optimal prior (VAE-IOP).

Takahashi, Iwata, Yamanaka, Yamada, Yagi, "Variational autoencoder with
implicit optimal priors", AAAI 2019. The prior that maximises the VAE
objective is the aggregated posterior q(z) = E_pD(x)[q(z|x)]. Its KL term is
split into a closed-form part and a low-dimensional density ratio:

    KL(q(z|x) || q(z)) = KL(q(z|x) || N(0, I)) - E_q(z|x)[ log q(z) / N(z; 0, I) ],

and the log ratio is replaced by the logit T(z) of a discriminator trained
with the logistic loss to tell aggregated-posterior samples z ~ q(z|x), x ~
data (label 1) from prior samples z ~ N(0, I) (label 0); at its optimum
T(z) = log q(z) / N(z; 0, I) (the density-ratio trick).

Schedule (``critic_schedule``):

- ``per_epoch``, the authors' (``takahashihiroshi/vae_iop`` @f79147d): one VAE
  epoch with T fixed, then ``critic_epochs`` discriminator epochs over the
  training data in fresh shuffled batches, each batch's posterior samples
  (no gradient) against fresh N(0, I) draws (models/bernoulli/
  bernoulli_vae_iop.py L149-187; main.py L74: ``n_epoch_dual=10``). The
  trainer runs the discriminator epochs in ``on_epoch_end``, so the critic
  also trains after the last VAE epoch, as there: T matches the final
  encoder for SIR sampling. Cost: ``critic_epochs`` encoder forward passes
  and critic steps per VAE step (``rae-bench plan`` counts them).
- ``per_batch`` (default; the quick profile): ``critic_steps`` discriminator
  steps on the batch's own posterior samples before each VAE step. Cheaper,
  but many steps on one batch of codes overfit T to that batch (issue 23).

The VAE step is on ``nll + beta * (KL(q(z|x) || N(0, I)) - T(z))`` with T's
weights fixed. The gradient still reaches the encoder through the
reparameterised z inside T; the derivative of log q_phi(z) with respect to
phi at fixed z has zero mean under q_phi(z), so nothing else is dropped
(this is also how the authors' code computes it, bernoulli_vae_iop.py L83-95).

Their code also warms the KL weight up from 0 to 1 over the first 100 epochs
(L153), which the VAE's ``kl_warmup_steps`` reproduces (in steps). Their
discriminator has 3 hidden tanh layers of 500 units with dropout 0.5 before
the output (L57-62) and Adam lr 1e-3 (``critic_lr``); the defaults here are
smaller, for CPU runs. The dropout is active in the discriminator's own steps
and off in the VAE step, as there (L160, L172).

Generation. The implicit prior q(z) has no closed-form sampler and the
paper only evaluates likelihoods. ``sample_prior`` draws from N(0, I) by
default (``prior_sampling: normal``), the standard VAE generation path, which
decodes poorly once the KL term no longer pulls q(z) toward N(0, I) (quick
MNIST run: Gen. FID 302 against 87 with ``sir``; the configs use ``sir``); the ex-post ``gmm`` and ``two_stage`` samplers fitted on the codes are
the suite's way of sampling an estimate of q(z). ``prior_sampling: sir``
instead samples the implicit prior itself by sampling-importance-resampling:
``sir_candidates`` draws from N(0, I) per sample, one of them kept with
probability proportional to exp(T(z)) ~ q(z) / N(z; 0, I).

The decoder likelihood is the VAE's (``likelihood``: ``bernoulli`` for
images, ``gaussian`` with fixed ``gamma``); ``auto`` picks bernoulli for
images and gaussian for vectors; ``gamma``, ``beta`` and ``kl_warmup_steps``
are the VAE's (``vae.py``).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

from ..errors import ConfigError
from .base import Optimizers, register
from .vae import VAE, gaussian_kl
from .wae_gan import CriticMixin, LatentCritic, critic_update, frozen

PRIOR_SAMPLING = ("normal", "sir")
CRITIC_SCHEDULES = ("per_batch", "per_epoch")


@register("vae_iop")
class VAEIOP(CriticMixin, VAE):
    monitor = "nll"
    defaults = {**VAE.defaults, "likelihood": "auto", "critic_lr": 1e-3, "critic_width": 64, "critic_depth": 2,
                "critic_dropout": 0.0, "critic_steps": 1, "critic_schedule": "per_batch", "critic_epochs": 10,
                "prior_sampling": "normal", "sir_candidates": 32}

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, arch: str, params: dict[str, Any]) -> None:
        super().__init__(data_shape, latent_dim, arch, params)
        self.critic = LatentCritic(self.latent_dim, self.params["critic_width"], self.params["critic_depth"], "tanh",
                                   float(self.params["critic_dropout"]))
        self.critic_steps = self._check_critic_steps()
        schedule = self.params["critic_schedule"]
        if schedule not in CRITIC_SCHEDULES:
            raise ConfigError(f"vae_iop critic_schedule '{schedule}' unknown; valid: {', '.join(CRITIC_SCHEDULES)}")
        if int(self.params["critic_epochs"]) < 1:
            raise ConfigError(f"vae_iop critic_epochs must be >= 1, got {self.params['critic_epochs']}")
        if schedule == "per_epoch":
            if int(params.get("critic_steps", 0)):
                raise ConfigError("vae_iop critic_steps (steps per batch) does not apply with critic_schedule: "
                                  "per_epoch; remove it and set critic_epochs, or use critic_schedule: per_batch")
            self.critic_steps = 0  # the critic trains between epochs only
        if self.params["prior_sampling"] not in PRIOR_SAMPLING:
            raise ConfigError(f"vae_iop prior_sampling '{self.params['prior_sampling']}' unknown; "
                              f"valid: {', '.join(PRIOR_SAMPLING)}")
        if int(self.params["sir_candidates"]) < 1:
            raise ConfigError(f"vae_iop sir_candidates must be >= 1, got {self.params['sir_candidates']}")

    def density_ratio_logits(self, z: torch.Tensor) -> torch.Tensor:
        """T(z), the estimate of log q(z) / N(z; 0, I)."""
        return self.critic(z)

    def update_critic(self, codes: torch.Tensor, optimizer: torch.optim.Optimizer) -> tuple[float, float]:
        """One density-ratio step: posterior samples ``codes`` (label 1) against fresh N(0, I) (label 0)."""
        codes = codes.detach()
        return critic_update(self.density_ratio_logits, optimizer, codes, torch.randn_like(codes))

    @classmethod
    def epoch_end_batches(cls, params: Mapping[str, Any], batches_per_epoch: int) -> int:
        p = {**cls.defaults, **params}
        return int(p["critic_epochs"]) * batches_per_epoch if p["critic_schedule"] == "per_epoch" else 0

    def on_epoch_end(self, batches: Iterable[torch.Tensor], optimizers: Optimizers) -> dict[str, float]:
        """``per_epoch``: ``critic_epochs`` passes over the training data, one critic step per batch on its
        posterior samples (bernoulli_vae_iop.py L171-187); the log gets the last pass's mean loss and accuracy."""
        if self.params["critic_schedule"] != "per_epoch":
            return {}
        losses: list[tuple[float, float]] = []
        for _ in range(int(self.params["critic_epochs"])):
            losses = []
            for x in batches:
                with torch.no_grad():
                    mu, logvar = self.posterior(x)
                    z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
                losses.append(self.update_critic(z, optimizers["critic"]))
        if not losses:
            return {}
        return {"critic_loss": sum(l for l, _ in losses) / len(losses),
                "critic_acc": sum(a for _, a in losses) / len(losses)}

    def sample_latent(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z ~ q(z|x) and the per-example estimate KL(q(z|x) || N(0, I)) - T(z) of KL(q(z|x) || q(z))."""
        mu, logvar = self.posterior(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z = mu + eps * (0.5 * logvar).exp()
        return z, gaussian_kl(mu, logvar) - self.density_ratio_logits(z)

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        mu, logvar = self.posterior(x)  # one encoder pass (BatchNorm statistics) for both steps
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        critic_loss, critic_acc = float("nan"), float("nan")
        for _ in range(self.critic_steps):
            critic_loss, critic_acc = self.update_critic(z, optimizers["critic"])
        with frozen(self.critic):
            terms = self.loss_terms(x, mu, logvar, z)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        self.after_update()
        out = {k: float(v.detach()) for k, v in terms.items()}
        if self.critic_steps:
            out.update(critic_loss=critic_loss, critic_acc=critic_acc)
        return out

    def loss_terms(self, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor,
                   z: torch.Tensor) -> dict[str, torch.Tensor]:
        nll = self.nll(x, self.decoder(z))
        kl_normal = gaussian_kl(mu, logvar).mean()
        log_ratio = self.density_ratio_logits(z).mean()
        kl = kl_normal - log_ratio  # estimate of KL(q(z|x) || q(z))
        terms = {"loss": nll + self.kl_weight() * kl, "nll": nll, "kl": kl, "kl_normal": kl_normal,
                 "log_ratio": log_ratio}
        if self.likelihood == "gaussian_learned":
            terms["gamma"] = self.gamma
        if int(self.params["kl_warmup_steps"]) > 0:
            terms["kl_weight"] = torch.tensor(self.kl_weight())
        return terms

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.posterior(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()
        return self.loss_terms(x, mu, logvar, z)

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = next(self.parameters()).device
        if self.params["prior_sampling"] == "normal":
            return torch.randn(n, self.latent_dim, generator=generator).to(device)
        k = int(self.params["sir_candidates"])
        candidates = torch.randn(n, k, self.latent_dim, generator=generator)
        with frozen(self.critic):
            log_w = self.density_ratio_logits(candidates.to(device).reshape(n * k, -1)).reshape(n, k)
        pick = torch.multinomial(torch.softmax(log_w.double().cpu(), dim=1), 1, generator=generator).squeeze(1)
        return candidates[torch.arange(n), pick].to(device)
