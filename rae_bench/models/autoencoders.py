"""Deterministic auto-encoders: the plain AE and the regularized AEs (RAE).

RAE: Ghosh, Sajjadi, Vergari, Black, Schoelkopf, "From variational to
deterministic autoencoders", ICLR 2020, eq. (11):
``L = ||x - D(E(x))||^2 + beta * 1/2 ||z||^2 + lambda * L_REG``, with three
decoder regularisers L_REG, one model each:

* ``rae_l2``: ``L_REG = ||theta_D||^2`` (weight decay on the decoder);
* ``rae_gp``: the gradient penalty ``L_REG = ||grad_z D(z)||^2`` at z = E(x)
  (see ``RAEGP`` for the estimator of this squared Jacobian norm);
* ``rae_sn``: no penalty term; spectral normalisation (Miyato et al. 2018) of
  the decoder's weight matrices instead.

Generation needs an ex-post density on the codes (the ``gmm`` sampler), which
is how the paper reports RAE + GMM.

Scale note: these losses sum the squared error over pixels and use
``beta/2 ||z||^2``; the authors' Keras code (``ParthaEth/Regularized_autoencoders-RAE-``,
``models/rae/loss_functions.py``) averages the error over pixels and uses
``beta * mean_j z_j^2``, so its weights are not on this scale (see the config
files for the values used).
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from ..errors import ConfigError
from .base import GenerativeAE, Optimizers, adam, register


@register("ae")
class AE(GenerativeAE):
    """Plain auto-encoder: squared reconstruction error only, N(0, I) as its nominal prior."""

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        rec = self.squared_error(x, self.decoder(self.encoder(x)))
        return {"loss": rec, "rec": rec}


def decoder_kernels(decoder: nn.Module, dense: bool = False) -> list[nn.Parameter]:
    """The weights the authors' L2 penalty covers: the decoder's ConvTranspose kernels (and, with ``dense``,
    its Linear weights).

    The authors' Keras decoders put ``kernel_regularizer`` on the Conv2DTranspose layers only, never on
    biases or BatchNorm (ParthaEth/Regularized_autoencoders-RAE-, ``models/rae/rae_mnist.py`` L84-97); the
    CelebA decoder also on its first Dense layer (``rae_celeba.py`` L123), which ``l2_dense: true`` selects.
    Vector data has no transposed convolutions; there the decoder's Linear weights are penalised (our choice).
    """
    kernels = [m.weight for m in decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    linear = [m.weight for m in decoder.modules() if isinstance(m, nn.Linear)]
    return kernels + linear if dense or not kernels else kernels


@register("rae_l2")
class RAEL2(GenerativeAE):
    """RAE with the code penalty beta/2 ||z||^2 and the L2 penalty lambda ||theta||^2 on the decoder's kernels."""

    defaults = {"beta": 1e-4, "decoder_weight_decay": 1e-7, "l2_dense": False}

    def optimizers(self, optim_cfg: Mapping[str, Any]) -> Optimizers:
        # lambda * ||theta||^2 enters as Adam's (coupled) weight decay 2*lambda on the penalised kernels only
        lam = float(self.params["decoder_weight_decay"])
        penalised = {id(p) for p in decoder_kernels(self.decoder, bool(self.params["l2_dense"]))}
        groups = [{"params": [p for p in self.parameters() if id(p) not in penalised]},
                  {"params": [p for p in self.parameters() if id(p) in penalised], "weight_decay": 2 * lam}]
        return {"model": adam(groups, optim_cfg)}

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z = self.encoder(x)
        rec = self.squared_error(x, self.decoder(z))
        code = 0.5 * z.pow(2).sum(1).mean()
        return {"loss": rec + float(self.params["beta"]) * code, "rec": rec, "code_norm": code}


class _CodePenaltyAE(GenerativeAE):
    """Reconstruction + beta/2 ||z||^2, the part every RAE shares."""

    def rae_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """The codes z = E(x), the decoder's output D(z) (before the output sigmoid) and the loss terms."""
        z = self.encoder(x)
        logits = self.decoder(z)
        rec = self.squared_error(x, logits)
        code = 0.5 * z.pow(2).sum(1).mean()
        return z, logits, {"loss": rec + float(self.params["beta"]) * code, "rec": rec, "code_norm": code}


GP_ESTIMATORS = ("frobenius", "authors")


