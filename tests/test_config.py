"""Config loading, validation and run resolution."""
from __future__ import annotations

from pathlib import Path

import pytest
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


def test_validating_the_default_configs_leaves_torch_dynamo_unimported():
    """Every `snakemake` parse validates the config, building each model on the meta device; the first Python
    meta kernel a constructor calls imports torch._dynamo (1.2 s of each parse). The models and ``on_meta`` keep
    clear of them for the default and the tiny test config (a fresh process: this one has trained already)."""
    import subprocess
    import sys

    code = ("import sys; from rae_bench.config.validate import load_config; "
            f"load_config([{str(DEFAULT)!r}]); "
            f"load_config([{str(DEFAULT)!r}, {str(REPO / 'tests/configs/tiny.yaml')!r}]); "
            "print(sorted(m for m in sys.modules if m.startswith(('torch._dynamo', 'torchvision'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_meta_builds_count_what_real_builds_hold_and_leave_torch_as_it_was():
    """``on_meta`` skips spectral norm's start and random fills (no values on meta): the sizes it checks are
    still those of the real model, and PyTorch's functions are its own again afterwards."""
    import torch
    import torch.nn.functional as F
    from torch.nn.utils import parametrizations

    from rae_bench.config.validate import on_meta
    from rae_bench.models import build_model

    spectral = parametrizations._SpectralNorm
    before = (spectral._power_method, spectral.forward, torch.Tensor.normal_, F.normalize)
    for name, shape in [("rae_sn", (1, 28, 28)), ("vae_vamp", (1, 28, 28)), ("vae_iaf", (10,)), ("maskaae", (10,))]:
        with on_meta():
            meta = build_model(name, shape, 8, "tiny", {})
        real = build_model(name, shape, 8, "tiny", {})
        sizes = [{k: t.shape for k, t in [*m.named_parameters(), *m.named_buffers()]} for m in (meta, real)]
        assert sizes[0] == sizes[1], name
        assert all(t.is_meta for t in meta.parameters()) and not any(t.is_meta for t in real.parameters())
    assert (spectral._power_method, spectral.forward, torch.Tensor.normal_, F.normalize) == before
    u = build_model("rae_sn", (1, 28, 28), 8, "tiny", {}).sn_layers[0].parametrizations.weight[0]._u
    assert torch.linalg.vector_norm(u).item() == pytest.approx(1.0) and u.std() > 0  # a real, normalised start
