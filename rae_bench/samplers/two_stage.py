"""Two-stage VAE sampler: a second VAE fit on the first stage's codes.

Dai and Wipf, "Diagnosing and enhancing VAE models", ICLR 2019. Stage 1 is
any trained model of this suite (in the paper a VAE with a learned decoder
variance gamma: model ``vae`` with likelihood ``gaussian_learned``). Its
aggregate posterior q(z) is generally not N(0, I), so samples from the prior
decode poorly; stage 2 is a VAE on R^m that learns q(z) itself, and sampling
is u ~ N(0, I) -> stage-2 decoder -> code -> stage-1 decoder.

Stage 2, as implemented here (Dai and Wipf's code, daib13/TwoStageVAE at
commit 8718623, ``network/two_stage_vae_model.py`` and ``demo.py``, where it
settles a choice):

* data: for a stage 1 with a Gaussian posterior, fresh samples
  z = mu + sigma * eps of q(z|x) for every batch of every epoch (``demo.py``
  L63-74: the posterior means and standard deviations are extracted once,
  the noise is drawn per batch); for deterministic auto-encoders (and the
  IAF posterior, which is not Gaussian around its code) the codes
  themselves. ``posterior_samples: false`` fits the means instead;
* encoder: MLP m -> ``width`` x ``depth`` (ReLU), then the input concatenated
  to the last hidden layer (``skip: true``; the code's
  ``tf.concat([self.z, t], -1)``, L81) -> mean and log variance of u;
  decoder: MLP latent -> ``width`` x ``depth`` (ReLU), [u, hidden] -> m (L93).
  The paper and code use 3 hidden layers of width 1024 and a latent size
  equal to the first stage's (``latent_dim: null``, the default);
  ``depth``, ``width``, ``epochs``, ``batch_size`` and ``lr`` default to
  small values for quick CPU runs and ``config/paper.yaml`` sets the code's;
  the learning rate is multiplied by ``lr_factor`` every ``lr_epochs`` epochs
  (code: 0.5 every 300 of 800 epochs; null: constant);
* likelihood: Gaussian N(D(u), gamma^2 I) with a learned scalar gamma
  (parameterised as log gamma, initial gamma ``gamma_init``, floored at
  ``gamma_min`` for numerical safety), as in the paper's second stage;
* objective: the reparameterised ELBO, one sample per code, Adam with
  learning rate ``lr``, codes reshuffled every epoch; the input codes are
  standardised per dimension (mean and std of the training codes, including
  the posterior spread) before fitting and the transform is undone when
  sampling: this is our choice (it makes the MLP's defaults independent of
  the stage-1 code scale; ``standardize: false`` fits the raw codes);
* sampling: u ~ N(0, I), then c ~ N(D(u), gamma^2 I), i.e. a draw from the
  stage-2 model's marginal density (``add_noise: true``, the default, as the
  code does, L144: ``z + gamma_z * np.random.normal``). ``add_noise: false``
  returns the decoder mean D(u) instead.
  The noise matters: stage-1 codes fill R^m, where the likelihood is flat in
  gamma once gamma^2 is below the smallest eigenvalue of the code covariance,
  so gamma stays finite and the decoder mean alone has a covariance short by
  about gamma^2 I (tests/samplers/test_two_stage.py checks the covariance of the
  samples against that of the codes).

Fitting is seeded by the sampler's ``seed`` and deterministic on CPU: the
nets are initialised inside ``torch.random.fork_rng`` (the caller's global
RNG is left as it was) and every shuffle and noise draw comes from a private
``torch.Generator``. ``state_dict`` holds the stage-2 module's tensors, the
standardisation and the sizes (plain data), and ``load_state_dict`` rebuilds
the nets from them, so a state loads with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from torch import nn

from ..errors import ConfigError, RaeBenchError
from .base import Sampler, register_sampler


def _mlp(in_dim: int, width: int, depth: int, out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class SkipMLP(nn.Module):
    """ReLU MLP whose output layer sees [input, last hidden layer] (Dai and Wipf's stage-2 nets)."""

    def __init__(self, in_dim: int, width: int, depth: int, out_dim: int, skip: bool = True) -> None:
        super().__init__()
        self.skip = bool(skip) and depth > 0
        self.body = _mlp(in_dim, width, depth, width)[:-1] if depth > 0 else nn.Identity()
        self.head = nn.Linear((in_dim if self.skip else 0) + (width if depth > 0 else in_dim), out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.cat([x, h], dim=-1) if self.skip else h)


class SecondStageVAE(nn.Module):
    """Gaussian-encoder, Gaussian-decoder (learned scalar gamma) VAE on R^data_dim."""

    def __init__(self, data_dim: int, latent_dim: int, width: int, depth: int,
                 gamma_init: float = 1.0, gamma_min: float = 1e-4, skip: bool = True) -> None:
        super().__init__()
        self.data_dim, self.latent_dim, self.gamma_min = data_dim, latent_dim, gamma_min
        self.encoder = SkipMLP(data_dim, width, depth, 2 * latent_dim, skip)
        self.decoder = SkipMLP(latent_dim, width, depth, data_dim, skip)
        self.log_gamma = nn.Parameter(torch.tensor(math.log(gamma_init)))

    def gamma(self) -> torch.Tensor:
        return self.log_gamma.exp().clamp_min(self.gamma_min)

    def negative_elbo(self, c: torch.Tensor, noise: torch.Tensor) -> dict[str, torch.Tensor]:
        """-ELBO per code (batch mean) with the reparameterisation u = mu + sigma * noise."""
        mu, logvar = self.encoder(c).chunk(2, dim=1)
        logvar = logvar.clamp(-30.0, 20.0)
        u = mu + noise * (0.5 * logvar).exp()
        gamma = self.gamma()
        sq = (self.decoder(u) - c).pow(2).sum(1)
        nll = sq / (2 * gamma**2) + self.data_dim * (torch.log(gamma) + 0.5 * math.log(2 * math.pi))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
        return {"loss": (nll + kl).mean(), "nll": nll.mean(), "kl": kl.mean(), "gamma": gamma.detach()}


@register_sampler("two_stage")
class TwoStageSampler(Sampler):
    uses_spread = True
    defaults = {"latent_dim": None, "depth": 2, "width": 128, "epochs": 20, "batch_size": 100, "lr": 1e-3,
                "lr_epochs": None, "lr_factor": 0.5, "gamma_init": 1.0, "gamma_min": 1e-4, "standardize": True,
                "add_noise": True, "skip": True, "posterior_samples": True}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # unknown keys and value types are refused there
        for key in ("depth", "width", "epochs", "batch_size"):
            low = 0 if key == "depth" else 1
            if int(self.params[key]) < low:
                raise ConfigError(f"samplers.two_stage.{key} must be an integer >= {low} (a positive count), "
                                  f"got {self.params[key]}")
        for key in ("latent_dim", "lr_epochs"):  # null or a positive integer
            value = self.params[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10**7):
                raise ConfigError(f"samplers.two_stage.{key} must be null or an integer >= 1, got {value!r}")
        for key, low in (("lr", 0.0), ("lr_factor", 0.0), ("gamma_init", 0.0)):
            if not float(self.params[key]) > low:
                raise ConfigError(f"samplers.two_stage.{key} must be > {low}, got {self.params[key]}")
        if not float(self.params["gamma_min"]) >= 0:
            raise ConfigError(f"samplers.two_stage.gamma_min must be >= 0, got {self.params['gamma_min']}")
        self.vae: SecondStageVAE | None = None
        self.shift: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None
        self.history: list[float] = []

    def _device(self) -> torch.device:
        try:
            return next(self.model.parameters()).device
        except StopIteration:
            return torch.device("cpu")

    def _build(self, data_dim: int, latent_dim: int) -> SecondStageVAE:
        p = self.params
        return SecondStageVAE(data_dim, latent_dim, int(p["width"]), int(p["depth"]),
                              float(p["gamma_init"]), float(p["gamma_min"]), bool(p["skip"]))

    def fit(self, codes: torch.Tensor | None, spread: torch.Tensor | None = None) -> None:
        if codes is None or codes.dim() != 2 or codes.shape[0] < 2:
            raise RaeBenchError("the two_stage sampler needs an N x m tensor of training codes (N >= 2)")
        p = self.params
        device = self._device()
        codes = codes.detach().clone().to(device=device, dtype=torch.float32)
        n, m = codes.shape
        if spread is not None and p["posterior_samples"]:
            if tuple(spread.shape) != (n, m):
                raise RaeBenchError(f"two_stage sampler: posterior spread of shape {tuple(spread.shape)} for "
                                    f"codes of shape {(n, m)}")
            spread = spread.detach().clone().to(device=device, dtype=torch.float32)
        else:
            spread = None
        latent = int(p["latent_dim"]) if p["latent_dim"] is not None else m
        if p["standardize"]:  # of the samples mu + sigma * eps: var = var(mu) + E[sigma^2]
            self.shift = codes.mean(0)
            var = codes.var(0) + (spread.pow(2).mean(0) if spread is not None else 0.0)
            self.scale = var.sqrt().clamp_min(1e-6)
        else:
            self.shift, self.scale = torch.zeros(m, device=device), torch.ones(m, device=device)
        data = (codes - self.shift) / self.scale
        data_spread = None if spread is None else spread / self.scale

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            vae = self._build(m, latent)
        vae = vae.to(device)
        gen = torch.Generator(device="cpu").manual_seed(self.seed)
        opt = torch.optim.Adam(vae.parameters(), lr=float(p["lr"]))
        bs = min(int(p["batch_size"]), n)
        self.history = []
        vae.train()
        for epoch in range(int(p["epochs"])):
            if p["lr_epochs"]:  # the code's lr * lr_fac ** floor(epoch / lr_epochs)
                for group in opt.param_groups:
                    group["lr"] = float(p["lr"]) * float(p["lr_factor"]) ** (epoch // int(p["lr_epochs"]))
            perm = torch.randperm(n, generator=gen).to(device)
            total, count = 0.0, 0
            for start in range(0, n - bs + 1, bs):  # full batches only: every step sees the same batch size
                idx = perm[start:start + bs]
                batch = data[idx]
                if data_spread is not None:  # a fresh draw of q(z|x) for every batch
                    batch = batch + data_spread[idx] * torch.randn(batch.shape, generator=gen).to(device)
                noise = torch.randn(bs, latent, generator=gen).to(device)
                terms = vae.negative_elbo(batch, noise)
                opt.zero_grad(set_to_none=True)
                terms["loss"].backward()
                opt.step()
                total, count = total + float(terms["loss"].detach()), count + 1
            loss = total / max(count, 1)
            if not math.isfinite(loss):
                raise RaeBenchError(f"two_stage sampler: the stage-2 VAE loss became {loss}; "
                                    f"lower samplers.two_stage.lr (now {p['lr']})")
            self.history.append(loss)
        self.vae = vae.eval()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        assert self.vae is not None and self.shift is not None and self.scale is not None, \
            "fit or load the sampler first"
        device = self._device()
        u = torch.randn(n, self.vae.latent_dim, generator=generator).to(device)
        c = self.vae.decoder(u)
        if self.params["add_noise"]:
            c = c + self.vae.gamma() * torch.randn(c.shape, generator=generator).to(device)
        return c * self.scale + self.shift

    def state_dict(self) -> dict[str, Any]:
        assert self.vae is not None and self.shift is not None and self.scale is not None, \
            "fit the sampler first"
        return {"vae": {k: v.detach().cpu() for k, v in self.vae.state_dict().items()},
                "shift": self.shift.detach().cpu(), "scale": self.scale.detach().cpu(),
                "sizes": {"data_dim": self.vae.data_dim, "latent_dim": self.vae.latent_dim,
                          "width": int(self.params["width"]), "depth": int(self.params["depth"]),
                          "skip": bool(self.params["skip"])},
                "history": torch.tensor(self.history, dtype=torch.float64)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        sizes = state["sizes"]
        m = self.model.latent_dim  # the sizes must be those these params give on this model: nothing absurd is built
        expect = {"data_dim": m, "latent_dim": m if self.params["latent_dim"] is None else int(self.params["latent_dim"]),
                  "width": int(self.params["width"]), "depth": int(self.params["depth"])}
        wrong = {k: sizes.get(k) for k, v in expect.items() if sizes.get(k) != v}
        if wrong:
            raise ValueError(f"stored sizes {wrong} are not those of its params on this model {expect}")
        with torch.random.fork_rng(devices=[]):  # the initial weights are overwritten: leave the global RNG alone
            vae = SecondStageVAE(int(sizes["data_dim"]), int(sizes["latent_dim"]), int(sizes["width"]),
                                 int(sizes["depth"]), float(self.params["gamma_init"]),
                                 float(self.params["gamma_min"]), bool(sizes.get("skip", False)))
        vae.load_state_dict(state["vae"])
        device = self._device()
        self.vae = vae.to(device).eval()
        self.shift, self.scale = state["shift"].to(device), state["scale"].to(device)
        self.history = [float(v) for v in state.get("history", torch.zeros(0))]
