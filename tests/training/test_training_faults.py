"""Faults while training (issue 8's catalogue): SIGKILL at random points, a kill inside the checkpoint
write, a disk that fills mid-run, two trainers on one run; and the determinism that the resume checks
rely on. Each goes through the ``rae-bench`` CLI; see tests/workflow/test_cli_faults.py for the contract.
"""
from __future__ import annotations

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import faults as fh
from helpers.faults import cli_error as _error

from rae_bench.atomic import stale_temporaries
from rae_bench.runs import load_model
from rae_bench.train import load_checkpoint

pytestmark = pytest.mark.usefixtures("fault_environment", "restore_threads")



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



# =========================================================================== determinism


def test_same_config_and_seed_give_identical_metrics_json(finished, tmp_path):
    """The whole chain again, in a fresh process: metrics.json is byte-identical on CPU (timings are in timing.json)."""
    again = fh.Chain(tmp_path / "again", in_process=False)
    fh.chain_in_a_fresh_process(again)
    fh.assert_same_weights(finished.run_dir / "model.pt", again.run_dir / "model.pt")
    assert (again.run_dir / "gmm" / "metrics.json").read_bytes() == (finished.run_dir / "gmm" / "metrics.json").read_bytes()
    assert "eval_seconds" in json.loads((again.run_dir / "gmm" / "timing.json").read_text())



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
