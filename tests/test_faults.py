"""The fault catalogue (issue 8): kills, Ctrl-C, full or read-only disks, bad input and hostile files.

Every case goes through what a user runs: the ``rae-bench`` CLI (``rae_bench.cli.main`` in this
process, or ``python -m rae_bench`` where a kill or a resource limit needs its own process) and
``snakemake`` on the real Snakefile. A bad input must exit non-zero with ONE stderr line naming the
problem and the fix, and leave every existing result byte for byte as it was.

Sections: faults (SIGKILL, kill mid-checkpoint, Snakemake SIGINT, unwritable folder, full disk),
untrusted files, determinism, bad input (a table of cases).
"""
from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import pickle
import pickletools
import random
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
import yaml

try:
    from tests import fault_helpers as fh
    from tests import fixtures_data as fx
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import fault_helpers as fh  # type: ignore[no-redef]
    import fixtures_data as fx  # type: ignore[no-redef]

from rae_bench.atomic import stale_temporaries
from rae_bench.config.files import DEFAULT_CONFIG
from rae_bench.runs import load_model
from rae_bench.samplers import load_sampler
from rae_bench.train import load_checkpoint

REPO = fh.REPO


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for var in ("RAE_BENCH_SETTINGS", "RAE_BENCH_DATA", "RAE_BENCH_INCEPTION_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module", autouse=True)
def _restore_threads():
    """The in-process commands set one torch thread (``--threads 1``); give other modules theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> fh.Chain:
    """A results folder holding one finished run: reference stats, model, GMM sampler, metrics."""
    chain = fh.Chain(tmp_path_factory.mktemp("finished")).all()
    assert (chain.run_dir / "gmm" / "metrics.json").is_file()
    return chain


# =========================================================================== faults


def test_sigkill_at_random_points_then_restart_is_bit_identical(finished, tmp_path, capsys):
    """kill -9 ``rae-bench train`` at three seeded random steps, restart it each time; then evaluate.

    Weights, training log and metrics.json equal those of the uninterrupted run, byte for byte.
    """
    cut = fh.Chain(tmp_path / "cut")
    cut.do(*cut.reference_args())
    rng = random.Random(8)
    segment = (fh.STEPS - 60) // 3
    points = [25 + i * segment + rng.randrange(segment - 25) for i in range(3)]  # after a checkpoint each
    log = cut.run_dir / "train_log.partial.csv"
    killed_at = []
    for point in points:
        inode = log.stat().st_ino if log.exists() else None
        proc = subprocess.Popen(fh.rae_cmd(*cut.train_args(every=20)), stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 240
        # this process has (re)written the log, and reached the chosen step
        while proc.poll() is None and time.time() < deadline and not (
                log.exists() and log.stat().st_ino != inode and fh.count_log_rows(log) >= point):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == -signal.SIGKILL, f"the run ended before the kill at step {point}: {err[-2000:]}"
        assert not (cut.run_dir / "model.pt").exists()
        killed_at.append(fh.count_log_rows(log))
    print("chosen steps", points, "killed at", killed_at)
    assert killed_at == sorted(killed_at) and len(set(killed_at)) == 3, killed_at

    done = fh.run_rae(*cut.train_args(every=20))
    assert "resuming" in done.stdout, done.stdout
    cut.fit_and_evaluate()
    fh.assert_same_weights(finished.run_dir / "model.pt", cut.run_dir / "model.pt")
    assert (cut.run_dir / "train_log.csv").read_bytes() == (finished.run_dir / "train_log.csv").read_bytes()
    assert (cut.run_dir / "gmm" / "metrics.json").read_bytes() == (finished.run_dir / "gmm" / "metrics.json").read_bytes()
    assert not (cut.run_dir / "checkpoint.pt").exists() and not log.exists()


# Run ``rae-bench train`` with the file handle of the Nth checkpoint write replaced by one that writes
# half the bytes, says so through a marker file, and hangs: the parent kills it mid-write.
_HANG_MID_CHECKPOINT = r'''
import os, sys, time
import rae_bench.atomic as atomic

marker, nth = sys.argv[1], int(sys.argv[2])
seen = 0


class HalfWrite:
    def __init__(self, handle):
        self.handle = handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.handle.close()

    def write(self, data):
        data = bytes(data)
        self.handle.write(data[: len(data) // 2])
        self.handle.flush()
        os.fsync(self.handle.fileno())
        open(marker, "w").close()
        time.sleep(600)


def hanging_open(path, mode="r", *args, **kwargs):
    global seen
    handle = open(path, mode, *args, **kwargs)
    if "w" in mode and os.path.basename(str(path)).startswith(".checkpoint.pt."):
        seen += 1
        if seen == nth:
            return HalfWrite(handle)
    return handle


atomic.open = hanging_open
from rae_bench.cli import main

sys.exit(main(sys.argv[3:]))
'''


def test_kill_during_checkpoint_write_keeps_previous_checkpoint(finished, tmp_path, capsys):
    cut = fh.Chain(tmp_path / "cut")
    marker = tmp_path / "half-written"
    proc = subprocess.Popen([sys.executable, "-c", _HANG_MID_CHECKPOINT, str(marker), "2", *cut.train_args(every=20)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 240
        while not marker.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        assert marker.exists(), proc.stderr.read() if proc.poll() is not None else "timed out"
        ckpt = cut.run_dir / "checkpoint.pt"
        partial = stale_temporaries(ckpt)
        assert len(partial) == 1 and 0 < partial[0].stat().st_size < ckpt.stat().st_size
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert load_checkpoint(ckpt)["step"] == 20  # the first checkpoint, whole
    capsys.readouterr()
    assert fh.cli_main(*cut.train_args(every=20)) == 0
    assert "from step 20/" in capsys.readouterr().out
    assert not stale_temporaries(ckpt) and not ckpt.exists()
    fh.assert_same_weights(finished.run_dir / "model.pt", cut.run_dir / "model.pt")


def _tiny_synth_workflow(workdir: Path) -> Path:
    """tests/configs/tiny.yaml on its synthetic dataset only (no MNIST), two table rows, longer training."""
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    synth = cfg["datasets"]["synth"]
    # 16 steps an epoch, a checkpoint every 5; 250 epochs (4,000 steps) so that training lasts seconds even on
    # an idle machine (~1,000 steps/s) and the Ctrl-C surely lands while a training job runs
    synth["training"] = {"epochs": 250}
    synth["options"]["n_train"] = 800
    cfg["datasets"] = {"synth": synth}
    cfg["data_root"], cfg["cache_dir"] = str(workdir / "data"), str(workdir / "cache")
    rows = cfg["tables"]["table3"]["rows"]
    cfg["tables"]["table3"] = {"datasets": ["synth"], "rows": [r for r in rows if r["label"] in ("AE", "RAE + GMM (L2)")]}
    path = workdir / "tiny_synth.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _snakemake_cmd(workdir: Path, config: Path, *args: str) -> list[str]:
    # targets before --configfile: Snakemake reads every word after it as a config file
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
            *args, "--configfile", str(config)]


@pytest.mark.slow
def test_snakemake_ctrl_c_then_rerun_incomplete_completes_without_partial_files(tmp_path):
    """Ctrl-C (SIGINT to the process group) while a training job runs; the rerun resumes, takes no partial file."""
    config = _tiny_synth_workflow(tmp_path)
    results = tmp_path / "results"
    with open(tmp_path / "first.log", "w") as out:
        # SIGINT back to its default in the child: a test run started in the background (`pytest &`, nohup)
        # inherits an ignored SIGINT, and then neither Snakemake nor its jobs would see the Ctrl-C at all
        proc = subprocess.Popen(_snakemake_cmd(tmp_path, config, "tables/table3.tex"), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            deadline = time.time() + 300
            def training_now() -> bool:  # a checkpoint of a run that has not finished yet
                return any(not (c.parent / "model.pt").exists() for c in results.glob("synth/*/seed0/checkpoint.pt"))

            while proc.poll() is None and time.time() < deadline and not training_now():
                time.sleep(0.02)
            assert proc.poll() is None, "the workflow ended before a training job could be interrupted"
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=180)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
    first = (tmp_path / "first.log").read_text()
    print(first[-2000:])
    assert proc.returncode != 0, first[-3000:]
    interrupted = [p.parent for p in results.glob("synth/*/seed0/checkpoint.pt") if not (p.parent / "model.pt").exists()]
    assert interrupted, f"no training job was left incomplete: {first[-3000:]}"

    done = subprocess.run(_snakemake_cmd(tmp_path, config, "tables/table3.tex", "--rerun-incomplete"),
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    table = (tmp_path / "tables" / "table3.csv").read_text()
    assert "fid_gen" in table
    for run_dir in interrupted:  # resumed from its checkpoint, not taken as finished
        assert "resuming" in (run_dir / "train.log").read_text()
    # every output is whole and loadable; nothing partial or temporary is left
    models = sorted(results.glob("synth/*/seed0/model.pt"))
    assert len(models) == 2
    for model_path in models:
        model, blob = load_model(model_path)
        for sampler in model_path.parent.glob("*/sampler.pt"):
            load_sampler(sampler, model, blob["config_hash"])
    metrics = sorted(results.glob("synth/*/seed0/*/metrics.json"))
    assert len(metrics) == 2 and all(math.isfinite(json.loads(p.read_text())["fid_gen"]) for p in metrics)
    leftovers = [p for p in results.rglob("*") if p.name in ("checkpoint.pt", "train_log.partial.csv") or ".tmp" in p.name]
    assert not leftovers, leftovers
    # and the interrupted run's weights equal a clean, uninterrupted training of the same run
    from rae_bench.data import DataSource
    from rae_bench.train import train

    victim = interrupted[0]
    run = json.loads((victim / "config.json").read_text())["run"]
    train(run, tmp_path / "clean", DataSource(tmp_path / "data", tmp_path / "cache"), progress=False, threads=1)
    fh.assert_same_weights(victim / "model.pt", tmp_path / "clean" / "model.pt")


def _error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    return fh.one_error_line(err)


@pytest.mark.parametrize("how", ["read_only_folder", "parent_is_a_file"])
def test_unwritable_results_folder_fails_clearly_and_keeps_results(finished, tmp_path, capsys, how):
    with contextlib.ExitStack() as stack:
        if how == "parent_is_a_file":
            blocker = tmp_path / "results"
            blocker.write_text("a file where the results folder should be\n")
            out, watched, reason = blocker / "gmm", tmp_path, "Not a directory"
        else:
            watched = tmp_path / "ro"
            if os.geteuid() != 0:  # a folder without write permission
                fh.copy_tree(finished.run_dir / "gmm", watched / "gmm")
                (watched / "gmm").chmod(0o555)
                stack.callback((watched / "gmm").chmod, 0o755)
                reason = "Permission denied"
            else:  # root ignores permissions: a read-only file system instead
                if not fh.can_mount():
                    pytest.skip("running as root without mount: no way to make a folder unwritable")
                stack.enter_context(fh.tmpfs(watched, "16m"))
                fh.copy_tree(finished.run_dir / "gmm", watched / "gmm")
                fh.remount_read_only(watched)
                reason = "Read-only file system"
            out = watched / "gmm"
        before = fh.snapshot(watched)
        line = _error(capsys, fh.cli_main(*finished.evaluate_args(out)))
        assert fh.snapshot(watched) == before
    if how == "parent_is_a_file":  # refused by the up-front output check, before any work
        assert f"--out-dir {out}" in line and "is a file, not a folder" in line, line
    else:
        assert f"cannot write {out}" in line and reason in line and "writable" in line and "earlier results are kept" in line


@pytest.mark.parametrize("how", ["no_space_left", "file_size_limit"])
def test_full_disk_fails_clearly_and_keeps_results(finished, tmp_path, capsys, how):
    if how == "no_space_left":  # a real full file system: a small tmpfs filled to the last byte
        if not fh.can_mount():
            pytest.skip("needs root to mount a small tmpfs (the file_size_limit case covers the rest)")
        with fh.tmpfs(tmp_path / "disk", "4m") as disk:
            fh.copy_tree(finished.run_dir / "gmm", disk / "gmm")
            fh.fill_disk(disk)
            before = fh.snapshot(disk)
            line = _error(capsys, fh.cli_main(*finished.evaluate_args(disk / "gmm")))
            assert fh.snapshot(disk) == before
        assert os.strerror(errno.ENOSPC) in line
    else:  # RLIMIT_FSIZE: every write past 4 kB fails (EFBIG), as on a quota'd or full disk
        out = tmp_path / "gmm"
        fh.copy_tree(finished.run_dir / "gmm", out)
        before = fh.snapshot(tmp_path)
        done = fh.run_rae(*finished.evaluate_args(out), check=False, preexec_fn=fh.file_size_limit(4096))
        assert done.returncode == 2, done.stderr[-3000:]
        line = fh.one_error_line(done.stderr)
        assert fh.snapshot(tmp_path) == before
        assert os.strerror(errno.EFBIG) in line
    assert "cannot write" in line and "free disk space" in line and "earlier results are kept" in line


def test_disk_full_during_training_keeps_the_checkpoint_and_resumes(finished, tmp_path, capsys):
    """The disk fills up between two checkpoints: one error line, the last checkpoint whole, resume after freeing."""
    if not fh.can_mount():
        pytest.skip("needs root to mount a small tmpfs")
    with fh.tmpfs(tmp_path / "disk", "1m") as disk:
        cut = fh.Chain(disk)
        ckpt = cut.run_dir / "checkpoint.pt"
        cut.run_dir.mkdir(parents=True)
        fh.fill_disk(disk, leave=48 * 1024)  # room for one checkpoint (30 kB), not for its successor beside it
        line = _error(capsys, fh.cli_main(*cut.train_args(every=20)))
        assert f"cannot write {ckpt}" in line and os.strerror(errno.ENOSPC) in line and "free disk space" in line
        assert load_checkpoint(ckpt)["step"] == 20 and not stale_temporaries(ckpt)
        (disk / "filler.bin").unlink()  # the user frees space and runs the command again
        assert fh.cli_main(*cut.train_args(every=20)) == 0
        assert "from step 20/" in capsys.readouterr().out
        fh.assert_same_weights(finished.run_dir / "model.pt", cut.run_dir / "model.pt")


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


# =========================================================================== determinism


def test_same_config_and_seed_give_identical_metrics_json(finished, tmp_path):
    """The whole chain again, in a fresh process: metrics.json is byte-identical on CPU (timings are in timing.json)."""
    again = fh.Chain(tmp_path / "again", in_process=False)
    fh.chain_in_a_fresh_process(again)
    fh.assert_same_weights(finished.run_dir / "model.pt", again.run_dir / "model.pt")
    assert (again.run_dir / "gmm" / "metrics.json").read_bytes() == (finished.run_dir / "gmm" / "metrics.json").read_bytes()
    assert "eval_seconds" in json.loads((again.run_dir / "gmm" / "timing.json").read_text())


# =========================================================================== bad input


@dataclass
class Env:
    """What a case builds on: its scratch folder, the finished results, and its own folder inside them."""

    tmp: Path
    fin: fh.Chain
    own: Path
    env: dict[str, str] = field(default_factory=dict)

    def settings(self, verify: bool = True) -> list[str]:
        return ["--settings", fh.settings(self.tmp, verify_checksums=verify), "--threads", "1", "--quiet"]

    def train(self, verify: bool = True, **changes: Any) -> list[str]:
        run = {**fh.RUN, "training": {**fh.RUN["training"], "epochs": 1}, **changes}
        return ["train", *self.settings(verify), "--run-config", json.dumps(run), "--out", str(self.own / "run")]

    def train_on(self, source: str, verify: bool = True, **changes: Any) -> list[str]:
        return self.train(verify, **{"dataset": source, "source": source, "options": {}, **changes})

    def reference(self, source: str, options: dict | None = None, n: int = 2, verify: bool = True,
                  extractor: str = "raw") -> list[str]:
        spec = json.dumps({"dataset": source, "source": source, "options": options or {}})
        return ["reference-stats", *self.settings(verify), "--dataset-spec", spec, "--extractor", extractor,
                "--n", str(n), "--out", str(self.own / "reference.npz")]

    def config(self, change: dict | str, name: str = "c.yaml") -> Path:
        path = self.tmp / name
        path.write_text(change if isinstance(change, str) else yaml.safe_dump(change))
        return path

    def train_with_config(self, *files: Path, dataset: str = "mnist", model: str = "vae") -> list[str]:
        configs = [a for p in (DEFAULT_CONFIG, *files) for a in ("--config", str(p))]
        return ["train", *configs, "--dataset", dataset, "--model", model, "--out", str(self.own / "run")]

    def copy_of(self, path: Path, name: str | None = None) -> Path:
        self.own.mkdir(parents=True, exist_ok=True)
        dst = self.own / (name or path.name)
        dst.write_bytes(path.read_bytes())
        return dst


def _mnist(e: Env, **kwargs: Any) -> Path:
    fx.write_mnist(e.tmp / "data", **kwargs)
    return e.tmp / "data" / "MNIST" / "raw"


def _mnist_images(e: Env, dims: tuple[int, ...]) -> None:
    import gzip
    import struct

    raw = _mnist(e)
    header = struct.pack(">i", 0x0800 + len(dims) + 1) + struct.pack(f">{len(dims) + 1}i", 5, *dims)
    with gzip.open(raw / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(header + bytes(5 * int(np.prod(dims))))


def _tampered_model(e: Env) -> Path:
    blob = torch.load(e.fin.run_dir / "model.pt", weights_only=True)
    blob["run"]["latent_dim"] = 8  # the stored config no longer fits the stored weights
    e.own.mkdir(parents=True, exist_ok=True)
    torch.save(blob, e.own / "model.pt")
    return e.own / "model.pt"


def _sampler_of_another_model(e: Env) -> Path:
    other = fh.Chain(e.tmp / "other", {**fh.RUN, "run": "other", "seed": 4, "training": {**fh.RUN["training"], "epochs": 1}})
    other.do(*other.train_args())
    other.do(*other.fit_args())
    return other.run_dir / "gmm" / "sampler.pt"


def _reference_of_another_dataset(e: Env) -> Path:
    other = fh.Chain(e.tmp / "other", {**fh.RUN, "options": {**fh.SYNTH_OPTIONS, "d": 8}})
    other.do(*other.reference_args())
    return other.reference


# Each case: (id, build(env) -> argv, what the one error line must contain: the problem, then the fix).
CASES: list[tuple[str, Callable[[Env], list[str]], tuple[str, ...]]] = [
    # ---- unknown names (the message lists the valid ones)
    ("unknown_dataset_in_config", lambda e: e.train_with_config(dataset="mnsit"),
     ("unknown dataset 'mnsit'", "valid datasets: celeba, fashion_mnist, mnist")),
    ("unknown_run_in_config", lambda e: e.train_with_config(model="vea"), ("unknown model 'vea'", "valid models: ae,")),
    ("unknown_model_class", lambda e: e.train(model="vea"), ("unknown model 'vea'", "valid models: ae,", "wae_mmd")),
    ("unknown_dataset_source", lambda e: e.train(source="svhn"),
     ("unknown dataset 'svhn'", "valid datasets: celeba, cifar10, fashion_mnist, image_folder, mnist, npz, synthetic")),
    ("unknown_sampler", lambda e: [*e.fin.fit_args(out=e.own / "s.pt")[:-6], "--sampler", "gmmm", "--out", str(e.own / "s.pt")],
     ("unknown sampler 'gmmm'", "valid samplers: gmm, prior, two_stage")),
    ("unknown_extractor", lambda e: e.reference("synthetic", fh.SYNTH_OPTIONS, extractor="incepton"),
     ("unknown feature extractor 'incepton'", "valid feature extractors: classifier, inception, raw")),
    ("table_names_unknown_dataset", lambda e: e.train_with_config(e.config(
        {"tables": {"table3": {"datasets": ["mnsit"], "rows": [{"label": "x", "model": "ae", "sampler": "prior"}]}}})),
     ("unknown dataset 'mnsit'", "valid datasets: celeba, fashion_mnist, mnist, synth_n16, synth_n8")),
    ("table_names_unknown_sampler", lambda e: e.train_with_config(e.config(
        {"tables": {"table3": {"datasets": ["mnist"], "rows": [{"label": "x", "model": "ae", "sampler": "gmmm"}]}}})),
     ("unknown sampler 'gmmm'", "valid samplers:")),
    # ---- schema-invalid config values
    ("schema_enum", lambda e: e.train_with_config(e.config({"arch": "huge"})),
     ("'arch' is invalid", "'huge' is not one of", "fix it in the config")),
    ("schema_minimum", lambda e: e.train_with_config(e.config({"training": {"epochs": 0}})),
     ("'training.epochs' is invalid", "minimum of 1", "fix it in the config")),
    ("schema_typo_in_value", lambda e: e.train_with_config(e.config({"features": {"extractor": "inceptoin"}})),
     ("'features.extractor' is invalid", "fix it in the config")),
    ("schema_unknown_key", lambda e: e.train_with_config(e.config({"tipo": 1})),
     ("Additional properties", "'tipo' was unexpected", "fix it in the config")),
    ("yaml_syntax", lambda e: e.train_with_config(e.config("arch: small\nseeds: [0\n", "bad.yaml")),
     ("bad.yaml line", "not valid YAML", "fix the syntax")),
    ("config_file_missing", lambda e: e.train_with_config(e.tmp / "nope.yaml"), ("nope.yaml not found", "pass an existing file")),
    ("bad_json_argument", lambda e: ["train", *e.settings(), "--run-config", '{"dataset": ', "--out", str(e.own / "run")],
     ("not valid JSON", "pass a JSON object")),
    ("unknown_model_parameter", lambda e: e.train(model="ae", params={"lamda": 1.0}),
     ("model 'ae' has no parameter(s) ['lamda']", "valid: none")),
    ("unknown_dataset_option", lambda e: e.train(options={**fh.SYNTH_OPTIONS, "latent": 2}),
     ("unknown option(s) latent", "valid options: d, hidden, n, n_test, n_train, seed")),
    ("cuda_without_gpu", lambda e: [*e.train(), "--device", "cuda"], ("'cuda' requested but CUDA is not available", "use device: auto or cpu")),
    # ---- missing, truncated, corrupt data files and checksum mismatches
    ("mnist_file_missing", lambda e: (_mnist(e) / "t10k-labels-idx1-ubyte.gz").unlink() or e.train_on("mnist", verify=False),
     ("t10k-labels-idx1-ubyte.gz is missing", "copy the original")),
    ("mnist_truncated_gz", lambda e: fh.truncate(_mnist(e) / "train-images-idx3-ubyte.gz") or e.train_on("mnist", verify=False),
     ("train-images-idx3-ubyte.gz is corrupt", "replace it with the original")),
    ("mnist_checksum_mismatch", lambda e: _mnist(e) and e.train_on("mnist"),
     ("fails its md5 checksum", "replace it with the original")),
    ("cifar_corrupt_batch", lambda e: fx.write_cifar10(e.tmp / "data", per_batch=2) and fh.truncate(
        e.tmp / "data" / "cifar-10-batches-py" / "data_batch_1") or e.train_on("cifar10", verify=False),
     ("CIFAR-10", "cannot be parsed", "cifar-10-python.tar.gz")),
    ("cifar_checksum_mismatch", lambda e: fx.write_cifar10(e.tmp / "data", per_batch=2) and e.train_on("cifar10"),
     ("data_batch_1 fails its md5 checksum", "download cifar-10-python.tar.gz")),
    ("celeba_missing", lambda e: e.train_on("celeba"), ("CelebA not found", "img_align_celeba_89x109/")),
    ("celeba_corrupt_jpg", lambda e: fx.write_celeba_offline(e.tmp / "data", count=6) and fh.truncate(
        e.tmp / "data" / "celeba" / "img_align_celeba_89x109" / "000003.jpg", 0.3) or e.train_on(
        "celeba", verify=False, options={"holdout": 2}), ("000003.jpg is corrupt", "replace it with the original")),
    ("celeba_checksum_mismatch", lambda e: fx.write_celeba_offline(e.tmp / "data", count=6) and fx.face(89, 109, 99).save(
        e.tmp / "data" / "celeba" / "img_align_celeba_89x109" / "000003.jpg", quality=95) or e.train_on(
        "celeba", options={"holdout": 2}), ("000003.jpg fails its sha256 checksum", "replace it with the original")),
    # ---- images of the wrong size or channel count, an empty split, too many items asked
    ("mnist_wrong_image_size", lambda e: _mnist_images(e, (32, 32)) or e.train_on("mnist", verify=False),
     ("items of shape (1, 32, 32), expected (1, 28, 28)", "check the files under the data root")),
    ("mnist_wrong_channel_count", lambda e: _mnist_images(e, (3, 28, 28)) or e.train_on("mnist", verify=False),
     ("holds images of shape 3 x 28 x 28, expected 28 x 28 single-channel", "replace it with the original")),
    ("mnist_empty_split", lambda e: _mnist(e, n_train=0) and e.train_on("mnist", verify=False),
     ("holds no items (an empty split)", "replace it with the original")),
    ("celeba_empty_split", lambda e: fx.write_celeba_standard(e.tmp / "data", [0, 0, 0]) and e.reference(
        "celeba", verify=False), ("lists no image of partition 2 (test)", "replace it with the original list_eval_partition.txt")),
    ("more_samples_than_test_split", lambda e: e.reference("synthetic", fh.SYNTH_OPTIONS, n=500),
     ("500 evaluation samples", "has 60", "n_samples to at most 60")),
    ("n_train_more_than_train_split", lambda e: e.train(n_train=1000),
     ("n_train=1000", "has 240 items", "lower datasets.synth.n_train")),
    # ---- a run that diverges
    ("training_diverges_to_nan", lambda e: e.train(model="ae", run="ae", params={}, training={"epochs": 1, "batch_size": 32, "optim": {"lr": 1e12}}),
     ("became", "at step", "lower training.optim.lr")),
    # ---- Inception weights
    ("inception_weights_missing", lambda e: e.env.update(TORCH_HOME=str(e.tmp / "torch")) or e.reference(
        "celeba", extractor="inception"), ("FID Inception weights not found", "put it at")),
    ("inception_weights_path_wrong", lambda e: e.env.update(RAE_BENCH_INCEPTION_WEIGHTS=str(e.tmp / "nope.pth")) or e.reference(
        "celeba", extractor="inception"), ("nope.pth' (from $RAE_BENCH_INCEPTION_WEIGHTS) does not exist", "fix or unset")),
    ("inception_weights_truncated", lambda e: (e.tmp / "w.pth").write_bytes(b"PK\x03\x04" + bytes(100)) and e.env.update(
        RAE_BENCH_INCEPTION_WEIGHTS=str(e.tmp / "w.pth")) or e.reference("celeba", extractor="inception"),
     ("cannot read Inception weights", "replace it with a fresh copy")),
    # ---- checkpoints and states: truncated, of another model or config, not what they claim
    ("checkpoint_truncated", lambda e: (e.own / "run").mkdir(parents=True) or (e.own / "run" / "checkpoint.pt").write_bytes(
        b"PK\x03\x04 truncated") and e.train(), ("checkpoint.pt is unreadable", "delete it to start the run afresh")),
    ("model_as_checkpoint", lambda e: (e.own / "run").mkdir(parents=True) or e.copy_of(
        e.fin.run_dir / "model.pt", "run/checkpoint.pt") and e.train(),
     ("is not a rae_bench training checkpoint", "delete it to start the run afresh")),
    ("model_truncated", lambda e: fh.truncate(e.copy_of(e.fin.run_dir / "model.pt")) or e.fin.evaluate_args(
        e.own, model=e.own / "model.pt"), ("model.pt is unreadable", "delete it and train again")),
    ("sampler_state_as_model", lambda e: e.fin.fit_args(model=e.fin.run_dir / "gmm" / "sampler.pt", out=e.own / "s.pt"),
     ("is not a rae_bench model file", "pass a run's model.pt")),
    ("model_of_another_architecture", lambda e: e.fin.evaluate_args(e.own, model=_tampered_model(e)),
     ("does not match model 'vae'", "train again")),
    ("sampler_truncated", lambda e: fh.truncate(e.copy_of(e.fin.run_dir / "gmm" / "sampler.pt")) or e.fin.evaluate_args(
        e.own, sampler=e.own / "sampler.pt"), ("sampler state", "is unreadable", "fit the sampler again")),
    ("sampler_of_another_model", lambda e: e.fin.evaluate_args(e.own, sampler=_sampler_of_another_model(e)),
     ("was fitted on another model", "fit the sampler again")),
    ("reference_stats_truncated", lambda e: fh.truncate(e.copy_of(e.fin.reference)) or e.fin.evaluate_args(
        e.own, reference=e.own / e.fin.reference.name), ("is corrupt or not a stats file", "delete it to recompute")),
    ("reference_of_another_dataset", lambda e: e.fin.evaluate_args(e.own, reference=_reference_of_another_dataset(e)),
     ("hold 8-d features but extractor 'raw' gives 12-d", "delete", "recompute")),
]


@pytest.mark.parametrize("name, build, expect", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_and_touches_no_result(finished, tmp_path, capsys, monkeypatch, name, build, expect):
    if name == "cuda_without_gpu" and torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    e = Env(tmp_path, finished, finished.results / "synth" / f"case_{name}")
    argv = build(e)
    for var, value in e.env.items():
        monkeypatch.setenv(var, value)
    capsys.readouterr()
    before = fh.snapshot(finished.results)
    line = _error(capsys, fh.cli_main(*argv))
    print(line)  # the catalogue's messages, for `pytest -rP`
    missing = [text for text in expect if text not in line]
    assert not missing, f"{missing} not in: {line}"
    fh.assert_untouched(before, fh.snapshot(finished.results), str(e.own.relative_to(finished.results)))


def test_bad_input_counts():
    assert len(CASES) >= 20 and len({c[0] for c in CASES}) == len(CASES)


def test_the_console_entry_point_prints_one_line_and_exits_2(tmp_path):
    """The same contract through ``python -m rae_bench`` in its own process."""
    done = fh.run_rae("train", "--config", str(DEFAULT_CONFIG), "--dataset", "mnsit", "--model", "vae",
                      "--out", str(tmp_path / "r"), check=False)
    assert done.returncode == 2
    line = fh.one_error_line(done.stderr)
    assert line.startswith("error: unknown dataset 'mnsit'; valid datasets: celeba, fashion_mnist, mnist")
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("change, expect", [
    ({"training": {"epochs": 0}}, ("'training.epochs' is invalid", "fix it in the config")),
    ({"models": {"vae2": {"model": "vea"}}}, ("unknown model 'vea'", "valid models: ae,")),
], ids=["schema", "unknown_model"])
def test_bad_config_stops_snakemake_with_one_line(finished, tmp_path, change, expect):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(change))
    before = fh.snapshot(finished.results)
    done = subprocess.run(_snakemake_cmd(finished.root, bad, "-n", "tables/table3.tex"), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Config file ")]
    assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("error: "), done.stderr[-3000:]
    assert all(text in lines[0] for text in expect), lines[0]
    assert fh.snapshot(finished.results) == before


# =========================================================================== boundaries (issue 15)
# Each class of input is checked where it enters: config params (before any job), CLI arguments (before any
# work), the content of files read back, names that become paths; and untrusted sizes, concurrent runs.


def _with_config(e: Env, change: dict, dataset: str = "mnist", model: str = "ae") -> list[str]:
    return e.train_with_config(e.config(change), dataset=dataset, model=model)


def _tampered_gmm(e: Env, edit: Callable[[dict], None]) -> Path:
    blob = torch.load(e.fin.run_dir / "gmm" / "sampler.pt", weights_only=True)
    edit(blob)
    e.own.mkdir(parents=True, exist_ok=True)
    torch.save(blob, e.own / "sampler.pt")
    return e.own / "sampler.pt"


def _tampered_record(e: Env, edit: Callable[[dict], None]) -> Path:
    blob = torch.load(e.fin.run_dir / "model.pt", weights_only=True)
    edit(blob)
    e.own.mkdir(parents=True, exist_ok=True)
    torch.save(blob, e.own / "model.pt")
    return e.own / "model.pt"


def _tampered_reference(e: Env, **changes: Any) -> Path:
    with np.load(e.fin.reference, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    entries.update(changes)
    e.own.mkdir(parents=True, exist_ok=True)
    with open(e.own / "reference.npz", "wb") as handle:
        np.savez(handle, **entries)
    return e.own / "reference.npz"


def _features(e: Env, rows: int, cols: int = 12) -> np.ndarray:
    return np.zeros((rows, cols), dtype=np.float32)


def _args(argv: list[str], **changes: str | None) -> list[str]:
    """``argv`` with ``--flag value`` pairs replaced (None: the pair removed)."""
    out = list(argv)
    for name, value in changes.items():
        key = "--" + name.replace("_", "-")
        i = out.index(key)
        if value is None:
            del out[i:i + 2]
        else:
            out[i + 1] = value
    return out


BOUNDARY_CASES: list[tuple[str, Callable[[Env], list[str]], tuple[str, ...]]] = [
    # ---- model and sampler params, dataset options: checked when the config is read, before any job
    ("model_param_unknown", lambda e: _with_config(e, {"models": {"ae": {"model": "ae", "params": {"fooo": 1}}}}),
     ("models.ae on dataset", "has no parameter(s) ['fooo']", "valid: none")),
    ("model_param_string_for_number", lambda e: _with_config(e, {"models": {"vae": {"params": {"beta": "abc"}}}}, model="vae"),
     ("models.vae on dataset", "'beta' must be a finite number, got 'abc'", "fix it in the config")),
    ("model_param_list_for_number", lambda e: _with_config(e, {"models": {"rae_l2": {"params": {"beta": [1]}}}}, model="rae_l2"),
     ("models.rae_l2", "'beta' must be a finite number, got [1]",)),
    ("model_param_float_for_count", lambda e: _with_config(e, {"models": {"vae_vamp": {"params": {"components": 2.5}}}}),
     ("models.vae_vamp", "'components' must be an integer", "got 2.5")),
    ("model_param_huge_count", lambda e: _with_config(e, {"models": {"vae_iaf": {"params": {"flow_steps": 10**12}}}}),
     ("models.vae_iaf", "'flow_steps' must be an integer in", "1000000000000")),
    ("model_param_bad_value_on_its_dataset", lambda e: _with_config(e, {"models": {"vae": {"datasets": {"celeba": {
        "params": {"likelihood": "bernouli"}}}}}}, model="vae"),
     ("models.vae on dataset 'celeba'", "likelihood 'bernouli' unknown")),
    ("model_too_big", lambda e: _with_config(e, {"models": {"flexae": {"params": {"prior_width": 10**6, "prior_depth": 3}}}}),
     ("models.flexae", "would hold", "more than the limit")),
    ("sampler_param_unknown", lambda e: _with_config(e, {"samplers": {"gmm": {"componets": 3}}}),
     ("samplers.gmm", "has no parameter(s) ['componets']", "valid: ['components', 'covariance_type'")),
    ("sampler_param_type", lambda e: _with_config(e, {"samplers": {"gmm": {"components": "ten"}}}),
     ("samplers.gmm", "'components' must be an integer", "got 'ten'")),
    ("gmm_components_zero", lambda e: _with_config(e, {"samplers": {"gmm": {"components": 0}}}),
     ("samplers.gmm", "components and max_iter must be integers >= 1")),
    ("gmm_covariance_type", lambda e: _with_config(e, {"samplers": {"gmm": {"covariance_type": "fulll"}}}),
     ("covariance_type 'fulll' unknown", "valid: full, tied, diag, spherical")),
    ("gmm_reg_covar", lambda e: _with_config(e, {"samplers": {"gmm": {"reg_covar": -1.0}}}),
     ("samplers.gmm", "reg_covar must be a number > 0")),
    ("two_stage_latent_dim", lambda e: _with_config(e, {"samplers": {"two_stage": {"latent_dim": "eight"}}}),
     ("samplers.two_stage", "latent_dim must be null or an integer")),
    ("dataset_option_type", lambda e: _with_config(e, {"datasets": {"synth_n8": {"options": {"n": "eight"}}}}),
     ("datasets.synth_n8.options", "option 'n' of dataset 'synthetic' must be an integer")),
    ("lr_schedule_missing_its_settings", lambda e: _with_config(e, {"training": {"lr_schedule": {"type": "step"}}}),
     ("'training.lr_schedule' is invalid", "'step_epochs' is a required property")),
    ("training_epochs_deleted", lambda e: _no_epochs(e),
     ("models.ae on dataset", "value at 'training' is invalid", "is a required property")),
    # ---- names that become parts of paths
    ("model_name_with_space", lambda e: _with_config(e, {"models": {"my ae": {"model": "ae"}}}),
     ("name 'my ae' under 'models'", "only letters, digits, '_' and '-'", "rename it")),
    ("dataset_name_with_slash", lambda e: _with_config(e, {"datasets": {"../mnist": {"source": "mnist", "latent_dim": 4}}}),
     ("name '../mnist' under 'datasets'", "becomes part of file paths")),
    ("table_name_unicode", lambda e: _with_config(e, {"tables": {"tablé": {"datasets": ["mnist"], "rows": [{"label": "x"}]}}}),
     ("name 'tablé' under 'tables'", "rename it")),
    ("sampler_name_with_dot", lambda e: _with_config(e, {"samplers": {"gmm.v2": {}}}), ("name 'gmm.v2' under 'samplers'",)),
    ("figure_name_empty", lambda e: _with_config(e, {"figures": {"": {"sweep": "latent", "model": "wae_mmd"}}}),
     ("name '' under 'figures'",)),
    ("cli_name_with_slash", lambda e: ["table", "--name", "../t", "--csv", str(e.own / "t.csv"), "--tex", str(e.own / "t.tex")],
     ("table or figure name '../t'", "only letters, digits")),
    # ---- CLI arguments: counts, ranges, devices, inputs and outputs, argparse's own errors
    ("cli_n_zero", lambda e: _args(e.reference("synthetic", fh.SYNTH_OPTIONS), n="0"), ("--n 0 is out of range", "from 2 to")),
    ("cli_n_negative", lambda e: _args(e.reference("synthetic", fh.SYNTH_OPTIONS), n="-5"), ("--n -5 is out of range",)),
    ("cli_n_samples_one", lambda e: _args(e.fin.evaluate_args(e.own), n_samples="1"), ("--n-samples 1 is out of range",)),
    ("cli_threads_negative", lambda e: _args(e.train(), threads="-2"), ("--threads -2 is out of range", "from 1 to 4096")),
    ("cli_seed_negative", lambda e: _args(e.fin.fit_args(out=e.own / "s.pt"), seed="-1"), ("--seed -1 is out of range",)),
    ("cli_seed_huge", lambda e: _args(e.fin.fit_args(out=e.own / "s.pt"), seed=str(2**70)), ("--seed", "out of range")),
    ("cli_checkpoint_every_zero", lambda e: [*e.train(), "--checkpoint-every", "0"], ("--checkpoint-every 0 is out of range",)),
    ("cli_not_an_int", lambda e: _args(e.fin.evaluate_args(e.own), n_samples="many"),
     ("argument --n-samples: invalid int value: 'many'", "see rae-bench evaluate --help")),
    ("cli_missing_argument", lambda e: _args(e.fin.evaluate_args(e.own), reference=None),
     ("the following arguments are required: --reference", "--help")),
    ("cli_model_path_missing", lambda e: e.fin.evaluate_args(e.own, model=e.own / "nope.pt"),
     ("--model-path: model file", "nope.pt not found", "train it first")),
    ("cli_sampler_path_is_a_folder", lambda e: e.fin.evaluate_args(e.own, sampler=e.fin.run_dir),
     ("--sampler-path", "is a folder, not a sampler state")),
    ("cli_reference_missing", lambda e: e.fin.evaluate_args(e.own, reference=e.own / "ref.npz"),
     ("--reference: reference statistics file", "not found", "compute it first")),
    ("cli_out_dir_is_a_file", lambda e: e.fin.evaluate_args(e.copy_of(e.fin.reference, "a_file")),
     ("--out-dir", "is a file, not a folder")),
    ("cli_device_unknown", lambda e: [*e.train(), "--device", "gpu0"], ("--device 'gpu0' is not a device", "auto, cpu")),
    ("cli_settings_bad_value", lambda e: ["train", "--settings", json.dumps({"device": 3}), "--run-config",
                                          json.dumps(fh.RUN), "--out", str(e.own / "run")],
     ("--settings: value at 'device' is invalid", "keys of config/config.yaml")),
    # the variable that carried --settings until issue 24: set, it stops the job instead of being ignored
    ("cli_settings_old_env_variable", lambda e: e.env.update(RAE_BENCH_SETTINGS=json.dumps({"device": "cpu"}))
     or e.train(), ("$RAE_BENCH_SETTINGS is no longer read", "unset it and pass --settings")),
    ("cli_json_classifier_spec_wrong_type", lambda e: ["train-classifier", *e.settings(), "--spec", json.dumps(
        {"source": "synthetic", "epochs": "2"}), "--out", str(e.own / "classifier.pt")],
     ("--spec: value at 'epochs' is invalid", "'2'", "as the workflow does")),
    ("run_config_not_a_run", lambda e: ["train", *e.settings(), "--run-config", '{"dataset": "synth"}', "--out", str(e.own / "r")],
     ("--run-config: value at '(top level)' is invalid", "is a required property", "resolve_run")),
    ("run_config_wrong_type", lambda e: e.train(latent_dim="4"), ("--run-config: value at 'latent_dim' is invalid", "'4'")),
    # ---- the content of files read back
    ("reference_not_finite", lambda e: e.fin.evaluate_args(e.own, reference=_tampered_reference(
        e, mu=np.full(12, np.nan))), ("corrupt or not a stats file", "NaN or infinite", "delete it to recompute")),
    ("reference_sigma_shape", lambda e: e.fin.evaluate_args(e.own, reference=_tampered_reference(e, sigma=np.eye(11))),
     ("corrupt or not a stats file", "sigma (11, 11)")),
    ("reference_count_differs", lambda e: _args(e.fin.evaluate_args(e.own), n_samples="40"),
     ("computed from 50 test items, but 40 samples are asked", "reference_test_n40.npz")),
    ("reference_features_count", lambda e: e.fin.evaluate_args(e.own, reference=_tampered_reference(
        e, features=_features(e, 49))), ("features of shape (49, 12)", "expected (50, 12)")),
    ("sampler_state_wrong_shape", lambda e: e.fin.evaluate_args(e.own, sampler=_tampered_gmm(
        e, lambda b: b["state"].update(means_=torch.zeros(3, 5)))),
     ("not a valid sampler state", "means_ has shape (3, 5), expected (3, 4)", "fit the sampler again")),
    ("sampler_state_foreign_key", lambda e: e.fin.evaluate_args(e.own, sampler=_tampered_gmm(
        e, lambda b: b["state"].update(n_components=torch.tensor(7)))), ("not a valid sampler state", "expected")),
    ("sampler_state_bad_params", lambda e: e.fin.evaluate_args(e.own, sampler=_tampered_gmm(
        e, lambda b: b.update(params={"components": "3"}))), ("not a valid sampler state", "'components' must be an integer")),
    ("model_record_malformed", lambda e: e.fin.evaluate_args(e.own, model=_tampered_record(
        e, lambda b: b["run"].pop("training"))), ("unusable run config", "'training' is a required property", "train again")),
    ("model_record_data_shape", lambda e: e.fin.evaluate_args(e.own, model=_tampered_record(
        e, lambda b: b.update(data_shape=[13]))), ("claims data of shape [13]", "gives (12,)", "train again")),
    ("checkpoint_lacks_rng", lambda e: _tampered_checkpoint(e, lambda c: c.pop("rng")),
     ("checkpoint", "lacks 'rng'", "delete it to start the run afresh")),
    ("checkpoint_of_another_net", lambda e: _tampered_checkpoint(e, lambda c: c.update(model={"w": torch.zeros(3)})),
     ("does not fit this run (RuntimeError)", "delete it to start the run afresh")),
    ("metrics_json_truncated", lambda e: _table_over(e, '{"fid_rec": 1.0, "fid_ge'),
     ("metrics file", "is unreadable (JSONDecodeError)", "delete it and rerun its evaluation")),
    ("metrics_json_not_numeric", lambda e: _table_over(e, '{"fid_rec": "low", "fid_gen": 2.0}'),
     ("holds a non-numeric fid_rec", "rerun its evaluation")),
]


def _tampered_checkpoint(e: Env, change: Any) -> list[str]:
    """``rae-bench train`` on a run folder holding a checkpoint of this very run (its config hash) with ``change``."""
    from rae_bench.config.resolve import config_hash
    from rae_bench.train import CHECKPOINT_FORMAT

    argv = e.train()
    run = json.loads(argv[argv.index("--run-config") + 1])
    ckpt = {"format": CHECKPOINT_FORMAT, "config_hash": config_hash(run), "step": 1, "elapsed": 0.0, "model": {},
            "optimizers": {}, "schedulers": {}, "rng": {"torch": torch.get_rng_state()}}
    change(ckpt)
    (e.own / "run").mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, e.own / "run" / "checkpoint.pt")
    return argv


def _table_over(e: Env, metrics_text: str) -> list[str]:
    """``rae-bench table`` over a results folder whose one metrics.json holds ``metrics_text``."""
    path = e.own / "results" / "synth" / "ae" / "seed0" / "prior" / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(metrics_text)
    spec = {"kind": "rows", "rows": [{"label": "AE", "model": "ae", "sampler": "prior"}], "datasets": ["synth"],
            "seeds": [0]}
    return ["table", "--name", "table3", "--spec", json.dumps(spec), "--results", str(e.own / "results"),
            "--csv", str(e.own / "t.csv"), "--tex", str(e.own / "t.tex")]


def _no_epochs(e: Env) -> list[str]:
    """The whole default config without its training block: runs lack epochs and batch_size."""
    cfg = yaml.safe_load(DEFAULT_CONFIG.read_text())
    del cfg["training"]
    path = e.config(cfg, "whole.yaml")
    return ["train", "--config", str(path), "--dataset", "mnist", "--model", "ae", "--out", str(e.own / "run")]


@pytest.mark.parametrize("name, build, expect", BOUNDARY_CASES, ids=[c[0] for c in BOUNDARY_CASES])
def test_boundary_is_one_line_and_touches_no_result(finished, tmp_path, capsys, monkeypatch, name, build, expect):
    """Issue 15's classes: each bad value is refused where it enters, with one line naming it and the fix."""
    test_bad_input_is_one_line_and_touches_no_result(finished, tmp_path, capsys, monkeypatch, name, build, expect)


