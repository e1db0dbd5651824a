"""Hostile files (issue 8's catalogue): checkpoints, models, samplers, classifiers and .npz files that run
code when unpickled are refused before anything executes; a fitted GMM's state is plain arrays.
"""
from __future__ import annotations

import json
import pickle
import pickletools
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import faults as fh
from helpers.faults import cli_error as _error


pytestmark = pytest.mark.usefixtures("fault_environment", "restore_threads")



# =========================================================================== untrusted files


def test_the_crafted_payload_runs_when_unpickled(tmp_path):
    """Control: the hostile files of the next test really execute code when loaded the unsafe way."""
    for fmt in ("torch", "pickle"):
        marker = tmp_path / f"ran-{fmt}"
        path = fh.write_malicious(tmp_path / f"evil.{fmt}", marker, fmt)
        if fmt == "torch":
            torch.load(path, weights_only=False)
        else:
            pickle.loads(path.read_bytes())
        assert marker.exists()


def _evil_npz(path: Path, marker: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        np.savez(handle, mu=np.array([fh.Payload(marker)], dtype=object), sigma=np.eye(1))


@pytest.mark.parametrize("target", ["checkpoint", "checkpoint_bare_pickle", "model", "sampler", "classifier",
                                    "inception_weights", "reference_stats"])
def test_malicious_pickle_is_refused_without_running(finished, tmp_path, capsys, monkeypatch, target):
    marker = tmp_path / "pwned"
    own = finished.results / "synth" / f"evil_{target}"
    f = finished
    if target.startswith("checkpoint"):
        run_dir = own / "run"
        fh.write_malicious(run_dir / "checkpoint.pt", marker, "torch" if target == "checkpoint" else "pickle")
        argv = ["train", *f.common(), "--run-config", json.dumps(fh.RUN), "--out", str(run_dir)]
        expect = ("checkpoint.pt is unreadable", "delete it")
    elif target == "model":
        argv = f.fit_args(model=fh.write_malicious(own / "model.pt", marker), out=own / "gmm" / "sampler.pt")
        expect = ("model file", "unreadable", "train again")
    elif target == "sampler":
        argv = f.evaluate_args(own, sampler=fh.write_malicious(own / "sampler.pt", marker))
        expect = ("sampler state", "unreadable", "fit the sampler again")
    elif target == "classifier":
        spec = json.dumps({"dataset": "synth", "source": "synthetic", "options": fh.SYNTH_OPTIONS})
        argv = ["reference-stats", *f.common(), "--dataset-spec", spec, "--extractor", "classifier", "--classifier",
                str(fh.write_malicious(own / "classifier.pt", marker)), "--n", "10", "--out", str(own / "ref.npz")]
        expect = ("classifier file", "unreadable", "delete it")
    elif target == "inception_weights":
        monkeypatch.setenv("RAE_BENCH_INCEPTION_WEIGHTS", str(fh.write_malicious(tmp_path / "inception.pth", marker)))
        argv = f.evaluate_args(own)
        argv[argv.index("raw")] = "inception"
        expect = ("cannot read Inception weights", "replace it")
    else:
        _evil_npz(own / "reference.npz", marker)
        argv = f.evaluate_args(own, reference=own / "reference.npz")
        expect = ("not a stats file", "delete it to recompute")
    before = fh.snapshot(f.results)
    line = _error(capsys, fh.cli_main(*argv))
    assert not marker.exists(), "the payload ran"
    assert all(e in line for e in expect), line
    fh.assert_untouched(before, fh.snapshot(f.results), str(own.relative_to(f.results)))


def test_gmm_sampler_state_is_plain_arrays(finished):
    """The fitted scikit-learn GMM is stored as tensors: its pickle names nothing but torch's tensor rebuilders."""
    path = finished.run_dir / "gmm" / "sampler.pt"
    blob = torch.load(path, map_location="cpu", weights_only=True)
    assert blob["sampler"] == "gmm"
    assert set(blob["state"]) == {"weights_", "means_", "covariances_", "precisions_cholesky_"}
    assert all(isinstance(v, torch.Tensor) for v in blob["state"].values())
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    names = {arg for op, arg, _ in pickletools.genops(data) if op.name in ("GLOBAL", "STACK_GLOBAL")}
    assert names and all(str(n).startswith(("torch", "collections OrderedDict")) for n in names), names
