"""MaskAAE: an adversarial auto-encoder with a trainable mask on the latent space.

Mondal, Chowdhury, Jayendran, Singla, Asnani, Prathosh, "MaskAAE: Latent
space optimization for adversarial auto-encoders", UAI 2020. The objective and
its coefficients follow the authors' released code (arnabkmondal/MaskAAE,
``MaskAAE_MNIST.py``); where we depart from it, the comment says so.

Mask: ``m = 1 - exp(-alpha)`` with a learned ``alpha >= 0`` of size m
(clamped to >= 0 after every mask update, like the Keras ``NonNeg`` constraint
of the authors' code), so ``m`` lies in [0, 1). The mask multiplies the codes
*and* the prior samples before the latent critic (requirement R2 of the
paper), and the codes before the decoder. Encoding returns ``m * E(x)``;
generation decodes ``m * n`` with ``n ~ N(0, I)``. A dimension is *active*
when ``m_j >= 0.1`` (the authors' code).

One ``train_step`` on a batch ``x`` makes, in the authors' order:

1. **auto-encoder** (encoder + decoder)::

       L_AE = rec(x) / d + var_weight * mean_{i,j} w_j (E_j(x_i) - mean_i E_j(x_i))^2

   ``rec`` is the per-example reconstruction cost of ``D(m * E(x))`` (summed
   over the d pixels / coordinates, as in the rest of the suite; ``rec / d``
   is the per-element mean the authors' code uses). The second term is the
   variance penalty: ``w_j = exp(-var_sharpness * m_j^2)`` (no gradient to the
   mask) is ~1 for masked dimensions and ~0 for open ones, so it pushes the
   *unmasked* encoder output ``E_j(x)`` of masked dimensions toward a constant
   over the batch (the biased batch variance, averaged over batch and
   dimensions).
2. **latent critic** ``n_critic`` times (WGAN-GP, ``gp_weight``): scores the
   masked prior ``m * n`` above the masked codes ``m * E(x)``. The codes are
   computed once per step (the encoder does not change during these updates);
   each update draws fresh prior samples.
3. **encoder as generator**: ``L_G = -E[C(m * E(x))]``.
4. **mask** (``alpha`` only)::

       L_mask = mask_rec_weight * rec(x) / d + (1 - (E[C(m E(x))] - E[C(m n)]))^2
                + poly_weight(step) * sum_j m_j (1 - m_j)

   The middle term is ``(1 + W)^2`` with ``W = E[C(m n)] - E[C(m E(x))]`` the
   critic's Wasserstein estimate (prior matching); the last is the polarising
   penalty pushing every ``m_j`` to 0 or 1. The codes ``E(x)`` here are the
   ones of step 3, before its update (the authors draw a fresh batch).

Polarising weight schedule (authors' code): ``poly_weight_init`` (2/m),
multiplied by ``poly_growth`` (2) every ``poly_every`` steps, capped at
``poly_weight_max`` (2048); ``poly_every`` defaults to the authors'
``4 * I`` with ``I = 75`` if m <= 20 else ``min(10000, floor(1125 m / 10))``.
It is a function of the step counter buffer ``step`` (checkpointed with the
model), so a resumed run continues the schedule exactly.

Departures from the authors' code: the reconstruction cost is the suite's
squared error by default (``reconstruction: bce`` is the authors' MNIST
choice); the default optimizer is Adam (``optimizer: rmsprop`` is theirs,
with torch's RMSprop, whose accumulator starts at 0 where TF1's starts at 1);
one batch per step for every sub-update. Their code also scales the AE and
mask losses by 1/5 after ``5 I`` steps, which under RMSprop is (up to
epsilon) no change in the update, so we leave it out.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import ACTIVE_THRESHOLD  # 0.1, the authors' code: active_dim = count(m >= 0.1)
from ..errors import ConfigError
from .base import GenerativeAE, Optimizers, register
from .critics import (check_betas, check_nonnegative, check_positive_int, latent_critic, make_optimizer,
                      scaled_lr, wgan_gp_critic_loss)


def authors_poly_every(latent_dim: int) -> int:
    """Steps between two doublings of the polarising weight in the authors' code: 4 * I."""
    interval = 75 if latent_dim <= 20 else min(10000, math.floor(1125 * latent_dim / 10))
    return 4 * interval