def test_bad_params_stop_snakemake_before_any_job(finished, tmp_path):
    """``params: {fooo: 1}`` and a name with a space used to pass ``snakemake -n``; now one line each, no job."""
    for change, expect in [({"models": {"ae": {"model": "ae", "params": {"fooo": 1}}}}, "has no parameter(s) ['fooo']"),
                           ({"samplers": {"g m m": {}}}, "name 'g m m' under 'samplers'")]:
        bad = tmp_path / "bad.yaml"
        bad.write_text(yaml.safe_dump(change))
        before = fh.snapshot(finished.results)
        done = subprocess.run(_snakemake_cmd(finished.root, bad, "-n", "tables/table3.tex"), capture_output=True,
                              text=True, timeout=300)
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("Config file ")]
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], done.stderr[-3000:]
        assert fh.snapshot(finished.results) == before


def test_config_params_check_is_fast():
    """validate_config builds every (run, dataset) model of the default config on the meta device: cheap."""
    from rae_bench.config import validate
    from rae_bench.config.validate import load_config

    load_config([DEFAULT_CONFIG])  # imports
    validate._CHECKED.clear()
    start = time.perf_counter()
    load_config([DEFAULT_CONFIG])
    took = time.perf_counter() - start
    print(f"{len(validate._CHECKED)} run configs built in {took:.2f} s")
    assert len(validate._CHECKED) >= 40 and took < 5.0  # ~0.4 s on an idle core


