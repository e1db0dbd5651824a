"""Ground floor: the limits and value checks every layer shares, importing nothing above ``errors``.

What a name that becomes part of a path, a seed, a model's size and a hyper-parameter may be, a learning-rate
schedule's form, and the one-line form of a JSON-schema violation. Models and samplers check their parameters
with these; the whole-config checks that build models (:mod:`rae_bench.config.validate`) sit above them.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Mapping

from .errors import ConfigError

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"  # names that become parts of paths (and Snakemake wildcards)
MAX_LATENT_DIM = 16384
MAX_DATA_ELEMENTS = 2**24  # numbers in one data item (3 x 64 x 64 = 12,288 for CelebA)
MAX_PARAMETERS = 2**28  # numbers in a model's parameters and buffers (1 GiB of float32)
MAX_INT_PARAM = 10**7  # any integer hyper-parameter (counts, steps, widths)
MAX_MLP_DEPTH = 256  # hidden layers of an MLP critic or prior (papers: 4); 10**7 of them would take hours to build
MAX_SEED = 2**32 - 1  # what every RNG (torch, numpy, scikit-learn) accepts
ACTIVE_THRESHOLD = 0.1  # a latent dimension with mask value >= 0.1 is active (the MaskAAE authors' code)


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters, on one line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(kind: str, name: Any, fix: str = "rename it") -> str:
    """A name that becomes part of a path: letters, digits, '_' and '-' only."""
    if not isinstance(name, str) or not re.fullmatch(NAME_PATTERN, name):
        raise ConfigError(f"{kind} name {short(name)} may hold only letters, digits, '_' and '-' "
                          f"(it becomes part of file paths); {fix}")
    return name


def _kind(default: Any) -> tuple[str, Callable[[Any], bool]]:
    """What a value must be, judged by the type of its default."""
    if isinstance(default, bool):
        return "true or false", lambda v: isinstance(v, bool)
    if isinstance(default, int):
        return (f"an integer in [{-MAX_INT_PARAM}, {MAX_INT_PARAM}]",
                lambda v: isinstance(v, int) and not isinstance(v, bool) and abs(v) <= MAX_INT_PARAM)
    if isinstance(default, float):
        return "a finite number", lambda v: (isinstance(v, (int, float)) and not isinstance(v, bool)
                                            and abs(v) < 1e300 and math.isfinite(float(v)))
    if isinstance(default, str):
        return "a string", lambda v: isinstance(v, str)
    if isinstance(default, (list, tuple)):
        kinds = [_kind(d) for d in default]
        return (f"a list of {len(default)} ({', '.join(k[0] for k in kinds)})",
                lambda v: isinstance(v, (list, tuple)) and len(v) == len(kinds)
                and all(ok(x) for (_, ok), x in zip(kinds, v)))
    return "anything", lambda v: True


def check_param_types(owner: str, params: Mapping[str, Any], defaults: Mapping[str, Any]) -> None:
    """Each given parameter has the type of its default (integers for integer defaults, numbers for floats,
    booleans, strings, lists of the same length); a default of ``None`` leaves the check to the class."""
    for key, value in params.items():
        default = defaults.get(key)
        if default is None:
            continue
        what, ok = _kind(default)
        if not ok(value):
            raise ConfigError(f"{owner} parameter '{key}' must be {what}, got {short(value)}; "
                              f"fix it in the config (default: {default!r})")


# --------------------------------------------------------------------------- run configs


LR_SCHEDULES = ("none", "step", "piecewise", "exponential", "cosine")


def check_lr_schedule(spec: Mapping[str, Any], where: str = "training.lr_schedule") -> None:
    """What the schema cannot say about a schedule: a known type, and piecewise's milestones strictly
    increasing epochs >= 1 with one factor > 0 each."""
    kind = spec.get("type", "none")
    if kind not in LR_SCHEDULES:
        raise ConfigError(f"unknown lr_schedule type {short(kind)} in {where}; valid: {', '.join(LR_SCHEDULES)}")
    if kind != "piecewise":
        return
    milestones, factors = spec.get("milestones"), spec.get("factors")
    if not isinstance(milestones, (list, tuple)) or not isinstance(factors, (list, tuple)):
        raise ConfigError(f"{where} of type piecewise needs lists 'milestones' (epochs) and 'factors'; "
                          f"e.g. {{type: piecewise, milestones: [30, 50], factors: [0.5, 0.2]}}")
    if len(milestones) != len(factors):
        raise ConfigError(f"{where} has {len(milestones)} milestones but {len(factors)} factors; give one "
                          f"factor per milestone")
    if not all(isinstance(m, int) and not isinstance(m, bool) and m >= 1 for m in milestones) \
            or any(b <= a for a, b in zip(milestones, milestones[1:])):
        raise ConfigError(f"{where} milestones {short(milestones)} must be strictly increasing epochs >= 1")
    if not all(isinstance(f, (int, float)) and not isinstance(f, bool) and math.isfinite(f) and f > 0
               for f in factors):
        raise ConfigError(f"{where} factors {short(factors)} must be finite numbers > 0")


def schema_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """The first schema violation of ``value`` as ``value at 'a.b' is invalid: ...``, or None."""
    import jsonschema  # here: 55 ms (-X importtime), which models and samplers (importing this module) never need

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    message = err.message.replace("\n", " ")
    return f"value at '{where}' is invalid: {message if len(message) <= 200 else message[:197] + '...'}"
