"""A plain (non-editable) install behaves like the checkout: the wheel carries its package data (the config
schema, plan's step costs) and the installed package scores two files from outside any checkout."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of a copy of the tracked files, unpacked as site-packages would hold it."""
    tmp = tmp_path_factory.mktemp("install")
    files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    src = tmp / "src"
    for name in filter(None, files.stdout.split("\0")):
        if (REPO / name).is_file():
            (src / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, src / name)
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "-w", str(tmp / "wheel"), str(src)], capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        pytest.skip(f"could not build a wheel here: {done.stderr[-300:]}")
    (wheel,) = (tmp / "wheel").glob("rae_bench-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"rae_bench/config/config.schema.yaml", "rae_bench/step_costs.json"} <= names
        z.extractall(tmp / "site")
    return tmp / "site"


def run(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}  # before the editable install's finder on sys.path
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_installed_package_scores_two_npz_files_from_outside_the_checkout(installed, tmp_path):
    where = run(installed, tmp_path, "-c", "import rae_bench; print(rae_bench.__file__)")
    assert where.stdout.strip().startswith(str(installed)), where.stdout + where.stderr
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 8)), rng.normal(0.5, 1.0, size=(300, 8))
    for name, x in (("a", a), ("b", b)):
        np.savez(tmp_path / f"{name}.npz", mu=x.mean(0), sigma=np.cov(x, rowvar=False))
    done = run(installed, tmp_path, "-m", "rae_bench", "score", "a.npz", "b.npz")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fid" in done.stdout.lower()


def test_installed_package_validates_a_config_with_its_schema(installed, tmp_path):
    (tmp_path / "bad.yaml").write_text("seeds: [0]\ntraining: {epochs: zero}\n")
    code = "from rae_bench.config.validate import load_config; load_config(['bad.yaml'])"
    done = run(installed, tmp_path, "-c", code)
    assert done.returncode != 0 and "config value at 'training.epochs' is invalid" in done.stderr, done.stderr[-1500:]