# --------------------------------------------------------------------------- untrusted input at scale

_PEAK_RSS = r"""
import contextlib, io, json, resource, sys
from rae_bench.cli import main
out = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    out.append({"code": code, "stderr": err.getvalue(),
                "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
print(json.dumps(out))
"""


def _zip_bomb(path: Path, gib: int = 4) -> None:
    """A stats .npz whose ``features`` member inflates to ``gib`` GiB of zeros (a few MB on disk): zipfile's
    streaming writes, never the array in memory."""
    import io

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for key, value in {"mu": np.zeros(12), "sigma": np.eye(12), "n": np.asarray(50)}.items():
            buf = io.BytesIO()
            np.save(buf, value)
            archive.writestr(f"{key}.npy", buf.getvalue())
        rows = gib * 2**30 // (12 * 4)
        with archive.open("features.npy", "w", force_zip64=True) as member:
            np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (rows, 12)})
            left, chunk = rows * 12 * 4, bytes(2**24)
            while left > 0:
                member.write(chunk[:left])
                left -= len(chunk)


def _header_claim(e: Env) -> Path:
    """A small member whose numpy header claims 10^12 rows."""
    import io

    path = _tampered_reference(e)
    with zipfile.ZipFile(path, "a") as archive:
        buf = io.BytesIO()
        np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (10**12, 12)})
        archive.writestr("features2.npy", buf.getvalue() + bytes(64))
    return path


