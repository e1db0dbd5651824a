"""WAE encoder pre-training (tolstikhin/wae wae.py L130-144, L429-452): code moments pulled to the prior's,
once per run, before step 1, and kept through a resume."""
from __future__ import annotations

import pytest
import torch

from rae_bench.data import DataSource
from rae_bench.errors import ConfigError
from rae_bench.models import build_model
from rae_bench.models.wae import moment_mismatch
from rae_bench.train import load_checkpoint, train

from resume_check import whole_and_resumed


def moment_distance(z: torch.Tensor) -> tuple[float, float]:
    """Distance of a sample's mean and covariance from the N(0, I) prior's."""
    return float(z.mean(0).norm()), float((torch.cov(z.T) - torch.eye(z.shape[1])).norm())


@pytest.mark.parametrize("name", ["wae_mmd", "wae_gan"])
def test_pretraining_moves_the_code_moments_to_the_prior(name):
    torch.manual_seed(0)
    model = build_model(name, (12,), 3, "tiny", {"pretrain_steps": 200, "pretrain_batch": 128})
    with torch.no_grad():
        model.encoder[-1].bias.add_(torch.tensor([3.0, -2.0, 1.0]))  # codes far off the prior's mean
    g = torch.Generator().manual_seed(1)
    data = torch.randn(400, 3, generator=g) @ torch.randn(3, 12, generator=g) + 0.1 * torch.randn(400, 12, generator=g)
    with torch.no_grad():
        mean0, cov0 = moment_distance(model.encode(data))
    decoder = [p.detach().clone() for p in model.decoder.parameters()]
    summary = model.pretrain(lambda k: data[torch.randperm(len(data))[:k]], {"lr": 1e-3, "betas": [0.5, 0.999]})
    with torch.no_grad():
        mean1, cov1 = moment_distance(model.encode(data))
    assert mean0 > 3 and mean1 < 0.25 * mean0, (mean0, mean1)
    assert cov1 < cov0, (cov0, cov1)
    assert summary["pretrain_steps"] == 200 or summary["pretrain_loss"] < 0.1, summary
    assert all(torch.equal(a, b) for a, b in zip(decoder, model.decoder.parameters()))  # the encoder alone


def test_pretraining_stops_below_the_authors_threshold_and_is_off_by_default():
    torch.manual_seed(0)
    model = build_model("wae_mmd", (12,), 3, "tiny", {"pretrain_steps": 50, "pretrain_stop_loss": 1e9})
    assert model.pretrain(lambda k: torch.randn(k, 12), {})["pretrain_steps"] == 1  # stop after the first step
    assert build_model("wae_mmd", (12,), 3, "tiny", {}).pretrain(lambda k: torch.randn(k, 12), {}) == {}
    with pytest.raises(ConfigError, match="pretrain_batch >= 2"):
        build_model("wae_gan", (12,), 3, "tiny", {"pretrain_batch": 1})


def test_moment_mismatch_is_zero_for_equal_samples_and_the_authors_formula():
    z = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    assert float(moment_mismatch(z, z)) == 0.0
    shifted = z + 1.0  # same covariance, means 1 apart in every coordinate
    assert float(moment_mismatch(shifted, z)) == pytest.approx(1.0, rel=1e-5)


def run_config(**params) -> dict:
    return {"dataset": "synth", "source": "synthetic", "options": {"n": 3, "d": 12, "n_train": 160, "n_test": 40},
            "n_train": None, "run": "wae_mmd", "model": "wae_mmd",
            "params": {"pretrain_steps": 20, "pretrain_batch": 64, "pretrain_stop_loss": 0.0, **params},
            "latent_dim": 3, "arch": "tiny", "seed": 2,
            "training": {"epochs": 3, "batch_size": 32, "optim": {"lr": 1e-3}}}


def test_pretraining_runs_once_and_a_resumed_run_equals_a_whole_one(tmp_path):
    full, cut = whole_and_resumed(run_config(), tmp_path)  # cut at step 10, resumed from step 8
    assert all(torch.equal(full[k], cut[k]) for k in full)
    # killed right after the pre-training: only its step-0 checkpoint exists; the resume must not redo it
    src = DataSource(root=tmp_path / "data", cache=tmp_path / "cache")
    with pytest.raises(KeyboardInterrupt):
        train(run_config(), tmp_path / "early", src, progress=False, checkpoint_every=1000, interrupt_at=1)
    ckpt = load_checkpoint(tmp_path / "early" / "checkpoint.pt")
    assert ckpt["step"] == 0 and ckpt["pretrain"]["pretrain_steps"] == 20
    result = train(run_config(), tmp_path / "early", src, progress=False, checkpoint_every=1000)
    early = torch.load(tmp_path / "early" / "model.pt", weights_only=True)["state"]
    assert all(torch.equal(full[k], early[k]) for k in full)
    assert result["pretrain_steps"] == 20
    # and the pre-training matters: without it the weights differ
    plain = train(run_config(pretrain_steps=0), tmp_path / "plain", src, progress=False)
    assert "pretrain_steps" not in plain
    other = torch.load(tmp_path / "plain" / "model.pt", weights_only=True)["state"]
    assert not torch.equal(full["encoder.0.weight"], other["encoder.0.weight"])
