"""Models from other packages: the entry-point group ``rae_bench.models``.

A package declares, in its pyproject.toml,

    [project.entry-points."rae_bench.models"]
    mymodel = "mypkg.module:MyModel"

and, once it is installed, ``model: mymodel`` is nameable in the config like a built-in model.
``MyModel`` must subclass :class:`rae_bench.models.GenerativeAE`. A plugin that cannot be imported,
is not such a class, or takes a name that is already registered is one :class:`ConfigError` line
naming the package and the fix.
"""
from __future__ import annotations

import re
from importlib.metadata import EntryPoint, entry_points

from ..errors import ConfigError
from ..checks import NAME_PATTERN, short
from .base import MODELS, GenerativeAE, register

GROUP = "rae_bench.models"
TABLE = f'[project.entry-points."{GROUP}"]'
PLUGINS: dict[str, str] = {}  # model name -> "module:Class (package)" of each loaded plugin


def _package(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.name if dist is not None else ep.value.split(":")[0].split(".")[0]


def load_plugins() -> None:
    """Import every installed ``rae_bench.models`` entry point and register its class under its name."""
    builtins = set(MODELS) - set(PLUGINS)
    seen: set[tuple[str, str]] = set()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: (e.name, e.value)):
        if (ep.name, ep.value) in seen:  # one distribution found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        package = _package(ep)
        origin = f"model plugin '{ep.name}' ({ep.value}) of package '{package}'"
        rename = f"rename the entry point in the {TABLE} table of {package}'s pyproject.toml and reinstall it"
        if not re.fullmatch(NAME_PATTERN, ep.name):
            raise ConfigError(f"{origin}: the name may hold only letters, digits, '_' and '-'; {rename}")
        if ep.name in builtins:
            raise ConfigError(f"{origin} takes the name of the built-in model '{ep.name}'; {rename}")
        if ep.name in PLUGINS and not PLUGINS[ep.name].startswith(f"{ep.value} "):
            raise ConfigError(f"{origin} takes the name of the plugin {PLUGINS[ep.name]}; {rename} "
                              f"(or uninstall one of the two)")
        try:
            cls = ep.load()
        except Exception as exc:  # anything a plugin's import raises is the plugin's problem
            reason = " ".join(str(exc).split())  # one line
            reason = reason if len(reason) <= 120 else reason[:117] + "..."
            raise ConfigError(f"{origin} cannot be imported ({type(exc).__name__}: {reason}); "
                              f"fix the package or uninstall it (pip uninstall {package})") from None
        if not (isinstance(cls, type) and issubclass(cls, GenerativeAE)):
            raise ConfigError(f"{origin} is {short(cls, 60)}, not a subclass of rae_bench.models.GenerativeAE; "
                              f"point the entry point at such a class (or pip uninstall {package})")
        registered = MODELS.get(ep.name)
        if registered is None:
            register(ep.name)(cls)
        elif registered is not cls:  # the module registered another class under this name itself
            raise ConfigError(f"{origin}: its module registers another class as '{ep.name}'; {rename}")
        PLUGINS[ep.name] = f"{ep.value} ({package})"
