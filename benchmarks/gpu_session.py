"""The Python parts of benchmarks/gpu_session.sh: environment report, configs, DAG report, summary.

    python benchmarks/gpu_session.py env --out ENV.json
    python benchmarks/gpu_session.py config --device cuda --work WORK [--smoke]
    python benchmarks/gpu_session.py dag-report --dir DAG --wall SECONDS --rc RC --out DAG.json
    python benchmarks/gpu_session.py summary --work WORK --out OUT

Each subcommand prints what it found; none needs a GPU (``env`` reports that there is none).
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import importlib
import importlib.metadata as md
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STEP_NAMES = {"1": "environment", "2": "tiny DAG", "3": "determinism", "4": "training throughput",
              "5": "FID throughput"}
# the modules the steps import, and the distribution that provides each (versions from its metadata)
MODULES = {"torch": "torch", "torchvision": "torchvision", "numpy": "numpy", "scipy": "scipy", "pandas": "pandas",
           "sklearn": "scikit-learn", "matplotlib": "matplotlib", "PIL": "pillow", "yaml": "pyyaml", "tqdm": "tqdm",
           "jsonschema": "jsonschema", "pytorch_fid": "pytorch-fid", "snakemake": "snakemake", "pulp": "pulp"}
NEEDED_BY = {"snakemake": "step 2 (the DAG)", "pytorch_fid": "steps 2-5 (every FID)",
             "jsonschema": "steps 2-3 (config validation)"}


def data_roots() -> list[Path]:
    """Where MNIST may be, in order: $DATA_ROOT, shared/ inside the checkout (travels to the device),
    the carried .gpu_carry/data, the ../shared beside a developer's checkout (does not travel)."""
    roots = [Path(os.environ["DATA_ROOT"])] if os.environ.get("DATA_ROOT") else []
    return roots + [ROOT / "shared" / "data", ROOT / ".gpu_carry" / "data", ROOT.parent / "shared" / "data"]


