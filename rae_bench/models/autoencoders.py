"""Deterministic auto-encoders: the plain AE and the regularized AE (RAE).

RAE: Ghosh, Sajjadi, Vergari, Black, Schoelkopf, "From variational to
deterministic autoencoders", ICLR 2020, eq. (11):
``L = ||x - D(E(x))||^2 + beta * 1/2 ||z||^2 + lambda * L_REG`` with
``L_REG = ||theta_D||^2`` for the L2 variant. Generation needs an ex-post
density on the codes (the ``gmm`` sampler), which is how the paper reports
RAE + GMM.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch

from .base import GenerativeAE, Optimizers, adam, register


@register("ae")
class AE(GenerativeAE):
    """Plain auto-encoder: squared reconstruction error only, N(0, I) as its nominal prior."""

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rec = self.squared_error(x, self.decoder(self.encoder(x)))
        return {"loss": rec, "rec": rec}


@register("rae_l2")
class RAEL2(GenerativeAE):
    """RAE with the code penalty beta/2 ||z||^2 and L2 weight decay lambda on the decoder."""

    defaults = {"beta": 1e-4, "decoder_weight_decay": 1e-7}

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        # lambda * ||theta_D||^2 enters as Adam's (coupled) weight decay 2*lambda on the decoder only
        lam = float(self.params["decoder_weight_decay"])
        groups = [{"params": self.encoder.parameters()},
                  {"params": self.decoder.parameters(), "weight_decay": 2 * lam}]
        return {"model": adam(groups, optim_cfg)}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        rec = self.squared_error(x, self.decoder(z))
        code = 0.5 * z.pow(2).sum(1).mean()
        return {"loss": rec + float(self.params["beta"]) * code, "rec": rec, "code_norm": code}
