"""Config loading, validation and run resolution."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rae_bench.config import config_hash, load_config, resolve_run
from rae_bench.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
DEFAULT, PAPER = REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"


def write(tmp_path: Path, cfg: dict) -> Path:
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
    assert run["params"] == {"lambda": 100.0}
    assert run["training"]["optim"]["lr"] == 3e-4 and run["training"]["epochs"] == 55
    assert run["latent_dim"] == 64 and run["arch"] == "paper"
    mnist = resolve_run(cfg, "mnist", "wae_mmd", 0)
    assert mnist["params"] == {"lambda": 10.0} and mnist["training"]["epochs"] == 100


def test_unrelated_change_keeps_run_identity():
    cfg = load_config([DEFAULT])
    before = config_hash(resolve_run(cfg, "mnist", "vae", 0))
    cfg["tables"]["table3"]["rows"].pop()
    cfg["models"]["wae_mmd"]["params"]["lambda"] = 1.0
    cfg["checkpoint_every"] = 7
    assert config_hash(resolve_run(cfg, "mnist", "vae", 0)) == before
    cfg["models"]["vae"]["params"]["beta"] = 2.0
    assert config_hash(resolve_run(cfg, "mnist", "vae", 0)) != before


@pytest.mark.parametrize("change, message", [
    ({"arch": "huge"}, "arch"),
    ({"training": {"epochs": 0}}, "training.epochs"),
    ({"features": {"extractor": "inceptoin"}}, "features.extractor"),
    ({"tipo": 1}, "Additional properties"),
    ({"tables": {"table3": {"datasets": ["mnsit"], "rows": [{"label": "x", "model": "ae", "sampler": "prior"}]}}},
     "unknown dataset 'mnsit'; valid datasets: celeba, fashion_mnist, mnist, synth_n16, synth_n8"),
    ({"models": {"vae2": {"model": "vea"}}}, "unknown model 'vea'; valid models: .*wae_mmd"),
    ({"tables": {"table3": {"datasets": ["mnist"], "rows": [{"label": "x", "model": "ae", "sampler": "gmmm"}]}}},
     "unknown sampler 'gmmm'"),
])
def test_invalid_configs_are_one_line_errors(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config([DEFAULT, write(tmp_path, change)])
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: small\nseeds: [0\n")
    with pytest.raises(ConfigError, match="bad.yaml line .* not valid YAML"):
        load_config([bad])


def test_cli_prints_one_line_and_exits_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "rae_bench", "train", "--config", str(DEFAULT),
                           "--dataset", "mnsit", "--model", "vae", "--out", str(tmp_path / "r")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stderr.startswith("error: unknown dataset 'mnsit'; valid datasets: celeba, fashion_mnist, mnist")
    assert not (tmp_path / "r").exists()
