"""VAE with an inverse autoregressive flow posterior (Table 1's and Table 3's "VAE + Flow").

Kingma, Salimans, Jozefowicz, Chen, Sutskever and Welling, "Improved
variational inference with inverse autoregressive flow", NeurIPS 2016,
Algorithm 1. The encoder outputs mu, log sigma^2 and a context h (here of
size latent_dim); then

    z_0 = mu + sigma * eps,                     eps ~ N(0, I)
    [m_t, s_t] = AutoregressiveNN_t(z_{t-1}, h),  sigma_t = sigmoid(s_t)
    z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t,  t = 1..T

the numerically stable (LSTM-like) update of the paper, with the bias of s_t
initialised at ``forget_bias`` = 1 so that sigma_t starts near 1 (the paper
recommends a "sufficiently positive" initial s_t, such as 1 or 2). Each
AutoregressiveNN is a MADE (Germain et al. 2015): ``flow_layers`` masked
hidden layers of ``flow_hidden`` ELU units, the context added to the first,
so that (m_t, s_t)_i depends on z_{t-1, <i} and h only. The variable order is
reversed between steps (odd steps run on the reversed order). Since dz_t /
dz_{t-1} is triangular with diagonal sigma_t,

    log q(z_T | x) = log N(z_0; mu, sigma^2) - sum_t sum_i log sigma_t,i

exactly, and the KL term is estimated with the sample: log q(z_T|x) - log N(z_T; 0, I).

``encode(x)`` must be deterministic: it pushes the posterior mean mu (eps = 0)
through the flow with the same context. This is the image of the base
distribution's mode, not the mean of q(z_T|x) (which has no closed form); it
is what a deterministic "code of x" is for this posterior, and it equals the
VAE's choice (the mean) when T = 0. ``flow_steps: 0`` gives a VAE with a
sampled KL. The prior is N(0, I).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..checks import MAX_MLP_DEPTH
from ..errors import ConfigError
from .base import register
from .vae import VAE, log_normal_diag, log_standard_normal


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 mask (out x in)."""

    def __init__(self, in_features: int, out_features: int, mask: torch.Tensor) -> None:
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Autoregressive MLP with a context: outputs (m, s), both dim-sized, with output i a function of x_{<i} and h.

    Degrees: input i has degree i+1 (1..dim); hidden units get degrees 0..dim-1
    spread evenly (degree 0 units see only the context); a hidden unit of
    degree k sees inputs of degree <= k, and output i sees hidden units of
    degree <= i, i.e. inputs x_j with j < i.
    """

    def __init__(self, dim: int, context_dim: int, hidden: int, layers: int, forget_bias: float) -> None:
        super().__init__()
        self.dim = dim
        # degrees and masks on the CPU, whatever the default device: integer ops on the meta device (config
        # validation) would import torch._dynamo (on_meta); MaskedLinear moves its mask to the weight's device
        deg_in = torch.arange(1, dim + 1, device="cpu")
        deg_h = torch.arange(hidden, device="cpu") * dim // hidden
        deg_out = torch.cat([deg_in, deg_in])
        self.first = MaskedLinear(dim, hidden, deg_h[:, None] >= deg_in[None, :])
        self.context = nn.Linear(context_dim, hidden, bias=False)
        self.hidden = nn.ModuleList(MaskedLinear(hidden, hidden, deg_h[:, None] >= deg_h[None, :])
                                    for _ in range(layers - 1))
        self.out = MaskedLinear(hidden, 2 * dim, deg_out[:, None] > deg_h[None, :])
        with torch.no_grad():
            self.out.bias[dim:].fill_(forget_bias)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = F.elu(self.first(x) + self.context(h))
        for layer in self.hidden:
            a = F.elu(layer(a))
        m, s = self.out(a).chunk(2, dim=-1)
        return m, s


class IAFStep(nn.Module):
    """One IAF step z <- sigma * z + (1 - sigma) * m; ``reverse`` runs it on the reversed variable order."""

    def __init__(self, made: MADE, reverse: bool) -> None:
        super().__init__()
        self.made = made
        self.reverse = reverse

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(new z, log|det dz_new/dz| per example)."""
        if self.reverse:
            z = z.flip(-1)
        m, s = self.made(z, h)
        sigma = torch.sigmoid(s)
        z = sigma * z + (1 - sigma) * m
        if self.reverse:
            z = z.flip(-1)
        return z, F.logsigmoid(s).sum(-1)