def test_absurd_sizes_are_refused_before_memory_runs_out(finished, tmp_path):
    """Valid tensors with absurd shapes (10^12-element claims) and a 4 GiB zip bomb: refused from declared sizes
    alone, by one process whose peak memory stays that of a plain start (torch imported), far below 4 GiB."""
    f = finished

    def env(name: str) -> Env:
        return Env(tmp_path / name, f, tmp_path / name / "own")

    bomb = env("bomb")
    bomb.own.mkdir(parents=True)
    _zip_bomb(bomb.own / "reference.npz")
    assert (bomb.own / "reference.npz").stat().st_size < 32 * 2**20
    huge = torch.zeros(1).expand(10**6, 10**6)  # a stride-0 view: 10^12 elements in a few kB
    cases = {
        "model_latent_dim": (f.evaluate_args(env("a").own, model=_tampered_record(
            env("a"), lambda b: b["run"].update(latent_dim=10**12))), ("unusable run config", "'latent_dim'", "train again")),
        "model_data_shape": (f.evaluate_args(env("b").own, model=_tampered_record(
            env("b"), lambda b: b["run"]["options"].update(d=10**12))), ("exceed", "numbers", "train again")),
        "gmm_state": (f.evaluate_args(env("c").own, sampler=_tampered_gmm(
            env("c"), lambda b: b["state"].update(means_=huge, covariances_=huge))),
            ("not a valid sampler state", "claim", "more than the limit", "fit the sampler again")),
        "reference_zip_bomb": (f.evaluate_args(bomb.own, reference=bomb.own / "reference.npz"),
                               ("corrupt or not a stats file", "declare", "more than the limit", "delete it to recompute")),
        "reference_header_claim": (f.evaluate_args(env("d").own, reference=_header_claim(env("d"))),
                                   ("corrupt or not a stats file", "claims an array of shape (1000000000000, 12)")),
    }
    before = fh.snapshot(f.results)
    done = subprocess.run([sys.executable, "-c", _PEAK_RSS, json.dumps([argv for argv, _ in cases.values()])],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    for (name, (_, expect)), result in zip(cases.items(), json.loads(done.stdout.splitlines()[-1])):
        print(name, result)
        assert result["code"] == 2, (name, result)
        line = fh.one_error_line(result["stderr"])
        assert all(text in line for text in expect), (name, line)
        assert result["peak_mib"] < 2048, (name, result)
    assert fh.snapshot(f.results) == before


# --------------------------------------------------------------------------- concurrent runs


def _long_run(root: Path) -> fh.Chain:
    """A run that trains for seconds (2,100 steps), so that a second trainer surely meets the first."""
    return fh.Chain(root, {**fh.RUN, "training": {**fh.RUN["training"], "epochs": 300}}, in_process=False)


def test_two_trainings_at_once_one_refuses_and_a_killed_one_leaves_no_stuck_lock(tmp_path):
    chain = _long_run(tmp_path)
    lock = chain.run_dir / "train.lock"
    argv = fh.rae_cmd(*chain.train_args(every=50))
    # started together: exactly one trains, the other refuses with one line naming the holder
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], [o[1][-2000:] for o in outs]
    refused = outs[[p.returncode for p in procs].index(2)][1]
    line = fh.one_error_line(refused)
    # the holder's PID, or (when the second start wins the race to read the lock file) that it has none yet
    assert ("is in use by another rae-bench train (pid" in line or "has not written its PID yet" in line) \
        and "wait for it to finish" in line, line
    model, blob = load_model(chain.run_dir / "model.pt")  # the winner's model is whole
    assert blob["result"]["steps"] == 300 * (240 // 32) and not lock.exists()

    # SIGKILL a trainer: its lock file stays, but the kernel released the flock, so the next run takes over
    (chain.run_dir / "model.pt").unlink()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline and not (chain.run_dir / "checkpoint.pt").exists():
        time.sleep(0.01)
    proc.kill()
    proc.communicate(timeout=60)
    assert lock.exists() and f"pid {proc.pid} " in lock.read_text()
    done = fh.run_rae(*chain.train_args(every=50))
    assert "resuming" in done.stdout and not lock.exists()
    load_model(chain.run_dir / "model.pt")


def test_two_snakemake_at_once_the_second_refuses(tmp_path):
    """Snakemake locks its working directory: a second ``snakemake`` on the same folder refuses while the first
    runs (its message, several lines, is documented in docs/errors.md); the first finishes, its model loads."""
    config = _tiny_synth_workflow(tmp_path)
    target = "results/synth/ae/seed0/model.pt"
    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(_snakemake_cmd(tmp_path, config, target), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 300
            locks = tmp_path / ".snakemake" / "locks"
            while first.poll() is None and time.time() < deadline and not (locks.is_dir() and any(locks.iterdir())):
                time.sleep(0.05)
            assert first.poll() is None, "the first workflow ended before the second started"
            second = subprocess.run(_snakemake_cmd(tmp_path, config, target), capture_output=True, text=True, timeout=300)
            assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()[-3000:]
        finally:
            if first.poll() is None:
                first.kill()
    print(second.stderr)
    assert second.returncode != 0 and "Directory cannot be locked" in second.stderr, second.stderr[-3000:]
    assert "Traceback" not in second.stderr
    load_model(tmp_path / target)
