"""The DAG: wall time of `snakemake --cores C tables/table3.tex` from empty results, the speed-up
from --cores 1 to --cores 2, and Snakemake's cost per job.

Each run starts in a fresh working folder (benchmarks/.work/dag/...), so nothing is cached but the
read-only data under the data root. Per-job cost: every rule writes a Snakemake ``benchmark:`` file
with the job's own wall time; on one core the jobs run one after another, so

    overhead per job = (DAG wall time - sum of job wall times) / number of jobs

is what Snakemake itself adds (DAG building, scheduling, bookkeeping, job start). The start-up of
one `rae-bench` process (Python + torch import) sits inside the job times; it is measured apart.

    python benchmarks/dag.py                      # quick profile: Table 3 on MNIST, short runs
    python benchmarks/dag.py --profile default --cores 2 --repeats 1   # the README's default command
    python benchmarks/dag.py --profile default --cores 2 --repeats 2 --commits 725eb9e HEAD   # old against new
    python benchmarks/dag.py --profile default --cores 2 --repeats 1 --extra-config X.yaml --name dag_X  # a variant

With ``--commits OLD NEW`` each run uses a checkout of that commit (a detached git worktree under
benchmarks/.work/dag/, its own Snakefile, config files and package, via PYTHONPATH), the two interleaved
run by run; the ratio is wall(OLD) / wall(NEW) (above 1: NEW is faster). Each commit runs its own config: what a user of it gets.
"""
from __future__ import annotations

import argparse
import csv
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import HERE, ROOT, SCRATCH, median, row, save

PROFILES = {
    "quick": [ROOT / "config" / "config.yaml", HERE / "dag_quick.yaml"],
    "default": [ROOT / "config" / "config.yaml"],
}


def data_root() -> str:
    return os.environ.get("RAE_BENCH_DATA") or str((ROOT / ".." / "shared" / "data").resolve())


def checkout(commit: str) -> Path:
    """A detached worktree of ``commit`` (made once, reused)."""
    sha = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    path = SCRATCH / "dag" / f"src_{sha}"
    if not (path / "Snakefile").exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--force", str(path), sha],
                       capture_output=True, check=True)
    return path


