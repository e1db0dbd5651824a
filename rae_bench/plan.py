"""What a config will train, and what it will cost, before anything is submitted (``rae-bench plan``).

Reads the same resolution as the workflow (:func:`rae_bench.config.resolve.resolve_run`), counts each run's
optimiser steps as the trainer does (``epochs x max(1, n_train // batch)``, rae_bench/train.py: the last
partial batch of an epoch is dropped) and prices them with measured per-step costs
(``rae_bench/step_costs.json``, written by ``benchmarks/step_costs.py``): seconds per step of the paper
nets' plain auto-encoder per image shape, times a per-model factor measured on MNIST, linear in the
batch size. Without a GPU measurement, the CPU figure is divided by ``gpu_speedup`` (an assumption,
stated in the output). A model's work between epochs (``on_epoch_end``: VAE-IOP's ``per_epoch`` critic
epochs, ``critic_epochs`` x batches per epoch, each an encoder forward pass and a critic step) is counted
apart, as ``between-epoch batches``, and priced at ``hook_factor`` x the AE's step (measured likewise).
Sampler fits (2-Stage VAE's stage 2, GMMs) and evaluation are not priced; the snapshots a run keeps for a
best-checkpoint selection (``training.snapshots``, each evaluated like a final model) are counted.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from .config.resolve import resolve_run, sweep_latent_dims, sweep_run_name
from .errors import ConfigError
from .models import MODELS
from .report.specs import selected_rows  # tables' rows as the report reads them (plan sits above report)
from .snapshots import snapshot_steps

STEP_COSTS = Path(__file__).resolve().parent / "step_costs.json"

# training split sizes and item shapes of the built-in sources (torchvision's splits; CelebA's official train partition)
TRAIN_SIZES = {"mnist": 60000, "fashion_mnist": 60000, "cifar10": 50000, "celeba": 162770}
SHAPES = {"mnist": "1x28x28", "fashion_mnist": "1x28x28", "cifar10": "3x32x32", "celeba": "3x64x64"}


@dataclass(frozen=True)
class PlannedRun:
    table: str
    dataset: str
    run: str
    seed: int
    model: str
    arch: str
    shape: str
    n_train: int
    batch_size: int
    epochs: int
    steps: int
    gpu_hours: float
    epoch_end_batches: int = 0  # batches of the model's between-epochs work (on_epoch_end), over the run
    snapshots: int = 0  # snapshots this table's best-checkpoint rows evaluate (one evaluation each)


def train_items(run: Mapping[str, Any]) -> tuple[int, str]:
    """(training items, item shape) of a resolved run, without loading its data."""
    source = run["source"]
    if source == "synthetic":
        n, shape = int(run["options"].get("n_train", 10000)), str(run["options"].get("d", 64))
    elif source in TRAIN_SIZES:
        n, shape = TRAIN_SIZES[source], SHAPES[source]
    else:
        raise ConfigError(f"plan cannot size dataset '{run['dataset']}' (source {source}) without reading it; "
                          f"set datasets.{run['dataset']}.n_train or plan the built-in datasets only")
    return (min(n, int(run["n_train"])) if run.get("n_train") else n), shape


def training_steps(run: Mapping[str, Any]) -> int:
    """Optimiser steps of a resolved run, counted as rae_bench/train.py counts them."""
    n, _ = train_items(run)
    batch = int(run["training"]["batch_size"])
    return int(run["training"]["epochs"]) * (n // batch if n >= batch else 1)


def epoch_end_batches(run: Mapping[str, Any]) -> int:
    """Batches a resolved run's model processes between epochs (``on_epoch_end``), over the whole run."""
    n, _ = train_items(run)
    batch = int(run["training"]["batch_size"])
    per_epoch = MODELS[run["model"]].epoch_end_batches(run["params"], n // batch if n >= batch else 1)
    return int(run["training"]["epochs"]) * per_epoch


def table_runs(cfg: Mapping[str, Any], targets: Iterable[str] | None = None) -> list[tuple[str, str, str]]:
    """(table or figure, dataset, run) for every training run the named tables and figures (default all) need."""
    tables, figures = cfg.get("tables", {}), cfg.get("figures", {})
    names = list(targets) if targets else [*tables, *figures]
    out: list[tuple[str, str, str]] = []
    for name in names:
        if name in tables:
            spec = tables[name]
            if "sweep" in spec:
                sweep = cfg["sweeps"][spec["sweep"]]
                out += [(name, ds, sweep_run_name(base, m)) for ds in spec.get("datasets", sweep["datasets"])
                        for base in sweep["models"] for m in sweep_latent_dims(sweep, ds)]
            else:
                runs = dict.fromkeys(row["model"] for row in spec.get("rows", []) if "model" in row)
                out += [(name, ds, run) for ds in spec.get("datasets", []) for run in runs]
        elif name in figures:
            sweep = cfg["sweeps"][figures[name]["sweep"]]
            out += [(name, ds, sweep_run_name(base, m)) for ds in sweep["datasets"]
                    for base in sweep["models"] for m in sweep_latent_dims(sweep, ds)]
        else:
            raise ConfigError(f"unknown plan target '{name}'; use one of: {', '.join([*tables, *figures])}")
    return out


def load_step_costs(path: Path = STEP_COSTS) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"step-cost table {path} missing; run `python benchmarks/step_costs.py` to measure it")
    return json.loads(path.read_text())


