"""Wasserstein auto-encoder with an MMD penalty (WAE-MMD).

Tolstikhin, Bousquet, Gelly, Schoelkopf, "Wasserstein auto-encoders", ICLR
2018, Algorithm 2: deterministic encoder, squared-error cost, and
``lambda * MMD_k(Q_Z, P_Z)`` with the inverse multiquadric kernel
``k(x, y) = C / (C + ||x - y||^2)``, C = 2 m sigma_z^2, summed over the scales
used in the authors' code. The MMD is the unbiased U-statistic.

The cost is the authors' (tolstikhin/wae, ``wae.py``, ``reconstruction_loss``
for ``cost: l2sq``): ``c(x, y) = 0.05 * ||x - y||^2`` summed over the pixels,
with pixels in the authors' range: [0, 1] for MNIST, [-1, 1] for CelebA
(``input_normalize_sym``), i.e. 4x the squared error of [0, 1] pixels. So the
authors' lambda (10 on MNIST, 100 on CelebA) applies unchanged:
``cost_scale`` (0.05) and ``pixel_range`` (``unit`` or ``symmetric``) are the
two parameters of that formula (see config/paper.yaml for the sources).

Encoder pre-training (``pretrain_steps`` > 0; the authors' ``e_pretrain``,
on for MNIST and CelebA, configs.py L32-33, L84-85): before training, the
encoder alone is fitted so that the mean and covariance of its codes match
those of prior samples (wae.py ``pretrain_loss`` L130-144: the mean squared
difference of the means plus that of the covariances), by its own Adam at the
run's lr and betas (L404-408), on ``pretrain_batch`` items per step for at most
``pretrain_steps`` steps (``pretrain_encoder`` L429-452: 200 steps, batches of
``e_pretrain_sample_size``), stopping once the loss falls below
``pretrain_stop_loss`` (0.1, L451).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from ..errors import ConfigError
from .base import GenerativeAE, adam, register

PIXEL_RANGES = {"unit": 1.0, "symmetric": 2.0}  # width of the authors' pixel range: [0, 1] or [-1, 1]

IMQ_SCALES = (0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


def imq_mmd(x: torch.Tensor, y: torch.Tensor, prior_var: float = 1.0,
            scales: tuple[float, ...] = IMQ_SCALES) -> torch.Tensor:
    """Unbiased MMD^2 estimate between samples ``x`` and ``y`` (n x m each)."""
    n = x.shape[0]
    m = x.shape[1]
    xx, yy, xy = torch.cdist(x, x).pow(2), torch.cdist(y, y).pow(2), torch.cdist(x, y).pow(2)
    off_diag = 1.0 - torch.eye(n, device=x.device, dtype=x.dtype)
    total = x.new_zeros(())
    for s in scales:
        c = 2.0 * m * prior_var * s
        k_xx = (c / (c + xx) * off_diag).sum() / (n * (n - 1))
        k_yy = (c / (c + yy) * off_diag).sum() / (n * (n - 1))
        k_xy = (c / (c + xy)).sum() / (n * n)
        total = total + k_xx + k_yy - 2.0 * k_xy
    return total


def moment_mismatch(codes: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """The authors' pre-training loss (wae.py L130-144): mean squared difference of the two samples' means
    plus that of their (n - 1)-normalised covariances."""
    n = codes.shape[0]
    mean_q, mean_p = codes.mean(0, keepdim=True), prior.mean(0, keepdim=True)
    cov_q = (codes - mean_q).T @ (codes - mean_q) / (n - 1)
    cov_p = (prior - mean_p).T @ (prior - mean_p) / (n - 1)
    return (mean_p - mean_q).pow(2).mean() + (cov_p - cov_q).pow(2).mean()


class WAECost(GenerativeAE):
    """The authors' WAE cost ``cost_scale * ||x - y||^2`` on pixels of ``pixel_range``, and their optional
    encoder pre-training."""

    cost_defaults = {"cost_scale": 0.05, "pixel_range": "unit",
                     # off by default (our choice: the quick profile); the paper profile sets the authors' 200
                     "pretrain_steps": 0, "pretrain_batch": 1000, "pretrain_stop_loss": 0.1}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.params["pixel_range"] not in PIXEL_RANGES:
            raise ConfigError(f"model '{self.name}' pixel_range '{self.params['pixel_range']}' unknown; "
                              f"valid: {', '.join(PIXEL_RANGES)}")
        scale = self.params["cost_scale"]
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
            raise ConfigError(f"model '{self.name}' cost_scale must be a number > 0, got {scale!r}")
        width = PIXEL_RANGES[self.params["pixel_range"]] if self.is_image else 1.0
        self.cost_factor = float(scale) * width**2
        if self.params["pretrain_steps"] < 0 or self.params["pretrain_batch"] < 2:
            raise ConfigError(f"model '{self.name}' needs pretrain_steps >= 0 and pretrain_batch >= 2, got "
                              f"{self.params['pretrain_steps']} and {self.params['pretrain_batch']}")
        if not self.params["pretrain_stop_loss"] >= 0:
            raise ConfigError(f"model '{self.name}' pretrain_stop_loss must be >= 0, got "
                              f"{self.params['pretrain_stop_loss']!r}")

    def pretrain(self, draw: Callable[[int], torch.Tensor], optim_cfg: Mapping[str, Any]) -> dict[str, float]:
        """Fit the encoder's code moments to the prior's (the authors' ``pretrain_encoder``)."""
        steps = int(self.params["pretrain_steps"])
        if steps == 0:
            return {}
        opt = adam(self.encoder.parameters(), optim_cfg)  # its own optimizer, dropped afterwards (wae.py L406)
        loss, done = math.nan, 0
        while done < steps:
            z = self.encode(draw(int(self.params["pretrain_batch"])))
            mismatch = moment_mismatch(z, self.sample_prior(len(z)).to(z.dtype))
            opt.zero_grad(set_to_none=True)
            mismatch.backward()
            opt.step()
            loss, done = float(mismatch.detach()), done + 1
            if loss < float(self.params["pretrain_stop_loss"]):  # checked after the step, as wae.py L440-452
                break
        return {"pretrain_steps": float(done), "pretrain_loss": loss}

    def cost(self, x: torch.Tensor, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(the authors' cost, the plain squared error on [0, 1] pixels), both batch means."""
        rec = self.squared_error(x, logits)
        return self.cost_factor * rec, rec


@register("wae_mmd")
class WAEMMD(WAECost):
    defaults = {"lambda": 10.0, **WAECost.cost_defaults}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        cost, rec = self.cost(x, self.decoder(z))
        mmd = imq_mmd(z, torch.randn_like(z))
        return {"loss": cost + float(self.params["lambda"]) * mmd, "rec": rec, "cost": cost, "mmd": mmd}
