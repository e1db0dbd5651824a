"""Trainer: deterministic, resumable bit for bit (kills, divergence and bad checkpoints: tests/training/test_training_faults.py)."""
from __future__ import annotations

import csv
import math
import json
from pathlib import Path

import pytest
import torch

from rae_bench.data import DataSource
from rae_bench.models import build_model
from rae_bench.runs import load_model
from rae_bench.train import train


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


def mnist_run(model: str = "vae", epochs: int = 2, **training) -> dict:
    """A tiny image run (fake MNIST files): the trainer's channels-last and precision paths."""
    return {
        "dataset": "mnist", "source": "mnist", "options": {}, "n_train": None, "run": model, "model": model,
        "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 1,
        "training": {"epochs": epochs, "batch_size": 16, "optim": {"lr": 1e-3}, "lr_schedule": {"type": "none"},
                     **training},
    }


def test_image_run_resumes_bit_identically_in_channels_last(tmp_path, mnist_source):
    run = mnist_run("vae", epochs=3)
    train(run, tmp_path / "full", mnist_source, progress=False, checkpoint_every=3)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "cut", mnist_source, progress=False, checkpoint_every=3, interrupt_at=7)
    train(run, tmp_path / "cut", mnist_source, progress=False, checkpoint_every=3)
    full, cut = state(tmp_path / "full" / "model.pt"), state(tmp_path / "cut" / "model.pt")
    assert full["encoder.conv.0.weight"].is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(full[k], cut[k]) for k in full)
    # the stored weights load into a plain (NCHW) model
    model, _ = load_model(tmp_path / "full" / "model.pt")
    assert torch.isfinite(model.reconstruct(torch.rand(2, 1, 28, 28))).all()


def test_channels_last_off_trains_the_same_up_to_rounding(tmp_path, mnist_source):
    train(mnist_run("rae_l2", epochs=1), tmp_path / "cl", mnist_source, progress=False)
    train(mnist_run("rae_l2", epochs=1, channels_last=False), tmp_path / "nchw", mnist_source, progress=False)
    cl, nchw = state(tmp_path / "cl" / "model.pt"), state(tmp_path / "nchw" / "model.pt")
    assert nchw["encoder.conv.0.weight"].is_contiguous()
    logs = [list(csv.DictReader(open(tmp_path / d / "train_log.csv"))) for d in ("cl", "nchw")]
    first = [float(log[0]["loss"]) for log in logs]  # same initial weights, same batch
    assert first[0] == pytest.approx(first[1], rel=1e-5)


def test_bf16_run_trains_with_finite_losses_and_is_another_run(tmp_path, mnist_source):
    from rae_bench.config.files import DEFAULT_CONFIG
    from rae_bench.config.resolve import config_hash, resolve_run
    from rae_bench.config.validate import load_config

    result = train(mnist_run("vae", epochs=2, precision="bf16"), tmp_path / "bf16", mnist_source, progress=False)
    rows = list(csv.DictReader(open(tmp_path / "bf16" / "train_log.csv")))
    losses = [float(r["loss"]) for r in rows]
    assert len(rows) == result["steps"] and all(math.isfinite(v) for v in losses)
    weights = state(tmp_path / "bf16" / "model.pt")
    assert all(v.dtype == torch.float32 for v in weights.values() if v.is_floating_point())  # fp32 master weights

    cfg = load_config([DEFAULT_CONFIG])
    plain = resolve_run(cfg, "mnist", "vae", 0)
    # spelling out the defaults keeps the run (hash and Snakemake params); bf16 or NCHW is another run
    cfg["training"].update(precision="fp32", channels_last=True)
    assert resolve_run(cfg, "mnist", "vae", 0) == plain
    cfg["training"]["precision"] = "bf16"
    bf16 = resolve_run(cfg, "mnist", "vae", 0)
    assert bf16["training"]["precision"] == "bf16" and config_hash(bf16) != config_hash(plain)
    cfg["training"].update(precision="fp32", channels_last=False)
    assert config_hash(resolve_run(cfg, "mnist", "vae", 0)) != config_hash(plain)


