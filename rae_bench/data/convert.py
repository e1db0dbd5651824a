"""Conversion of stored batches to the float tensors models consume."""
from __future__ import annotations

import torch


def to_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1] (``x / 255``); float data -> float32 unchanged.

    Call it per batch: datasets stay uint8 in memory and are never converted whole.
    """
    if batch.dtype == torch.uint8:
        return batch.float().div_(255)
    return batch.float()


def as_float_images(batch) -> torch.Tensor:
    """:func:`to_float` of a tensor or a numpy array (which becomes a tensor): what feature extractors feed
    their networks."""
    return to_float(torch.as_tensor(batch))
