"""Image grids as PNG files, without torchvision.

The layout is torchvision's ``save_image(make_grid(x, nrow, padding=2))``: rows of ``nrow`` images on a
black background with 2-pixel gaps, grey images repeated into RGB. Written here because importing
torchvision costs seconds per job (it pulls in torch._dynamo), and an evaluation job needs nothing else
of it; a test checks the files are pixel-identical to torchvision's.
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

from .atomic import atomic_path


def image_grid(images: torch.Tensor, nrow: int = 8, padding: int = 2) -> np.ndarray:
    """uint8 N x C x H x W images (C = 1 or 3) -> one H' x W' x 3 uint8 array."""
    x = images.detach().cpu()
    if x.dtype != torch.uint8:
        raise TypeError(f"image_grid takes uint8 images, got {x.dtype}")
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"image_grid takes N x C x H x W images with C = 1 or 3, got shape {tuple(x.shape)}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    n, _, h, w = x.shape
    cols = min(nrow, n)
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + padding) + padding, cols * (w + padding) + padding, 3), dtype=np.uint8)
    pixels = x.permute(0, 2, 3, 1).numpy()
    for k in range(n):
        top, left = (k // cols) * (h + padding) + padding, (k % cols) * (w + padding) + padding
        grid[top:top + h, left:left + w] = pixels[k]
    return grid


def save_grid(images: torch.Tensor, path: str | os.PathLike[str], nrow: int = 8) -> None:
    """Write ``image_grid(images, nrow)`` to ``path`` as PNG, atomically."""
    from PIL import Image  # here: 15 ms (-X importtime); image_grid (TensorBoard) needs none

    with atomic_path(path) as tmp:
        Image.fromarray(image_grid(images, nrow)).save(tmp, format="PNG")
