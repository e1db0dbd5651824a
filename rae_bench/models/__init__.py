"""Model registry: every module in this package is imported, so a new model is one file."""
import importlib
import pkgutil

from .base import MODELS, GenerativeAE, build_model, register

for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["MODELS", "GenerativeAE", "build_model", "register"]
