"""FlexAE: a deterministic auto-encoder with a learned latent prior.

Mondal, Asnani, Singla, Prathosh, "FlexAE: Flexibly learning latent priors
for Wasserstein auto-encoders", UAI 2021. The update rule and its
coefficients follow the authors' released code (dair-iitd/FlexAE,
``FlexAESR.py``); where we depart from it, the comment says so.

Nets: encoder ``E`` and decoder ``D`` (the suite's nets by ``arch``; the authors' InfoGAN-style
nets are ``arch: infogan``, rae_bench/nets.py, used by config/paper.yaml), a prior generator
``G_psi: R^{m'} -> R^m`` (a ReLU MLP of ``prior_depth`` hidden layers of
``prior_width`` units, no batch norm; noise ``n ~ N(0, I_{m'})`` with
``m' = noise_dim >= m``) and a latent critic ``C_kappa`` (ReLU MLP, WGAN-GP).
Generation decodes ``G(n)``; ``sample_prior`` returns ``G(n)``.

One ``train_step`` on a batch ``x`` makes, in the authors' order:

1. **auto-encoder** (E and D): the squared reconstruction error, per example
   summed over elements, averaged over the batch.
2. ``n_critic`` times: **latent critic** (WGAN-GP, ``gp_weight``) scoring the
   codes ``E(x)`` above the generator's samples ``G(n)`` (fresh ``n`` each
   time; codes computed once per step since E does not change meanwhile), and,
   with ``latent_smoothing``, the **image critic** (below).
3. with ``latent_smoothing``: the **smoothing** update of E and D (below).
4. **prior generator**: ``L_G = -E[C(G(n))]`` -- the learned prior chases the codes.
5. **encoder toward the prior**: ``L_E = E[C(E(x))]``, with a learning rate
   ``encoder_prior_lr_ratio`` (1/20) times the auto-encoder's, so the codes
   move toward the prior more slowly than the prior moves toward them.

Latent smoothing (``latent_smoothing: true``, the "SR" of ``FlexAESR.py``):
pairs ``(z_i, z_pi(i))`` of codes of the batch (``pi`` a random permutation,
where the authors' code uses a second batch) are mixed,
``z~_i = a_i z_i + (1 - a_i) z_pi(i)`` with ``a_i ~ U(0, 1)``, and decoded. An
image critic (conv64-conv128-FC1024 in the paper preset, an MLP for vectors;
WGAN-GP with the same ``gp_weight``) scores real ``x`` above ``D(z~)``; the
decoded interpolations are computed once per step and reused by the
``n_critic`` image-critic updates. The smoothing update minimises
``-E[C_img(D(z~))]`` over the encoder *and* the decoder, as the authors' code
does (its ``ae_trainer2`` updates all auto-encoder variables), with its own
optimizer.

Optimizers (authors' code, base rate ``lr``: auto-encoder Adam ``2 lr``;
encoder-to-prior ``lr / 10`` betas (0, 0.9); generator ``2 lr`` (0, 0.9);
latent critic ``lr`` (0, 0.9); image critic and smoothing ``2 lr`` (0.5, 0.9)).
Here ``training.optim.lr`` is the auto-encoder's rate and the others are the
``*_lr_ratio`` parameters times it, so the authors' values are the defaults.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from ..errors import ConfigError
from .base import GenerativeAE, Optimizers, adam, register
from .critics import (check_betas, check_nonnegative, check_positive_int, image_critic, latent_critic,
                      mlp_size, relu_mlp, scaled_lr, wgan_gp_critic_loss)


@register("flexae")
class FlexAE(GenerativeAE):
    monitor = "rec"
    defaults = {
        "noise_dim": None,              # m' >= m; null: m (authors' code: gan_lat_dim defaults to z_dim)
        "prior_depth": None,            # null: by arch preset (paper: 4 hidden layers, authors' code)
        "prior_width": None,            # null: by arch preset (paper: 1024 units, authors' code)
        "critic_depth": None,           # null: by arch preset (paper: 4, authors' code)
        "critic_width": None,           # null: by arch preset (paper: 1024, authors' code)
        "n_critic": 5,                  # authors' code: disc_training_ratio = 5
        "gp_weight": 10.0,              # authors' code: gradient_penalty_weight = 10 (both critics)
        "critic_lr_ratio": 0.5,         # authors' code: critic lr = lr, auto-encoder lr = 2 lr
        "generator_lr_ratio": 1.0,      # authors' code: generator lr = 2 lr
        "encoder_prior_lr_ratio": 0.05,  # authors' code: encoder-to-prior lr = lr / 10
        "adv_betas": [0.0, 0.9],        # authors' code: latent critic, generator, encoder-to-prior Adam betas
        "latent_smoothing": False,      # our choice of default; authors' FlexAESR.py always smooths
        "image_critic_lr_ratio": 1.0,   # authors' code: image critic lr = 2 lr
        "smoothing_lr_ratio": 1.0,      # authors' code: smoothing (ae_trainer2) lr = 2 lr
        "smoothing_betas": [0.5, 0.9],  # authors' code: image critic and smoothing Adam betas
    }

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, arch: str, params: dict[str, Any]) -> None:
        super().__init__(data_shape, latent_dim, arch, params)
        p = self.params
        noise_dim = latent_dim if p["noise_dim"] is None else p["noise_dim"]
        if isinstance(noise_dim, bool) or not isinstance(noise_dim, int):
            raise ConfigError(f"flexae noise_dim must be an integer >= latent_dim ({latent_dim}), got {noise_dim!r}")
        if noise_dim < latent_dim:
            raise ConfigError(f"flexae noise_dim m'={noise_dim} is smaller than latent_dim m={latent_dim}; "
                              f"the prior generator needs m' >= m (FlexAE, Mondal et al. 2021)")
        if not isinstance(p["latent_smoothing"], bool):
            raise ConfigError(f"flexae latent_smoothing must be true or false, got {p['latent_smoothing']!r}")
        check_positive_int("flexae", "n_critic", p["n_critic"])
        check_betas("flexae", "adv_betas", p["adv_betas"])
        check_betas("flexae", "smoothing_betas", p["smoothing_betas"])
        for key in ("gp_weight", "critic_lr_ratio", "generator_lr_ratio", "encoder_prior_lr_ratio",
                    "image_critic_lr_ratio", "smoothing_lr_ratio"):
            check_nonnegative("flexae", key, p[key])
        self.noise_dim = noise_dim
        depth, width = mlp_size(arch, p["prior_depth"], p["prior_width"], "flexae prior generator")
        self.prior_generator = relu_mlp(noise_dim, depth, width, latent_dim)
        self.critic = latent_critic(latent_dim, arch, p["critic_depth"], p["critic_width"])
        self.smoothing = bool(p["latent_smoothing"])
        if self.smoothing:
            self.image_critic = image_critic(data_shape, arch)

    # -- the interface -------------------------------------------------
    def generate(self, noise: torch.Tensor) -> torch.Tensor:
        """G_psi(noise): noise (N x m') to prior codes (N x m), with gradients."""
        return self.prior_generator(noise)

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``G(n)`` with ``n ~ N(0, I_{m'})`` drawn from ``generator`` (no gradients)."""
        device = next(self.prior_generator.parameters()).device
        noise = torch.randn(n, self.noise_dim, generator=generator).to(device)
        with torch.no_grad():
            return self.prior_generator(noise)

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        p = self.params
        adv = check_betas("flexae", "adv_betas", p["adv_betas"])
        ae_params = list(self.encoder.parameters()) + list(self.decoder.parameters())
        opts: Optimizers = {
            "ae": adam(ae_params, optim_cfg),
            "critic": torch.optim.Adam(self.critic.parameters(), lr=scaled_lr(optim_cfg, p["critic_lr_ratio"]),
                                       betas=adv),
            "generator": torch.optim.Adam(self.prior_generator.parameters(),
                                          lr=scaled_lr(optim_cfg, p["generator_lr_ratio"]), betas=adv),
            "encoder": torch.optim.Adam(self.encoder.parameters(),
                                        lr=scaled_lr(optim_cfg, p["encoder_prior_lr_ratio"]), betas=adv),
        }
        if self.smoothing:
            sm = check_betas("flexae", "smoothing_betas", p["smoothing_betas"])
            opts["image_critic"] = torch.optim.Adam(self.image_critic.parameters(),
                                                    lr=scaled_lr(optim_cfg, p["image_critic_lr_ratio"]), betas=sm)
            opts["smoothing"] = torch.optim.Adam(ae_params, lr=scaled_lr(optim_cfg, p["smoothing_lr_ratio"]), betas=sm)
        return opts

    def _mix(self, z: torch.Tensor) -> torch.Tensor:
        """Convex combinations of pairs of codes of the batch (global torch RNG)."""
        perm = torch.randperm(z.shape[0], device=z.device)
        a = torch.rand(z.shape[0], 1, device=z.device, dtype=z.dtype)
        return a * z + (1.0 - a) * z[perm]

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        p = self.params
        gp_weight = float(p["gp_weight"])
        enc_params = list(self.encoder.parameters())
        ae_params = enc_params + list(self.decoder.parameters())
        terms: dict[str, torch.Tensor] = {}

        # 1. auto-encoder on reconstruction
        rec = self.squared_error(x, self.decoder(self.encoder(x)))
        optimizers["ae"].zero_grad(set_to_none=True)
        rec.backward(inputs=ae_params)
        optimizers["ae"].step()
        terms["rec"] = rec

        # 2. critics
        with torch.no_grad():
            codes = self.encoder(x)
            fakes = self.decode(self._mix(codes)) if self.smoothing else None
        critic_params = list(self.critic.parameters())
        for _ in range(int(p["n_critic"])):
            with torch.no_grad():
                prior = self.generate(torch.randn(codes.shape[0], self.noise_dim, device=codes.device))
            loss, w_est, gp = wgan_gp_critic_loss(self.critic, codes, prior, gp_weight)
            optimizers["critic"].zero_grad(set_to_none=True)
            loss.backward(inputs=critic_params)
            optimizers["critic"].step()
            if self.smoothing:
                img_loss, img_w, img_gp = wgan_gp_critic_loss(self.image_critic, x, fakes, gp_weight)
                optimizers["image_critic"].zero_grad(set_to_none=True)
                img_loss.backward(inputs=list(self.image_critic.parameters()))
                optimizers["image_critic"].step()
        terms.update(critic=loss, gp=gp, wdist=w_est)
        if self.smoothing:
            terms.update(img_critic=img_loss, img_gp=img_gp, img_wdist=img_w)

        # 3. latent smoothing: decoded interpolations should look real to the image critic
        if self.smoothing:
            smooth = -self.image_critic(self.decode(self._mix(self.encoder(x)))).mean()
            optimizers["smoothing"].zero_grad(set_to_none=True)
            smooth.backward(inputs=ae_params)
            optimizers["smoothing"].step()
            terms["smooth"] = smooth

        # 4. the prior generator chases the codes
        gen = -self.critic(self.generate(torch.randn(x.shape[0], self.noise_dim, device=x.device))).mean()
        optimizers["generator"].zero_grad(set_to_none=True)
        gen.backward(inputs=list(self.prior_generator.parameters()))
        optimizers["generator"].step()

        # 5. the encoder moves toward the prior (small learning rate)
        enc = self.critic(self.encoder(x)).mean()
        optimizers["encoder"].zero_grad(set_to_none=True)
        enc.backward(inputs=enc_params)
        optimizers["encoder"].step()
        terms.update(gen=gen, enc=enc)

        out = {k: float(v.detach()) for k, v in terms.items()}
        out["loss"] = out["rec"] + out["wdist"]  # a summary for the log: every net has its own objective
        return out
