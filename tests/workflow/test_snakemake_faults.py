"""Faults through ``snakemake`` on the real Snakefile: Ctrl-C then ``--rerun-incomplete``, a bad config
or bad params stopped with one line before any job, and two workflows on one folder.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from helpers import faults as fh

from rae_bench.runs import load_model

REPO = fh.REPO
pytestmark = pytest.mark.usefixtures("fault_environment", "restore_threads")



def _tiny_synth_workflow(workdir: Path, epochs: int) -> Path:
    """tests/configs/tiny.yaml on its synthetic dataset only (no MNIST), one table row (a GMM sampler, so a
    sampler file is checked too), longer training.

    16 steps an epoch, a checkpoint every 5 epochs (80 steps): ``epochs`` sets how long a training job
    lasts, ~1,000 steps/s on an idle machine and slower under the suite's load."""
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    synth = cfg["datasets"]["synth"]
    synth["training"] = {"epochs": epochs}
    synth["options"]["n_train"] = 800
    cfg["datasets"] = {"synth": synth}
    cfg["data_root"], cfg["cache_dir"] = str(workdir / "data"), str(workdir / "cache")
    rows = cfg["tables"]["table3"]["rows"]
    cfg["tables"]["table3"] = {"datasets": ["synth"], "rows": [r for r in rows if r["label"] == "RAE + GMM (L2)"]}
    path = workdir / "tiny_synth.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    # targets before --configfile: Snakemake reads every word after it as a config file
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
            *args, "--configfile", str(config)]


@pytest.mark.slow
def test_snakemake_ctrl_c_then_rerun_incomplete_completes_without_partial_files(tmp_path):
    """Ctrl-C (SIGINT to the process group) while a training job runs; the rerun resumes, takes no partial file.
    The target is the training's output: evaluating and tabulating after a resume are the DAG tests' part."""
    # 960 steps: ~1 s even when idle, while the Ctrl-C lands within ~0.05 s of the first checkpoint (step 80)
    config = _tiny_synth_workflow(tmp_path, epochs=60)
    results = tmp_path / "results"
    target = "results/synth/rae_l2/seed0/model.pt"
    with open(tmp_path / "first.log", "w") as out:
        # SIGINT back to its default in the child: a test run started in the background (`pytest &`, nohup)
        # inherits an ignored SIGINT, and then neither Snakemake nor its jobs would see the Ctrl-C at all
        proc = subprocess.Popen(_snakemake_cmd(tmp_path, config, target), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 300
            def training_now() -> bool:  # a checkpoint of a run that has not finished yet
                return any(not (c.parent / "model.pt").exists() for c in results.glob("synth/*/seed0/checkpoint.pt"))

            while proc.poll() is None and time.time() < deadline and not training_now():
                time.sleep(0.02)
            assert proc.poll() is None, "the workflow ended before a training job could be interrupted"
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    first = (tmp_path / "first.log").read_text()
    print(first[-2000:])
    assert proc.returncode != 0, first[-3000:]
    interrupted = [p.parent for p in results.glob("synth/*/seed0/checkpoint.pt") if not (p.parent / "model.pt").exists()]
    assert interrupted, f"no training job was left incomplete: {first[-3000:]}"

    done = subprocess.run(_snakemake_cmd(tmp_path, config, target, "--rerun-incomplete"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    assert interrupted == [(tmp_path / target).parent], interrupted
    for run_dir in interrupted:  # resumed from its checkpoint, not taken as finished
        assert "resuming" in (run_dir / "train.log").read_text()
    # the model is whole and loadable; nothing partial or temporary is left
    load_model(tmp_path / target)
    leftovers = [p for p in results.rglob("*") if p.name in ("checkpoint.pt", "train_log.partial.csv") or ".tmp" in p.name]
    assert not leftovers, leftovers
    # and the interrupted run's weights equal a clean, uninterrupted training of the same run
    from rae_bench.data import DataSource
    from rae_bench.train import train

    victim = interrupted[0]
    run = json.loads((victim / "config.json").read_text())["run"]
    train(run, tmp_path / "clean", DataSource(tmp_path / "data", tmp_path / "cache"), progress=False, threads=1)
    fh.assert_same_weights(victim / "model.pt", tmp_path / "clean" / "model.pt")


@pytest.mark.parametrize("change, expect", [
    ({"training": {"epochs": 0}}, ("'training.epochs' is invalid", "fix it in the config")),
    ({"models": {"vae2": {"model": "vea"}}}, ("unknown model 'vea'", "valid models: ae,")),
], ids=["schema", "unknown_model"])
def test_bad_config_stops_snakemake_with_one_line(finished, tmp_path, change, expect):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(change))
    before = fh.snapshot(finished.results)
    done = subprocess.run(_snakemake_cmd(finished.root, bad, "-n", "tables/table3.tex"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Config file ")]
    assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    assert all(text in lines[0] for text in expect), lines[0]
    assert fh.snapshot(finished.results) == before




def test_bad_params_stop_snakemake_before_any_job(finished, tmp_path):
    """``params: {fooo: 1}`` and a name with a space used to pass ``snakemake -n``; now one line each, no job."""
    for change, expect in [({"models": {"ae": {"model": "ae", "params": {"fooo": 1}}}}, "has no parameter(s) ['fooo']"),
                           ({"samplers": {"g m m": {}}}, "name 'g m m' under 'samplers'")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(change))
        before = fh.snapshot(finished.results)
        done = subprocess.run(_snakemake_cmd(finished.root, bad, "-n", "tables/table3.tex"), capture_output=True,
                              text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Config file ")]
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], done.stderr[-3000:]
        assert fh.snapshot(finished.results) == before




def test_two_snakemake_at_once_the_second_refuses(tmp_path):
    """Snakemake locks its working directory: a second ``snakemake`` on the same folder refuses while the first
    runs (its message, several lines, is documented in docs/errors.md); the first finishes, its model loads."""
    # 4,000 steps: the first is still training when the second has started Snakemake and parsed the DAG
    config = _tiny_synth_workflow(tmp_path, epochs=250)
    target = "results/synth/ae/seed0/model.pt"
    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(_snakemake_cmd(tmp_path, config, target), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            locks = tmp_path / ".snakemake" / "locks"
            while first.poll() is None and time.time() < deadline and not (locks.is_dir() and any(locks.iterdir())):
                time.sleep(0.05)
            assert first.poll() is None, "the first workflow ended before the second started"
            second = subprocess.run(_snakemake_cmd(tmp_path, config, target), capture_output=True, text=True, timeout=300)
            assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            if first.poll() is None:
                first.kill()
    print(second.stderr)
    assert second.returncode != 0 and "Directory cannot be locked" in second.stderr, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    load_model(tmp_path / target)
