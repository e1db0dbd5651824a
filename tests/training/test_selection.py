"""Best-checkpoint selection (issue 23 item 4): snapshots during training, their evaluation, the tables."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from fixtures_data import write_mnist

from rae_bench.data import DataSource
from rae_bench.errors import CheckpointError, ConfigError
from rae_bench.snapshots import snapshot_files, snapshot_steps
from rae_bench.train import train


def test_snapshot_steps():
    assert snapshot_steps(None, 100) == []
    assert snapshot_steps({"every": 30}, 100) == [30, 60, 90]
    flexae = snapshot_steps({"from": 80000, "to": 130000, "count": 51}, 130104)  # FlexAESR.py L649: 51 checkpoints
    assert flexae == list(range(80000, 130001, 1000))
    assert snapshot_steps({"from": 5, "to": 50, "count": 4}, 20) == [5, 10, 15, 20]  # clipped to the run
    assert snapshot_steps({"from": 50, "to": 60, "count": 3}, 20) == []
    with pytest.raises(ConfigError, match="from 9 > to 3"):
        snapshot_steps({"from": 9, "to": 3, "count": 2}, 20)


def _setup(tmp_path, snapshots=None, epochs=3):
    write_mnist(tmp_path / "data", n_train=48, n_test=20)
    source = DataSource(root=tmp_path / "data", cache=tmp_path / "cache", verify=False)
    training = {"epochs": epochs, "batch_size": 16, "optim": {"lr": 1e-2}, "lr_schedule": {"type": "none"}}
    if snapshots:
        training["snapshots"] = snapshots
    run = {"dataset": "mnist", "source": "mnist", "options": {}, "n_train": None, "run": "ae", "model": "ae",
           "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 3, "training": training}
    return run, source


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state"]


def test_snapshots_leave_training_unchanged_and_hold_those_steps_weights(tmp_path):
    run, source = _setup(tmp_path, {"every": 3})  # 3 steps per epoch, 9 in all
    train(run, tmp_path / "snap", source, progress=False)
    plain = {**run, "training": {k: v for k, v in run["training"].items() if k != "snapshots"}}
    train(plain, tmp_path / "plain", source, progress=False)
    steps = [s for s, _ in snapshot_files(tmp_path / "snap")]
    assert steps == [3, 6, 9]
    final, other = _state(tmp_path / "snap" / "model.pt"), _state(tmp_path / "plain" / "model.pt")
    assert all(torch.equal(final[k], other[k]) for k in final)  # same weights, same BN statistics
    last = _state(tmp_path / "snap" / "snapshots" / "step000000009.pt")
    assert all(torch.equal(last[k], final[k]) for k in final)  # the last step's snapshot is model.pt's weights
    first = _state(tmp_path / "snap" / "snapshots" / "step000000003.pt")
    assert any(not torch.equal(first[k], final[k]) for k in final)


def test_a_resumed_run_writes_the_same_snapshots(tmp_path):
    run, source = _setup(tmp_path, {"every": 2})
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "resumed", source, progress=False, checkpoint_every=3, interrupt_at=5)
    train(run, tmp_path / "resumed", source, progress=False, checkpoint_every=3)
    train(run, tmp_path / "whole", source, progress=False, checkpoint_every=3)
    a, b = snapshot_files(tmp_path / "resumed"), snapshot_files(tmp_path / "whole")
    assert [s for s, _ in a] == [s for s, _ in b] == [2, 4, 6, 8]
    for (_, pa), (_, pb) in zip(a, b):
        sa, sb = _state(pa), _state(pb)
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_evaluate_snapshots_picks_rec_and_gen_minima_separately_and_resumes(tmp_path, monkeypatch):
    from rae_bench import selection
    from rae_bench.evaluate import test_subset
    from rae_bench.metrics import FeatureSpace, RawExtractor, extract_features, reference_stats

    run, source = _setup(tmp_path, {"every": 3})
    train(run, tmp_path / "run", source, progress=False)
    raw = RawExtractor()
    reference = tmp_path / "ref.npz"
    reference_stats(reference, lambda: extract_features(raw, test_subset(run, source, 20)))
    settings = dict(features=FeatureSpace.of(raw), reference=reference,
                    n_samples=20, source=source, knn_k=3)
    out = tmp_path / "run" / "prior" / "best_checkpoint"
    metrics = selection.evaluate_snapshots(tmp_path / "run" / "model.pt", out, fit=("prior", {}, 3), **settings)
    per_step = {s: json.loads((out / f"step{s:09d}" / "metrics.json").read_text()) for s in (3, 6, 9)}
    rec_step = min(per_step, key=lambda s: per_step[s]["fid_rec"])
    gen_step = min(per_step, key=lambda s: per_step[s]["fid_gen"])
    assert metrics["fid_rec"] == per_step[rec_step]["fid_rec"] and metrics["mse_rec"] == per_step[rec_step]["mse_rec"]
    assert metrics["fid_gen"] == per_step[gen_step]["fid_gen"]
    assert (metrics["selected_step_rec"], metrics["selected_step_gen"], metrics["candidates"]) == (rec_step, gen_step, 3)
    assert metrics["selection"] == "best_checkpoint"
    assert json.loads((out / "metrics.json").read_text()) == metrics
    rows = list(csv.DictReader((out / "snapshots.csv").open()))
    assert [int(r["step"]) for r in rows] == [3, 6, 9]
    assert [r["selected_gen"] for r in rows].count("True") == 1

    calls = []
    monkeypatch.setattr(selection, "evaluate", lambda *a, **k: calls.append(a) or {})
    again = selection.evaluate_snapshots(tmp_path / "run" / "model.pt", out, fit=("prior", {}, 3), **settings)
    assert calls == [] and again == metrics  # finished snapshots are not evaluated again
    (out / "step000000006" / "metrics.json").unlink()  # a job killed mid-snapshot
    selection.evaluate_snapshots(tmp_path / "run" / "model.pt", out, fit=("prior", {}, 3), **settings)
    assert len(calls) == 1 and calls[0][0].name == "step000000006.pt"


def test_no_snapshots_is_one_clear_error(tmp_path):
    from rae_bench.selection import evaluate_snapshots

    run, source = _setup(tmp_path, epochs=1)
    train(run, tmp_path / "run", source, progress=False)
    with pytest.raises(CheckpointError, match="no snapshots beside .*set training.snapshots"):
        evaluate_snapshots(tmp_path / "run" / "model.pt", tmp_path / "out", fit=("prior", {}, 0))


def _config(selection_table=None, row_selection=None, snapshots=True):
    from rae_bench.config.validate import load_config

    cfg = load_config(["config/config.yaml"])
    if snapshots:
        cfg["models"]["maskaae"].setdefault("training", {})["snapshots"] = {"every": 10}
    row = {"label": "MaskAAE", "model": "maskaae", "sampler": "prior", "paper": "MaskAAE"}
    if row_selection:
        row["selection"] = row_selection
    cfg["tables"]["table3"] = {"datasets": ["mnist"], "rows": [{"label": "AE", "model": "ae", "sampler": "prior",
                                                                "paper": "AE"}, row]}
    if selection_table:
        cfg["tables"]["table3"]["selection"] = selection_table
    return cfg


def test_table_spec_twin_rows_and_refusal():
    from rae_bench.report.specs import required_metrics, table_spec

    rows = table_spec(_config("both"), "table3")["rows"]
    assert [(r["label"], r["selection"]) for r in rows] == [
        ("AE", "final"), ("MaskAAE", "final"), ("MaskAAE \u2020", "best_checkpoint")]
    assert rows[2]["paper"] == "MaskAAE"  # the twin sits beside the same published value
    paths = required_metrics(table_spec(_config("both"), "table3"))
    assert "results/mnist/maskaae/seed0/prior/best_checkpoint/metrics.json" in paths
    assert [r["selection"] for r in table_spec(_config("best_checkpoint"), "table3")["rows"]] == \
        ["final", "best_checkpoint"]  # AE keeps no snapshots: final
    assert [r["selection"] for r in table_spec(_config(), "table3")["rows"]] == ["final", "final"]  # the default
    with pytest.raises(ConfigError, match="row 'MaskAAE' asks for selection: best_checkpoint.*keeps no snapshots"):
        table_spec(_config(row_selection="best_checkpoint", snapshots=False), "table3")


def test_table_marks_best_rows_and_ranks_each_model_once(tmp_path):
    from rae_bench.report.agreement import agreement
    from rae_bench.report.specs import table_spec
    from rae_bench.report.tables import collect, to_latex

    spec = table_spec(_config("both"), "table3")
    spec["rows"] = [{"label": lab, "model": lab.lower(), "sampler": "prior", "paper": pap}
                    for lab, pap in (("AE", "AE"), ("VAE", "VAE"), ("WAE", "WAE-MMD"))] + spec["rows"][1:]
    for model, folder, fid in [("ae", "", 30.0), ("vae", "", 40.0), ("wae", "", 35.0), ("maskaae", "", 50.0),
                               ("maskaae", "best_checkpoint/", 10.0)]:
        path = tmp_path / "mnist" / model / "seed0" / "prior" / folder / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"extractor": "classifier", "n_samples": 100, "fid_rec": fid, "fid_gen": fid}))
    df = collect("table3", spec, tmp_path)
    best = df[df["selection"] == "best_checkpoint"]
    assert set(best["row"]) == {"MaskAAE \u2020"} and set(best["ours"]) == {10.0}
    assert set(df[df["row"] == "MaskAAE"]["ours"]) == {50.0}
    tex = to_latex("table3", df)
    assert "MaskAAE $^\\dagger$" in tex and "lowest FID on the evaluation set" in tex
    assert "selects on the data it reports" in tex
    frame = agreement("table3", df)
    published = df[df["paper"].notna() & (df["metric"] == "fid_gen")]
    assert "MaskAAE \u2020" in set(published["row"])  # the twin has the paper's value too ...
    assert set(frame["n_rows"]) == {len(published) - 1}  # ... but does not rank as one more model


def test_cli_evaluate_snapshots_needs_a_sampler(tmp_path):
    import subprocess
    import sys

    model = tmp_path / "model.pt"
    model.write_bytes(b"x")
    ref = tmp_path / "ref.npz"
    ref.write_bytes(b"x")
    r = subprocess.run([sys.executable, "-m", "rae_bench", "evaluate", "--snapshots", "--model-path", str(model),
                        "--extractor", "raw", "--reference", str(ref), "--n-samples", "10",
                        "--out-dir", str(tmp_path / "out")], capture_output=True, text=True)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "--snapshots fits a sampler per snapshot: give --sampler NAME" in lines[0]
