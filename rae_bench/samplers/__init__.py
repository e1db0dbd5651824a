"""Ex-post latent densities: a table row is a (model, sampler) pair.

A sampler is fit on the training codes of a trained model and draws codes to
decode. ``prior`` is the model's own prior; ``gmm`` is a 10-component,
full-covariance Gaussian mixture (Ghosh et al. 2020, Sec. 4: "ex-post density
estimation"). States are plain tensors, so loading never unpickles objects.
"""
from .base import SAMPLERS, Sampler, build_sampler, load_sampler, register_sampler, save_sampler
from . import gmm, prior  # noqa: F401  (registration side effects)

__all__ = ["SAMPLERS", "Sampler", "build_sampler", "load_sampler", "register_sampler", "save_sampler"]
