"""Shared pieces of the adversarial models (MaskAAE, FlexAE): ReLU MLPs,
latent and image critics, the WGAN-GP critic loss and optimizer helpers.

WGAN-GP: Gulrajani, Ahmed, Arjovsky, Dumoulin, Courville, "Improved training
of Wasserstein GANs", NeurIPS 2017, Algorithm 1: the critic minimises
``E[C(low)] - E[C(high)] + lambda_gp * E[(||grad C(x_hat)||_2 - 1)^2]`` with
``x_hat = low + u (high - low)``, ``u ~ U(0, 1)`` per example. Critics have no
batch normalisation (the penalty is per example).

Widths per architecture preset: ``paper`` is the authors' critic and prior
generator (four ReLU layers of 1024 units; conv64-conv128-FC1024 image critic,
in both authors' released codes, arnabkmondal/MaskAAE and dair-iitd/FlexAE);
``small`` and ``tiny`` are our choice, narrow enough for 2 CPU cores.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import torch
from torch import nn

from ..checks import MAX_MLP_DEPTH
from ..errors import ConfigError
from ..nets import PRESET_MLP, _check_preset, _image_geometry

# (depth, width) of the latent critic and of the FlexAE prior generator, per preset
CRITIC_MLP: dict[str, tuple[int, int]] = {"paper": (4, 1024), "small": (3, 128), "tiny": (2, 32)}
CRITIC_MLP["infogan"] = CRITIC_MLP["paper"]  # the paper-scale critics of the FlexAE code (FlexAESR.py L263-285)
# conv channels (two 4x4 stride-2 convs) and the hidden FC width of the image critic
IMAGE_CRITIC: dict[str, tuple[int, int, int]] = {"paper": (64, 128, 1024), "small": (8, 16, 128), "tiny": (4, 8, 32)}
IMAGE_CRITIC["infogan"] = IMAGE_CRITIC["paper"]


def relu_mlp(in_dim: int, depth: int, width: int, out_dim: int) -> nn.Sequential:
    """``depth`` hidden Linear+ReLU layers of ``width`` units, then a linear output layer."""
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, width), nn.ReLU(True)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def mlp_size(preset: str, depth: Any = None, width: Any = None, what: str = "critic") -> tuple[int, int]:
    """(depth, width) from explicit values or, where None, from the preset."""
    _check_preset(preset)
    d0, w0 = CRITIC_MLP[preset]
    depth = d0 if depth is None else depth
    width = w0 if width is None else width
    if isinstance(depth, bool) or not isinstance(depth, int) or not 0 <= depth <= MAX_MLP_DEPTH:
        raise ConfigError(f"{what} depth must be an integer from 0 to {MAX_MLP_DEPTH}, got {depth!r}")
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"{what} width must be an integer >= 1, got {width!r}")
    return depth, width


def latent_critic(latent_dim: int, preset: str, depth: int | None = None, width: int | None = None) -> nn.Module:
    """MLP critic on codes: R^m -> R."""
    d, w = mlp_size(preset, depth, width, "critic")
    return relu_mlp(latent_dim, d, w, 1)


class ConvCritic(nn.Module):
    """Image critic: Conv(c1, 4x4, s2)-ReLU-Conv(c2, 4x4, s2)-ReLU-FC(h)-ReLU-FC(1), as in the FlexAE code."""

    def __init__(self, shape: Sequence[int], c1: int, c2: int, hidden: int) -> None:
        super().__init__()
        c, _, _, _ = _image_geometry(shape)  # validates the shape
        size = shape[1] // 4
        self.net = nn.Sequential(
            nn.Conv2d(c, c1, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Flatten(), nn.Linear(c2 * size * size, hidden), nn.ReLU(True), nn.Linear(hidden, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def image_critic(shape: Sequence[int], preset: str) -> nn.Module:
    """Critic on data: the conv critic for images, a ReLU MLP (the preset's MLP widths) for vectors."""
    _check_preset(preset)
    if len(shape) == 1:
        hidden = PRESET_MLP[preset]
        return relu_mlp(shape[0], len(hidden), hidden[0], 1)
    return ConvCritic(shape, *IMAGE_CRITIC[preset])


def gradient_penalty(critic: nn.Module, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """E[(||grad C(x_hat)|| - 1)^2] on random interpolates (u from the global torch RNG)."""
    u = torch.rand((high.shape[0],) + (1,) * (high.dim() - 1), device=high.device, dtype=high.dtype)
    x_hat = (low + u * (high - low)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x_hat).sum(), x_hat, create_graph=True)
    norm = (grad.flatten(1).pow(2).sum(1) + 1e-12).sqrt()  # eps: a finite double-backward at grad = 0
    return (norm - 1.0).pow(2).mean()


def wgan_gp_critic_loss(critic: nn.Module, high: torch.Tensor, low: torch.Tensor,
                        gp_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Critic loss that scores ``high`` above ``low``; returns (loss, W estimate, penalty).

    ``W = E[C(high)] - E[C(low)]`` is the critic's estimate of the Wasserstein-1
    distance between the two samples' distributions.
    """
    high, low = high.detach(), low.detach()
    w_est = critic(high).mean() - critic(low).mean()
    gp = gradient_penalty(critic, high, low)
    return -w_est + gp_weight * gp, w_est, gp


def scaled_lr(optim_cfg: Mapping[str, Any], ratio: Any) -> float:
    """``ratio`` times the main learning rate (``training.optim.lr``)."""
    return float(optim_cfg.get("lr", 1e-3)) * float(ratio)


def make_optimizer(kind: str, params: Iterable[torch.nn.Parameter], lr: float,
                   betas: Sequence[float]) -> torch.optim.Optimizer:
    """``adam`` (with ``betas``) or ``rmsprop`` (TF1 defaults: decay 0.9, epsilon 1e-10, no momentum)."""
    params = list(params)
    if kind == "adam":
        b1, b2 = (float(b) for b in betas)
        return torch.optim.Adam(params, lr=lr, betas=(b1, b2))
    if kind == "rmsprop":
        return torch.optim.RMSprop(params, lr=lr, alpha=0.9, eps=1e-10)
    raise ConfigError(f"unknown optimizer '{kind}'; valid: adam, rmsprop")


def check_positive_int(model: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"model '{model}' parameter {name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_nonnegative(model: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ConfigError(f"model '{model}' parameter {name} must be a number >= 0, got {value!r}")
    return float(value)


def check_betas(model: str, name: str, value: Any) -> tuple[float, float]:
    try:
        b1, b2 = (float(b) for b in value)
    except (TypeError, ValueError):
        raise ConfigError(f"model '{model}' parameter {name} must be two numbers [beta1, beta2], "
                          f"got {value!r}") from None
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        raise ConfigError(f"model '{model}' parameter {name} must lie in [0, 1), got {value!r}")
    return b1, b2
