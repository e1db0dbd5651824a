"""Config files -> validated dicts -> one resolved config per training run.

The workflow config (``config/*.yaml``) names datasets, runs (a registered
model plus its hyper-parameters), samplers and tables. A *run config* is what
one training needs and nothing else, so changing a table row or another
model's settings never invalidates a trained model:

    training defaults <- dataset.training <- run.training <- run.datasets[ds].training
    run.params <- run.datasets[ds].params

Reading, merging, the schema check and resolution only: this module sits beside ``data``, below the models.
The checks that need the model and sampler registries or build models (and ``load_config``, which runs
them) are :mod:`rae_bench.validate`'s.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import json
import math
import os
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import yaml

from .checks import MAX_LATENT_DIM, MAX_SEED, NAME_PATTERN
from .errors import ConfigError, unknown_name

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "config.schema.yaml"  # package data
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


# training options whose default value is left out of a resolved run config (see resolve_run)
TRAINING_DEFAULTS: dict[str, Any] = {"channels_last": True, "precision": "fp32"}


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
    """The workflow config's JSON schema (rae_bench/schemas/config.schema.yaml, package data), read once."""
    return yaml.load(SCHEMA_PATH.read_text(), Loader=SAFE_LOADER)


@functools.lru_cache(maxsize=1)
def run_schema() -> dict[str, Any]:
    """JSON schema of a resolved run config (config.resolve_run), from the workflow schema's pieces."""
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
    ``config`` from the same files with this, so jobs see what load_config gives)."""
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


def sweep_run_name(model: str, latent_dim: int) -> str:
    return f"{model}_m{latent_dim}"


def sweep_latent_dims(sweep: Mapping[str, Any], dataset: str) -> list[int]:
    dims = sweep["latent_dims"]
    return list(dims.get(dataset, []) if isinstance(dims, Mapping) else dims)


def expand_sweeps(cfg: dict[str, Any]) -> dict[str, Any]:
    """Add one run per (swept model, latent size m) under ``models:`` as ``{model}_m{m}``.

    A sweep (the latent-dimension study of Figures 2 and 5 and Table 2) is then
    ordinary runs, trained, cached and rerun like any other. The generated
    entries copy the base model's settings with ``latent_dim`` forced to m.
    """
    models = cfg.get("models", {})
    for name, sweep in cfg.get("sweeps", {}).items():
        for base in sweep["models"]:
            if base not in models:
                raise unknown_name("model", base, tuple(models))
            dims = sorted({m for ds in sweep["datasets"] for m in sweep_latent_dims(sweep, ds)})
            for m in dims:
                entry = copy.deepcopy(dict(models[base]))
                entry["latent_dim"] = int(m)
                # our choice: sweeps report final weights, so their runs keep no snapshots (disk, BN passes)
                entry.get("training", {}).pop("snapshots", None)
                for per_ds in entry.get("datasets", {}).values():
                    per_ds.pop("latent_dim", None)
                    per_ds.get("training", {}).pop("snapshots", None)
                models.setdefault(sweep_run_name(base, m), entry)
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
    coerced first (in place); the whole-config checks that build models are rae_bench.validate's."""
    # the schema ships with the package (package data), so an installed rae_bench validates as a checkout does
    import jsonschema  # here: 55 ms, which the report jobs importing this module for resolve_run never need

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
                          f"(allowed values: rae_bench/schemas/{SCHEMA_PATH.name})")


def dataset_entry(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    datasets = cfg.get("datasets", {})
    if dataset not in datasets:
        raise unknown_name("dataset", dataset, tuple(datasets))
    return dict(datasets[dataset])


def run_entry(cfg: Mapping[str, Any], run: str) -> dict[str, Any]:
    models = cfg.get("models", {})
    if run not in models:
        raise unknown_name("model", run, tuple(models))
    return dict(models[run])


def merge_training(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """``deep_merge`` of training blocks, except that an lr_schedule of another type replaces the inherited
    one whole: a piecewise schedule must not carry the step schedule's step_epochs and gamma along."""
    out = deep_merge(base, override)
    new = (override or {}).get("lr_schedule")
    if isinstance(new, Mapping) and new.get("type", "none") != (base.get("lr_schedule") or {}).get("type", "none"):
        out["lr_schedule"] = copy.deepcopy(dict(new))
    return out


def resolve_run(cfg: Mapping[str, Any], dataset: str, run: str, seed: int) -> dict[str, Any]:
    """Everything that determines the weights of one training run, as plain JSON data."""
    ds = dataset_entry(cfg, dataset)
    entry = run_entry(cfg, run)
    per_ds = entry.get("datasets", {}).get(dataset, {})
    training = merge_training(cfg.get("training", {}), ds.get("training"))
    training = merge_training(training, entry.get("training"))
    training = merge_training(training, per_ds.get("training"))
    # spelled-out defaults do not change a run's identity (its hash, Snakemake's params); a non-default
    # precision or layout does: bf16 gives other numbers, NCHW other float rounding
    for key, default in TRAINING_DEFAULTS.items():
        if training.get(key) == default:
            del training[key]
    return {
        "dataset": dataset,
        "source": ds["source"],
        "options": ds.get("options", {}),
        # a run may train on fewer items than its dataset's default (Table 5's limited training sets)
        "n_train": per_ds.get("n_train", entry.get("n_train", ds.get("n_train"))),
        "run": run,
        "model": entry["model"],
        "params": deep_merge(entry.get("params", {}), per_ds.get("params")),
        "latent_dim": int(per_ds.get("latent_dim", entry.get("latent_dim", ds["latent_dim"]))),
        "arch": per_ds.get("arch", entry.get("arch", ds.get("arch", cfg.get("arch", "small")))),
        "seed": int(seed),
        "training": training,
    }


def resolve_sampler(cfg: Mapping[str, Any], dataset: str | None, sampler: str,
                    run: str | None = None) -> dict[str, Any]:
    """A sampler's parameters on one dataset: ``samplers.<name>`` with its ``datasets.<dataset>`` block
    merged over it (the 2-Stage VAE's second stage trains 70 epochs on CelebA, 800 elsewhere), then the
    run's own ``models.<run>.samplers.<name>`` (the RAE rows' Bayesian GMM beside the AE's plain one)."""
    spec = dict(cfg.get("samplers", {}).get(sampler, {}))
    per_ds = spec.pop("datasets", {}) or {}
    if dataset is not None:
        spec.update(per_ds.get(dataset) or {})
    own = cfg.get("models", {}).get(run, {}).get("samplers", {}) if run is not None else {}
    return {**spec, **(own.get(sampler) or {})}


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def extractor_for(cfg: Mapping[str, Any], dataset: str) -> str:
    """Feature extractor of a dataset: vectors always use ``raw``."""
    ds = dataset_entry(cfg, dataset)
    if ds["source"] == "synthetic":
        return "raw"
    return str(ds.get("extractor", cfg.get("features", {}).get("extractor", "classifier")))


def classifier_spec(cfg: Mapping[str, Any], dataset: str) -> dict[str, Any]:
    """What trains a dataset's feature classifier: its source and options, features.classifier and the
    dataset's own ``classifier:`` overrides."""
    ds = dataset_entry(cfg, dataset)
    return {"source": ds["source"], "options": ds.get("options", {}),
            **cfg.get("features", {}).get("classifier", {}), **ds.get("classifier", {})}


def n_samples_for(cfg: Mapping[str, Any], dataset: str) -> int:
    ds = dataset_entry(cfg, dataset)
    return int(ds.get("n_samples", cfg.get("features", {}).get("n_samples", 10000)))
