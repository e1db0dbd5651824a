"""Trainer: deterministic, resumable bit for bit (kills, divergence and bad checkpoints: tests/test_faults.py)."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from rae_bench.data import DataSource
from rae_bench.train import load_model, train


def tiny_run(model: str = "vae", epochs: int = 2, lr: float = 1e-3, **params) -> dict:
    return {
        "dataset": "synth", "source": "synthetic", "options": {"n": 3, "d": 12, "n_train": 240, "n_test": 60},
        "n_train": None, "run": model, "model": model,
        "params": {"likelihood": "gaussian", **params} if model == "vae" else params,
        "latent_dim": 4, "arch": "tiny", "seed": 3,
        "training": {"epochs": epochs, "batch_size": 32, "optim": {"lr": lr}, "lr_schedule": {"type": "step", "step_epochs": 1, "gamma": 0.5}},
    }


@pytest.fixture()
def source(tmp_path) -> DataSource:
    return DataSource(root=tmp_path / "data", cache=tmp_path / "cache")


def state(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state"]


def test_interrupted_and_resumed_equals_uninterrupted(tmp_path, source):
    run = tiny_run("vae", epochs=3)  # stochastic model + an LR schedule: RNG and scheduler state must resume
    train(run, tmp_path / "full", source, progress=False, checkpoint_every=4)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "cut", source, progress=False, checkpoint_every=4, interrupt_at=10)
    assert (tmp_path / "cut" / "checkpoint.pt").exists() and not (tmp_path / "cut" / "model.pt").exists()
    train(run, tmp_path / "cut", source, progress=False, checkpoint_every=4)
    full, cut = state(tmp_path / "full" / "model.pt"), state(tmp_path / "cut" / "model.pt")
    assert full.keys() == cut.keys()
    assert all(torch.equal(full[k], cut[k]) for k in full)
    # the log has every step exactly once, as an uninterrupted run's
    log_full = (tmp_path / "full" / "train_log.csv").read_text()
    log_cut = (tmp_path / "cut" / "train_log.csv").read_text()
    assert log_full == log_cut
    assert not (tmp_path / "cut" / "checkpoint.pt").exists()


def test_log_and_outputs(tmp_path, source):
    result = train(tiny_run("wae_mmd", epochs=2), tmp_path / "r", source, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "r" / "train_log.csv")))
    assert [int(r["step"]) for r in rows] == list(range(1, result["steps"] + 1))
    assert {"loss", "rec", "mmd", "lr_model", "epoch"} <= set(rows[0])
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["run"]["model"] == "wae_mmd"
    model, blob = load_model(tmp_path / "r" / "model.pt")
    assert not model.training and blob["result"]["steps"] == result["steps"]
    # the step schedule halved the LR after epoch 1
    assert float(rows[-1]["lr_model"]) == pytest.approx(0.5e-3)


def test_same_seed_same_weights(tmp_path, source):
    train(tiny_run("rae_l2"), tmp_path / "a", source, progress=False)
    train(tiny_run("rae_l2"), tmp_path / "b", source, progress=False)
    a, b = state(tmp_path / "a" / "model.pt"), state(tmp_path / "b" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoint_of_other_config_is_not_resumed(tmp_path, source, capsys):
    with pytest.raises(KeyboardInterrupt):
        train(tiny_run("ae"), tmp_path / "r", source, progress=False, checkpoint_every=2, interrupt_at=3)
    train(tiny_run("ae", lr=2e-3), tmp_path / "r", source, progress=False)
    assert "belongs to another config" in capsys.readouterr().out
    train(tiny_run("ae", lr=2e-3), tmp_path / "fresh", source, progress=False)
    a, b = state(tmp_path / "r" / "model.pt"), state(tmp_path / "fresh" / "model.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
