"""Checks at the boundaries: parameter types, run configs and sizes, before anything is built or run.

Every failure is one :class:`ConfigError` (or :class:`CheckpointError` for a file read back) line that
names the value and the fix. Models are built on PyTorch's ``meta`` device here: every ``__init__``
check runs, nothing is allocated, so a run config claiming a 10^12-element net is refused cheaply.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import math
from typing import Any, Callable, Iterator, Mapping, Sequence


from .errors import ConfigError, RaeBenchError

NAME_PATTERN = r"^[A-Za-z0-9_-]+$"  # names that become parts of paths (and Snakemake wildcards)
MAX_LATENT_DIM = 16384
MAX_DATA_ELEMENTS = 2**24  # numbers in one data item (3 x 64 x 64 = 12,288 for CelebA)
MAX_PARAMETERS = 2**28  # numbers in a model's parameters and buffers (1 GiB of float32)
MAX_INT_PARAM = 10**7  # any integer hyper-parameter (counts, steps, widths)
MAX_SEED = 2**32 - 1  # what every RNG (torch, numpy, scikit-learn) accepts


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters, on one line."""
    text = repr(value).replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_name(kind: str, name: Any, fix: str = "rename it") -> str:
    """A name that becomes part of a path: letters, digits, '_' and '-' only."""
    import re

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


@functools.lru_cache(maxsize=1)
def run_schema() -> dict[str, Any]:
    """JSON schema of a resolved run config (config.resolve_run), from the workflow schema's pieces."""
    from .config import config_schema

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


def schema_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """The first schema violation of ``value`` as ``value at 'a.b' is invalid: ...``, or None."""
    import jsonschema

    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if not errors:
        return None
    err = errors[0]
    where = ".".join(str(p) for p in err.absolute_path) or "(top level)"
    message = err.message.replace("\n", " ")
    return f"value at '{where}' is invalid: {message if len(message) <= 200 else message[:197] + '...'}"


def check_run(run: Any, origin: str, fix: str) -> tuple[int, ...]:
    """A resolved run config is well-formed, within the size limits, and its model builds; its data shape.

    ``origin`` names where the run config came from, ``fix`` what to do; both go into the one error line.
    """
    from .data import data_shape

    problem = schema_problem(run_schema(), run)
    if problem:
        raise ConfigError(f"{origin}: {problem}; {fix}")
    try:
        check_lr_schedule(run["training"].get("lr_schedule", {}))
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    try:
        shape = tuple(data_shape(run["source"], run.get("options")))
    except RaeBenchError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"{origin}: dataset options {short(run.get('options'))} are invalid "
                          f"({type(exc).__name__}); {fix}") from None
    if math.prod(shape) > MAX_DATA_ELEMENTS:
        raise ConfigError(f"{origin}: data items of shape {shape} exceed {MAX_DATA_ELEMENTS} numbers; {fix}")
    meta_model(run, shape, origin, fix)
    return shape


@contextlib.contextmanager
def on_meta() -> Iterator[None]:
    """Build modules on the ``meta`` device: shapes only, no memory, the global RNG left alone.

    Spectral norm's 15 power iterations at construction run through PyTorch's slow Python reference
    ops on meta tensors (a second per model) and compute nothing there, so they are skipped.
    """
    import torch
    from torch.nn.utils import parametrizations

    spectral = parametrizations._SpectralNorm
    power_method = spectral._power_method
    spectral._power_method = lambda self, weight_mat, n_power_iterations: None
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            yield
    finally:
        spectral._power_method = power_method


def meta_model(run: Mapping[str, Any], shape: Sequence[int], origin: str, fix: str) -> Any:
    """The run's model built on the ``meta`` device (no memory), its size checked against MAX_PARAMETERS."""
    from .models import build_model

    try:
        with on_meta():
            model = build_model(run["model"], shape, run["latent_dim"], run["arch"], run["params"])
    except RaeBenchError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except (ValueError, TypeError, OverflowError, RuntimeError, NotImplementedError, IndexError) as exc:
        raise ConfigError(f"{origin}: model '{run['model']}' cannot be built from params {short(run['params'])} "
                          f"({type(exc).__name__}: {short(str(exc), 100)}); {fix}") from None
    size = sum(t.numel() for t in [*model.parameters(), *model.buffers()])
    if size > MAX_PARAMETERS:
        raise ConfigError(f"{origin}: model '{run['model']}' would hold {size:,} numbers, more than the limit of "
                          f"{MAX_PARAMETERS:,}; {fix}")
    return model


# --------------------------------------------------------------------------- the workflow config