def find_mnist() -> Path | None:
    return next((r for r in data_roots() if (r / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()), None)


# ---------------------------------------------------------------------------------------------- env

def cmd_env(args: argparse.Namespace) -> int:
    info: dict[str, Any] = {"python": sys.executable, "python_version": platform.python_version(),
                            "machine": platform.machine(), "cores": len(os.sched_getaffinity(0)),
                            "packages": {}, "missing": {}}
    for mod, dist in MODULES.items():
        try:
            importlib.import_module(mod)
            try:
                info["packages"][dist] = md.version(dist)
            except md.PackageNotFoundError:
                info["packages"][dist] = "?"
        except Exception as exc:  # noqa: BLE001 - any import failure is a finding here
            info["missing"][mod] = f"{type(exc).__name__}: {exc}"[:200]
    try:
        import rae_bench  # noqa: F401

        info["rae_bench"] = str(Path(rae_bench.__file__).parent)
    except Exception as exc:  # noqa: BLE001
        info["rae_bench"] = None
        info["missing"]["rae_bench"] = f"{type(exc).__name__}: {exc}"[:200]
    cli = shutil.which("rae-bench")
    info["rae_bench_cli"] = cli
    if cli:
        done = subprocess.run([cli, "--help"], capture_output=True, text=True, timeout=60)
        info["rae_bench_cli_ok"] = done.returncode == 0
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        info["cuda_available"] = torch.cuda.is_available()
        info["flags"] = {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                         "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                         "cudnn_benchmark": torch.backends.cudnn.benchmark,
                         "cudnn_deterministic": torch.backends.cudnn.deterministic}
        if torch.cuda.is_available():
            p = torch.cuda.get_device_properties(0)
            info["gpu"] = {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": p.total_memory / 2**30,
                           "multiprocessors": p.multi_processor_count, "count": torch.cuda.device_count()}
            x = torch.randn(1024, 1024, device="cuda")
            info["gpu"]["matmul_check"] = bool(torch.allclose((x @ x).cpu(), x.cpu() @ x.cpu(), rtol=1e-2, atol=1e-2))
    except Exception as exc:  # noqa: BLE001
        info["missing"]["torch"] = f"{type(exc).__name__}: {exc}"[:200]
    mnist = find_mnist()
    info["mnist_root"] = str(mnist) if mnist else None
    info["data_roots_checked"] = [str(r) for r in data_roots()]

    print(f"python {info['python_version']} at {info['python']}, {info['cores']} cores")
    print(f"torch {info.get('torch')} (CUDA {info.get('torch_cuda')}, cuDNN {info.get('cudnn')}), "
          f"cuda available: {info.get('cuda_available')}, gpu: {info.get('gpu')}")
    print(f"torch flags: {info.get('flags')}")
    print("packages:", ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    print(f"rae_bench: {info['rae_bench']}; rae-bench CLI: {cli} (works: {info.get('rae_bench_cli_ok')})")
    print(f"MNIST: {info['mnist_root'] or 'not found in ' + ', '.join(info['data_roots_checked'])}")
    for mod, why in info["missing"].items():
        print(f"MISSING {mod} (needed by {NEEDED_BY.get(mod, 'the package')}): {why}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(info, indent=2) + "\n")
    return 0


# ---------------------------------------------------------------------------------------------- config

def cmd_config(args: argparse.Namespace) -> int:
    """tests/configs/tiny.yaml for this machine: device, data root (MNIST if found, else synthetic only),
    a cache in the scratch folder; and the overlay of the determinism step."""
    import yaml

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    cfg = yaml.safe_load((ROOT / "tests" / "configs" / "tiny.yaml").read_text())
    cfg["device"] = args.device
    cfg["cache_dir"] = str(work / "cache")
    mnist = None if args.smoke else find_mnist()
    if mnist:
        cfg["data_root"] = str(mnist)
    else:  # no MNIST here: Table 3 on the synthetic set alone (no classifier needed: it uses raw features)
        cfg["data_root"] = str(work / "no_data")
        cfg["tables"]["table3"]["datasets"] = ["synth"]
        del cfg["datasets"]["mnist"]
    if args.smoke:  # seconds on a 2-core machine: one model (two rows), small sets
        cfg["datasets"]["synth"]["options"].update({"n_train": 100, "n_test": 60})
        cfg["features"]["n_samples"] = 50
        keep = {"ae"}
        cfg["tables"]["table3"]["rows"] = [r for r in cfg["tables"]["table3"]["rows"] if r["model"] in keep]
        cfg["models"] = {k: v for k, v in cfg["models"].items() if k in keep}
    (work / "tiny_session.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    # determinism: MNIST with the paper nets (convolutions: where cuDNN may pick non-deterministic kernels)
    overlay = {"arch": "paper"} if mnist else {}
    (work / "determinism_overlay.yaml").write_text(yaml.safe_dump(overlay))
    (work / "determinism_dataset").write_text("mnist" if mnist else "synth")
    print(f"wrote {work / 'tiny_session.yaml'}: device {args.device}, data_root {cfg['data_root']}, "
          f"table3 datasets {cfg['tables']['table3']['datasets']}, {len(cfg['tables']['table3']['rows'])} rows")
    print(f"determinism: dataset {'mnist, paper nets' if mnist else 'synth, tiny nets'}")
    return 0


# ---------------------------------------------------------------------------------------------- dag

def cmd_dag_report(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    table = d / "tables" / "table3.csv"
    jobs = []
    for f in sorted(d.glob("results/**/*.benchmark.tsv")):
        with open(f, newline="") as fh:
            rows = list(csv.DictReader(fh, delimiter="\t"))
        if rows:
            jobs.append({"file": str(f.relative_to(d)), "s": float(rows[0]["s"]),
                         "max_rss_mb": float(rows[0].get("max_rss") or 0) if rows[0].get("max_rss") not in ("-", None)
                         else None})
    out: dict[str, Any] = {"rc": args.rc, "wall_s": args.wall, "table3_csv_written": table.is_file(),
                           "jobs_with_benchmark_files": len(jobs), "job_seconds_sum": sum(j["s"] for j in jobs),
                           "jobs": jobs}
    if table.is_file():
        import pandas as pd

        df = pd.read_csv(table)
        out["table3_rows"] = len(df)
        out["table3_datasets"] = sorted(set(df["dataset"]))
        out["table3_all_finite"] = bool(df["ours"].map(lambda v: v == v and abs(v) != float("inf")).all())
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(f"DAG: rc {args.rc}, wall {args.wall:.1f} s, table3.csv written: {out['table3_csv_written']} "
          f"({out.get('table3_rows', 0)} rows, all finite: {out.get('table3_all_finite')}); "
          f"{len(jobs)} jobs, job time sum {out['job_seconds_sum']:.1f} s")
    return 0


# ---------------------------------------------------------------------------------------------- summary

def load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.{digits}g}"
    return str(v)


def md_steps(steps: list[dict[str, str]]) -> list[str]:
    lines = ["| step | what | status | seconds | time box |", "| --- | --- | --- | --- | --- |"]
    for s in steps:
        lines.append(f"| {s['step']} | {STEP_NAMES.get(s['step'], s['name'])} | {s['status']} | {s['seconds']} | "
                     f"{s['box']} |")
    return lines


def md_env(env: dict | None) -> list[str]:
    if not env:
        return ["Environment: not recorded (step 1 did not finish)."]
    gpu = env.get("gpu") or {}
    line = (f"Machine: {gpu.get('name', 'no GPU')} ({fmt(gpu.get('memory_gib'))} GiB, "
            f"{gpu.get('multiprocessors', '-')} SMs, capability {gpu.get('capability', '-')}), {env['cores']} cores; "
            f"Python {env['python_version']}, torch {env.get('torch')} (CUDA {env.get('torch_cuda')}, cuDNN "
            f"{env.get('cudnn')}); flags {env.get('flags')}.")
    out = [line]
    if env.get("missing"):
        out.append("Missing there: " + "; ".join(f"`{k}` ({v})" for k, v in env["missing"].items()) + ".")
    return out


def md_dag(dag: dict | None) -> list[str]:
    if not dag:
        return ["- **Tiny DAG**: no result (see `2_dag.log`)."]
    return [f"- **Tiny DAG** (`snakemake --cores N tables/table3.tex`, tests/configs/tiny.yaml on the device): "
            f"rc {dag['rc']}, wall {fmt(dag['wall_s'])} s, table3.csv written: {fmt(dag['table3_csv_written'])} "
            f"({dag.get('table3_rows', 0)} rows, datasets {dag.get('table3_datasets', [])}, all finite: "
            f"{fmt(dag.get('table3_all_finite'))}); {dag['jobs_with_benchmark_files']} jobs, job wall sum "
            f"{fmt(dag['job_seconds_sum'])} s."]


def md_determinism(det: dict | None) -> list[str]:
    if not det:
        return ["- **Determinism**: no result (see `3_determinism.log`)."]
    meta = det["meta"]
    worst = max((m["max_relative_difference"] for m in det["metrics"].values()), default=0.0)
    out = [f"- **Determinism** ({meta['dataset']}/{meta['model']} + {meta['sampler']}, {meta['repeats']} repeats on "
           f"{meta['device']}, torch flags {meta['torch_flags_in_this_process']}): metrics' largest relative "
           f"difference between repeats {fmt(worst)}."]
    for i, t in enumerate(det.get("training", []), 1):
        out.append(f"  - repeat 0 vs {i}: losses bit-identical {fmt(t['losses_bit_identical'])} (max rel. "
                   f"{fmt(t['loss_max_relative_difference'])}, first differing step {t['first_differing_step']} of "
                   f"{t['steps']}), weights bit-identical {fmt(t['weights_bit_identical'])} (max rel. "
                   f"{fmt(t['weights_max_relative_difference'])}).")
    cpu = det.get("cpu_reference")
    if cpu:
        t = cpu["training"]
        m = {k: v["max_relative_difference"] for k, v in cpu["metrics"].items() if k in ("fid_rec", "fid_gen", "mse_rec", "kid")}
        out.append(f"  - {meta['device']} vs CPU: losses max rel. {fmt(t['loss_max_relative_difference'])} (first "
                   f"differing step {t['first_differing_step']}), weights max rel. "
                   f"{fmt(t['weights_max_relative_difference'])}; metrics rel. "
                   + ", ".join(f"{k} {fmt(v)}" for k, v in m.items()) + ".")
    return out


def md_hardware(hw: dict | None) -> list[str]:
    if not hw:
        return ["- **Training throughput**: no result (see `4_hardware.log`)."]
    out = ["- **Training throughput** (`benchmarks/hardware.py`, one training step = forward, backward, Adam; "
           "batch 100, channels-last, fp32 weights):", "",
           "  | net | device | img/s | GFLOP/s | of fp32 mm peak | of TF32 mm peak | GPU busy |",
           "  | --- | --- | --- | --- | --- | --- | --- |"]
    for r in hw.get("results", {}).values():
        tf32 = r["achieved_gflops"] / r["peak_tf32_gflops"] if r.get("peak_tf32_gflops") else None
        out.append(f"  | {r['arch']} {r['dataset']} | {r['device']} | {fmt(r['images_per_s'])} | "
                   f"{fmt(r['achieved_gflops'])} | {fmt(100 * r['fraction'], 2)} % | "
                   f"{fmt(100 * tf32, 2) + ' %' if tf32 else '-'} | "
                   f"{fmt(100 * r['gpu_busy_share'], 2) + ' %' if 'gpu_busy_share' in r else '-'} |")
    out.append("")
    return out


def md_fid(fid: dict | None) -> list[str]:
    if not fid:
        return ["- **FID throughput**: no result (see `5_fid.log`)."]
    s = fid["settings"]
    out = [f"- **FID throughput** (`benchmarks/gpu_fid.py`, {s['n']:,} + {s['n']:,} synthetic {s['size']}x{s['size']} "
           f"images, random Inception weights, on {s['device']}):", "",
           "  | precision | ours img/s | pytorch-fid img/s | ratio | FID rel. diff. | features rel. diff. | "
           "ours end to end | `python -m pytorch_fid` |",
           "  | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for mode, r in fid.get("results", {}).items():
        ips = r["images_per_s"]
        cli = r.get("cli") or {}
        ours_total = statistics.median(r["times_s"]["ours"]) + r["stats_and_frechet_s"]["ours"]
        out.append(f"  | {'fp32 (TF32 off)' if mode == 'off' else 'TF32 (default)'} | {fmt(ips['ours'])} | "
                   f"{fmt(ips['pytorch_fid'])} | {ips['ours'] / ips['pytorch_fid']:.2f}x | "
                   f"{fmt(r['fid_relative_difference'], 2)} | {fmt(r['feature_max_relative_difference'], 2)} | "
                   f"{fmt(ours_total)} s | {fmt(cli.get('wall_s'))} s |")
    out.append("")
    return out


def cmd_summary(args: argparse.Namespace) -> int:
    work, out = Path(args.work), Path(args.out)
    steps = []
    tsv = work / "steps.tsv"
    if tsv.is_file():
        for line in tsv.read_text().splitlines():
            step, name, status, seconds, box = line.split("\t")
            steps.append({"step": step, "name": name, "status": status, "seconds": seconds, "box": box})
    res = work / "results"
    env = load(work / "env.json")
    parts = {"env": env, "dag": load(res / "dag.json"), "determinism": load(res / "gpu_determinism.json"),
             "hardware": load(res / (args.hardware_name + ".json")), "fid": load(res / (args.fid_name + ".json"))}
    summary = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "smoke": args.smoke,
               "steps": steps, **parts}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    title = "GPU session: CPU smoke run (not a GPU measurement)" if args.smoke else "GPU session"
    lines = [f"### {title}, {summary['date'][:10]}", "", "`bash benchmarks/gpu_session.sh` "
             + ("with `CPU_SMOKE=1`" if args.smoke else "on the lent machine") + ", measured once.", "",
             *md_env(env), "", *md_steps(steps), "", *md_dag(parts["dag"]), *md_determinism(parts["determinism"]),
             *md_hardware(parts["hardware"]), *md_fid(parts["fid"]),
             "Per-step logs: `1_env.log` ... `5_fid.log`; every result file in `details.tar.gz` (`results/*.json` "
             "there go to `benchmarks/results/` for `python benchmarks/report.py`)."]
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    with tarfile.open(out / "details.tar.gz", "w:gz") as tar:
        for p in [work / "env.json", work / "steps.tsv", work / "tiny_session.yaml", *sorted(res.glob("*.json"))]:
            if p.is_file():
                tar.add(p, arcname=str(p.relative_to(work)))
        dag = work / "dag"
        for pattern in ("tables/*", "results/**/*.benchmark.tsv", "results/**/metrics.json", "logs/**/*.log",
                        ".snakemake/log/*.log"):
            for p in sorted(dag.glob(pattern)):
                if p.is_file() and p.stat().st_size < 2_000_000:
                    tar.add(p, arcname=str(Path("dag") / p.relative_to(dag)))
    print("\n".join(lines))
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("env")
    p.add_argument("--out", required=True)
    p = sub.add_parser("config")
    p.add_argument("--device", default="cuda")
    p.add_argument("--work", required=True)
    p.add_argument("--smoke", action="store_true")
    p = sub.add_parser("dag-report")
    p.add_argument("--dir", required=True)
    p.add_argument("--wall", type=float, required=True)
    p.add_argument("--rc", type=int, required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("summary")
    p.add_argument("--work", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--smoke", action="store_true")
    p.add_argument("--hardware-name", default="hardware_gpu")
    p.add_argument("--fid-name", default="gpu_fid")
    args = ap.parse_args()
    return {"env": cmd_env, "config": cmd_config, "dag-report": cmd_dag_report, "summary": cmd_summary}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