def run_dag(profile: str, target: str, cores: int, workdir: Path, src: Path = ROOT,
            extra: list[Path] | None = None) -> dict[str, Any]:
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    files = [src / p.relative_to(ROOT) for p in PROFILES[profile]] + [p.resolve() for p in extra or []]
    cmd = ["snakemake", "-s", str(src / "Snakefile"), "--directory", str(workdir), "--cores", str(cores),
           target, "--configfile", *map(str, files)]
    env = {**os.environ, "RAE_BENCH_DATA": data_root(),
           "PYTHONPATH": os.pathsep.join([str(src), *filter(None, [os.environ.get("PYTHONPATH")])])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    (workdir / "snakemake.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        sys.exit(f"error: snakemake failed (exit {proc.returncode}); see {workdir / 'snakemake.out'}")
    done = re.findall(r"(\d+) of (\d+) steps \(100%\) done", proc.stdout + proc.stderr)
    n_jobs = int(done[-1][1]) if done else 0
    by_kind: dict[str, float] = {}
    for tsv in workdir.glob("results/**/*.benchmark.tsv"):
        with open(tsv, newline="") as f:
            seconds = float(next(csv.DictReader(f, delimiter="\t"))["s"])
        kind = tsv.name.removesuffix(".benchmark.tsv")
        if "features" in tsv.parts or kind not in ("train", "evaluate"):  # the classifiers' train jobs too
            kind = "other (classifiers, references, tables)"
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
    return {"wall": wall, "jobs": n_jobs, "job_s": sum(by_kind.values()), "job_s_by_kind": by_kind,
            "user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime}


def job_startup(repeats: int = 5) -> float:
    """Seconds to start Python and import what a train/evaluate job imports (torch, torchvision,
    scikit-learn, ...): paid by every job, inside its own time."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import rae_bench.train, rae_bench.evaluate, rae_bench.data.mnist"],
                       capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--target", default="tables/table3.tex")
    ap.add_argument("--cores", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--commits", nargs=2, metavar=("OLD", "NEW"), help="time two commits against each other")
    ap.add_argument("--extra-config", type=Path, action="append", default=[], metavar="YAML",
                    help="config file(s) layered after the profile's (e.g. more seeds or training images)")
    ap.add_argument("--name", help="results file name (default dag_<profile>)")
    args = ap.parse_args()
    if args.commits:
        return compare_commits(args)

    runs: dict[int, list[dict[str, float]]] = {c: [] for c in args.cores}
    for r in range(args.repeats):
        for cores in args.cores:  # interleaved, so load drift hits both settings alike
            res = run_dag(args.profile, args.target, cores, SCRATCH / "dag" / f"{args.name or args.profile}_c{cores}",
                          extra=args.extra_config)
            runs[cores].append(res)
            print(f"  run {r + 1}/{args.repeats} --cores {cores}: {res['wall']:.1f} s, {res['jobs']} jobs, "
                  f"sum of job times {res['job_s']:.1f} s {kinds(res)}", flush=True)

    rows = []
    walls = {c: [x["wall"] for x in runs[c]] for c in args.cores}
    what = f"`{args.target}`, {args.profile} config" + "".join(f" + {p.name}" for p in args.extra_config)
    for c in args.cores:
        rows.append(row(f"DAG wall time, {what}, --cores {c}", ours=median(walls[c]), reference=median(walls[c]),
                        unit="s", target="measured", met=True, ratio=1.0, runs={"wall_s": walls[c]},
                        note=f"{runs[c][0]['jobs']} jobs; job seconds {kinds(runs[c][0])}"))
    if 1 in walls and 2 in walls:
        speedup = median(walls[1]) / median(walls[2])
        rows.append(row(f"DAG speed-up --cores 1 -> 2, {what}", ours=median(walls[2]), reference=median(walls[1]),
                        unit="s", target="close to 2x", met=speedup >= 1.6, runs=walls,
                        note="ratio = wall(1 core) / wall(2 cores)"))
    if 1 in runs:
        per_job = [(x["wall"] - x["job_s"]) / max(x["jobs"], 1) for x in runs[1]]
        startup = job_startup()
        rows.append(row(f"Snakemake overhead per job, {what}, --cores 1", ours=median(per_job),
                        reference=median([x["job_s"] / max(x["jobs"], 1) for x in runs[1]]), unit="s/job",
                        target="measured (no target)", met=True,
                        runs={"overhead_s_per_job": per_job},
                        note=f"reference = mean job time; starting one job's Python + imports takes {startup:.2f} s"))
    cmd = "python benchmarks/dag.py " + " ".join(sys.argv[1:])
    save(args.name or f"dag_{args.profile}", cmd.strip(), rows, {"runs": {str(c): v for c, v in runs.items()}})


def kinds(res: dict[str, Any]) -> str:
    """Job seconds by rule kind, and the CPU time of the whole run (user, sys)."""
    return ("(" + ", ".join(f"{k} {v:.0f}" for k, v in sorted(res["job_s_by_kind"].items()))
            + f"; CPU user {res['user_s']:.0f} s, sys {res['sys_s']:.0f} s)")


def compare_commits(args: argparse.Namespace) -> None:
    srcs = {c: checkout(c) for c in args.commits}
    cores = args.cores[-1]
    walls: dict[str, list[float]] = {c: [] for c in args.commits}
    jobs: dict[str, int] = {}
    details: dict[str, list[dict[str, Any]]] = {c: [] for c in args.commits}
    for r in range(args.repeats):
        for c in args.commits:  # interleaved, so load drift hits both commits alike
            res = run_dag(args.profile, args.target, cores, SCRATCH / "dag" / f"{args.profile}_{srcs[c].name}", srcs[c],
                          extra=args.extra_config)
            walls[c].append(res["wall"])
            jobs[c] = res["jobs"]
            details[c].append(res)
            print(f"  run {r + 1}/{args.repeats} {c}: {res['wall']:.1f} s, {res['jobs']} jobs, "
                  f"sum of job times {res['job_s']:.1f} s {kinds(res)}", flush=True)
    old, new = args.commits
    rows = [row(f"DAG wall time, `{args.target}`, {args.profile} config, --cores {cores}, {new} vs {old}",
                ours=median(walls[new]), reference=median(walls[old]), unit="s", target=">= 2x (issue 13)",
                met=median(walls[new]) <= 0.5 * median(walls[old]), runs=walls,
                note=f"{jobs[new]} vs {jobs[old]} jobs; each commit with its own config; job seconds "
                     f"{kinds(details[new][0])} vs {kinds(details[old][0])}")]
    cmd = "python benchmarks/dag.py " + " ".join(sys.argv[1:])
    save(args.name or f"dag_{args.profile}_commits", cmd.strip(), rows, {"runs": walls, "details": details})


if __name__ == "__main__":
    main()
