"""Wasserstein auto-encoder with an adversarial penalty in latent space (WAE-GAN).

Tolstikhin, Bousquet, Gelly, Schoelkopf, "Wasserstein auto-encoders", ICLR
2018, Algorithm 1 (GAN-based). A deterministic encoder Q(z|x), a decoder G,
the squared-error cost and a latent discriminator D_gamma: R^m -> (0, 1) that
tells prior samples z ~ P_Z = N(0, I) (label 1) from codes z~ = E(x)
(label 0). Per batch, in the authors' code's order (``update_order: ae_first``,
tolstikhin/wae wae.py L590-595 then L603-611):

1. encoder and decoder descend ``c(x, G(z~)) - lambda * log D(z~)``, with the
   discriminator held fixed (the non-saturating form, as in the authors' code);
2. the discriminator ascends ``log D(z) + log(1 - D(z~))`` (the logistic
   loss) on the codes of the *updated* encoder (their second ``sess.run``
   encodes the batch again); Algorithm 1 multiplies this objective by
   ``lambda``, which only rescales the critic's gradient and is a no-op under
   Adam, so it is left out.

``update_order: critic_first`` is the paper's Algorithm 1 instead: the
discriminator step first, then the auto-encoder step, both on the codes z~ of
one encoder pass. The discriminator is an MLP on z with ``critic_depth`` hidden layers of
``critic_width`` ReLU units; the paper uses 4 x 512 on MNIST and CelebA (the
defaults here are small, for CPU runs). ``critic_lr`` is its own Adam learning
rate (5e-4 on MNIST in the authors' code, ``tolstikhin/wae`` ``configs.py``,
``lr_adv``); its betas follow the run's ``optim`` block.

``prior_logit_trick`` (off by default; the authors' code calls it
``gan_p_trick``, credited there to the AVB paper) adds log N(z; 0, I) to the
discriminator's logit so that the net only has to learn the -log q(z) part of
the optimal logit log p(z) - log q(z).

The cost is the authors' ``0.05 * ||x - y||^2`` on their pixel range, as in
``wae_mmd`` (``cost_scale``, ``pixel_range``), so their lambda applies. The helpers ``LatentCritic`` and ``critic_update`` are shared with
``vae_iop``.
"""
from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError
from .base import GenerativeAE, Optimizers, adam, register
from .wae import WAECost

UPDATE_ORDERS = ("ae_first", "critic_first")  # the authors' code (wae.py L590-611); the paper's Algorithm 1
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "leaky_relu": lambda: nn.LeakyReLU(0.2)}


