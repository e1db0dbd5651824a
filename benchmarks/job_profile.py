"""Where a DAG job's time goes: one `rae-bench train` and one `rae-bench evaluate` job of the default
config, run in-process under cProfile, their wall time split into phases.

A phase is the cumulative time of the functions that do it (data loading is ``rae_bench.data.api.load``,
the GMM fit is the sampler's ``fit``, PRD is ``prd_scores``, ...); imports are timed first, on their own,
by importing what the job will use; "other" is the rest (argument checks, small tensors, the CLI).
cProfile slows Python-heavy code a little, so the shares matter more than the seconds.

    python benchmarks/job_profile.py --results RESULTS_DIR        # a results/ folder of a finished DAG
    python benchmarks/job_profile.py --results R --dataset celeba --model flexae --sampler prior

Prints one table per job (phase, seconds, share) and writes benchmarks/results/job_profile.json.
"""
from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, save

# phase -> (file suffix, function name) whose cumulative times add up to it
TRAIN_PHASES = {
    "data loading": [("rae_bench/data/api.py", "load")],
    "training steps": [("rae_bench/models/base.py", "train_step"), ("rae_bench/models/maskaae.py", "train_step"),
                       ("rae_bench/models/wae_gan.py", "train_step"), ("rae_bench/models/vae_iop.py", "train_step"),
                       ("rae_bench/models/flexae.py", "train_step"), ("rae_bench/models/injflow.py", "train_step")],
    "BatchNorm re-estimation": [("rae_bench/train.py", "recalibrate_batchnorm")],
    "checkpoints": [("rae_bench/train.py", "save_checkpoint")],
    "loss curves (losses.png)": [("rae_bench/report/curves.py", "plot_losses")],
}
EVALUATE_PHASES = {
    "data loading": [("rae_bench/data/api.py", "load")],
    "model and reference loading": [("rae_bench/runs.py", "load_model"), ("rae_bench/metrics/reference.py", "load_stats"),
                                    ("rae_bench/metrics/reference.py", "load_features")],
    "encoding": [("rae_bench/evaluate.py", "encode_all"), ("rae_bench/evaluate.py", "encode_with_spread")],
    "sampler fit": [("rae_bench/samplers/gmm.py", "fit"), ("rae_bench/samplers/two_stage.py", "fit"),
                    ("rae_bench/samplers/prior.py", "fit")],
    "decoding (reconstructions, samples)": [("rae_bench/evaluate.py", "generate")],
    "feature extraction": [("rae_bench/metrics/classifier.py", "__call__"), ("rae_bench/metrics/features.py", "__call__")],
    "Gaussian statistics + Frechet": [("rae_bench/metrics/frechet.py", "gaussian_stats"),
                                      ("rae_bench/metrics/frechet.py", "frechet_distance")],
    "PRD (10 k-means runs)": [("rae_bench/metrics/prd.py", "prd_scores")],
    "KID": [("rae_bench/metrics/kid.py", "kid")],
    "sample grids (PNG)": [("rae_bench/grid.py", "save_grid"), ("rae_bench/evaluate.py", "scatter_vectors")],
}


IMPORTS = "start-up and imports (python, torch, numpy, scikit-learn, rae_bench)"


def timed_imports(modules: list[str]) -> float:
    t0 = time.perf_counter()
    for name in modules:
        __import__(name)
    return time.perf_counter() - t0


def phases(profile: cProfile.Profile, table: dict[str, list[tuple[str, str]]]) -> dict[str, float]:
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    out = {}
    for phase, functions in table.items():
        total = 0.0
        for (path, _, name), (_, _, _, cumulative, callers) in stats.items():
            if any(path.endswith(suffix) and name == fn for suffix, fn in functions):
                # count a function only where no other function of the same phase called it (no double count)
                outer = [c for c in callers if any(c[0].endswith(s) and c[2] == f for s, f in functions)]
                total += cumulative if not outer else 0.0
        out[phase] = total
    return out


