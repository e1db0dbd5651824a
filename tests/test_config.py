"""Config loading, validation and run resolution."""
from __future__ import annotations

from pathlib import Path

import yaml

from rae_bench.config.resolve import config_hash, resolve_run
from rae_bench.config.validate import load_config

REPO = Path(__file__).resolve().parents[1]
DEFAULT, PAPER = REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"


def write(tmp_path: Path, cfg: dict) -> Path:
    """A config file holding ``cfg`` (used by tests/report/test_sweeps.py too)."""
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_shipped_configs_validate():
    quick = load_config([DEFAULT])
    paper = load_config([DEFAULT, PAPER])
    assert quick["tables"]["table3"]["datasets"] == ["mnist", "celeba"]
    assert paper["tables"]["table3"]["datasets"] == ["mnist", "cifar10", "celeba"]
    assert paper["features"]["extractor"] == "inception" and paper["features"]["n_samples"] == 10000


def test_run_resolution_layers_overrides():
    cfg = load_config([DEFAULT, PAPER])
    run = resolve_run(cfg, "celeba", "wae_mmd", 0)
    # per-dataset params and training override the run's, which override the dataset's and the defaults
    assert run["params"] == {"lambda": 100.0, "cost_scale": 0.05, "pixel_range": "symmetric", "pretrain_steps": 200,
                             "pretrain_batch": 256}
    assert run["training"]["optim"] == {"lr": 1e-3, "betas": [0.5, 0.999]} and run["training"]["epochs"] == 50
    assert run["latent_dim"] == 64 and run["arch"] == "paper"
    mnist = resolve_run(cfg, "mnist", "wae_mmd", 0)
    assert mnist["params"] == {"lambda": 10.0, "cost_scale": 0.05, "pixel_range": "unit", "pretrain_steps": 200,
                               "pretrain_batch": 1000}
    assert mnist["training"]["epochs"] == 100


def test_unrelated_change_keeps_run_identity():
    cfg = load_config([DEFAULT])
    before = config_hash(resolve_run(cfg, "mnist", "vae", 0))
    cfg["tables"]["table3"]["rows"].pop()
    cfg["models"]["wae_mmd"]["params"]["lambda"] = 1.0
    cfg["checkpoint_every"] = 7
    assert config_hash(resolve_run(cfg, "mnist", "vae", 0)) == before
    cfg["models"]["vae"]["params"]["beta"] = 2.0
    assert config_hash(resolve_run(cfg, "mnist", "vae", 0)) != before


# Invalid configs, YAML errors and the CLI's one-line errors: tests/workflow/test_cli_faults.py (the fault catalogue).


def test_snakemake_jobs_see_load_config_with_profiles(tmp_path):
    """`snakemake --configfile config/paper.yaml user.yaml`: the job's run config is resolve_run on
    load_config of the same files (paper.yaml owns its models whole; a user's small file still merges)."""
    import json
    import re
    import subprocess

    user = write(tmp_path, {"seeds": [1], "models": {"injflow": {"params": {"rec_weight": 5.0}}}})
    out = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path / "wd"), "-n", "-p",
                          "--cores", "1", "results/mnist/rae_gp/seed1/model.pt", "results/mnist/injflow/seed1/model.pt",
                          "--configfile", str(PAPER), str(user)], capture_output=True, text=True, cwd=REPO)
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = {r["run"]: r for r in map(json.loads, re.findall(r"--run-config '([^']*)'", out.stdout))}
    cfg = load_config([DEFAULT, PAPER, user])
    assert jobs["rae_gp"] == resolve_run(cfg, "mnist", "rae_gp", 1)
    assert jobs["rae_gp"]["training"]["epochs"] == 100  # not config.yaml's quick `epochs: 2`
    assert jobs["injflow"] == resolve_run(cfg, "mnist", "injflow", 1) and jobs["injflow"]["params"]["rec_weight"] == 5.0
