"""Shared pieces of the benchmark scripts: timing, machine description, result files.

Every script measures one comparison and writes ``benchmarks/results/<name>.json``
(atomically); ``python benchmarks/report.py`` renders all of them into the
results table of ``benchmarks/README.md``. A result row holds the raw timings of
every run, their medians, the ratio and whether the issue's target is met.

The scripts import ``rae_bench`` from the installed package (``pip install -e .``), and this module as a
sibling: ``python benchmarks/x.py`` puts benchmarks/ on ``sys.path`` by itself.
"""
from __future__ import annotations

import datetime as _dt
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Sequence

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = Path(os.environ.get("RAE_BENCH_RESULTS") or HERE / "results")  # gpu_session.sh points it at its scratch
SCRATCH = HERE / ".work"  # gitignored: scratch folders of the benchmarks (a killed run leaves nothing tracked)

from rae_bench.atomic import write_json


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch

    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        info["load_avg_1min_at_start"] = os.getloadavg()[0]
    except OSError:
        pass
    return info


def scratch() -> Path:
    SCRATCH.mkdir(parents=True, exist_ok=True)
    return SCRATCH


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def interleaved(candidates: dict[str, Callable[[], Any]], repeats: int = 3,
                log: Callable[[str], None] = print) -> dict[str, list[float]]:
    """Run each candidate ``repeats`` times, alternating (A B A B ...), so slow drift in
    machine load hits all of them alike. Returns the wall times in seconds."""
    times: dict[str, list[float]] = {k: [] for k in candidates}
    for r in range(repeats):
        for name, fn in candidates.items():
            seconds, _ = timed(fn)
            times[name].append(seconds)
            log(f"  run {r + 1}/{repeats} {name}: {seconds:.3f} s")
    return times


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def row(comparison: str, *, ours: float, reference: float, unit: str, target: str, met: bool,
        ratio: float | None = None, runs: dict[str, list[float]] | None = None, note: str = "",
        higher_is_better: bool = False) -> dict[str, Any]:
    """One line of the results table. ``ratio`` defaults to reference/ours (times) or
    ours/reference (rates, ``higher_is_better``), so > 1 is always in our favour."""
    if ratio is None:
        ratio = (ours / reference) if higher_is_better else (reference / ours)
    return {"comparison": comparison, "ours": ours, "reference": reference, "unit": unit,
            "ratio": ratio, "target": target, "met": bool(met), "runs": runs or {}, "note": note}


def save(name: str, command: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    path = RESULTS / f"{name}.json"
    write_json(path, {
        "name": name,
        "command": command,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "rows": rows,
        **(extra or {}),
    })
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return path
