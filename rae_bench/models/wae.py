"""Wasserstein auto-encoder with an MMD penalty (WAE-MMD).

Tolstikhin, Bousquet, Gelly, Schoelkopf, "Wasserstein auto-encoders", ICLR
2018, Algorithm 2: deterministic encoder, squared-error cost, and
``lambda * MMD_k(Q_Z, P_Z)`` with the inverse multiquadric kernel
``k(x, y) = C / (C + ||x - y||^2)``, C = 2 m sigma_z^2, summed over the scales
used in the authors' code. The MMD is the unbiased U-statistic.
"""
from __future__ import annotations

import torch

from .base import GenerativeAE, register

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


@register("wae_mmd")
class WAEMMD(GenerativeAE):
    defaults = {"lambda": 10.0}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        rec = self.squared_error(x, self.decoder(z))
        mmd = imq_mmd(z, torch.randn_like(z))
        return {"loss": rec + float(self.params["lambda"]) * mmd, "rec": rec, "mmd": mmd}