class IAFFlow(nn.Module):
    """T IAF steps, the variable order reversed between consecutive steps."""

    def __init__(self, dim: int, context_dim: int, steps: int, hidden: int, layers: int, forget_bias: float) -> None:
        super().__init__()
        self.steps = nn.ModuleList(IAFStep(MADE(dim, context_dim, hidden, layers, forget_bias), reverse=t % 2 == 1)
                                   for t in range(steps))

    def forward(self, z: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(z_T, log|det dz_T/dz_0| per example) = (z_T, sum_t sum_i log sigma_t,i)."""
        log_det = z.new_zeros(z.shape[0])
        for step in self.steps:
            z, ld = step(z, h)
            log_det = log_det + ld
        return z, log_det


@register("vae_iaf")
class VAEIAF(VAE):
    enc_factor = 3  # mu, log sigma^2, context h
    defaults = {**VAE.defaults, "likelihood": "auto", "flow_steps": 2, "flow_hidden": 64, "flow_layers": 2,
                "forget_bias": 1.0}

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        steps, hidden, layers = (int(self.params[k]) for k in ("flow_steps", "flow_hidden", "flow_layers"))
        if steps < 0 or hidden < 1 or layers < 1:
            raise ConfigError(f"vae_iaf needs flow_steps >= 0, flow_hidden >= 1 and flow_layers >= 1; "
                              f"got {steps}, {hidden}, {layers}")
        # checked before building: 10**7 steps (an integer parameter's limit) would take hours to construct
        if steps * layers > MAX_MLP_DEPTH:
            raise ConfigError(f"vae_iaf flow_steps x flow_layers must be at most {MAX_MLP_DEPTH} hidden layers "
                              f"(default 2 x 2), got {steps} x {layers}; lower flow_steps in the config")
        self.flow = IAFFlow(self.latent_dim, self.latent_dim, steps, hidden, layers, float(self.params["forget_bias"]))

    def posterior_and_context(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """mu, log sigma^2 of q(z_0|x) and the context h, from one encoder pass."""
        out = self.encoder(x)
        mu, logvar = out[:, : 2 * self.latent_dim].chunk(2, dim=1)
        return mu, logvar.clamp(-30.0, 20.0), out[:, 2 * self.latent_dim:]

    def flow_log_det(self, z0: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log|det dz_T/dz_0| per example for base samples ``z0`` and contexts ``h``."""
        return self.flow(z0, h)[1]

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Deterministic code: the posterior mean mu pushed through the flow (eps = 0)."""
        mu, _, h = self.posterior_and_context(x)
        return self.flow(mu, h)[0]

    def encode_with_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """No spread: q(z_T|x) is not Gaussian around ``encode(x)``, so ex-post samplers see the codes alone."""
        return self.encode(x), None

    def training_codes(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """A draw z_T ~ q(z_T|x), what the decoder is trained on (``encode_with_std`` has no Gaussian spread)."""
        eps = torch.randn(len(x), self.latent_dim, generator=generator).to(x.device)
        return self.posterior_sample(x, eps)[0]

    def posterior_sample(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """z_T ~ q(z_T|x) (reparameterised) and log q(z_T|x) per example, exact."""
        mu, logvar, h = self.posterior_and_context(x)
        eps = torch.randn_like(mu) if eps is None else eps
        z0 = mu + eps * (0.5 * logvar).exp()
        z, log_det = self.flow(z0, h)
        return z, log_normal_diag(z0, mu, logvar) - log_det

    def sample_latent(self, x: torch.Tensor, eps: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z, log_q = self.posterior_sample(x, eps)
        return z, log_q - log_standard_normal(z)
