"""Model registry: importing this package registers every model module."""
from .base import MODELS, GenerativeAE, build_model, register
from . import autoencoders, vae, wae  # noqa: F401  (registration side effects)

__all__ = ["MODELS", "GenerativeAE", "build_model", "register"]
