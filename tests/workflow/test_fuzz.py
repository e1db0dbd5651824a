"""Fuzz the config and the CLI (issue 15): every outcome is success, or exit 2 with one ``error:`` line.

A seeded generator (``random.Random``; the same cases every run) mutates

* the default config (config/config.yaml as a dict): values of another type, out of range, huge, unicode;
  unknown, deleted and renamed keys; read by ``rae-bench table`` (which validates the whole config, builds
  every run's model on the meta device and the table's spec);
* the argument vectors of ``rae-bench`` subcommands (train, reference-stats, fit-sampler, evaluate, table,
  figure): values replaced, flags dropped, repeated or unknown, the JSON arguments mutated like the config,
  inputs swapped for files of another kind;

in this process (``rae_bench.cli.main``). A finished results folder is read by the cases and must keep every
file's bytes and mtime; outputs go to scratch folders. Bounded: about a minute on 2 cores; the counts print.
"""
from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import random
import time
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from helpers import faults as fh

from rae_bench.config.files import DEFAULT_CONFIG

SEED = 15
N_CONFIG = 250
N_ARGV = 350

WEIRD: list[Any] = [
    None, True, False, 0, -1, 1, 2, 10**12, 2**63, -(10**18), 10**100, 0.5, -0.5, 1e-320, 1e308, -1e308,
    math.inf, -math.inf, math.nan, "", " ", "abc", "ünïcødé ✓", "名前", "\u202e", "x" * 5000, "1e3", "-1",
    [], [1, 2], ["a"], {}, {"a": 1}, {"ü": None},
]
KEYS = ["fooo", "ünï", "名", " ", "a b", "../x", "model", "params", "type"]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for var in ("RAE_BENCH_SETTINGS", "RAE_BENCH_DATA", "RAE_BENCH_INCEPTION_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> fh.Chain:
    before = torch.get_num_threads()
    chain = fh.Chain(tmp_path_factory.mktemp("fuzz_finished")).all()
    torch.set_num_threads(before)
    return chain


# --------------------------------------------------------------------------- mutations


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (tuple of keys and indices) into a nested dict/list, the root included."""
    out = [prefix]
    if isinstance(tree, dict):
        for key, value in tree.items():
            out += _paths(value, prefix + (key,))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out += _paths(value, prefix + (i,))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for key in path:
        tree = tree[key]
    return tree


def mutate(tree: Any, rng: random.Random) -> tuple[Any, str]:
    """One structural mutation of a JSON-like tree; returns the new tree and what was done."""
    tree = copy.deepcopy(tree)
    path = rng.choice(_paths(tree))
    op = rng.choice(["replace", "replace", "replace", "delete", "unknown_key", "rename", "scale"])
    if not path:
        if op == "unknown_key" and isinstance(tree, dict):
            tree[rng.choice(KEYS)] = rng.choice(WEIRD)
            return tree, "unknown top-level key"
        return rng.choice(WEIRD), "root replaced"
    parent, key = _get(tree, path[:-1]), path[-1]
    value = parent[key]
    if op == "delete":
        del parent[key]
    elif op == "unknown_key" and isinstance(value, dict):
        value[rng.choice(KEYS)] = rng.choice(WEIRD)
    elif op == "rename" and isinstance(parent, dict):
        parent[rng.choice(KEYS) + str(key)] = parent.pop(key)
    elif op == "scale" and isinstance(value, (int, float)) and not isinstance(value, bool):
        parent[key] = rng.choice([-1, 0, 10**9, 1e-12, -1e9]) * (value or 1)
    else:
        parent[key] = copy.deepcopy(rng.choice(WEIRD))
    return tree, f"{op} at {'.'.join(map(str, path))}"


# --------------------------------------------------------------------------- running a case


def run_case(argv: list[str]) -> tuple[int | None, str, str]:
    """``rae-bench argv`` in this process: (exit code or None if it raised, stderr, the exception's text)."""
    err, out = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            code = fh.cli_main(*argv)
    except SystemExit as exc:  # what the console script would do
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException as exc:  # noqa: BLE001 - a traceback: the bug the fuzzer hunts
        import traceback

        return None, err.getvalue(), "".join(traceback.format_exception(exc))[-1500:]
    return code, err.getvalue(), ""


def verdict(code: int | None, stderr: str, tb: str) -> str | None:
    """None when the outcome keeps the contract, else what broke it."""
    if code is None:
        return f"raised: {tb}"
    if code == 0:
        return None
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code != 2:
        return f"exit {code}: {stderr[-500:]}"
    if "Traceback" in stderr or len(lines) != 1 or not lines[0].startswith("error: "):
        return f"not one error line: {stderr[-800:]!r}"
    return None


class Cases:
    """Counts outcomes and keeps the failures (with a reproducer) for one report."""

    def __init__(self) -> None:
        self.outcomes: dict[str, int] = {"success": 0, "error": 0}
        self.failures: list[str] = []
        self.messages: dict[str, str] = {}

    def record(self, label: str, argv: list[str], code: int | None, stderr: str, tb: str) -> None:
        problem = verdict(code, stderr, tb)
        if problem:
            self.failures.append(f"{label}\n  argv: {json.dumps(argv)[:600]}\n  {problem}")
        elif code == 0:
            self.outcomes["success"] += 1
        else:
            self.outcomes["error"] += 1
            self.messages.setdefault(stderr.split(":")[1][:40] if ":" in stderr else stderr, stderr.strip()[:160])

    def check(self, name: str, started: float) -> None:
        total = sum(self.outcomes.values()) + len(self.failures)
        print(f"\n{name}: {total} cases in {time.perf_counter() - started:.1f} s: {self.outcomes['success']} succeeded, "
              f"{self.outcomes['error']} refused with one line, {len(self.failures)} broke the contract")
        for message in list(self.messages.values())[:12]:
            print("   ", message)
        assert not self.failures, "\n\n".join(self.failures[:10])


def _table_argv(config: Path, finished: fh.Chain, scratch: Path) -> list[str]:
    return ["table", "--config", str(config), "--name", "table3", "--results", str(finished.results),
            "--csv", str(scratch / "t.csv"), "--tex", str(scratch / "t.tex")]


def test_fuzz_the_default_config(finished, tmp_path):
    rng = random.Random(SEED)
    default = yaml.safe_load(DEFAULT_CONFIG.read_text())
    before = fh.snapshot(finished.results)
    cases, started = Cases(), time.perf_counter()
    for i in range(N_CONFIG):
        cfg, done = default, []
        for _ in range(rng.choice([1, 1, 2, 3])):
            cfg, what = mutate(cfg, rng)
            done.append(what)
        scratch = tmp_path / f"c{i}"
        scratch.mkdir()
        path = scratch / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
        argv = _table_argv(path, finished, scratch)
        cases.record(f"config case {i}: {'; '.join(done)}", argv, *run_case(argv))
    assert fh.snapshot(finished.results) == before, "a finished result changed"
    cases.check("config fuzz", started)


# --------------------------------------------------------------------------- argument vectors

JSON_FLAGS = ("--run-config", "--params", "--dataset-spec", "--settings", "--spec")
OUTPUT_FLAGS = ("--out", "--out-dir", "--csv", "--tex", "--agreement")


def _base_argvs(f: fh.Chain, scratch: Path) -> dict[str, list[str]]:
    run = {**fh.RUN, "training": {**fh.RUN["training"], "epochs": 1}}
    spec = json.dumps({"datasets": ["synth"], "rows": [{"label": "VAE + GMM", "model": "vae", "sampler": "gmm"}],
                       "kind": "rows", "seeds": [3], "extractors": {"synth": "raw"}, "n_samples": {"synth": 50},
                       "paper_columns": {"synth": "synth"}})
    return {
        "train": ["train", *f.common(), "--run-config", json.dumps(run), "--checkpoint-every", "3",
                  "--out", str(scratch / "run")],
        "reference": _swap(f.reference_args(), "--out", str(scratch / "ref.npz")),
        "fit": f.fit_args(out=scratch / "s.pt"),
        "evaluate": f.evaluate_args(scratch),
        "table": ["table", "--name", "t", "--spec", spec, "--results", str(f.results), "--csv", str(scratch / "t.csv"),
                  "--tex", str(scratch / "t.tex")],
        "figure": ["figure", "--name", "figure2", "--results", str(f.results), "--out", str(scratch / "fig")],
    }


def _swap(argv: list[str], flag: str, value: str) -> list[str]:
    out = list(argv)
    out[out.index(flag) + 1] = value
    return out


def _input_pool(f: fh.Chain) -> list[str]:
    """Existing files of every kind (read only), a folder, and paths that do not exist."""
    return [str(f.run_dir / "model.pt"), str(f.run_dir / "gmm" / "sampler.pt"), str(f.reference),
            str(f.run_dir / "gmm" / "metrics.json"), str(f.run_dir / "config.json"), str(f.run_dir),
            str(DEFAULT_CONFIG), "/nonexistent/x.pt", "", "-", "ü.pt"]


def mutate_argv(argv: list[str], rng: random.Random, pool: list[str], scratch: Path) -> tuple[list[str], str]:
    argv = list(argv)
    flags = [i for i, a in enumerate(argv) if a.startswith("--")]
    op = rng.choice(["value", "value", "value", "json", "json", "drop", "repeat", "unknown", "input", "truncate",
                     "output"])
    i = rng.choice(flags)
    has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
    if op == "json":
        js = [j for j in flags if argv[j] in JSON_FLAGS]
        if js:
            j = rng.choice(js)
            try:
                tree = json.loads(argv[j + 1])
            except json.JSONDecodeError:
                tree = {}
            tree, what = mutate(tree, rng)
            argv[j + 1] = json.dumps(tree, allow_nan=True)
            return argv, f"json {argv[j]}: {what}"
        op = "value"
    if op == "value" and has_value and argv[i] not in OUTPUT_FLAGS:
        argv[i + 1] = str(rng.choice(WEIRD + ["-5", "0", "3", "99999999999999999999", "1.5", "nan"]))
        return argv, f"value of {argv[i]}"
    if op == "input" and has_value and argv[i] not in OUTPUT_FLAGS:
        argv[i + 1] = rng.choice(pool)
        return argv, f"input {argv[i]}"
    if op == "output" and has_value and argv[i] in OUTPUT_FLAGS:
        blocker = scratch / "a_file"
        blocker.write_text("x")
        argv[i + 1] = str(rng.choice([blocker / "x", scratch / "ü 名" / "x", blocker, scratch]))
        return argv, f"output {argv[i]}"
    if op == "drop":
        del argv[i:i + (2 if has_value else 1)]
        return argv, f"dropped {argv[i] if i < len(argv) else 'last'}"
    if op == "repeat" and has_value and argv[i] not in OUTPUT_FLAGS:
        argv += [argv[i], str(rng.choice(WEIRD))]
        return argv, f"repeated {argv[i]}"
    if op == "truncate":
        return argv[: rng.randrange(1, len(argv))], "truncated"
    argv.insert(rng.randrange(1, len(argv) + 1), rng.choice(["--fooo", "--n", "-x", "ü", "--", "--help"]))
    return argv, "unknown or stray argument"


def test_fuzz_the_cli_arguments(finished, tmp_path):
    rng = random.Random(SEED + 1)
    pool = _input_pool(finished)
    before = fh.snapshot(finished.results)
    threads = torch.get_num_threads()
    cases, started = Cases(), time.perf_counter()
    for i in range(N_ARGV):
        scratch = tmp_path / f"a{i}"
        scratch.mkdir()
        name, argv = rng.choice(sorted(_base_argvs(finished, scratch).items()))
        done = []
        for _ in range(rng.choice([1, 1, 2])):
            argv, what = mutate_argv(argv, rng, pool, scratch)
            done.append(what)
        cases.record(f"argv case {i} ({name}): {'; '.join(done)}", argv, *run_case(argv))
    torch.set_num_threads(threads)
    assert fh.snapshot(finished.results) == before, "a finished result changed"
    cases.check("argument fuzz", started)
