"""Sampler interface, registry and (untrusted-safe) persistence."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, TypeVar

import torch

from ..atomic import torch_save
from ..errors import CheckpointError, ConfigError, RaeBenchError, unknown_name
from ..models.base import GenerativeAE
from ..checks import MAX_SEED, check_param_types, short

SAMPLERS: dict[str, type["Sampler"]] = {}
S = TypeVar("S", bound=type["Sampler"])


def register_sampler(name: str) -> Callable[[S], S]:
    def wrap(cls: S) -> S:
        cls.name = name
        SAMPLERS[name] = cls
        return cls
    return wrap


class Sampler:
    """Fit on codes, draw codes. ``needs_codes`` says whether ``fit`` wants the training codes;
    ``uses_spread`` whether it also wants the posterior standard deviations of stochastic encoders."""

    name: ClassVar[str] = ""
    needs_codes: ClassVar[bool] = True
    uses_spread: ClassVar[bool] = False
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, model: GenerativeAE, params: Mapping[str, Any] | None = None, seed: int = 0) -> None:
        if not isinstance(params, (Mapping, type(None))):
            raise ConfigError(f"sampler '{self.name}' params must be a mapping of names to values, got {short(params)}")
        given = dict(params or {})
        unknown = sorted(str(k) for k in set(given) - set(self.defaults))
        if unknown:
            raise ConfigError(f"sampler '{self.name}' has no parameter(s) {unknown}; "
                              f"valid: {sorted(self.defaults) or 'none'}")
        check_param_types(f"sampler '{self.name}'", given, self.defaults)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise ConfigError(f"sampler seed must be an integer in [0, {MAX_SEED}], got {short(seed)}")
        self.model = model
        self.params = {**self.defaults, **given}
        self.seed = seed

    def fit(self, codes: torch.Tensor | None, spread: torch.Tensor | None = None) -> None:
        """Fit on the N x m training ``codes`` (``model.encode``); ``spread`` (N x m or None) is the
        posterior standard deviation of each code for models with a Gaussian posterior."""
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


def save_sampler(sampler: Sampler, path: str | Path, model_hash: str | None = None) -> None:
    """Plain tensors and numbers only; ``model_hash`` (the model's config hash) ties the state to its model."""
    torch_save({"sampler": sampler.name, "params": sampler.params, "seed": sampler.seed,
                "latent_dim": sampler.model.latent_dim, "model_hash": model_hash,
                "state": sampler.state_dict()}, path)


def load_sampler(path: str | Path, model: GenerativeAE, model_hash: str | None = None) -> Sampler:
    """Load without unpickling objects (``weights_only``); refuse a state fitted on another model."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"sampler state {path} not found; run the fit-sampler step first "
                              f"(snakemake {path} or rae-bench fit-sampler)")
    refit = f"delete it and fit the sampler again (snakemake {path} or rae-bench fit-sampler)"

    def unreadable(exc: Exception) -> CheckpointError:
        return CheckpointError(f"sampler state {path} is unreadable or not a sampler state ({type(exc).__name__}); {refit}")

    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, or a pickle of foreign objects (refused by weights_only)
        raise unreadable(exc) from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path} is not a sampler state; {refit}")
    other = [k for k, mine in (("latent_dim", model.latent_dim), ("model_hash", model_hash))
             if mine is not None and blob.get(k) is not None and blob[k] != mine]
    if other:
        raise CheckpointError(f"sampler state {path} was fitted on another model (its {other[0]} differs); {refit}")
    try:
        size = state_size(blob["state"])
        if size > MAX_STATE_ELEMENTS:
            raise ValueError(f"its tensors claim {size:,} numbers, more than the limit of {MAX_STATE_ELEMENTS:,}")
        sampler = build_sampler(blob["sampler"], model, blob["params"], blob["seed"])
        sampler.load_state_dict(blob["state"])
    except (ValueError, RaeBenchError) as exc:  # a check of ours: say which
        raise CheckpointError(f"sampler state {path} is not a valid sampler state ({str(exc)[:160]}); "
                              f"{refit}") from None
    except (KeyError, TypeError, RuntimeError, AttributeError, IndexError) as exc:
        raise unreadable(exc) from None
    return sampler


MAX_STATE_ELEMENTS = 2**28  # numbers in all tensors of a sampler state (1 GiB of float32)


def state_size(obj: Any) -> int:
    """Numbers in all tensors of a nested state (dicts, lists), counted from their shapes: nothing is read."""
    if isinstance(obj, torch.Tensor):
        return obj.numel()
    if isinstance(obj, Mapping):
        return sum(state_size(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(state_size(v) for v in obj)
    return 0
