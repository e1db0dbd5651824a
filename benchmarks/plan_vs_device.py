"""One paper-profile row trained for a fixed number of steps, against ``rae-bench plan``'s estimate.

    python benchmarks/plan_vs_device.py --device cuda [--dataset mnist --run rae_l2 --steps 30]

Resolves the run from config/config.yaml + config/paper.yaml (as the workflow does), builds its model
and optimisers, and times ``model.train_step`` on a batch of the run's batch size and item shape
(uniform noise: the step's cost does not depend on pixel values) after warm-up steps, synchronising
the device each step. Prints and writes (benchmarks/results/plan_vs_device.json, or $RAE_BENCH_RESULTS)
the measured seconds per step, plan's estimate for it, their ratio, and the GPU-hours of the whole run
at the measured rate. Used by benchmarks/gpu_session.sh (step 4).
"""
from __future__ import annotations

import argparse
import statistics
import time

from _common import RESULTS, ROOT

import torch

from rae_bench.atomic import write_json
from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.models import build_model
from rae_bench.plan import epoch_end_batches, load_step_costs, step_seconds, train_items, training_steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--run", default="rae_l2")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    args = ap.parse_args()
    cfg = load_config([ROOT / "config" / "config.yaml", ROOT / "config" / "paper.yaml"])
    run = resolve_run(cfg, args.dataset, args.run, 0)
    _, shape_key = train_items(run)
    shape = tuple(int(s) for s in shape_key.split("x"))
    batch = int(run["training"]["batch_size"])
    dev = torch.device(args.device)
    torch.manual_seed(0)
    model = build_model(run["model"], shape, run["latent_dim"], run["arch"], run["params"]).to(dev)
    if len(shape) == 3:
        model = model.to(memory_format=torch.channels_last)
    opts = model.optimizers(run["training"]["optim"])
    x = torch.rand(batch, *shape, device=dev)
    model.train()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        model.train_step(x, opts)
    sync()
    times = []
    for _ in range(args.steps):
        t = time.perf_counter()
        model.train_step(x, opts)
        sync()
        times.append(time.perf_counter() - t)
    measured = statistics.median(times)
    costs = load_step_costs()
    estimate = step_seconds(costs, run["model"], run["arch"], shape_key, batch)
    steps, extra = training_steps(run), epoch_end_batches(run)  # extra: between-epoch batches (not timed here)
    hook = extra * step_seconds(costs, run["model"], run["arch"], shape_key, batch, "hook_factor")
    result = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu", "dataset": args.dataset,
              "run": args.run, "batch": batch, "timed_steps": args.steps, "seconds_per_step": round(measured, 5),
              "plan_estimate_seconds_per_step": round(estimate, 5), "measured_over_estimate": round(measured / estimate, 3),
              "run_steps": steps, "run_gpu_hours_measured": round(steps * measured / 3600, 2),
              "run_gpu_hours_plan": round((steps * estimate + hook) / 3600, 2),
              "run_epoch_end_batches": extra,  # priced in run_gpu_hours_plan, not in the measured figure
              "plan_basis": "GPU measurement" if costs.get("gpu_per_step_ae") else f"CPU / {costs['gpu_speedup']} (assumed)"}
    print(result)
    write_json(RESULTS / "plan_vs_device.json", result)


if __name__ == "__main__":
    main()
