"""Per-step training cost of the paper nets, the table ``rae-bench plan`` prices runs with.

    nice -n 10 python benchmarks/step_costs.py [--steps 2] [--batch 32] [--hooks-only]

Times ``model.train_step`` (after one warm-up step) of the plain auto-encoder on the ``paper`` nets for
each image shape of the paper profile (1x28x28, 3x32x32, 3x64x64, 64-d vectors), and every model of
the paper profile on MNIST with its paper-profile params, whose ratio to the AE is the model factor.
One CPU thread. Writes rae_bench/step_costs.json (atomically).

    nice -n 10 python benchmarks/step_costs.py --arch infogan

adds another net family to the stored table without re-timing the rest: each shape's AE step on it is
timed beside the ``paper`` AE step in the same process, and the ratio scales the stored ``paper`` figure
(a ratio survives a loaded machine; absolute times do not). The models of the paper profile that use
that family get a factor ``model@arch`` on it.

Models with work between epochs (``on_epoch_end``: VAE-IOP's per-epoch critic) also get a hook factor:
seconds per batch of that work / the AE's step. ``--hooks-only`` measures only those and keeps the rest.
GPU figures (``gpu_per_step_ae``) come
from benchmarks/gpu_session.sh; without them plan divides the CPU time by ``gpu_speedup``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from _common import ROOT, cpu_model

import torch

from rae_bench.atomic import write_json
from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.models import build_model

SHAPES = {"1x28x28": (1, 28, 28), "3x32x32": (3, 32, 32), "3x64x64": (3, 64, 64), "64": (64,)}
# assumed H100 speed-up over one CPU core for these nets (not measured here: no GPU this session)
GPU_SPEEDUP = 100.0


def time_steps(model_name: str, shape: tuple[int, ...], latent: int, params: dict, batch: int, steps: int,
               arch: str = "paper") -> float:
    torch.manual_seed(0)
    model = build_model(model_name, shape, latent, arch, params)
    opts = model.optimizers({"lr": 1e-4, "betas": [0.9, 0.999]})
    x = torch.rand(batch, *shape)
    model.train()
    model.train_step(x, opts)  # warm-up (allocations, lazy state)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        model.train_step(x, opts)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_hook(model_name: str, shape: tuple[int, ...], latent: int, params: dict, batch: int, batches: int) -> float | None:
    """Seconds per batch of the model's between-epochs work (None when it has none), median of 3 calls."""
    torch.manual_seed(0)
    model = build_model(model_name, shape, latent, "paper", params)
    per_call = model.epoch_end_batches(model.params, batches)
    if not per_call:
        return None
    opts = model.optimizers({"lr": 1e-4, "betas": [0.9, 0.999]})
    data = [torch.rand(batch, *shape) for _ in range(batches)]
    model.train()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        model.on_epoch_end(data, opts)
        times.append((time.perf_counter() - t) / per_call)
    return statistics.median(times)


def hook_factors(cfg: dict, ae: float, batch: int) -> dict[str, float]:
    out, seen = {}, set()
    for run_name in cfg["models"]:
        run = resolve_run(cfg, "mnist", run_name, 0)
        if run["model"] in seen:
            continue
        seen.add(run["model"])
        # one pass of 2 batches per critic epoch (critic_epochs of them): the cost per batch is what plan needs
        t = time_hook(run["model"], SHAPES["1x28x28"], min(run["latent_dim"], 64), run["params"], batch, 2)
        if t is not None:
            out[run["model"]] = round(t / ae, 3)
            print("hook", run["model"], out[run["model"]], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--arch", default=None, help="add one net family to the stored table (see above)")
    ap.add_argument("--hooks-only", action="store_true", help="measure only hook_factor, keep the rest of the file")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.arch:
        return add_arch(args.arch, args.batch, args.steps)
    cfg = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"])
    out = ROOT / "rae_bench" / "step_costs.json"
    if args.hooks_only:
        costs = json.loads(out.read_text())
        ae = time_steps("ae", SHAPES["1x28x28"], 16, {}, args.batch, args.steps)  # now, on this machine's load
        costs["hook_factor"] = hook_factors(cfg, ae, args.batch)
        write_json(out, costs)
        return
    per_ae = {}
    for key, shape in SHAPES.items():
        per_ae[f"paper/{key}"] = {"seconds": round(time_steps("ae", shape, 16, {}, args.batch, args.steps), 5),
                                  "batch": args.batch}
        print(key, per_ae[f"paper/{key}"], flush=True)
    ae = per_ae["paper/1x28x28"]["seconds"]
    factors, seen = {"ae": 1.0}, {"ae"}
    for run_name, entry in cfg["models"].items():
        run = resolve_run(cfg, "mnist", run_name, 0)
        if run["model"] in seen:
            continue
        seen.add(run["model"])
        t = time_steps(run["model"], SHAPES["1x28x28"], min(run["latent_dim"], 64), run["params"], args.batch, args.steps)
        factors[run["model"]] = round(t / ae, 3)
        print(run["model"], factors[run["model"]], flush=True)
    write_json(out, {
        "machine": f"{cpu_model()}, 1 thread", "command": "nice -n 10 python benchmarks/step_costs.py",
        "per_step_ae": per_ae, "model_factor": factors, "hook_factor": hook_factors(cfg, ae, args.batch),
        "gpu_speedup": GPU_SPEEDUP, "gpu_per_step_ae": {},
        "notes": "CPU seconds per train_step (median of --steps after a warm-up), linear in batch; "
                 "model_factor: each model's step on MNIST paper nets / the AE's; hook_factor: one batch of "
                 "a model's between-epochs work (on_epoch_end) / the AE's step; gpu_speedup: assumed"})


def add_arch(arch: str, batch: int, steps: int) -> None:
    path = ROOT / "rae_bench" / "step_costs.json"
    costs = json.loads(path.read_text())
    for key, shape in SHAPES.items():
        if len(shape) == 1:
            continue  # vectors: every family is the paper MLP
        ratio = (time_steps("ae", shape, 16, {}, batch, steps, arch)
                 / time_steps("ae", shape, 16, {}, batch, steps, "paper"))
        stored = costs["per_step_ae"][f"paper/{key}"]
        costs["per_step_ae"][f"{arch}/{key}"] = {"seconds": round(stored["seconds"] * ratio, 5),
                                               "batch": stored["batch"], "vs_paper": round(ratio, 3)}
        print(key, costs["per_step_ae"][f"{arch}/{key}"], flush=True)
    cfg = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"])
    for run_name in cfg["models"]:
        run = resolve_run(cfg, "mnist", run_name, 0)
        tag = f"{run['model']}@{arch}"
        if run["arch"] != arch or tag in costs["model_factor"]:
            continue
        t = time_steps(run["model"], SHAPES["1x28x28"], min(run["latent_dim"], 64), run["params"], batch, steps, arch)
        costs["model_factor"][tag] = round(t / time_steps("ae", SHAPES["1x28x28"], 16, {}, batch, steps, arch), 3)
        print(tag, costs["model_factor"][tag], flush=True)
    costs["notes"] += f"; {arch}: `--arch {arch}`, ratios to paper measured side by side"
    write_json(path, costs)


if __name__ == "__main__":
    main()
