"""A merged config -> one resolved config per training run, sampler and dataset.

The workflow config (``config/*.yaml``) names datasets, runs (a registered
model plus its hyper-parameters), samplers and tables. A *run config* is what
one training needs and nothing else, so changing a table row or another
model's settings never invalidates a trained model:

    training defaults <- dataset.training <- run.training <- run.datasets[ds].training
    run.params <- run.datasets[ds].params

Sweeps become ordinary runs here (:func:`expand_sweeps`), and :func:`config_hash` names a resolved run.
This module sits beside ``data``, below the models (the report jobs import it without torch); the checks
that build models are :mod:`rae_bench.config.validate`'s.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

from ..errors import unknown_name
from .files import deep_merge

# training options whose default value is left out of a resolved run config (see resolve_run)
TRAINING_DEFAULTS: dict[str, Any] = {"channels_last": True, "precision": "fp32"}


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


def sampler_beside_model(cfg: Mapping[str, Any], sampler: str,
                         model_path: str | os.PathLike[str] | None) -> dict[str, Any]:
    """:func:`resolve_sampler` on the dataset and run of the run folder holding ``model_path`` (its
    config.json); without one, the sampler's dataset-independent parameters."""
    record = Path(model_path).parent / "config.json" if model_path else None
    blob = json.loads(record.read_text()) if record is not None and record.is_file() else {}
    run_cfg = blob.get("run") if isinstance(blob.get("run"), dict) else {}  # train.py: {"run": resolved run, ...}
    return resolve_sampler(cfg, run_cfg.get("dataset"), sampler, run_cfg.get("run"))


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


def host_settings(cfg: Mapping[str, Any]) -> str:
    """Where and how fast a job runs, not what it makes (data and cache roots, device, checkpoint interval,
    TensorBoard, the extractor's weights file, batch size and engine): the JSON every workflow job gets as
    ``--settings`` (workflow/rules/common.smk, a resource, so changing it reruns nothing)."""
    return json.dumps(
        {
            "data_root": cfg.get("data_root", "data"),
            "cache_dir": cfg.get("cache_dir", "results/cache"),
            "download": cfg.get("download", False),
            "verify_checksums": cfg.get("verify_checksums", True),
            "device": cfg.get("device", "auto"),
            "checkpoint_every": cfg.get("checkpoint_every", 500),
            "tensorboard": cfg.get("tensorboard", False),
            "features": {k: v for k, v in cfg.get("features", {}).items()
                         if k in ("inception_weights", "batch_size", "backend")},
        },
        sort_keys=True,
    )
