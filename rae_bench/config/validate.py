"""Whole-config checks, before anything runs: a workflow config's references and params, and each run
config, its model built.

Every failure is one :class:`ConfigError` (or :class:`CheckpointError` for a file read back) line that
names the value and the fix. Models are built on PyTorch's ``meta`` device here: every ``__init__``
check runs, nothing is allocated, so a run config claiming a 10^12-element net is refused cheaply.

This module sits above models and samplers (it builds them), the top of the config package; the checks they
use themselves are the ground floor's (:mod:`rae_bench.checks`), reading the files is
:mod:`rae_bench.config.files`' and resolving runs :mod:`rae_bench.config.resolve`'s, both below the models.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
from typing import Any, Iterable, Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.nn.utils import parametrizations

from ..checks import MAX_DATA_ELEMENTS, MAX_PARAMETERS, check_lr_schedule, check_name, schema_problem, short
from ..data import data_shape, has_labels
from ..errors import ConfigError, RaeBenchError, unknown_name
from ..models import MODELS, build_model
from ..samplers import SAMPLERS, build_sampler
from .files import check_schema, read_config_files, run_schema
from .resolve import expand_sweeps, extractor_for, resolve_run, sweep_latent_dims, sweep_run_name


def check_run(run: Any, origin: str, fix: str) -> tuple[int, ...]:
    """A resolved run config is well-formed, within the size limits, and its model builds; its data shape.

    ``origin`` names where the run config came from, ``fix`` what to do; both go into the one error line.
    """
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

    Many meta kernels are Python references; the first call of one imports torch._dynamo, 1.2 s of every
    ``snakemake`` parse (-X importtime; ``snakemake -n`` on tests/configs/tiny.yaml takes 3.8 s without it,
    4.9 s with it, whole process on 2 cores). The models' constructors avoid them (in-place ops); spectral norm's
    start (random u and v, normalised, then 15 power iterations) computes nothing on meta tensors, so it is
    skipped: meta tensors hold no values, and every shape stays as it is.
    """
    spectral = parametrizations._SpectralNorm
    saved = spectral._power_method, spectral.forward, torch.Tensor.normal_, F.normalize
    power_method, forward, normal_, normalize = saved
    spectral._power_method = lambda self, weight_mat, n_power_iterations: None
    spectral.forward = lambda self, weight: weight if weight.is_meta else forward(self, weight)
    torch.Tensor.normal_ = lambda self, *args, **kwargs: self if self.is_meta else normal_(self, *args, **kwargs)
    F.normalize = lambda x, *args, **kwargs: x if x.is_meta else normalize(x, *args, **kwargs)
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            yield
    finally:
        spectral._power_method, spectral.forward, torch.Tensor.normal_, F.normalize = saved


def meta_model(run: Mapping[str, Any], shape: Sequence[int], origin: str, fix: str) -> Any:
    """The run's model built on the ``meta`` device (no memory), its size checked against MAX_PARAMETERS."""
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


def load_config(paths: Iterable[str | os.PathLike[str]], validate: bool = True) -> dict[str, Any]:
    """The config files merged in order (:func:`~rae_bench.config.files.read_config_files`), checked whole
    (:func:`validate_config`, which expands the sweeps); ``validate=False`` only expands the sweeps."""
    cfg = read_config_files(paths)
    if validate:
        validate_config(cfg)
    else:
        expand_sweeps(cfg)
    return cfg


def validate_config(cfg: dict[str, Any]) -> None:
    """Check ``cfg`` against the workflow's JSON schema, expand its sweeps (in place), and check
    the cross-references between sections."""
    check_schema(cfg)
    expand_sweeps(cfg)
    check_references(cfg)
    check_config_params(cfg)  # model and sampler params, dataset options: built (on no memory) before any job


def check_references(cfg: Mapping[str, Any]) -> None:
    """Names used in tables and sweeps must exist in their sections, and models/samplers in the registries."""
    for sweep in cfg.get("sweeps", {}).values():
        for ds in sweep["datasets"]:
            if ds not in cfg.get("datasets", {}):
                raise unknown_name("dataset", ds, tuple(cfg.get("datasets", {})))

    for run_name, run in cfg.get("models", {}).items():
        if run["model"] not in MODELS:
            raise unknown_name("model", run["model"], tuple(MODELS))
        for sampler in run.get("samplers", {}):  # a run's overrides of a sampler the config defines
            if sampler not in cfg.get("samplers", {}):
                raise ConfigError(f"models.{run_name}.samplers.{sampler}: no sampler '{sampler}' under samplers "
                                  f"(defined: {', '.join(cfg.get('samplers', {})) or 'none'}); add it there or "
                                  f"remove the override")
    for sampler in cfg.get("samplers", {}):
        if sampler not in SAMPLERS:
            raise unknown_name("sampler", sampler, tuple(SAMPLERS))
    for figure, spec in cfg.get("figures", {}).items():
        if spec["sweep"] not in cfg.get("sweeps", {}):
            raise unknown_name("sweep", spec["sweep"], tuple(cfg.get("sweeps", {})))
        swept = cfg["sweeps"][spec["sweep"]]["models"]
        for model in [spec.get("model"), spec.get("mask_model"), *spec.get("models", [])]:
            if model is not None and model not in swept:
                raise ConfigError(f"figure '{figure}' draws model '{model}', which sweep '{spec['sweep']}' does not "
                                  f"train; add it to sweeps.{spec['sweep']}.models or use one of: {', '.join(swept)}")
    for table, spec in cfg.get("tables", {}).items():
        if "sweep" in spec and spec["sweep"] not in cfg.get("sweeps", {}):
            raise unknown_name("sweep", spec["sweep"], tuple(cfg.get("sweeps", {})))
        for ds in spec.get("datasets", []):
            if ds not in cfg.get("datasets", {}):
                raise unknown_name("dataset", ds, tuple(cfg.get("datasets", {})))
        for row in spec.get("rows", []):
            if "model" not in row:  # placeholder row: published value only
                continue
            if row["model"] not in cfg.get("models", {}):
                raise unknown_name("model", row["model"], tuple(cfg.get("models", {})))
            if row["sampler"] not in cfg.get("samplers", {}):
                raise unknown_name("sampler", row["sampler"], tuple(cfg.get("samplers", {})))




def _used_pairs(cfg: Mapping[str, Any]) -> dict[str, set[str]]:
    """run -> the datasets it is trained on (table rows, sweeps); runs used nowhere get an empty set."""
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
    with on_meta():
        probe = build_model("ae", (4,), 2, "tiny", {})
    for name in (overrides if overrides is not None else samplers):
        check_name("sampler", name)
        spec = samplers.get(name) or {}
        own = overrides.get(name) or {} if overrides is not None else {}
        if not isinstance(own, Mapping):
            raise ConfigError(f"{where}.{name} must be a mapping of sampler parameters, got {short(own)}")
        per_ds = spec.get("datasets") or {}  # per-dataset overrides (config.resolve.resolve_sampler)
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