@register("rae_gp")
class RAEGP(_CodePenaltyAE):
    """RAE with the decoder gradient penalty ``gp_weight * L_GP`` (Ghosh et al. 2020, "RAE-GP").

    The decoder D maps a code to data space (pixels in [0, 1] after the
    sigmoid, vectors as they are). With ``gp_estimator: frobenius`` (default)
    L_GP is the squared Frobenius norm of the decoder's Jacobian, per example,

        L_GP = 1/B ||d vec D(Z) / d vec Z||_F^2   (= 1/B sum_b ||J_b||_F^2 when examples do not interact),

    estimated without forming J by Hutchinson's trick: for Rademacher v
    (entries +-1, shape of D(Z)), E_v ||J^T v||^2 = ||J||_F^2, and J^T v is one
    vector-Jacobian product, ``autograd.grad(<D(Z), v>, Z, create_graph=True)``.
    ``gp_projections`` independent v are averaged; the estimate is unbiased.
    (Z is the whole batch: with BatchNorm in training mode the decoder mixes
    the batch, and the cross-example terms are part of this Jacobian.)

    ``gp_estimator: authors`` reproduces the authors' Keras code exactly
    (``K.mean(K.square(K.gradients(K.square(y_pred), embedding)))``): the mean
    over batch and latent dimensions of ``(grad_Z sum ||D(Z)||^2)^2``, i.e.
    ``1/(B m) sum_b ||2 J_b^T D(z_b)||^2``. This is not the Jacobian's
    Frobenius norm: it weights J by the output itself and vanishes for a black
    output.

    The penalty is built with ``create_graph=True``, so its gradient reaches
    both the decoder's weights and, through z = E(x), the encoder.
    """

    defaults = {"beta": 1e-4, "gp_weight": 1e-3, "gp_estimator": "frobenius", "gp_projections": 1}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.params["gp_estimator"] not in GP_ESTIMATORS:
            raise ConfigError(f"rae_gp gp_estimator '{self.params['gp_estimator']}' unknown; "
                              f"valid: {', '.join(GP_ESTIMATORS)}")
        if int(self.params["gp_projections"]) < 1:
            raise ConfigError(f"rae_gp gp_projections must be >= 1, got {self.params['gp_projections']}")

    def gradient_penalty(self, z: torch.Tensor, projections: torch.Tensor | None = None,
                         out: torch.Tensor | None = None) -> torch.Tensor:
        """L_GP at codes ``z`` (B x m), differentiable (create_graph=True).

        ``out`` is ``decode(z)`` when the caller already has it in the graph (the training loss: the
        reconstruction's decoder pass serves the penalty too, as ``y_pred`` does in the authors' code),
        else the decoder runs here. ``projections`` (k x B x data shape) fixes the Hutchinson vectors
        (tests use it); by default ``gp_projections`` Rademacher vectors are drawn.
        """
        if out is None or not z.requires_grad:
            if not z.requires_grad:
                z = z.detach().requires_grad_(True)
            out = self.decode(z)
        if self.params["gp_estimator"] == "authors":
            (g,) = torch.autograd.grad(out.pow(2).sum(), z, create_graph=True, allow_unused=True)
            return z.new_zeros(()) if g is None else g.pow(2).mean()
        if projections is None:
            k = int(self.params["gp_projections"])
            projections = torch.randint(0, 2, (k, *out.shape), device=out.device).to(out.dtype) * 2 - 1
        total = z.new_zeros(())
        for v in projections:
            (g,) = torch.autograd.grad((out * v).sum(), z, create_graph=True, allow_unused=True)
            if g is not None:
                total = total + g.pow(2).sum()
        return total / (len(projections) * z.shape[0])

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        z, logits, terms = self.rae_terms(x)
        gp = self.gradient_penalty(z, out=torch.sigmoid(logits) if self.is_image else logits)
        terms["loss"] = terms["loss"] + float(self.params["gp_weight"]) * gp
        terms["grad_pen"] = gp
        return terms


SN_LAYERS = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def authors_sn_matrix(layer: nn.Module) -> torch.Tensor:
    """A layer's weight as the matrix whose largest singular value the authors' Keras layer normalises.

    Keras kernels are (kh, kw, in, out) for Conv2D, (kh, kw, out, in) for Conv2DTranspose and (in, out)
    for Dense; the authors' spectral-norm layer reshapes them to (everything but the last axis) x (last
    axis). In torch's layouts that is out x (in kh kw) for Conv2d and Linear, and in x (out kh kw) for
    ConvTranspose2d (the transposes, which have the same singular values).
    """
    w = layer.weight
    return w.reshape(w.shape[0], -1)


def apply_spectral_norm(net: nn.Module, n_power_iterations: int = 1) -> list[nn.Module]:
    """Spectrally normalise every Linear/Conv2d/ConvTranspose2d weight in ``net``; returns those layers.

    torch's parametrisation divides the weight by a power-iteration estimate of the largest singular value
    of the weight reshaped to a matrix along ``dim``, one iteration per training forward pass, with u and v
    kept as buffers. ``dim=0`` for every layer gives the authors' grouping (:func:`authors_sn_matrix`);
    torch's default for transposed convolutions, ``dim=1`` (out x (in kh kw)), would cap a 1-channel output
    layer at ||W||_F = 1 instead.
    """
    layers = [m for m in net.modules() if isinstance(m, SN_LAYERS)]
    for m in layers:
        spectral_norm(m, n_power_iterations=n_power_iterations, dim=0)
    return layers


@register("rae_sn")
class RAESN(_CodePenaltyAE):
    """RAE with spectral normalisation of the decoder (Ghosh et al. 2020, "RAE-SN").

    Loss: reconstruction + beta/2 ||z||^2; every Linear/Conv/ConvTranspose weight
    of the decoder is spectrally normalised (torch.nn.utils.parametrizations.spectral_norm).
    Every weight is normalised under the authors' grouping (:func:`authors_sn_matrix`). The BatchNorm
    layers stay as they are: the authors' SN configs all have ``include_batch_norm: True``
    (``configurations/config.py`` L122, L469), so there too a BN after each normalised hidden layer
    rescales it, and the layers the constraint really binds are the first Dense and the output
    ConvTranspose. ``spectral_norm_encoder: true`` normalises the encoder as well, as the authors' code
    does (``spec_norm_on_dec_only: False`` in every config, ``rae_mnist.py`` L41-45).
    """

    defaults = {"beta": 1e-4, "spectral_norm_encoder": True, "power_iterations": 1}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        iters = int(self.params["power_iterations"])
        if iters < 1:
            raise ConfigError(f"rae_sn power_iterations must be >= 1, got {iters}")
        self.sn_layers = apply_spectral_norm(self.decoder, iters)
        if self.params["spectral_norm_encoder"]:
            self.sn_layers += apply_spectral_norm(self.encoder, iters)

    def loss(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.rae_terms(x)[2]