def step_seconds(costs: Mapping[str, Any], model: str, arch: str, shape: str, batch: int,
                 factors: str = "model_factor") -> float:
    """Estimated GPU seconds of one step (CPU figure / gpu_speedup where no GPU figure exists); with
    ``factors="hook_factor"``, of one batch of the model's between-epochs work."""
    base = costs["per_step_ae"]
    key = f"{arch}/{shape}"
    if key not in base:  # an unmeasured net: the nearest measured one of the same shape, else any
        key = next((k for k in base if k.endswith("/" + shape)), next(iter(base)))
    table = costs.get(factors, {})
    factor = table.get(f"{model}@{arch}", table.get(model, 1.0))  # a factor measured on this net, else on paper's
    cpu = base[key]["seconds"] * batch / base[key]["batch"] * factor
    gpu = costs.get("gpu_per_step_ae", {}).get(key)
    if gpu:
        return gpu["seconds"] * batch / gpu["batch"] * factor
    return cpu / float(costs["gpu_speedup"])


def plan(cfg: Mapping[str, Any], targets: Iterable[str] | None = None,
         costs: Mapping[str, Any] | None = None) -> list[PlannedRun]:
    costs = costs or load_step_costs()
    tables = cfg.get("tables", {})
    best = {(name, row["model"]) for name, t in tables.items() if "rows" in t
            for row in selected_rows(cfg, name, t) if row.get("selection") == "best_checkpoint"}
    rows = []
    for table, ds, run_name in table_runs(cfg, targets):
        for seed in cfg.get("seeds", [0]):
            run = resolve_run(cfg, ds, run_name, seed)
            n, shape = train_items(run)
            steps, extra = training_steps(run), epoch_end_batches(run)
            batch = int(run["training"]["batch_size"])
            seconds = steps * step_seconds(costs, run["model"], run["arch"], shape, batch)
            if extra:
                seconds += extra * step_seconds(costs, run["model"], run["arch"], shape, batch, "hook_factor")
            rows.append(PlannedRun(table, ds, run_name, int(seed), run["model"], run["arch"], shape, n, batch,
                                   int(run["training"]["epochs"]), steps, seconds / 3600, extra,
                                   len(snapshot_steps(run["training"].get("snapshots"), steps))
                                   if (table, run_name) in best else 0))
    return rows


def format_plan(rows: list[PlannedRun], costs: Mapping[str, Any]) -> str:
    def extra(mine: Iterable[PlannedRun]) -> str:
        mine = list(mine)
        n, k = sum(r.epoch_end_batches for r in mine), sum(r.snapshots for r in mine)
        return (f" (+{n:,} between-epoch batches)" if n else "") + (f", {k} snapshots to evaluate" if k else "")

    lines = [f"{'table':<8} {'dataset':<14} {'run':<16} {'seed':>4} {'arch':<7} {'epochs':>6} {'batch':>5} "
             f"{'steps':>9} {'+between':>10} {'GPU-h':>8}"]
    for r in rows:
        lines.append(f"{r.table:<8} {r.dataset:<14} {r.run:<16} {r.seed:>4} {r.arch:<7} {r.epochs:>6} "
                     f"{r.batch_size:>5} {r.steps:>9} {r.epoch_end_batches or '':>10} {r.gpu_hours:>8.2f}")
    lines.append("")
    for table in dict.fromkeys(r.table for r in rows):
        mine = [r for r in rows if r.table == table]
        lines.append(f"{table}: {len(mine)} runs, {sum(r.steps for r in mine):,} steps{extra(mine)}, "
                     f"{sum(r.gpu_hours for r in mine):.1f} GPU-hours")
    unique = {(r.dataset, r.run, r.seed): r for r in rows}  # a run shared by tables trains once
    for r in rows:  # ... and its snapshots are evaluated once, for whichever table selects on them
        if r.snapshots:
            unique[(r.dataset, r.run, r.seed)] = r
    lines.append(f"total: {len(unique)} distinct runs, {sum(r.steps for r in unique.values()):,} steps"
                 f"{extra(unique.values())}, {sum(r.gpu_hours for r in unique.values()):.1f} GPU-hours (training "
                 f"only; sampler fits and evaluation not included)")
    if any(r.epoch_end_batches for r in rows):
        lines.append("+between: batches of a model's work between epochs (VAE-IOP's critic epochs: critic_epochs x "
                     "batches per epoch, an encoder forward pass and a critic step each), priced at hook_factor x "
                     "the AE's step")
    if not costs.get("gpu_per_step_ae"):
        lines.append(f"note: no GPU measurement; GPU time = CPU time measured on {costs.get('machine', 'a CPU')} "
                     f"/ {costs['gpu_speedup']} (assumed speed-up, see {STEP_COSTS.name})")
    return "\n".join(lines)
