"""Process-wide native settings (rae_bench/native.py): the allocator keeps freed memory, the thread caps.

The allocator's effect is measured, not assumed: a loop of convolutions like a training step's, in a fresh
process, page-faults its activations back in every iteration with glibc's defaults and not after
``keep_freed_memory``; the arithmetic is the same either way.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rae_bench import cli
from rae_bench.native import MALLOC_VARIABLE, keep_freed_memory, limit_native_threads

glibc = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt (Linux)")

LOOP = """
import json, resource, sys, torch
from rae_bench.native import keep_freed_memory
applied = keep_freed_memory() if sys.argv[1] == "tuned" else False
torch.manual_seed(0)
x, w = torch.randn(100, 32, 28, 28), torch.randn(64, 32, 3, 3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
total = 0.0
for _ in range(20):
    y = torch.nn.functional.conv2d(x, w, padding=1)  # 20 MB of activations, freed every iteration
    total += float((torch.relu(y) * 2.0).sum())
    del y
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"applied": applied, "faults": faults, "total": total}))
"""


def _loop(mode: str, env: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    out = subprocess.run([sys.executable, "-c", LOOP, mode], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_keep_freed_memory_stops_the_page_faults_of_each_step():
    default, tuned = _loop("default"), _loop("tuned")
    assert tuned["applied"] is True
    assert tuned["total"] == default["total"]  # same arithmetic, bit for bit
    # measured: ~350 k faults with glibc's defaults, ~22 k after; a factor 4 leaves room for noise
    assert tuned["faults"] * 4 < default["faults"], (default, tuned)


@glibc
def test_rae_bench_malloc_default_leaves_glibc_alone():
    out = _loop("tuned", {MALLOC_VARIABLE: "default"})
    assert out["applied"] is False


def test_keep_freed_memory_is_safe_to_call_twice():
    first = keep_freed_memory()
    assert keep_freed_memory() == first


def test_cli_keeps_freed_memory_before_work(monkeypatch):
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("malloc") or True)
    assert cli.main(["models"]) == 0
    assert calls == ["malloc"]


def test_limit_native_threads_keeps_values_already_set(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    for name in ("MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    limit_native_threads(1)
    assert os.environ["OMP_NUM_THREADS"] == "3" and os.environ["MKL_NUM_THREADS"] == "1"
