"""Config files -> one merged dict, checked against the workflow's JSON schema.

Reading and merging the files (the ``profile:`` rule, else a deep merge), the schema (this package's
``config.schema.yaml``, package data), the strings-as-numbers coercion and the schema check. This is the
package's ground: it imports only the ground floor (:mod:`rae_bench.checks`, :mod:`rae_bench.errors`).
"""
from __future__ import annotations

import copy
import functools
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from ..checks import MAX_LATENT_DIM, MAX_SEED, NAME_PATTERN
from ..errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = Path(__file__).resolve().parent / "config.schema.yaml"  # package data
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """Recursive dict update (what Snakemake does with several --configfile): lists are replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's loader: 20x faster, the same safe subset


@functools.lru_cache(maxsize=1)
def config_schema() -> dict[str, Any]:
    """The workflow config's JSON schema (rae_bench/config/config.schema.yaml, package data), read once."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=SAFE_LOADER)


@functools.lru_cache(maxsize=1)
def run_schema() -> dict[str, Any]:
    """JSON schema of a resolved run config (config.resolve.resolve_run), from the workflow schema's pieces."""
    training = copy.deepcopy(config_schema()["definitions"]["training"])
    training["required"] = ["epochs", "batch_size"]
    name = {"type": "string", "pattern": NAME_PATTERN}
    return {
        "type": "object",
        "required": ["dataset", "source", "run", "model", "params", "latent_dim", "arch", "seed", "training"],
        "properties": {
            "dataset": name, "run": name, "model": {"type": "string"}, "source": {"type": "string"},
            "options": {"type": "object"}, "params": {"type": "object"},
            "n_train": {"type": ["integer", "null"], "minimum": 1},
            "latent_dim": {"type": "integer", "minimum": 1, "maximum": MAX_LATENT_DIM},
            "arch": config_schema()["properties"]["arch"],
            "seed": {"type": "integer", "minimum": 0, "maximum": MAX_SEED},
            "training": training,
        },
    }


# The sections that decide what a run trains and how its codes are sampled. A file that declares
# ``profile: <name>`` (config/config.yaml: quick, config/paper.yaml: paper) owns them whole: what earlier
# files held there is dropped, never merged, so a profile cannot inherit another profile's per-model or
# per-dataset training blocks. Files without ``profile:`` (a user's ``seeds: [1]``, a dataset of their
# own) merge over the profile as before.
PROFILE_SECTIONS = ("arch", "training", "datasets", "models", "samplers")


def merge_config_file(cfg: Mapping[str, Any], loaded: Mapping[str, Any]) -> dict[str, Any]:
    """``cfg`` with one more config file's content on top (the profile rule above, else deep_merge)."""
    if "profile" in loaded:
        cfg = {k: v for k, v in cfg.items() if k not in PROFILE_SECTIONS}
    return deep_merge(cfg, loaded)


def read_config_files(paths: Iterable[str | os.PathLike[str]]) -> dict[str, Any]:
    """The config files merged in order, not validated, sweeps not expanded (the Snakefile rebuilds its
    ``config`` from the same files with this, so jobs see what config.validate.load_config gives)."""
    cfg: dict[str, Any] = {}
    for path in paths:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file {p} not found; pass an existing file (e.g. config/config.yaml)")
        try:
            loaded = yaml.load(p.read_text(), Loader=SAFE_LOADER) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"config file {p}{where} is not valid YAML; fix the syntax there") from None
        if not isinstance(loaded, Mapping):
            raise ConfigError(f"config file {p} does not hold a mapping of settings; write it as `key: value` lines")
        cfg = merge_config_file(cfg, loaded)
    return cfg


def _typed(text: str, expected: str | list[str]) -> Any:
    """``text`` as the integer, number or boolean the schema wants, else ``text`` itself."""
    wants = {expected} if isinstance(expected, str) else set(expected)
    word = text.strip()
    if wants & {"integer", "number"} and re.fullmatch(r"[+-]?\d+", word):
        return int(word)
    if "number" in wants:
        try:
            value = float(word)
        except ValueError:
            return text
        return value if math.isfinite(value) else text
    if "boolean" in wants and word.lower() in ("true", "false"):
        return word.lower() == "true"
    return text


def _with_context(errors: Iterable[Any]) -> Iterator[Any]:
    """Schema errors and, for anyOf/oneOf, the errors of their branches."""
    for err in errors:
        yield err
        yield from _with_context(err.context or ())


def coerce_typed_strings(cfg: dict[str, Any], validator: Any) -> None:
    """Strings where the schema wants a number or boolean become that value, in place.

    ``snakemake --config 'seeds=[0,1]'`` hands the list's items over as the strings ``'0'``, ``'1'``; what a
    user typed there is meant as numbers. Only a value the schema refuses for its type is touched."""
    for _ in range(10_000):  # each pass fixes at least one value; the bound only guards a cycle
        fixed = False
        for err in _with_context(validator.iter_errors(cfg)):
            if err.validator != "type" or not isinstance(err.instance, str) or not err.absolute_path:
                continue
            value = _typed(err.instance, err.validator_value)
            if value is err.instance:
                continue
            *parents, last = err.absolute_path
            holder: Any = cfg
            for key in parents:
                holder = holder[key]
            holder[last] = value
            fixed = True
        if not fixed:
            return


def check_schema(cfg: dict[str, Any]) -> None:
    """Check ``cfg`` against the workflow's JSON schema, strings the schema wants as numbers or booleans
    coerced first (in place); the whole-config checks that build models are rae_bench.config.validate's."""
    # the schema ships with the package (package data), so an installed rae_bench validates as a checkout does
    import jsonschema  # here: 55 ms, which the report jobs importing this module (for resolve_run) never need

    validator = jsonschema.Draft202012Validator(config_schema())
    coerce_typed_strings(cfg, validator)
    errors = sorted(validator.iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        err = errors[0]
        where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
        if "propertyNames" in err.schema_path:  # a name that becomes part of a path
            raise ConfigError(f"name {str(err.instance)[:80]!r} under '{where}' may hold only letters, digits, "
                              f"'_' and '-' (it becomes part of file paths); rename it in the config")
        message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
        raise ConfigError(f"config value at '{where}' is invalid: {message}; fix it in the config "
                          f"(allowed values: rae_bench/config/{SCHEMA_PATH.name})")
