"""Helpers of the fault tests (tests/*/test_*_faults.py, test_untrusted_files.py): run the CLI, snapshot a
results folder, craft hostile files."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pickle
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from helpers.models import weights

REPO = Path(__file__).resolve().parents[2]

# A stochastic model (VAE) with an LR schedule: resuming must restore RNG, optimizer and scheduler state.
SYNTH_OPTIONS = {"n": 3, "d": 12, "n_train": 240, "n_test": 60}
RUN: dict[str, Any] = {
    "dataset": "synth", "source": "synthetic", "options": SYNTH_OPTIONS,
    "n_train": None, "run": "vae", "model": "vae", "params": {"likelihood": "gaussian"},
    "latent_dim": 4, "arch": "tiny", "seed": 3,
    "training": {"epochs": 40, "batch_size": 32, "optim": {"lr": 1e-3},
                 "lr_schedule": {"type": "step", "step_epochs": 10, "gamma": 0.5}},
}
STEPS = 40 * (240 // 32)  # 280
N_EVAL = 50
GMM = {"components": 3}
# written only by a finished command: a failing one must never leave one of these behind
FINAL_OUTPUTS = ("model.pt", "train_log.csv", "config.json", "sampler.pt", "metrics.json", ".npz", "classifier.pt")


def settings(tmp: Path, **extra: Any) -> str:
    return json.dumps({"data_root": str(tmp / "data"), "cache_dir": str(tmp / "cache"), "device": "cpu", **extra})


def cli_error(capsys, code: int) -> str:
    """The one stderr line of an in-process CLI call that must have failed with exit code 2."""
    err = capsys.readouterr().err
    assert code == 2, err
    return one_error_line(err)


def rae_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "rae_bench", *args]


def cli_main(*args: str) -> int:
    """``rae-bench ARGS`` in this process (the same ``main`` the console script calls)."""
    from rae_bench.cli import main
    from rae_bench.data import clear_cache

    clear_cache()
    return main(list(args))


def run_rae(*args: str, check: bool = True, env: dict[str, str] | None = None,
            preexec_fn: Callable[[], None] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(rae_cmd(*args), capture_output=True, text=True, timeout=300, env=env, preexec_fn=preexec_fn)
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args[:1])} failed ({done.returncode}): {done.stderr[-3000:]}")
    return done


class Chain:
    """The user's commands for one run: reference stats, train, fit a GMM, evaluate.

    ``in_process`` runs them through ``rae_bench.cli.main`` here (fast); otherwise each is its own process.
    """

    def __init__(self, root: Path, run: dict[str, Any] = RUN, in_process: bool = True) -> None:
        self.root, self.run, self.in_process = root, run, in_process
        self.results = root / "results"
        self.run_dir = self.results / run["dataset"] / run["run"] / f"seed{run['seed']}"
        self.reference = self.results / run["dataset"] / "features" / "raw" / f"reference_test_n{N_EVAL}.npz"
        self.settings = settings(root)

    def do(self, *args: str) -> None:
        if self.in_process:
            assert cli_main(*args) == 0, f"rae-bench {args[0]} failed"
        else:
            run_rae(*args)

    def common(self) -> list[str]:
        return ["--settings", self.settings, "--threads", "1", "--quiet"]

    def train_args(self, every: int = 20) -> list[str]:
        return ["train", *self.common(), "--run-config", json.dumps(self.run), "--checkpoint-every", str(every),
                "--out", str(self.run_dir)]

    def reference_args(self) -> list[str]:
        spec = json.dumps({"dataset": self.run["dataset"], "source": self.run["source"], "options": self.run["options"]})
        return ["reference-stats", *self.common(), "--dataset-spec", spec, "--extractor", "raw",
                "--n", str(N_EVAL), "--out", str(self.reference)]

    def fit_args(self, model: Path | None = None, out: Path | None = None) -> list[str]:
        return ["fit-sampler", *self.common(), "--model-path", str(model or self.run_dir / "model.pt"),
                "--sampler", "gmm", "--params", json.dumps(GMM), "--seed", str(self.run["seed"]),
                "--out", str(out or self.run_dir / "gmm" / "sampler.pt")]

    def evaluate_args(self, out_dir: Path | None = None, **paths: Path) -> list[str]:
        return ["evaluate", *self.common(), "--model-path", str(paths.get("model", self.run_dir / "model.pt")),
                "--sampler-path", str(paths.get("sampler", self.run_dir / "gmm" / "sampler.pt")),
                "--extractor", "raw", "--reference", str(paths.get("reference", self.reference)),
                "--n-samples", str(N_EVAL), "--out-dir", str(out_dir or self.run_dir / "gmm")]

    def fit_and_evaluate(self) -> None:
        self.do(*self.fit_args())
        self.do(*self.evaluate_args())

    def all(self) -> "Chain":
        self.do(*self.reference_args())
        self.do(*self.train_args())
        self.fit_and_evaluate()
        return self


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different}"


def count_log_rows(path: Path) -> int:
    try:
        return max(0, path.read_bytes().count(b"\n") - 1)
    except FileNotFoundError:
        return 0


# --------------------------------------------------------------------------- results snapshots


def snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every file below ``root``: relative path -> (sha256 of its bytes, mtime_ns)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and ".snakemake" not in path.parts:
            out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


def assert_untouched(before: dict, after: dict, own: str | None = None) -> None:
    """Nothing that was there changed or went; new files only as scratch in the command's ``own`` folder."""
    changed = [k for k in before if after.get(k) != before[k]]
    assert not changed, f"results changed or removed: {changed}"
    new = [k for k in after if k not in before]
    foreign = [k for k in new if own is None or not k.startswith(own)]
    assert not foreign, f"files appeared outside the command's own folder: {foreign}"
    finals = [k for k in new if k.endswith(FINAL_OUTPUTS) or ".tmp" in k]
    assert not finals, f"a failed command left outputs or temporaries: {finals}"


