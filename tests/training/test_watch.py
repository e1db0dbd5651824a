"""Watching runs: TensorBoard events (rae_bench.watch) and the loss-curve figure (rae_bench.report.curves).

The report's loss curves in a real browser: tests/workflow/test_workflow.py (test_report_collects_tables_and_sample_grids).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from rae_bench.cli import main
from rae_bench.train import train

from helpers.models import weights
from test_train import mnist_run, tiny_run  # the same tiny runs as the trainer's tests

pytestmark = pytest.mark.usefixtures("one_thread")


def events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})  # 0: keep every event
    acc.Reload()
    return acc


@pytest.mark.parametrize("model", ["vae", "vae_vamp"])  # vae_vamp: its prior runs the encoder (BatchNorm)
def test_events_hold_every_loss_and_grids_and_training_is_unchanged(tmp_path, mnist_source, model):
    pytest.importorskip("tensorboard")
    run = mnist_run(model, epochs=3)  # 4 steps an epoch
    train(run, tmp_path / "off", mnist_source, progress=False, checkpoint_every=3)
    train(run, tmp_path / "on", mnist_source, progress=False, checkpoint_every=3, tensorboard=True)
    off, on = weights(tmp_path / "off" / "model.pt"), weights(tmp_path / "on" / "model.pt")
    assert all(torch.equal(off[k], on[k]) for k in off)  # BatchNorm buffers included
    assert (tmp_path / "off" / "train_log.csv").read_text() == (tmp_path / "on" / "train_log.csv").read_text()
    assert not (tmp_path / "off" / "tb").exists()

    acc = events(tmp_path / "on" / "tb")
    header = (tmp_path / "on" / "train_log.csv").read_text().splitlines()[0].split(",")
    losses = [k for k in header if k not in ("step", "epoch") and not k.startswith("lr_")]
    assert set(acc.Tags()["scalars"]) == {f"train/{k}" for k in losses} | {"lr/model"}
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))
    assert acc.Tags()["images"] == ["samples"]
    grids = acc.Images("samples")
    assert [g.step for g in grids] == [0, 3, 6, 9, 12]  # at the start and at every checkpoint
    assert (grids[-1].width, grids[-1].height) == (8 * 30 + 2, 8 * 30 + 2)  # 8 x 8 digits of 28 px, 2 px apart


def test_resumed_run_shows_every_step_once(tmp_path, mnist_source):
    pytest.importorskip("tensorboard")
    run = mnist_run("ae", epochs=3)
    with pytest.raises(KeyboardInterrupt):  # events of steps 1-7 written, the checkpoint holds step 6
        train(run, tmp_path / "r", mnist_source, progress=False, checkpoint_every=3, interrupt_at=7, tensorboard=True)
    train(run, tmp_path / "r", mnist_source, progress=False, checkpoint_every=3, tensorboard=True)
    acc = events(tmp_path / "r" / "tb")
    assert len(list((tmp_path / "r" / "tb").glob("events.out.tfevents.*"))) == 2  # appended, not rewritten
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 13))  # step 7 once: the resumed one
    assert [g.step for g in acc.Images("samples")] == [0, 3, 6, 9, 12]
    logged = [float(line.split(",")[2]) for line in (tmp_path / "r" / "train_log.csv").read_text().splitlines()[1:]]
    assert [e.value for e in acc.Scalars("train/loss")] == pytest.approx(logged)


def test_a_fresh_start_clears_events_of_another_config(tmp_path, mnist_source):
    pytest.importorskip("tensorboard")
    train(mnist_run("ae", epochs=1), tmp_path / "r", mnist_source, progress=False, tensorboard=True)
    train(mnist_run("ae", epochs=2), tmp_path / "r", mnist_source, progress=False, tensorboard=True)
    acc = events(tmp_path / "r" / "tb")
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(1, 9))
    assert len(list((tmp_path / "r" / "tb").glob("events.out.tfevents.*"))) == 1


RUN = "results/synth/ae/seed3"


def cli_train(tmp_path: Path, *extra: str) -> list[str]:
    run = tiny_run("ae", epochs=1)
    return ["train", "--run-config", json.dumps(run), "--data-root", str(tmp_path / "data"),
            "--cache-dir", str(tmp_path / "cache"), "--quiet", "--out", str(tmp_path / RUN), *extra]


def test_train_command_draws_loss_curves_and_follows_the_tensorboard_setting(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    assert main(cli_train(tmp_path, "--settings", json.dumps({"tensorboard": True}))) == 0
    run = tmp_path / RUN
    with Image.open(run / "losses.png") as png:
        assert png.format == "PNG" and png.width > 300 and png.height > 150
    acc = events(run / "tb")  # vector data: losses and learning rate, no image grid
    assert "train/loss" in acc.Tags()["scalars"] and acc.Tags()["images"] == []
    # by hand, for runs trained before the train job drew it: one, or every one that lacks it
    assert main(["curves", "--log", str(run / "train_log.csv"), "--title", "synth / ae", "--out",
                 str(tmp_path / "again.png")]) == 0
    assert Image.open(tmp_path / "again.png").size == Image.open(run / "losses.png").size
    (run / "losses.png").unlink()
    capsys.readouterr()
    assert main(["curves", "--results", str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out.split() == [str(run / "losses.png")] and (run / "losses.png").exists()


def test_without_the_package_asking_for_events_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # what `import tensorboard` sees when it is not installed
    assert main(cli_train(tmp_path, "--tensorboard")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install -e '.[tensorboard]'" in err, err
    assert not (tmp_path / RUN / "model.pt").exists()
    assert main(cli_train(tmp_path, "--no-tensorboard")) == 0  # the default needs no package


def test_curves_of_a_missing_or_corrupt_log_are_one_line(tmp_path, capsys):
    assert main(["curves", "--log", str(tmp_path / "none.csv"), "--out", str(tmp_path / "x.png")]) == 2
    (tmp_path / "bad.csv").write_text("step,loss\n1,abc\n")
    assert main(["curves", "--log", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.png")]) == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and "not found" in lines[0] and "unreadable" in lines[1], lines


def test_table_page_pivots_ours_beside_the_paper():
    import pandas as pd

    from rae_bench.report.html import table_html

    df = pd.DataFrame([{"row": "RAE <L2>", "dataset": "mnist", "metric": "fid_gen", "ours": 7.5, "paper": 7.3},
                       {"row": "RAE <L2>", "dataset": "mnist", "metric": "fid_rec", "ours": 2.0, "paper": None},
                       {"row": "AE", "dataset": "mnist", "metric": "fid_gen", "ours": float("nan"), "paper": None}])
    page = table_html("table3", df)
    assert "<th>mnist fid_gen</th><th>mnist fid_rec</th>" in page
    assert '<td>RAE &lt;L2&gt;</td><td>7.50 <span class="paper">(7.30)</span></td><td>2.00</td>' in page
    assert "<td>AE</td><td>–</td><td></td>" in page  # no value yet; no such cell
