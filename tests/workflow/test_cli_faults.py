"""Bad input through the CLI (issue 8's catalogue, issue 15's boundaries): every case must exit non-zero
with ONE stderr line naming the problem and the fix, and leave every existing result byte for byte as it
was. Also unwritable and full disks, and absurd sizes refused before memory runs out.

The cases run ``rae_bench.cli.main`` in this process, or ``python -m rae_bench`` where a resource limit
needs its own process.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
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

import fixtures_data as fx
from helpers import faults as fh
from helpers.faults import cli_error as _error

from rae_bench.config.files import DEFAULT_CONFIG

pytestmark = pytest.mark.usefixtures("fault_environment", "restore_threads")





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
