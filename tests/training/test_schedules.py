"""Learning-rate schedules: the piecewise schedule (WAE's MNIST decay), its checks and its config merge."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

from rae_bench.checks import check_lr_schedule
from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.data import DataSource
from rae_bench.errors import ConfigError
from rae_bench.train import make_schedulers, train

REPO = Path(__file__).resolve().parents[2]
WAE_MNIST = {"type": "piecewise", "milestones": [30, 50], "factors": [0.5, 0.2]}


def lr_after(spec: dict, epochs: int, lr: float = 1e-3) -> float:
    """The lr of the epoch after ``epochs`` completed epochs (0-based epoch index ``epochs``)."""
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = make_schedulers({"model": opt}, {**spec, "epochs": 100})["model"]
    for _ in range(epochs):
        opt.step()
        scheduler.step()
    return opt.param_groups[0]["lr"]


def test_wae_mnist_schedule_halves_at_30_and_divides_by_5_at_50():
    # tolstikhin/wae wae.py L542-546: 0-based epochs 0-29 at lr, 30-49 at lr / 2, from 50 at lr / 10
    assert lr_after(WAE_MNIST, 29) == 1e-3
    assert lr_after(WAE_MNIST, 30) == 1e-3 * 0.5
    assert lr_after(WAE_MNIST, 49) == 1e-3 * 0.5
    assert lr_after(WAE_MNIST, 50) == pytest.approx(1e-4, rel=1e-12)
    assert lr_after(WAE_MNIST, 99) == pytest.approx(1e-4, rel=1e-12)


def test_piecewise_schedule_in_the_trainer_and_on_resume(tmp_path):
    source = DataSource(root=tmp_path / "data", cache=tmp_path / "cache")
    run = {"dataset": "synth", "source": "synthetic", "options": {"n": 3, "d": 12, "n_train": 64, "n_test": 16},
           "n_train": None, "run": "wae_mmd", "model": "wae_mmd", "params": {}, "latent_dim": 4, "arch": "tiny",
           "seed": 0, "training": {"epochs": 4, "batch_size": 32, "optim": {"lr": 1e-3},
                                   "lr_schedule": {"type": "piecewise", "milestones": [1, 3], "factors": [0.5, 0.2]}}}
    train(run, tmp_path / "full", source, progress=False)
    with pytest.raises(KeyboardInterrupt):  # killed in epoch 3 (0-based 2), after the first milestone
        train(run, tmp_path / "cut", source, progress=False, checkpoint_every=5, interrupt_at=6)
    train(run, tmp_path / "cut", source, progress=False, checkpoint_every=5)
    logs = [list(csv.DictReader(open(tmp_path / d / "train_log.csv"))) for d in ("full", "cut")]
    by_epoch = {int(r["epoch"]): float(r["lr_model"]) for r in logs[0]}
    assert by_epoch == pytest.approx({1: 1e-3, 2: 5e-4, 3: 5e-4, 4: 1e-4}, rel=1e-12)
    assert [r["lr_model"] for r in logs[0]] == [r["lr_model"] for r in logs[1]]


@pytest.mark.parametrize("spec,words", [
    ({"type": "piecewise", "milestones": [30, 50], "factors": [0.5]}, "2 milestones but 1 factors"),
    ({"type": "piecewise", "milestones": [50, 30], "factors": [0.5, 0.2]}, "strictly increasing"),
    ({"type": "piecewise", "milestones": [30], "factors": [0.0]}, "must be finite numbers > 0"),
    ({"type": "piecewise"}, "needs lists 'milestones'"),
    ({"type": "wae_mnist"}, "unknown lr_schedule type 'wae_mnist'"),
])
def test_bad_piecewise_schedule_is_one_line(spec, words):
    with pytest.raises(ConfigError, match=words) as err:
        check_lr_schedule(spec)
    assert "\n" not in str(err.value)


def test_a_schedule_of_another_type_replaces_the_inherited_one_whole():
    """paper.yaml's step schedule (step_epochs, gamma) must not ride along under WAE's piecewise one."""
    cfg = load_config([REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml"])
    assert resolve_run(cfg, "mnist", "wae_mmd", 0)["training"]["lr_schedule"] == WAE_MNIST
    assert resolve_run(cfg, "mnist", "wae_gan", 0)["training"]["lr_schedule"] == WAE_MNIST
    assert resolve_run(cfg, "mnist", "maskaae", 0)["training"]["lr_schedule"] == {"type": "none"}
    # same type: merged field by field as before (the 2-Stage VAE's CelebA step length)
    assert resolve_run(cfg, "celeba", "vae_learned", 0)["training"]["lr_schedule"] == \
        {"type": "step", "step_epochs": 30, "gamma": 0.5}