def profile_job(argv: list[str], imports: list[str], table: dict[str, list[tuple[str, str]]]) -> dict[str, float]:
    t0 = time.perf_counter()
    t_import = timed_imports(imports)
    from rae_bench.cli import main

    prof = cProfile.Profile()
    prof.enable()
    code = main(argv)
    prof.disable()
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"error: the job failed (exit {code}): rae-bench {' '.join(argv)}")
    split = {IMPORTS: t_import, **phases(prof, table)}
    split["other"] = max(0.0, wall - sum(split.values()))
    split["total"] = wall
    return split


def show(title: str, split: dict[str, float]) -> None:
    print(f"\n{title}")
    for phase, seconds in split.items():
        print(f"  {phase:<55} {seconds:7.2f} s  {100 * seconds / split['total']:5.1f} %")


def one_job(args: argparse.Namespace, tmp: str) -> dict[str, float]:
    """The job ``args.one`` in this process (a fresh one: nothing imported or loaded before it)."""
    results = Path(args.results).resolve()
    run_dir = results / args.dataset / args.model / "seed0"
    settings = {"data_root": args.data_root, "cache_dir": str(results / "cache"), "download": False,
                "verify_checksums": True, "device": "cpu", "checkpoint_every": 200, "features": {"batch_size": 250}}
    host = ["--settings", json.dumps(settings)]  # as the workflow passes them (resources.host)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"  # what Snakemake sets for a 1-thread job
    run = json.loads((run_dir / "config.json").read_text())["run"]
    from rae_bench.config.validate import load_config

    if args.one == "train":
        return profile_job(["train", *host, "--run-config", json.dumps(run), "--threads", "1", "--quiet", "--out", f"{tmp}/train"],
                           ["torch", "numpy", "rae_bench.train"], TRAIN_PHASES)
    cfg = load_config([ROOT / "config" / "config.yaml"], validate=False)
    ref = next((results / args.dataset / "features" / "classifier").glob("reference_test_n*.npz"))
    return profile_job(
            ["evaluate", *host, "--model-path", str(run_dir / "model.pt"), "--sampler", args.sampler,
             "--sampler-params", json.dumps(cfg["samplers"].get(args.sampler, {})), "--seed", "0",
             "--sampler-path", f"{tmp}/ev/sampler.pt", "--extractor", "classifier",
             "--classifier", str(results / args.dataset / "features" / "classifier" / "classifier.pt"),
             "--reference", str(ref), "--n-samples", ref.stem.rsplit("_n", 1)[1], "--threads", "1", "--out-dir", f"{tmp}/ev"],
            ["torch", "numpy", "scipy.linalg", "sklearn.cluster", "sklearn.mixture", "rae_bench.evaluate",
             "rae_bench.metrics.classifier"], EVALUATE_PHASES)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", required=True, help="results/ of a finished default DAG (models, classifier, references)")
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--model", default="ae")
    ap.add_argument("--sampler", default="gmm")
    ap.add_argument("--data-root", default=os.environ.get("RAE_BENCH_DATA") or str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--one", choices=["train", "evaluate"], help=argparse.SUPPRESS)  # the child process
    args = ap.parse_args()
    if args.one:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(one_job(args, tmp)))
        return
    splits = {}
    for job in ("train", "evaluate"):
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--one", job], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if done.returncode != 0:
            sys.exit(f"error: the {job} job failed: {done.stderr.strip().splitlines()[-1:]}")
        split = json.loads(done.stdout.strip().splitlines()[-1])
        # the child's clock starts after Python and this script's own imports (torch among them): add them
        split[IMPORTS] += max(0.0, wall - split["total"])
        split["total"] = wall
        splits[job] = split
        show(f"{job} {args.dataset}/{args.model}" + (f"/{args.sampler}" if job == "evaluate" else ""), splits[job])
    train, evaluate = splits["train"], splits["evaluate"]
    rows: list[dict[str, Any]] = []  # no comparison here: a breakdown, kept beside the other results
    save("job_profile", f"python benchmarks/job_profile.py --results {args.results} --dataset {args.dataset} "
         f"--model {args.model} --sampler {args.sampler}", rows,
         extra={"train": train, "evaluate": evaluate, "job": [args.dataset, args.model, args.sampler]})


if __name__ == "__main__":
    main()
