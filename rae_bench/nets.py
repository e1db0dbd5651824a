"""Encoder and decoder builders by data shape and architecture preset.

``paper`` follows the convolutional nets of Ghosh et al., "From variational to
deterministic autoencoders", ICLR 2020, Appendix, which the paper profile gives every row
but FlexAE's (FlexAE's own nets are ``infogan``, below):

* 28x28x1 and 32x32x3: encoder Conv128-Conv256-Conv512-Conv1024 (4x4, stride
  2, BatchNorm, ReLU) -> FC(m); decoder FC(8x8x1024) (linear: no BN, no ReLU)
  -> ConvT512 -> ConvT256 (4x4, stride 2, BN, ReLU) -> ConvT(C) (4x4, stride
  1, 'same'). MNIST is padded to 32x32 on the way in and cropped back to 28x28
  on the way out, as in the authors' code.
* 64x64x3 (CelebA): the same with 5x5 kernels and one more decoder block
  (ConvT128), 8 -> 16 -> 32 -> 64, and a 5x5 stride-1 output layer.

Sources (authors' Keras code, ParthaEth/Regularized_autoencoders-RAE-,
``models/rae/rae_models.py`` -- see config/paper.yaml for the line numbers):
the decoder's first Dense layer has no activation or batch norm; the output
Conv2DTranspose is 4x4 for MNIST/CIFAR and 5x5 for CelebA, stride 1 with
'same' padding (TF pads a 4x4 'same' layer 1 before and 2 after, so we crop
one more row and column at the bottom/right); inputs are scaled to [-1, 1]
before the MNIST/CIFAR encoder (``rae_mnist.py``: ``Lambda(lambda x: x*2.0 - 1.0)``;
the CelebA encoder takes [0, 1]); targets and the sigmoid output stay in [0, 1],
as there.
* vectors: MLPs (the MaskAAE synthetic experiments, Mondal et al., UAI 2020).

``small`` is the same family with 1/16 of the channels (8-16-32-64) so that a
model trains on 2 CPU cores in minutes; ``tiny`` (1/32, two hidden layers for
vectors) exists for tests.

``infogan`` is the FlexAE paper's net (Mondal et al., UAI 2021; the authors'
``dair-iitd/FlexAE`` @fcc23aa, ``FlexAESR.py``), InfoGAN-style (Chen et al. 2016):

* encoder (L186-204): Conv64 (4x4, stride 2, ReLU, no BN) -> Conv128 (4x4,
  stride 2, BN, ReLU) -> FC1024 (BN, ReLU) -> FC(m);
* decoder (L206-244): FC1024 (BN, ReLU) -> FC(128 x s/4 x s/4) (BN, ReLU) ->
  ConvT128 -> ConvT64 (4x4, stride 2, BN, ReLU) -> Conv(C) (3x3, stride 1,
  'same', sigmoid), s the image side (7 for MNIST: no padding to 32 here).

Inputs stay in [0, 1] (their ``TrainingDataGenerator``: ``x / 255``, L92).
Kernels start Glorot-normal in the decoder (L172, ``kernel_initializer``) and
Glorot-uniform in the encoder (TF's default); BatchNorm has TF's eps 1e-3 and
momentum 0.99 (PyTorch's 0.01). Our choice: no bias before a BatchNorm (it
cancels), which TF's layers carry. For vectors ``infogan`` is the ``paper`` MLP.

Image decoders return logits; models apply a sigmoid to get pixels in [0, 1].
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
import torch.nn.functional as F

from .errors import ConfigError, unknown_name

# Base channel width per preset; blocks use width * (1, 2, 4, 8).
PRESET_WIDTH = {"paper": 128, "small": 8, "tiny": 4}
PRESET_MLP = {"paper": (512, 512, 512), "small": (128, 128), "tiny": (32,)}
PRESET_MLP["infogan"] = PRESET_MLP["paper"]
PRESETS = (*PRESET_WIDTH, "infogan")
IMAGE_SIZES = (28, 32, 64)  # square image sides the conv nets support (any channel count)


def _check_preset(preset: str) -> None:
    if preset not in PRESETS:
        raise unknown_name("architecture preset", preset, PRESETS)


def _image_geometry(shape: Sequence[int]) -> tuple[int, int, int, int]:
    """(channels, padded size, kernel, padding) of the supported image shapes."""
    c, h, w = shape
    if h != w or h not in IMAGE_SIZES:
        raise ConfigError(
            f"no conv net for images of shape {tuple(shape)}; supported: 1x28x28, 3x32x32, 3x64x64 (or vectors)")
    if h == 64:
        return c, 64, 5, 2
    return c, 32, 4, 1


class ConvEncoder(nn.Module):
    def __init__(self, shape: Sequence[int], out_dim: int, width: int) -> None:
        super().__init__()
        c, size, k, p = _image_geometry(shape)
        self.pad = (size - shape[1]) // 2
        self.symmetric_input = size == 32  # the authors rescale MNIST/CIFAR inputs to [-1, 1], not CelebA's
        layers: list[nn.Module] = []
        chans = [c] + [width * f for f in (1, 2, 4, 8)]
        for cin, cout in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(cin, cout, k, stride=2, padding=p, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(chans[-1] * (size // 16) ** 2, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.symmetric_input:
            x = 2.0 * x - 1.0  # the authors' input range for MNIST/CIFAR
        if self.pad:
            x = F.pad(x, (self.pad,) * 4)
        return self.fc(self.conv(x).flatten(1))


class ConvDecoder(nn.Module):
    def __init__(self, shape: Sequence[int], latent_dim: int, width: int) -> None:
        super().__init__()
        c, size, k, p = _image_geometry(shape)
        self.crop = (size - shape[1]) // 2
        top = width * 8
        self.fc = nn.Sequential(nn.Linear(latent_dim, top * 8 * 8), nn.Unflatten(1, (top, 8, 8)))
        chans = [top] + [width * f for f in ((4, 2) if size == 32 else (4, 2, 1))]
        layers: list[nn.Module] = []
        for cin, cout in zip(chans[:-1], chans[1:]):
            # output = (in-1)*2 - 2p + k + op doubles the size for (k=4,p=1,op=0) and (k=5,p=2,op=1)
            layers += [nn.ConvTranspose2d(cin, cout, k, stride=2, padding=p, output_padding=k % 2, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(True)]
        # stride-1 output layer, 'same' padding as in the authors' TF code: 5x5 for CelebA (symmetric),
        # 4x4 otherwise (padding 1 gives size + 1; TF's 'same' drops the extra bottom row / right column)
        layers.append(nn.ConvTranspose2d(chans[-1], c, k, stride=1, padding=k // 2 if k % 2 else 1))
        self.deconv = nn.Sequential(*layers)
        self.extra = 0 if k % 2 else 1  # rows/columns beyond the image at the bottom/right

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.deconv(self.fc(z))
        end = x.shape[-1] - self.extra - self.crop
        if self.crop or self.extra:
            x = x[..., self.crop:end, self.crop:end]
        return x


def _tf_batchnorm(kind: type[nn.Module], n: int) -> nn.Module:
    return kind(n, eps=1e-3, momentum=0.01)  # TF's batch_normalization defaults (momentum 0.99 in TF's sense)


def _glorot(net: nn.Module, normal: bool) -> nn.Module:
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            (nn.init.xavier_normal_ if normal else nn.init.xavier_uniform_)(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return net


class InfoGANEncoder(nn.Module):
    """FlexAE's encoder (FlexAESR.py L186-204): conv64-conv128(BN)-FC1024(BN)-FC(out)."""

    def __init__(self, shape: Sequence[int], out_dim: int) -> None:
        super().__init__()
        c, _, _, _ = _image_geometry(shape)  # validates the shape
        s = shape[1] // 4
        self.net = _glorot(nn.Sequential(
            nn.Conv2d(c, 64, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(64, 128, 4, stride=2, padding=1, bias=False), _tf_batchnorm(nn.BatchNorm2d, 128), nn.ReLU(True),
            nn.Flatten(), nn.Linear(128 * s * s, 1024, bias=False), _tf_batchnorm(nn.BatchNorm1d, 1024), nn.ReLU(True),
            nn.Linear(1024, out_dim)), normal=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class InfoGANDecoder(nn.Module):
    """FlexAE's decoder (FlexAESR.py L206-244): FC1024-FC(128 s/4 s/4)-convT128-convT64-conv3x3, logits out."""

    def __init__(self, shape: Sequence[int], latent_dim: int) -> None:
        super().__init__()
        c, _, _, _ = _image_geometry(shape)
        s = shape[1] // 4
        self.net = _glorot(nn.Sequential(
            nn.Linear(latent_dim, 1024, bias=False), _tf_batchnorm(nn.BatchNorm1d, 1024), nn.ReLU(True),
            nn.Linear(1024, 128 * s * s, bias=False), _tf_batchnorm(nn.BatchNorm1d, 128 * s * s), nn.ReLU(True),
            nn.Unflatten(1, (128, s, s)),
            # 4x4 stride 2 padding 1 doubles the side, as TF's 'same' transposed conv
            nn.ConvTranspose2d(128, 128, 4, stride=2, padding=1, bias=False), _tf_batchnorm(nn.BatchNorm2d, 128),
            nn.ReLU(True),
            nn.ConvTranspose2d(128, 64, 4, stride=2, padding=1, bias=False), _tf_batchnorm(nn.BatchNorm2d, 64),
            nn.ReLU(True),
            nn.Conv2d(64, c, 3, stride=1, padding=1)), normal=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), nn.LeakyReLU(0.2, True)]
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


def build_encoder(shape: Sequence[int], out_dim: int, preset: str) -> nn.Module:
    """Encoder from data of ``shape`` (C,H,W or d,) to ``out_dim`` numbers."""
    _check_preset(preset)
    if len(shape) == 1:
        return mlp(shape[0], PRESET_MLP[preset], out_dim)
    if preset == "infogan":
        return InfoGANEncoder(shape, out_dim)
    return ConvEncoder(shape, out_dim, PRESET_WIDTH[preset])


def build_decoder(shape: Sequence[int], latent_dim: int, preset: str) -> nn.Module:
    """Decoder from ``latent_dim`` codes to data of ``shape`` (logits for images)."""
    _check_preset(preset)
    if len(shape) == 1:
        return mlp(latent_dim, tuple(reversed(PRESET_MLP[preset])), shape[0])
    if preset == "infogan":
        return InfoGANDecoder(shape, latent_dim)
    return ConvDecoder(shape, latent_dim, PRESET_WIDTH[preset])