def one_error_line(stderr: str) -> str:
    """The command's stderr is exactly one line, ``error: ...``; returns it."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), f"expected one 'error:' line, got: {stderr[-3000:]!r}"
    return lines[0]


# --------------------------------------------------------------------------- hostile files


class Payload:
    """Unpickling this runs ``touch <marker>``: what a booby-trapped checkpoint from elsewhere would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious(path: Path, marker: Path, fmt: str = "torch") -> Path:
    """A file that runs code when unpickled: torch's zip format (torch.save) or a bare pickle."""
    path.parent.mkdir(parents=True, exist_ok=True)
    evil = {"format": "rae_bench.checkpoint/1", "state": Payload(marker)}
    if fmt == "torch":
        torch.save(evil, path)
    else:
        path.write_bytes(pickle.dumps(evil, protocol=2))
    return path


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --------------------------------------------------------------------------- file-system faults


def can_mount() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A small tmpfs at ``where`` (root only); unmounted afterwards."""
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        import pytest

        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()})")
    try:
        yield where
    finally:
        for _ in range(20):
            if subprocess.run(["umount", str(where)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


def remount_read_only(where: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True, capture_output=True)


def fill_disk(folder: Path, leave: int = 0) -> None:
    """Write filler files until the file system has at most ``leave`` bytes free (0: until ENOSPC)."""
    def free() -> int:
        st = os.statvfs(folder)
        return st.f_bavail * st.f_frsize

    with open(folder / "filler.bin", "wb") as handle:
        try:
            while free() > leave + 65536:
                handle.write(b"\0" * 65536)
                handle.flush()
            while free() > leave:
                handle.write(b"\0" * 512)
                handle.flush()
        except OSError:
            pass
    if leave == 0:  # and the last partial block
        with contextlib.suppress(OSError), open(folder / "filler2.bin", "wb") as handle:
            while True:
                handle.write(b"\0" * 512)
                handle.flush()


def file_size_limit(limit: int) -> Callable[[], None]:
    """``preexec_fn`` that caps the size of any file the command writes (writes past it fail with EFBIG)."""
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def copy_tree(src: Path, dst: Path) -> None:
    import shutil

    shutil.copytree(src, dst, dirs_exist_ok=True, copy_function=shutil.copy2)


def chain_in_a_fresh_process(chain: Chain) -> None:
    """The whole chain in one new Python process (one import of torch instead of four)."""
    commands = [chain.reference_args(), chain.train_args(), chain.fit_args(), chain.evaluate_args()]
    script = ("import json, sys\nfrom rae_bench.cli import main\n"
              "for argv in json.loads(sys.argv[1]):\n    code = main(argv)\n    if code: sys.exit(code)\n")
    done = subprocess.run([sys.executable, "-c", script, json.dumps(commands)], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