def test_unknown_precision_is_refused(tmp_path, mnist_source):
    from rae_bench.config.files import DEFAULT_CONFIG
    from rae_bench.config.validate import load_config
    from rae_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="precision"):
        train(mnist_run("ae", precision="fp16"), tmp_path / "r", mnist_source, progress=False)
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("training: {precision: fp16}\n")
    with pytest.raises(ConfigError, match="precision"):
        load_config([DEFAULT_CONFIG, cfg_file])


MNIST_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data"


def _mnist_run(model: str) -> dict:
    return {"dataset": "mnist", "source": "mnist", "options": {}, "n_train": 600, "run": model, "model": model,
            "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 0,
            "training": {"epochs": 2, "batch_size": 50, "optim": {"lr": 1e-2}}}


def _errors(model, x: torch.Tensor) -> tuple[float, float]:
    """Reconstruction error in eval mode (running BN statistics) and in train mode (the batch's own)."""
    out = []
    for mode in (False, True):
        model.train(mode)
        with torch.no_grad():
            out.append(float((model.reconstruct(x) - x).pow(2).mean()))
    model.eval()
    return out[0], out[1]


@pytest.mark.skipif(not (MNIST_ROOT / "MNIST" / "raw").is_dir(), reason="real MNIST not available")
@pytest.mark.parametrize("name", ["injflow", "ae"])
def test_saved_batchnorm_statistics_fit_the_final_weights(tmp_path, monkeypatch, name):
    """Eval-mode and train-mode reconstruction errors agree within 5 % for the saved model; without the
    re-estimation the running averages trail the weights (InjFlow: eval error 1.5x the train-mode one)."""
    from rae_bench import train as train_module
    from rae_bench.data import load, to_float

    torch.set_num_threads(1)
    src = DataSource(root=MNIST_ROOT, cache=tmp_path / "cache")
    x = to_float(load("mnist", "test", src)[:500])
    result = train(_mnist_run(name), tmp_path / "fixed", src, progress=False)
    assert result["bn_recalibration_batches"] == 12  # the whole 600-image set, in 50-image batches
    fixed = _errors(load_model(tmp_path / "fixed" / "model.pt")[0], x)
    assert abs(fixed[0] / fixed[1] - 1) < 0.05, fixed
    monkeypatch.setattr(train_module, "recalibrate_batchnorm", lambda *args, **kwargs: 0)
    train(_mnist_run(name), tmp_path / "stale", src, progress=False)
    stale = _errors(load_model(tmp_path / "stale" / "model.pt")[0], x)
    if name == "injflow":  # the model the issue found: without re-estimation the property fails
        assert abs(stale[0] / stale[1] - 1) > 0.05, stale


IOP_PER_EPOCH = {"likelihood": "gaussian", "critic_schedule": "per_epoch", "critic_epochs": 2}


def counting_epoch_hook(monkeypatch) -> list[int]:
    """The step (train_step calls so far in this process) at each on_epoch_end call of VAE-IOP."""
    from rae_bench.models.vae_iop import VAEIOP

    calls, steps = [], [0]
    hook, step = VAEIOP.on_epoch_end, VAEIOP.train_step

    def counted_step(self, *a):
        steps[0] += 1
        return step(self, *a)

    def counted_hook(self, *a):
        calls.append(steps[0])
        return hook(self, *a)

    monkeypatch.setattr(VAEIOP, "train_step", counted_step)
    monkeypatch.setattr(VAEIOP, "on_epoch_end", counted_hook)
    return calls


def test_epoch_end_hook_runs_once_after_each_epoch(tmp_path, source, monkeypatch):
    calls = counting_epoch_hook(monkeypatch)
    train(tiny_run("vae_iop", epochs=2, **IOP_PER_EPOCH), tmp_path / "r", source, progress=False)
    assert calls == [7, 14]  # 240 items // batch 32 = 7 steps per epoch
    rows = list(csv.DictReader(open(tmp_path / "r" / "train_log.csv")))
    # the critic's terms are logged on the epoch's last row (a column the first rows did not have)
    assert [r["step"] for r in rows if r["critic_loss"]] == ["7", "14"]
    assert 0 < float(rows[6]["critic_loss"]) < 3 and 0 <= float(rows[6]["critic_acc"]) <= 1


