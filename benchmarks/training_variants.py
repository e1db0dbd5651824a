"""Seed spread of one Table 3 row under training variants: Rec./Gen. FID per (variant, seed).

Each variant overrides part of the run's ``training`` block as resolved from a config (the default:
config/config.yaml), and with its ``params`` key the model's hyper-parameters. Each run trains and evaluates
with the workflow's own commands (``rae-bench train``, ``rae-bench evaluate`` with ``--sampler``, default GMM,
at the config's settings, no FID bootstrap). The feature classifier and reference statistics come from a
finished workdir (``snakemake tables/table3.tex`` there first). Runs go to ``--out``; a finished one is reused.

    python benchmarks/training_variants.py --workdir /tmp/run --model ae --seeds 0 1 2 \
        --variants '{"base": {}, "b50": {"batch_size": 50}, "b32": {"batch_size": 32}, "lr5e-4": {"optim": {"lr": 5e-4}}}'

Results: benchmarks/results/mnist_batch_ae.txt (AE on MNIST at 0c638cc, batch 100 -> 32 is the default now),
benchmarks/results/celeba_batch_ae.txt (AE on CelebA: batch 16 or 3 epochs lower the mean, not the seed spread),
benchmarks/results/maskaae_var_weight.txt (MaskAAE: mask lr, generator lr and variance-penalty weight).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from _common import ROOT
from rae_bench.config.resolve import host_settings, merge_training, resolve_run
from rae_bench.config.validate import load_config


def one(cfg: dict, args: argparse.Namespace, variant: str, change: dict, seed: int) -> str:
    run = resolve_run(cfg, args.dataset, args.model, seed)
    change = dict(change)
    run["params"] = {**run["params"], **change.pop("params", {})}  # model hyper-parameters, the rest is training
    run["training"] = merge_training(run["training"], change)
    out = Path(args.out) / variant / args.model / f"seed{seed}"
    out.mkdir(parents=True, exist_ok=True)
    feats = Path(args.workdir) / "results" / args.dataset / "features" / "classifier"
    n = int(cfg["features"]["n_samples"])
    if not (out / "model.pt").exists():
        subprocess.run(["rae-bench", "train", "--settings", host_settings(cfg), "--run-config", json.dumps(run),
                        "--threads", "1", "--quiet", "--out", str(out)], check=True, capture_output=True,
                       cwd=args.workdir)
    smp = args.sampler
    if not (out / smp / "metrics.json").exists():
        subprocess.run(["rae-bench", "evaluate", "--settings", host_settings(cfg), "--model-path", str(out / "model.pt"),
                        "--sampler", smp, "--sampler-params", json.dumps(cfg["samplers"][smp]), "--seed",
                        str(seed), "--sampler-path", str(out / smp / "sampler.pt"), "--extractor", "classifier",
                        "--classifier", str(feats / "classifier.pt"), "--precision", "fp32", "--reference",
                        str(feats / f"reference_test_n{n}.npz"), "--n-samples", str(n), "--knn-k", "5",
                        "--fid-bootstrap", "0", "--threads", "1", "--out-dir", str(out / smp)],
                       check=True, capture_output=True, cwd=args.workdir)
    m = json.loads((out / smp / "metrics.json").read_text())
    secs = json.loads((out / "config.json").read_text()).get("result", {}).get("train_seconds", float("nan"))
    return (f"{variant:10s} {args.model:8s} s{seed} rec {m['fid_rec']:7.2f} gen {m['fid_gen']:7.2f} "
            f"mse {m['mse_rec']:.5f} train_s {secs:.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--workdir", required=True, help="a finished workdir: its classifier and reference statistics")
    ap.add_argument("--configfile", nargs="+", default=[str(ROOT / "config" / "config.yaml")])
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--model", default="ae", help="a run name of the config")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--sampler", default="gmm", help="a sampler of the config (Gen. FID; Rec. FID does not depend on it)")
    ap.add_argument("--variants", required=True, help='JSON: name -> training override, e.g. {"b32": {"batch_size": 32}}')
    ap.add_argument("--out", default="results_variants", help="folder for the runs (relative: to the workdir)")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="runs side by side, one thread each")
    args = ap.parse_args()
    args.out = str(Path(args.workdir) / args.out)
    cfg = load_config(args.configfile, validate=False)
    if args.sampler not in cfg["samplers"]:
        ap.error(f"--sampler {args.sampler} is not a sampler of the config; valid: {', '.join(cfg['samplers'])}")
    variants = json.loads(args.variants)
    with ThreadPoolExecutor(args.jobs) as pool:
        for line in pool.map(lambda vs: one(cfg, args, vs[0], variants[vs[0]], vs[1]),
                             itertools.product(variants, args.seeds)):
            print(line, flush=True)


if __name__ == "__main__":
    main()
