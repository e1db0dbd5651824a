"""Config loading, validation and run resolution."""
from __future__ import annotations

from pathlib import Path

import yaml

from rae_bench.config import config_hash, load_config, resolve_run

REPO = Path(__file__).resolve().parents[1]
DEFAULT, PAPER = REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"


def write(tmp_path: Path, cfg: dict) -> Path:
    """A config file holding ``cfg`` (used by tests/test_sweeps.py too)."""
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
    assert run["params"] == {"lambda": 100.0, "cost_scale": 0.05, "pixel_range": "symmetric"}
    assert run["training"]["optim"] == {"lr": 1e-3, "betas": [0.5, 0.999]} and run["training"]["epochs"] == 50
    assert run["latent_dim"] == 64 and run["arch"] == "paper"
    mnist = resolve_run(cfg, "mnist", "wae_mmd", 0)
    assert mnist["params"] == {"lambda": 10.0, "cost_scale": 0.05, "pixel_range": "unit"}
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


# Invalid configs, YAML errors and the CLI's one-line errors: tests/test_faults.py (the fault catalogue).
