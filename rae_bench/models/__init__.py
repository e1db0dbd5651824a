"""Model registry: every module in this package is imported, so a new model is one file.

Models from other packages join through the entry-point group ``rae_bench.models`` (see
:mod:`rae_bench.models.plugins`): a package that declares ``mymodel = "mypkg.module:MyModel"`` there
makes ``model: mymodel`` nameable in the config.
"""
import importlib
import pkgutil

from .base import MODELS, GenerativeAE, build_model, register
from .plugins import PLUGINS, load_plugins

for _info in pkgutil.iter_modules(__path__):
    if _info.name not in ("base", "plugins"):
        importlib.import_module(f"{__name__}.{_info.name}")

load_plugins()  # after the built-ins: a plugin may not take a built-in's name

__all__ = ["MODELS", "PLUGINS", "GenerativeAE", "build_model", "register"]
