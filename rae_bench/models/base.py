"""The interface every model implements, and the registry that names them.

A model is an ``nn.Module`` that owns its nets, its prior and its update rule:
the trainer only calls ``optimizers`` once, ``train_step`` per batch and
``on_epoch_end`` after each epoch's last batch, so models with critics or
several optimizers need nothing special from it.
"""
from __future__ import annotations

from typing import Any, Callable, ClassVar, Iterable, Mapping, Sequence, TypeVar

import torch
from torch import nn

from ..errors import ConfigError, unknown_name
from ..nets import build_decoder, build_encoder
from ..checks import check_param_types

Optimizers = dict[str, torch.optim.Optimizer]

MODELS: dict[str, type["GenerativeAE"]] = {}
M = TypeVar("M", bound=type["GenerativeAE"])


def register(name: str) -> Callable[[M], M]:
    """Class decorator: make a model available under ``name`` in config files."""
    def wrap(cls: M) -> M:
        if name in MODELS:
            raise ValueError(f"model '{name}' registered twice")
        cls.name = name
        MODELS[name] = cls
        return cls
    return wrap


def build_model(name: str, data_shape: Sequence[int], latent_dim: int, arch: str,
                params: Mapping[str, Any] | None = None) -> "GenerativeAE":
    if name not in MODELS:
        raise unknown_name("model", name, tuple(MODELS))
    return MODELS[name](tuple(data_shape), latent_dim, arch, dict(params or {}))


def adam(parameters: Any, optim_cfg: Mapping[str, Any], weight_decay: float = 0.0) -> torch.optim.Adam:
    """Adam from the ``optim`` block of a run config (lr, betas)."""
    return torch.optim.Adam(parameters, lr=float(optim_cfg.get("lr", 1e-3)),
                            betas=tuple(optim_cfg.get("betas", (0.9, 0.999))), weight_decay=weight_decay)


class GenerativeAE(nn.Module):
    """Base class: a deterministic encoder net, a decoder net and an N(0, I) prior.

    Subclasses change the encoder's output size (``enc_factor``), the loss
    (``loss``) and, where needed, ``train_step``, ``sample_prior`` and
    ``optimizers``. ``params`` holds the model's hyper-parameters from config.
    """

    name: ClassVar[str] = ""
    enc_factor: ClassVar[int] = 1  # encoder outputs enc_factor * latent_dim numbers
    defaults: ClassVar[dict[str, Any]] = {}
    # the train_step term that must fall on a fixed batch (adversarial models monitor "rec")
    monitor: ClassVar[str] = "loss"

    def __init__(self, data_shape: tuple[int, ...], latent_dim: int, arch: str, params: dict[str, Any]) -> None:
        super().__init__()
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise ConfigError(f"model '{self.name}' has no parameter(s) {sorted(unknown)}; "
                              f"valid: {sorted(self.defaults) or 'none'}")
        check_param_types(f"model '{self.name}'", params, self.defaults)
        self.params = {**self.defaults, **params}
        self.data_shape = data_shape
        self.latent_dim = latent_dim
        self.is_image = len(data_shape) == 3
        self.encoder = build_encoder(data_shape, self.enc_factor * latent_dim, arch)
        self.decoder = build_decoder(data_shape, latent_dim, arch)

    # -- the interface -------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code of ``x`` (the posterior mean for VAEs)."""
        return self.encoder(x)[:, : self.latent_dim]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Data-space output: pixels in [0, 1] for images, vectors as they are."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.is_image else out

    def encode_with_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``encode(x)`` and the standard deviation of a Gaussian q(z|x) around it (None for deterministic
        encoders), from one encoder pass."""
        return self.encode(x), None

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def training_codes(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Codes of ``x`` as the decoder sees them in training: a draw ``mu + std * eps`` where q(z|x) is a
        Gaussian (``encode_with_std`` gives its std), else ``encode(x)``. BatchNorm re-estimation decodes
        these, so the decoder's statistics are those of training's sampled codes, not of the means."""
        mu, std = self.encode_with_std(x)
        if std is None:
            return mu
        return mu + std * torch.randn(mu.shape, generator=generator).to(mu.device, mu.dtype)

    def unfinished_warmup(self) -> str | None:
        """The warm-up or schedule this trained model has not completed, as a short phrase; None when none.
        Evaluation records it in metrics.json and table captions print it: a row trained too briefly says so."""
        return None

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` codes from the model's own prior, N(0, I) unless overridden."""
        device = next(self.parameters()).device
        return torch.randn(n, self.latent_dim, generator=generator).to(device)

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        return {"model": adam(self.parameters(), optim_cfg)}

    def pretrain(self, draw: Callable[[int], torch.Tensor], optim_cfg: Mapping[str, Any]) -> dict[str, float]:
        """Updates before the first training step; a summary of them, ``{}`` when the model has none.

        The trainer calls it once, on a fresh run only, and checkpoints the result before step 1, so a
        resumed run never repeats it. ``draw(n)`` returns ``n`` training items (fewer if the split is
        smaller), drawn without replacement from the global RNG, on the model's device and layout.
        """
        return {}

    def train_step(self, x: torch.Tensor, optimizers: Optimizers) -> dict[str, float]:
        """One update on batch ``x``; returns every loss term as a float."""
        terms = self.loss(x)
        opt = optimizers["model"]
        opt.zero_grad(set_to_none=True)
        terms["loss"].backward()
        opt.step()
        return {k: float(v.detach()) for k, v in terms.items()}

    def on_epoch_end(self, batches: Iterable[torch.Tensor], optimizers: Optimizers) -> dict[str, float]:
        """Work between epochs: the trainer calls it once per epoch, right after the epoch's last
        ``train_step`` and before that step's checkpoint, so a resumed run neither repeats nor skips it.
        ``batches`` yields the training data as ``train_step`` gets it; each ``iter()`` is a fresh pass in
        a new order. Returns loss terms for that step's log row. Default: nothing."""
        return {}

    @classmethod
    def epoch_end_batches(cls, params: Mapping[str, Any], batches_per_epoch: int) -> int:
        """Batches ``on_epoch_end`` processes per epoch with these params (``rae-bench plan`` prices them)."""
        return 0

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    # -- shared pieces -------------------------------------------------
    def squared_error(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """Per-example sum of squared errors, averaged over the batch."""
        out = torch.sigmoid(logits) if self.is_image else logits
        return (out - x).pow(2).flatten(1).sum(1).mean()
