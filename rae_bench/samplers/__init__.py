"""Ex-post latent densities: a table row is a (model, sampler) pair.

A sampler is fit on the training codes of a trained model and draws codes to
decode. ``prior`` is the model's own prior; ``gmm`` is a 10-component,
full-covariance Gaussian mixture (Ghosh et al. 2020, Sec. 4: "ex-post density
estimation"). States are plain tensors, so loading never unpickles objects.
Every module in this package is imported, so a new sampler is one file.
"""
import importlib
import pkgutil

from .base import SAMPLERS, Sampler, build_sampler, load_sampler, register_sampler, save_sampler

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["SAMPLERS", "Sampler", "build_sampler", "load_sampler", "register_sampler", "save_sampler"]