@pytest.mark.parametrize("every,cut", [(7, 10), (4, 10)], ids=["checkpoint-at-epoch-end", "checkpoint-mid-epoch"])
def test_epoch_end_hook_resumes_exactly_once(tmp_path, source, monkeypatch, every, cut):
    """A resumed run neither repeats nor skips an epoch's critic epochs: weights and log as an uninterrupted run."""
    run = tiny_run("vae_iop", epochs=3, **IOP_PER_EPOCH)
    train(run, tmp_path / "full", source, progress=False, checkpoint_every=every)
    calls = counting_epoch_hook(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "cut", source, progress=False, checkpoint_every=every, interrupt_at=cut)
    first = len(calls)
    train(run, tmp_path / "cut", source, progress=False, checkpoint_every=every)
    assert first == 1 and len(calls) == 3  # one per epoch over both processes
    full, again = state(tmp_path / "full" / "model.pt"), state(tmp_path / "cut" / "model.pt")
    assert all(torch.equal(full[k], again[k]) for k in full)
    assert (tmp_path / "full" / "train_log.csv").read_text() == (tmp_path / "cut" / "train_log.csv").read_text()


def _bn_input_variance(model, data: torch.Tensor, batch: int, sampled: bool) -> torch.Tensor:
    """Per-channel variance at the decoder's first BatchNorm, averaged over the batches of
    recalibrate_batchnorm's order, in training mode, for decoded posterior draws or posterior means."""
    import copy

    probe = copy.deepcopy(model).train()
    bn = next(m for m in probe.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    bn.register_forward_pre_hook(lambda m, args: seen.append(args[0].transpose(0, 1).flatten(1).var(1)))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(len(data)))
    g = torch.Generator().manual_seed(99)  # other draws than the re-estimation's
    with torch.no_grad():
        for start in range(0, len(data), batch):
            x = data[order[start:start + batch]]
            mu, std = probe.encode_with_std(x)
            probe.decode(mu + std * torch.randn(mu.shape, generator=g) if sampled else mu)
    return torch.stack(seen).mean(0)


def test_batchnorm_reestimation_decodes_posterior_draws_for_vaes():
    """Training fed the decoder z ~ q(z|x): its BN running variance must be that of sampled codes, which
    is larger than that of the posterior means (the old re-estimation decoded the means)."""
    from rae_bench.train import recalibrate_batchnorm

    torch.manual_seed(0)
    model = build_model("vae", (1, 28, 28), 4, "tiny", {"likelihood": "bernoulli"})
    data = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    assert recalibrate_batchnorm(model, data, 50, torch.device("cpu"), False, max_batches=8) == 8
    bn = next(m for m in model.decoder.modules() if isinstance(m, torch.nn.BatchNorm2d))
    sampled, means = (_bn_input_variance(model, data, 50, s) for s in (True, False))
    assert (sampled > 1.5 * means).all(), (sampled, means)  # the posterior spread dominates at init
    assert torch.allclose(bn.running_var, sampled, rtol=0.1), (bn.running_var, sampled)
    # a deterministic encoder's decoder still sees the codes themselves
    ae = build_model("ae", (1, 28, 28), 4, "tiny", {})
    recalibrate_batchnorm(ae, data, 50, torch.device("cpu"), False, max_batches=8)
    z = ae.encode(data[:3])
    assert torch.equal(ae.training_codes(data[:3]), z)
    # IAF: draws z_T ~ q(z_T|x) (no Gaussian std to add), reproducible from the generator
    iaf = build_model("vae_iaf", (1, 28, 28), 4, "tiny", {}).eval()
    with torch.no_grad():
        a, b = (iaf.training_codes(data[:5], torch.Generator().manual_seed(3)) for _ in range(2))
        assert torch.equal(a, b) and not torch.allclose(a, iaf.encode(data[:5]))