@register("maskaae")
class MaskAAE(GenerativeAE):
    monitor = "rec"
    defaults = {
        "n_critic": 5,                 # authors' code: disc_training_ratio = 5
        "gp_weight": 10.0,             # authors' code: gradient_penalty_weight = 10 (Gulrajani et al. 2017)
        "var_weight": 100.0,           # authors' code: variance_penalty_weight = 100
        "var_sharpness": 10.0,         # authors' code: variance-penalty weight exp(-10 m^2)
        "mask_rec_weight": 1000.0,     # authors' code: 1000 * reconstruction loss in the mask loss
        "poly_weight_init": None,      # authors' code: 2 / m (null: that)
        "poly_growth": 2.0,            # authors' code: the weight doubles ...
        "poly_every": None,            # ... every 4 I steps (null: authors_poly_every(m))
        "poly_weight_max": 2048.0,     # authors' code: min(2048, ...)
        "alpha_init_max": 5.0,         # authors' code: alpha ~ U(0, 5) at the start
        "reconstruction": "squared_error",  # our choice (suite-wide); authors' MNIST code: bce
        "optimizer": "adam",           # our choice; authors' code: rmsprop
        "critic_lr_ratio": 0.2,        # authors' code: critic lr = lr, auto-encoder lr = 5 lr
        "generator_lr_ratio": 0.2,     # authors' code: encoder-as-generator lr = lr
        "mask_lr_ratio": 1.0,          # authors' code: mask lr = 5 lr = auto-encoder lr
        "adv_betas": [0.5, 0.9],       # our choice (Adam only): critic and encoder-as-generator
        "critic_depth": None,          # null: by arch preset (paper: 4, authors' code)
        "critic_width": None,          # null: by arch preset (paper: 1024, authors' code)
    }

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, arch: str, params: dict[str, Any]) -> None:
        super().__init__(data_shape, latent_dim, arch, params)
        p = self.params
        if p["reconstruction"] not in ("squared_error", "bce"):
            raise ConfigError(f"maskaae reconstruction '{p['reconstruction']}' unknown; valid: bce, squared_error")
        if p["reconstruction"] == "bce" and not self.is_image:
            raise ConfigError("maskaae reconstruction 'bce' needs images in [0, 1]; use squared_error for vector data")
        if p["optimizer"] not in ("adam", "rmsprop"):
            raise ConfigError(f"maskaae optimizer '{p['optimizer']}' unknown; valid: adam, rmsprop")
        check_positive_int("maskaae", "n_critic", p["n_critic"])
        if p["poly_every"] is not None:
            check_positive_int("maskaae", "poly_every", p["poly_every"])
        check_betas("maskaae", "adv_betas", p["adv_betas"])
        for key in ("gp_weight", "var_weight", "var_sharpness", "mask_rec_weight", "poly_growth",
                    "poly_weight_max", "alpha_init_max", "critic_lr_ratio", "generator_lr_ratio", "mask_lr_ratio"):
            check_nonnegative("maskaae", key, p[key])
        self.critic = latent_critic(self.latent_dim, arch, p["critic_depth"], p["critic_width"])
        # in place: an out-of-place op on the meta device (config validation) imports torch._dynamo (on_meta)
        self.alpha = nn.Parameter(torch.rand(self.latent_dim).mul_(float(p["alpha_init_max"])))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.poly_init = 2.0 / self.latent_dim if p["poly_weight_init"] is None else float(p["poly_weight_init"])
        self.poly_every = authors_poly_every(self.latent_dim) if p["poly_every"] is None else int(p["poly_every"])

    # -- mask ------------------------------------------------------------
    @property
    def mask(self) -> torch.Tensor:
        """m = 1 - exp(-alpha), in [0, 1)."""
        return 1.0 - torch.exp(-self.alpha)

    def active_dims(self) -> int:
        """Number of latent dimensions with mask value >= 0.1."""
        return int((self.mask.detach() >= ACTIVE_THRESHOLD).sum())

    def poly_weight(self, step: int | None = None) -> float:
        """Weight of the polarising penalty at ``step`` (default: the model's step counter)."""
        s = int(self.step) if step is None else int(step)
        cap, growth, k = float(self.params["poly_weight_max"]), float(self.params["poly_growth"]), s // self.poly_every
        if self.poly_init <= 0 or cap <= self.poly_init:
            return min(cap, self.poly_init)
        if growth > 1 and k * math.log(growth) >= math.log(cap / self.poly_init):
            return cap  # (and no float overflow for large k)
        return min(cap, self.poly_init * growth**k)

    def unfinished_warmup(self) -> str | None:
        """The polarising weight short of its cap: the mask has not been driven to 0/1 yet."""
        cap, weight = float(self.params["poly_weight_max"]), self.poly_weight()
        if weight >= cap:
            return None
        mask = self.mask.detach()
        binary = float(((mask < 0.05) | (mask > 0.95)).float().mean())
        return (f"mask not polarised: its polarising weight reached {weight:.3g} of its cap {cap:g} "
                f"({binary:.0%} of mask values within 0.05 of 0 or 1)")

    # -- the interface -------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.mask * self.encoder(x)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        device = self.alpha.device
        with torch.no_grad():
            noise = torch.randn(n, self.latent_dim, generator=generator).to(device)
            return self.mask * noise

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        p = self.params
        kind = p["optimizer"]
        betas = tuple(optim_cfg.get("betas", (0.9, 0.999)))
        adv = check_betas("maskaae", "adv_betas", p["adv_betas"])
        ae_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        return {
            "ae": make_optimizer(kind, ae_params, scaled_lr(optim_cfg, 1.0), betas),
            "critic": make_optimizer(kind, self.critic.parameters(), scaled_lr(optim_cfg, p["critic_lr_ratio"]), adv),
            "generator": make_optimizer(kind, self.encoder.parameters(),
                                        scaled_lr(optim_cfg, p["generator_lr_ratio"]), adv),
            "mask": make_optimizer(kind, [self.alpha], scaled_lr(optim_cfg, p["mask_lr_ratio"]), betas),
        }

    def reconstruction_cost(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Per-example reconstruction cost (summed over elements), averaged over the batch."""
        if self.params["reconstruction"] == "bce":
            return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1).mean()
        return self.squared_error(x, logits)

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        p = self.params
        d = x[0].numel()
        enc_params = list(self.encoder.parameters())
        ae_params = enc_params + list(self.decoder.parameters())
        critic_params = list(self.critic.parameters())

        # 1. auto-encoder: reconstruction + variance penalty on (nearly) masked dimensions
        m = self.mask.detach()
        h = self.encoder(x)
        rec = self.reconstruction_cost(x, self.decoder(m * h))
        w = torch.exp(-float(p["var_sharpness"]) * m.pow(2))
        var_pen = ((h - h.mean(0, keepdim=True)).pow(2) * w).mean()
        ae_loss = rec / d + float(p["var_weight"]) * var_pen
        optimizers["ae"].zero_grad(set_to_none=True)
        ae_loss.backward(inputs=ae_params)
        optimizers["ae"].step()

        # 2. latent critic (WGAN-GP): masked prior scored above masked codes
        with torch.no_grad():
            codes = m * self.encoder(x)
        for _ in range(int(p["n_critic"])):
            prior = m * torch.randn_like(codes)
            critic_loss, w_est, gp = wgan_gp_critic_loss(self.critic, prior, codes, float(p["gp_weight"]))
            optimizers["critic"].zero_grad(set_to_none=True)
            critic_loss.backward(inputs=critic_params)
            optimizers["critic"].step()

        # 3. encoder as the generator of the critic
        h = self.encoder(x)
        gen_loss = -self.critic(m * h).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        gen_loss.backward(inputs=enc_params)
        optimizers["generator"].step()

        # 4. mask: reconstruction + prior matching + polarising penalty (alpha only)
        poly_w = self.poly_weight()
        mask = self.mask
        h = h.detach()
        rec_m = self.reconstruction_cost(x, self.decoder(mask * h))
        gap = self.critic(mask * h).mean() - self.critic(mask * torch.randn_like(h)).mean()
        match = (1.0 - gap).pow(2)
        poly = (mask * (1.0 - mask)).sum()
        mask_loss = float(p["mask_rec_weight"]) * rec_m / d + match + poly_w * poly
        optimizers["mask"].zero_grad(set_to_none=True)
        mask_loss.backward(inputs=[self.alpha])
        optimizers["mask"].step()
        with torch.no_grad():
            self.alpha.clamp_(min=0.0)
            self.step += 1

        terms = {"rec": rec, "var_penalty": var_pen, "critic": critic_loss, "gp": gp, "wdist": w_est,
                 "gen": gen_loss, "mask_loss": mask_loss, "match": match, "poly": poly}
        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss"] = out["rec"] + out["wdist"]  # a summary for the log: every net has its own objective
        out["poly_weight"] = poly_w
        out["active_dims"] = float(self.active_dims())
        return out
