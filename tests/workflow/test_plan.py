"""``rae-bench plan``: runs, their training steps and GPU-hours, from the workflow's own resolution."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.plan import load_step_costs, plan, table_runs, training_steps

REPO = Path(__file__).resolve().parents[2]
FILES = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"]


def test_steps_count_as_the_trainer_counts():
    cfg = load_config(FILES)
    # epochs x floor(n_train / batch): the trainer drops an epoch's last partial batch (rae_bench/train.py)
    assert training_steps(resolve_run(cfg, "mnist", "maskaae", 0)) == 534 * (60000 // 64) == 500358
    assert training_steps(resolve_run(cfg, "celeba", "vae_learned", 0)) == 70 * (162770 // 64)
    assert training_steps(resolve_run(cfg, "cifar10", "flexae_cap1", 0)) == 1667 * (10000 // 128)  # its n_train
    assert training_steps(resolve_run(cfg, "synth_n8", "wae_mmd_m4", 0)) == 100 * (10000 // 100)


def test_plan_covers_tables_sweeps_and_prices_each_run():
    cfg = load_config(FILES)
    runs = table_runs(cfg)
    assert ("table5", "celeba", "flexae_cap6") in runs and ("table2", "mnist", "maskaae_m256") in runs
    assert ("figure5", "synth_n16", "wae_mmd_m2") in runs
    rows = plan(cfg, ["table3"], load_step_costs())
    assert {r.run for r in rows} >= {"rae_gp", "injflow", "maskaae", "flexae"} and all(r.table == "table3" for r in rows)
    by = {(r.dataset, r.run): r for r in rows}
    # same net and image size: cost ~ steps x batch x model factor
    ae, mask = by[("mnist", "ae")], by[("mnist", "maskaae")]
    factor = load_step_costs()["model_factor"]["maskaae"]
    assert abs(mask.gpu_hours / ae.gpu_hours - factor * (mask.steps * 64) / (ae.steps * 100)) < 1e-6


def test_plan_cli_prints_runs_and_totals():
    out = subprocess.run([sys.executable, "-m", "rae_bench", "plan", "--configfile", str(FILES[1]), "table4"],
                         capture_output=True, text=True, cwd=REPO, check=True).stdout
    assert "maskaae" in out and "table4: 15 runs" in out and "GPU-hours" in out
    assert "no GPU measurement" in out  # the CPU figure is scaled, and it says so


def test_plan_counts_and_prices_vae_iop_critic_epochs():
    """The paper profile's VAE-IOP runs critic_epochs passes over the data per VAE epoch (the authors'
    schedule): plan counts them beside the VAE steps and adds their cost."""
    from dataclasses import replace

    from rae_bench.plan import epoch_end_batches, format_plan

    cfg = load_config(FILES)
    run = resolve_run(cfg, "mnist", "vae_iop", 0)
    assert epoch_end_batches(run) == 10 * training_steps(run) == 10 * 200 * 600
    assert epoch_end_batches(resolve_run(cfg, "mnist", "ae", 0)) == 0
    costs = load_step_costs()
    (row,) = [r for r in plan(cfg, ["table3"], costs) if (r.dataset, r.run) == ("mnist", "vae_iop")]
    assert row.epoch_end_batches == 1_200_000
    without = plan(cfg, ["table3"], {**costs, "hook_factor": {"vae_iop": 0.0}})
    (bare,) = [r for r in without if (r.dataset, r.run) == ("mnist", "vae_iop")]
    assert row.gpu_hours / bare.gpu_hours - 1 == pytest.approx(
        10 * costs["hook_factor"]["vae_iop"] / costs["model_factor"]["vae_iop"])
    text = format_plan([row, replace(row, run="ae", epoch_end_batches=0)], costs)
    assert "+1,200,000 between-epoch batches" in text and "VAE-IOP's critic epochs" in text


def test_plan_counts_the_snapshots_a_best_checkpoint_selection_evaluates():
    from rae_bench.plan import format_plan

    cfg = load_config(FILES)
    rows = plan(cfg, ["table3"], load_step_costs())
    by = {(r.dataset, r.run): r for r in rows}
    assert by[("mnist", "maskaae")].snapshots == 500358 // 5000  # every 5,000 steps (MaskAAE_MNIST.py L570)
    assert by[("celeba", "flexae")].snapshots == 51  # 80k..130k every 1,000 (FlexAESR.py L649)
    assert by[("mnist", "ae")].snapshots == 0
    assert f"{3 * 100 + 3 * 51} snapshots to evaluate" in format_plan(rows, load_step_costs())
