"""benchmarks/gpu_session.sh's own parts, without a GPU (seconds): the scripts parse, the configs it writes
are valid rae_bench configs, the summary is written from whatever steps finished, and the carried wheels
pin what pyproject.toml pins."""
from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def session_module():
    spec = importlib.util.spec_from_file_location("gpu_session", REPO / "benchmarks" / "gpu_session.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", ["gpu_session.sh", "gpu_pack.sh"])
def test_shell_scripts_parse(script):
    done = subprocess.run(["bash", "-n", str(REPO / "benchmarks" / script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_smoke_config_is_a_valid_config(tmp_path):
    from rae_bench.config.validate import load_config

    gs = session_module()
    assert gs.cmd_config(argparse.Namespace(device="cpu", work=str(tmp_path), smoke=True)) == 0
    cfg = load_config([REPO / "config" / "config.yaml", tmp_path / "tiny_session.yaml",
                       tmp_path / "determinism_overlay.yaml"])
    assert cfg["device"] == "cpu" and cfg["tables"]["table3"]["datasets"] == ["synth"]
    assert (tmp_path / "determinism_dataset").read_text() == "synth"


def test_summary_from_partial_steps(tmp_path):
    gs = session_module()
    (tmp_path / "steps.tsv").write_text("1\tenv\tok\t3\t50\n2\tdag\tTIMED OUT after 140 s\t140\t140\n"
                                        "3\tdeterminism\tskipped: budget spent\t0\t120\n")
    out = tmp_path / "out"
    assert gs.cmd_summary(argparse.Namespace(work=str(tmp_path), out=str(out), smoke=True,
                                             hardware_name="hardware_gpu", fid_name="gpu_fid")) == 0
    text = (out / "summary.md").read_text()
    assert "| 2 | tiny DAG | TIMED OUT after 140 s | 140 | 140 |" in text
    assert "no result (see `5_fid.log`)" in text
    assert {p.name for p in out.iterdir()} == {"summary.md", "summary.json", "details.tar.gz"}


def test_carried_wheels_pin_what_pyproject_pins():
    pins = {}
    for line in (REPO / "benchmarks" / "gpu_wheels.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split()[0].split("==")
            assert name not in pins, f"{name} listed twice"
            pins[name] = version
    project = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', (REPO / "pyproject.toml").read_text()))
    for name in ("pytorch-fid", "jsonschema", "snakemake"):
        assert pins[name] == project[name], name
