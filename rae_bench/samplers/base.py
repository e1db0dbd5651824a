"""Sampler interface, registry and (untrusted-safe) persistence."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch

from ..atomic import torch_save
from ..errors import CheckpointError, unknown_name
from ..models.base import GenerativeAE

SAMPLERS: dict[str, type["Sampler"]] = {}
S = TypeVar("S", bound=type["Sampler"])


def register_sampler(name: str) -> Callable[[S], S]:
    def wrap(cls: S) -> S:
        cls.name = name
        SAMPLERS[name] = cls
        return cls
    return wrap


class Sampler:
    """Fit on codes, draw codes. ``needs_codes`` says whether ``fit`` wants the training codes."""

    name: ClassVar[str] = ""
    needs_codes: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: GenerativeAE, params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        self.model = model
        self.params = {**self.defaults, **dict(params or {})}
        self.seed = seed

    def fit(self, codes: torch.Tensor | None) -> None:
        raise NotImplementedError

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        pass


def build_sampler(name: str, model: GenerativeAE, params: Mapping[str, Any] | None = None, seed: int = 0) -> Sampler:
    if name not in SAMPLERS:
        raise unknown_name("sampler", name, tuple(SAMPLERS))
    return SAMPLERS[name](model, params, seed)


def save_sampler(sampler: Sampler, path: str | Path) -> None:
    torch_save({"sampler": sampler.name, "params": sampler.params, "seed": sampler.seed,
                "state": sampler.state_dict()}, path)


def load_sampler(path: str | Path, model: GenerativeAE) -> Sampler:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"sampler state {path} not found; run the fit-sampler step first "
                              f"(snakemake {path} or rae-bench fit-sampler)")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
        sampler = build_sampler(blob["sampler"], model, blob["params"], blob["seed"])
        sampler.load_state_dict(blob["state"])
    except (KeyError, TypeError, RuntimeError, EOFError, ValueError) as exc:  # pickle errors subclass these
        raise CheckpointError(f"sampler state {path} is unreadable or not a sampler state "
                              f"({type(exc).__name__}); delete it and fit the sampler again") from None
    return sampler
