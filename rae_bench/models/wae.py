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
"""
from __future__ import annotations

import torch

from ..errors import ConfigError
from .base import GenerativeAE, register

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


class WAECost(GenerativeAE):
    """The authors' WAE cost ``cost_scale * ||x - y||^2`` on pixels of ``pixel_range``."""

    cost_defaults = {"cost_scale": 0.05, "pixel_range": "unit"}

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