def _used_pairs(cfg: Mapping[str, Any]) -> dict[str, set[str]]:
    """run -> the datasets it is trained on (table rows, sweeps); runs used nowhere get an empty set."""
    from .config import sweep_latent_dims, sweep_run_name

    used: dict[str, set[str]] = {run: set() for run in cfg.get("models", {})}
    for spec in cfg.get("tables", {}).values():
        for row in spec.get("rows", []):
            if "model" in row:
                used.setdefault(row["model"], set()).update(spec.get("datasets", []))
    for sweep in cfg.get("sweeps", {}).values():
        for ds in sweep["datasets"]:
            for base in sweep["models"]:
                for m in sweep_latent_dims(sweep, ds):
                    used.setdefault(sweep_run_name(base, m), set()).add(ds)
    return used


_CHECKED: set[str] = set()  # run configs that passed (validate_config runs once per command or per fuzz case)


def _check_resolved(cfg: Mapping[str, Any], ds: str, run: str) -> None:
    from .config import resolve_run

    resolved = resolve_run(cfg, ds, run, 0)
    key = json.dumps({k: v for k, v in resolved.items() if k not in ("dataset", "run")}, sort_keys=True, default=str)
    if key in _CHECKED:
        return
    check_run(resolved, f"models.{run} on dataset '{ds}'",
              f"fix models.{run}.params (or the training/latent_dim settings it inherits) in the config")
    _CHECKED.add(key)


def check_config_params(cfg: Mapping[str, Any]) -> None:
    """Every run's params on every dataset it is used with, dataset options, and sampler params, before any job.

    A run that no table or sweep uses is checked on its own ``datasets:`` overrides, else it must build on
    at least one dataset.
    """
    for ds, entry in cfg.get("datasets", {}).items():
        check_name("dataset", ds)
        probe = {"dataset": ds, "source": entry["source"], "options": entry.get("options", {})}
        try:
            from .data import data_shape

            data_shape(probe["source"], probe["options"])
        except RaeBenchError as exc:
            raise ConfigError(f"datasets.{ds}.options: {exc}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise ConfigError(f"datasets.{ds}.options {short(probe['options'])} are invalid "
                              f"({type(exc).__name__}); fix them in the config") from None
        check_extractor_labels(cfg, ds)
    datasets = list(cfg.get("datasets", {}))
    for run, used in _used_pairs(cfg).items():
        own = set(cfg["models"][run].get("datasets", {})) & set(datasets)
        targets = sorted(used or own)
        if targets:
            for ds in targets:
                _check_resolved(cfg, ds, run)
            continue
        errors = []
        for ds in datasets:
            try:
                _check_resolved(cfg, ds, run)
                break
            except ConfigError as exc:
                errors.append(exc)
        else:
            if errors:
                raise errors[0]
    check_sampler_params(cfg.get("samplers", {}))
    for run, entry in cfg.get("models", {}).items():
        if entry.get("samplers"):
            check_sampler_params(cfg.get("samplers", {}), entry["samplers"], f"models.{run}.samplers")


def check_extractor_labels(cfg: Mapping[str, Any], ds: str) -> None:
    """The ``classifier`` feature extractor is trained on class labels: refuse it for a dataset without them."""
    from .config import extractor_for
    from .data import has_labels

    entry = cfg["datasets"][ds]
    if extractor_for(cfg, ds) == "classifier" and not has_labels(entry["source"], entry.get("options")):
        raise ConfigError(f"datasets.{ds}: feature extractor 'classifier' needs class labels, which this "
                          f"{entry['source']} dataset has not; set `extractor: raw` (or `inception`, with its weights) "
                          f"on datasets.{ds}, or give it labels (options.labels: true, with "
                          f"{'one subfolder per class' if entry['source'] == 'image_folder' else 'a labels array'})")


def check_sampler_params(samplers: Mapping[str, Any], overrides: Mapping[str, Any] | None = None,
                         where: str = "samplers") -> None:
    """Each ``samplers.<name>`` block builds its sampler (unknown keys, types, ranges); with ``overrides``
    (a run's ``models.<run>.samplers``), each of those merged over its sampler's blocks does."""
    from .models import build_model
    from .samplers import build_sampler

    with on_meta():
        probe = build_model("ae", (4,), 2, "tiny", {})
    for name in (overrides if overrides is not None else samplers):
        check_name("sampler", name)
        spec = samplers.get(name) or {}
        own = overrides.get(name) or {} if overrides is not None else {}
        if not isinstance(own, Mapping):
            raise ConfigError(f"{where}.{name} must be a mapping of sampler parameters, got {short(own)}")
        per_ds = spec.get("datasets") or {}  # per-dataset overrides (rae_bench.config.resolve_sampler)
        base = {k: v for k, v in spec.items() if k != "datasets"}
        for params in [base, *({**base, **(o or {})} for o in per_ds.values())]:
            params = {**params, **own}
            try:
                build_sampler(name, probe, params)
            except RaeBenchError as exc:
                raise ConfigError(f"{where}.{name}: {exc}") from None
            except (ValueError, TypeError, OverflowError) as exc:
                raise ConfigError(f"{where}.{name} params {short(params)} are invalid ({type(exc).__name__}: "
                                  f"{short(str(exc), 100)}); fix them in the config") from None
