"""Building tiny models and reading saved weights, the same way in every test file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from rae_bench.models import build_model


def tiny_model(name: str, shape: tuple[int, ...] = (12,), latent: int = 4, seed: int = 0, **params: Any):
    """Model `name` on the ``tiny`` nets, its weights drawn under `seed` (so two calls build equal models)."""
    torch.manual_seed(seed)
    return build_model(name, shape, latent, "tiny", params)


def weights(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in a model.pt or checkpoint.pt."""
    return torch.load(path, map_location="cpu", weights_only=True)["state"]
