"""Measure how far two identical runs on a CUDA GPU drift apart (issue 8: determinism tolerance on GPU).

On CPU the same config and seed give a byte-identical ``metrics.json`` (tests/test_faults.py proves
it). On a GPU, cuDNN/cuBLAS kernels may reduce in a different order from run to run, so the numbers
can differ slightly. This script runs the whole chain of one (dataset, model, sampler) ``--repeats``
times on ``cuda``, each repeat in fresh processes and its own folder (feature classifier when needed,
reference statistics, training, sampler, evaluation), and reports for every numeric metric the
largest relative difference between repeats:

    python benchmarks/gpu_determinism.py --dataset mnist --model rae_l2 --sampler gmm
    python benchmarks/gpu_determinism.py --config config/config.yaml --config config/paper.yaml --repeats 3

Without a CUDA device it prints one ``error:`` line and exits with status 2.
"""
from __future__ import annotations

import argparse
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rae(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "rae_bench", *args], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"error: rae-bench {args[0]} failed: {done.stderr.strip().splitlines()[-1:]}")


def chain(configs: list[str], dataset: str, model: str, sampler: str, seed: int, work: Path) -> dict:
    from rae_bench.config import extractor_for, load_config, n_samples_for

    cfg = load_config(configs)
    extractor, n = extractor_for(cfg, dataset), n_samples_for(cfg, dataset)
    common = [a for c in configs for a in ("--config", c)] + ["--device", "cuda", "--quiet"]
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
    return json.loads((run / sampler / "metrics.json").read_text())


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
    args = parser.parse_args()

    import torch

    if not torch.cuda.is_available():
        print("error: no CUDA device here (torch.cuda.is_available() is false); run this on a machine with a GPU",
              file=sys.stderr)
        return 2
    configs = args.config or [str(ROOT / "config" / "config.yaml")]
    runs = [chain(configs, args.dataset, args.model, args.sampler, args.seed, Path(args.work) / f"repeat{i}")
            for i in range(args.repeats)]
    numeric = [k for k, v in runs[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    report = {}
    for key in numeric:
        values = [r.get(key) for r in runs]
        pairs = [(a, b) for a, b in itertools.combinations(values, 2) if a is not None and b is not None]
        finite = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
        report[key] = {"values": values, "max_relative_difference": max((relative_difference(a, b) for a, b in finite),
                                                                        default=0.0)}
    print(f"{args.dataset}/{args.model} + {args.sampler}, {args.repeats} repeats on {torch.cuda.get_device_name(0)}")
    for key, row in report.items():
        print(f"  {key:12s} max relative difference {row['max_relative_difference']:.3g}   values {row['values']}")
    if args.out:
        meta = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "dataset": args.dataset,
                "model": args.model, "sampler": args.sampler, "repeats": args.repeats, "configs": configs}
        Path(args.out).write_text(json.dumps({"meta": meta, "metrics": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
