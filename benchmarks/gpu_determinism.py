"""Measure how far two identical runs on a CUDA GPU drift apart (issue 8: determinism tolerance on GPU).

On CPU the same config and seed give a byte-identical ``metrics.json`` (tests/training/test_training_faults.py proves
it). On a GPU, cuDNN/cuBLAS kernels may reduce in a different order from run to run, so the numbers
can differ slightly. This script runs the whole chain of one (dataset, model, sampler) ``--repeats``
times on ``cuda``, each repeat in fresh processes and its own folder (feature classifier when needed,
reference statistics, training, sampler, evaluation), and reports for every numeric metric the
largest relative difference between repeats:

    python benchmarks/gpu_determinism.py --dataset mnist --model rae_l2 --sampler gmm
    python benchmarks/gpu_determinism.py --config config/config.yaml --config config/paper.yaml --repeats 3
    python benchmarks/gpu_determinism.py --config tests/configs/tiny.yaml --config my_data_root.yaml --cpu-reference

Beside the metrics it compares what training wrote: every loss of ``train_log.csv`` (each step) and every
tensor of ``model.pt``, between repeats (bit-identical or not, largest relative difference) and, with
``--cpu-reference``, between the first CUDA repeat and one more run of the same chain on the CPU: how far
CUDA is from the CPU, where runs are bit-identical. cuDNN's flags (``benchmark``, ``deterministic``,
``allow_tf32``) are left at PyTorch's defaults, which are what ``rae-bench`` runs with; the report
records them.

Without a CUDA device it prints one ``error:`` line and exits with status 2 (``--device cpu`` runs the same
comparison on the CPU, for a quick check of the script itself).
"""
from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def rae(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "rae_bench", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: rae-bench {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")


def chain(configs: list[str], dataset: str, model: str, sampler: str, seed: int, work: Path,
          device: str = "cuda") -> dict:
    """Run the chain in ``work``; returns the metrics, with the run folder under ``"_run"``."""
    from rae_bench.config.resolve import extractor_for, n_samples_for
    from rae_bench.config.validate import load_config

    configs = [str(Path(c).resolve()) for c in configs]  # the commands run in the repository root
    work = work.resolve()
    cfg = load_config(configs)
    extractor, n = extractor_for(cfg, dataset), n_samples_for(cfg, dataset)
    common = [a for c in configs for a in ("--config", c)] + ["--device", device, "--quiet"]
    classifier = []
    if extractor == "classifier":
        rae("train-classifier", *common, "--dataset", dataset, "--out", str(work / "classifier.pt"))
        classifier = ["--classifier", str(work / "classifier.pt")]
    reference = work / f"reference_n{n}.npz"
    rae("reference-stats", *common, "--dataset", dataset, "--extractor", extractor, *classifier, "--n", str(n),
        "--out", str(reference))
    run = work / "run"
    rae("train", *common, "--dataset", dataset, "--model", model, "--seed", str(seed), "--out", str(run))
    rae("fit-sampler", *common, "--model-path", str(run / "model.pt"), "--sampler", sampler, "--seed", str(seed),
        "--out", str(run / sampler / "sampler.pt"))
    rae("evaluate", *common, "--model-path", str(run / "model.pt"), "--sampler-path", str(run / sampler / "sampler.pt"),
        "--extractor", extractor, *classifier, "--reference", str(reference), "--n-samples", str(n),
        "--out-dir", str(run / sampler))
    return {**json.loads((run / sampler / "metrics.json").read_text()), "_run": str(run)}


def losses(run: Path) -> dict[str, list[float]]:
    """Every logged loss (and learning rate) of ``train_log.csv``, one value per step."""
    with open(run / "train_log.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k not in ("step", "epoch")}


def weights(run: Path) -> dict:
    import torch

    return torch.load(run / "model.pt", map_location="cpu", weights_only=True)["state"]


def compare_training(a: Path, b: Path) -> dict:
    """Bit-identity and the largest relative difference of the losses and the weights of two runs."""
    import torch

    la, lb = losses(a), losses(b)
    loss_rel = max((relative_difference(x, y) for k in la for x, y in zip(la[k], lb.get(k, []))), default=0.0)
    first = next((i + 1 for i, (x, y) in enumerate(zip(la.get("loss", []), lb.get("loss", []))) if x != y), None)
    wa, wb = weights(a), weights(b)
    identical = all(torch.equal(wa[k], wb[k]) for k in wa) and wa.keys() == wb.keys()
    w_rel = 0.0
    for k, t in wa.items():
        if t.is_floating_point() and k in wb and t.numel():
            diff = (t.double() - wb[k].double()).abs().max().item()
            w_rel = max(w_rel, diff / max(t.double().abs().max().item(), 1e-12))
    return {"losses_bit_identical": la == lb, "loss_max_relative_difference": loss_rel,
            "first_differing_step": first, "steps": len(la.get("loss", [])),
            "weights_bit_identical": identical, "weights_max_relative_difference": w_rel}


def compare_metrics(runs: list[dict]) -> dict:
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    report = {}
    for key in numeric:
        values = [r.get(key) for r in runs]
        pairs = [(a, b) for a, b in itertools.combinations(values, 2) if a is not None and b is not None]
        finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        report[key] = {"values": values, "max_relative_difference": max((relative_difference(a, b) for a, b in finite),
                                                                        default=0.0)}
    return report


def relative_difference(a: float, b: float) -> float:
    if a == b:
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", action="append", default=None, help="config file(s) (default config/config.yaml)")
    parser.add_argument("--dataset", default="mnist")
    parser.add_argument("--model", default="rae_l2")
    parser.add_argument("--sampler", default="gmm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--work", default="results/gpu_determinism", help="scratch folder (one subfolder per repeat)")
    parser.add_argument("--out", default=None, help="write the report as JSON here as well")
    parser.add_argument("--device", default="cuda", help="device of the repeats (cuda; cpu checks the script itself)")
    parser.add_argument("--cpu-reference", action="store_true",
                        help="run the chain once more on the CPU and compare it with the first repeat")
    parser.add_argument("--parallel", action="store_true",
                        help="run the repeats (and the CPU reference) at the same time, each in its own processes")
    args = parser.parse_args()

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: no CUDA device here (torch.cuda.is_available() is false); run this on a machine with a GPU",
              file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "cpu"
    configs = args.config or [str(ROOT / "config" / "config.yaml")]
    jobs = [(f"repeat{i}", args.device) for i in range(args.repeats)] + ([("cpu", "cpu")] if args.cpu_reference else [])

    def one(job: tuple[str, str]) -> dict:
        return chain(configs, args.dataset, args.model, args.sampler, args.seed, Path(args.work) / job[0], job[1])

    if args.parallel:  # each chain is a series of subprocesses: threads are enough to overlap them
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(jobs)) as pool:
            done = list(pool.map(one, jobs))
    else:
        done = [one(j) for j in jobs]
    runs, ref = done[:args.repeats], (done[args.repeats] if args.cpu_reference else None)
    folders = [Path(r.pop("_run")) for r in runs]
    report = compare_metrics(runs)
    training = [compare_training(folders[0], f) for f in folders[1:]]
    print(f"{args.dataset}/{args.model} + {args.sampler}, {args.repeats} repeats on {name}")
    for key, row in report.items():
        print(f"  {key:12s} max relative difference {row['max_relative_difference']:.3g}   values {row['values']}")
    for i, t in enumerate(training, 1):
        print(f"  training, repeat 0 vs {i}: losses bit-identical {t['losses_bit_identical']} "
              f"(max rel. {t['loss_max_relative_difference']:.3g}, first differing step {t['first_differing_step']} "
              f"of {t['steps']}), weights bit-identical {t['weights_bit_identical']} "
              f"(max rel. {t['weights_max_relative_difference']:.3g})")
    cpu = None
    if ref is not None:
        ref_folder = Path(ref.pop("_run"))
        cpu = {"metrics": compare_metrics([runs[0], ref]), "training": compare_training(folders[0], ref_folder)}
        t = cpu["training"]
        print(f"  {args.device} vs cpu: losses max rel. {t['loss_max_relative_difference']:.3g} (first differing step "
              f"{t['first_differing_step']}), weights max rel. {t['weights_max_relative_difference']:.3g}")
        for key, row in cpu["metrics"].items():
            print(f"    {key:12s} relative difference {row['max_relative_difference']:.3g}   values {row['values']}")
    if args.out:
        flags = {"cudnn_benchmark": torch.backends.cudnn.benchmark,
                 "cudnn_deterministic": torch.backends.cudnn.deterministic,
                 "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                 "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                 "deterministic_algorithms": torch.are_deterministic_algorithms_enabled()}
        meta = {"device": name, "torch": torch.__version__, "cuda": torch.version.cuda, "dataset": args.dataset,
                "model": args.model, "sampler": args.sampler, "repeats": args.repeats, "parallel": args.parallel, "configs": configs,
                "torch_flags_in_this_process": flags}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"meta": meta, "metrics": report, "training": training,
                                              "cpu_reference": cpu}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