class LatentCritic(nn.Module):
    """MLP from codes (n x m) to one logit per code: ``depth`` hidden layers of ``width`` units."""

    def __init__(self, latent_dim: int, width: int, depth: int, activation: str = "relu",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if int(width) < 1 or int(depth) < 0:
            raise ConfigError(f"critic needs width >= 1 and depth >= 0, got width={width}, depth={depth}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"critic dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        d = latent_dim
        for _ in range(int(depth)):
            layers += [nn.Linear(d, int(width)), ACTIVATIONS[activation]()]
            d = int(width)
        if dropout > 0:
            layers.append(nn.Dropout(float(dropout)))
        layers.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).squeeze(-1)


def standard_normal_log_density(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per row."""
    return -0.5 * z.pow(2).sum(-1) - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def critic_update(logits_fn: Any, optimizer: torch.optim.Optimizer, positive: torch.Tensor,
                  negative: torch.Tensor) -> tuple[float, float]:
    """One logistic-regression step: ``positive`` rows labelled 1, ``negative`` rows 0.

    Returns the loss (sum of the two mean cross-entropies, as in the authors'
    code; 2 log 2 at chance) and the accuracy before the step.
    """
    pos, neg = logits_fn(positive), logits_fn(negative)
    loss = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos))
            + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg)))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        acc = 0.5 * ((pos > 0).float().mean() + (neg <= 0).float().mean())
    return float(loss.detach()), float(acc)


class frozen:
    """Context: the critic's parameters take no gradient and its dropout is off (eval mode)."""

    def __init__(self, critic: nn.Module) -> None:
        self.critic = critic

    def __enter__(self) -> nn.Module:
        self.was_training = self.critic.training
        self.flags = [p.requires_grad for p in self.critic.parameters()]
        for p in self.critic.parameters():
            p.requires_grad_(False)
        self.critic.eval()
        return self.critic

    def __exit__(self, *exc: Any) -> None:
        for p, f in zip(self.critic.parameters(), self.flags):
            p.requires_grad_(f)
        self.critic.train(self.was_training)


class CriticMixin:
    """Shared pieces of models with a latent critic: parameter split and optimizers."""

    critic: LatentCritic
    params: dict[str, Any]

    def autoencoder_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter but the critic's (encoder, decoder and any others, e.g. a learned decoder scale)."""
        critic = {id(p) for p in self.critic.parameters()}
        yield from (p for p in self.parameters() if id(p) not in critic)  # type: ignore[attr-defined]

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        critic_cfg = {**optim_cfg, "lr": float(self.params["critic_lr"])}
        return {"model": adam(self.autoencoder_parameters(), optim_cfg),
                "critic": adam(self.critic.parameters(), critic_cfg)}

    def _check_critic_steps(self) -> int:
        steps = int(self.params["critic_steps"])
        if steps < 0:
            raise ConfigError(f"model '{self.name}': critic_steps must be >= 0, got {steps}")  # type: ignore[attr-defined]
        return steps


@register("wae_gan")
class WAEGAN(CriticMixin, WAECost):
    monitor = "rec"
    defaults = {"lambda": 1.0, "critic_lr": 5e-4, "critic_width": 64, "critic_depth": 2,
                "critic_steps": 1, "prior_logit_trick": False, "update_order": "ae_first", **WAECost.cost_defaults}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.critic = LatentCritic(self.latent_dim, self.params["critic_width"], self.params["critic_depth"], "relu")
        self.critic_steps = self._check_critic_steps()
        if self.params["update_order"] not in UPDATE_ORDERS:
            raise ConfigError(f"model '{self.name}' update_order '{self.params['update_order']}' unknown; "
                              f"valid: {', '.join(UPDATE_ORDERS)}")

    def discriminator_logits(self, z: torch.Tensor) -> torch.Tensor:
        """logit D(z): large for codes that look like prior samples."""
        logits = self.critic(z)
        if self.params["prior_logit_trick"]:
            logits = logits + standard_normal_log_density(z)
        return logits

    def update_critic(self, codes: torch.Tensor, optimizer: torch.optim.Optimizer) -> tuple[float, float]:
        """One discriminator step: fresh prior samples (label 1) against ``codes`` (label 0)."""
        codes = codes.detach()
        return critic_update(self.discriminator_logits, optimizer, torch.randn_like(codes), codes)

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        critic_first = self.params["update_order"] == "critic_first"
        z = self.encoder(x)
        critic_loss, critic_acc = float("nan"), float("nan")
        if critic_first:
            for _ in range(self.critic_steps):
                critic_loss, critic_acc = self.update_critic(z, optimizers["critic"])
        with frozen(self.critic):
            terms = self.loss_terms(x, z)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        if not critic_first and self.critic_steps:
            with torch.no_grad():  # the updated encoder's codes, as the authors' second sess.run
                z = self.encoder(x)
            for _ in range(self.critic_steps):
                critic_loss, critic_acc = self.update_critic(z, optimizers["critic"])
        out = {k: float(v.detach()) for k, v in terms.items()}
        if self.critic_steps:
            out.update(critic_loss=critic_loss, critic_acc=critic_acc)
        return out

    def loss_terms(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
        cost, rec = self.cost(x, self.decoder(z))
        logits = self.discriminator_logits(z)
        gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))  # -log D(z~), batch mean
        return {"loss": cost + float(self.params["lambda"]) * gan, "rec": rec, "cost": cost, "gan": gan}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.loss_terms(x, self.encoder(x))
