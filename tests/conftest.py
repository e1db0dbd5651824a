"""Fixtures shared by several test files (plain helper functions: tests/helpers/)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch


# xdist runs one worker per core (-n auto): torch's default intra-op threads (one per core in each worker)
# would oversubscribe the cores, and in-process training then waits on busy threads. One thread per worker.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


# xdist (--dist loadfile) hands whole files to the workers in collection order (--no-loadscope-reorder in
# pyproject.toml), each worker taking the next file as it runs dry: the longest files go first, so that the
# suite does not end with one worker still on the DAG file while the other idles. Seconds per file on 2 cores
# under the suite's load (--durations=0, December 2026); a file not listed keeps its place after these.
LONGEST_FIRST = {
    "workflow/test_workflow.py": 163, "workflow/test_snakemake_faults.py": 66, "training/test_training_faults.py": 49,
    "workflow/test_cli_faults.py": 30, "models/test_models.py": 28, "data/test_custom_data.py": 24,
    "metrics/test_features.py": 22, "metrics/test_score.py": 21, "workflow/test_fuzz.py": 20,
    "metrics/test_bootstrap.py": 20, "metrics/test_fast_paths.py": 16, "models/test_maskaae.py": 14,
}


def pytest_collection_modifyitems(config, items):
    tests = Path(__file__).parent

    def seconds(item) -> float:
        path = Path(str(item.path))
        return LONGEST_FIRST.get(path.relative_to(tests).as_posix(), 0) if path.is_relative_to(tests) else 0

    items.sort(key=lambda item: -seconds(item))  # stable: each file's tests, and the other files, keep their order


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run faster on one thread than on two, and are immune to a busy machine's thread contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture()
def fault_environment(monkeypatch):
    """No user setting reaches the fault tests' commands (they build their own data and weights)."""
    for var in ("RAE_BENCH_SETTINGS", "RAE_BENCH_DATA", "RAE_BENCH_INCEPTION_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture()
def torch_threads():
    """``torch_threads(n)`` sets torch's intra-op threads for one test; the count before comes back after it."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def restore_threads():
    """In-process commands set one torch thread (``--threads 1``); give the next module its threads back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def finished(tmp_path_factory):
    """A results folder holding one finished run: reference stats, model, GMM sampler, metrics
    (helpers/faults.py's Chain). Built once per test process; the fault tests copy it, never change it."""
    from helpers.faults import Chain

    chain = Chain(tmp_path_factory.mktemp("finished")).all()
    assert (chain.run_dir / "gmm" / "metrics.json").is_file()
    return chain


@pytest.fixture()
def mnist_source(tmp_path):
    """A DataSource over a small MNIST written in the original idx format: 64 training and 8 test digits."""
    from fixtures_data import write_mnist

    from rae_bench.data import DataSource

    write_mnist(tmp_path / "mnist_data", n_train=64, n_test=8)
    return DataSource(root=tmp_path / "mnist_data", cache=tmp_path / "mnist_cache", verify=False)


@pytest.fixture()
def tiny_ae_pair(tmp_path):
    """A trained (model, sampler) pair to evaluate: ``make(n_test)`` writes a small MNIST (48 training digits,
    n_test test digits), trains the tiny AE for one epoch (seed 5), fits the prior sampler and stores the raw
    reference statistics of the n_test test items. Returns their paths, the run config, the source, the
    extractor (``raw``) and the test items."""
    from types import SimpleNamespace

    from fixtures_data import write_mnist

    from rae_bench.data import DataSource
    from rae_bench.evaluate import fit_sampler, test_subset
    from rae_bench.metrics import RawExtractor, extract_features, reference_stats
    from rae_bench.train import train

    def make(n_test: int) -> SimpleNamespace:
        write_mnist(tmp_path / "data", n_train=48, n_test=n_test)
        source = DataSource(root=tmp_path / "data", cache=tmp_path / "cache", verify=False)
        run = {"dataset": "mnist", "source": "mnist", "options": {}, "n_train": None, "run": "ae", "model": "ae",
               "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 5,
               "training": {"epochs": 1, "batch_size": 16, "optim": {"lr": 1e-3}, "lr_schedule": {"type": "none"}}}
        model, out = tmp_path / "run" / "model.pt", tmp_path / "run" / "prior"
        train(run, model.parent, source, progress=False)
        fit_sampler(model, "prior", {}, out / "sampler.pt", source)
        raw, reference = RawExtractor(), tmp_path / "ref.npz"
        test = test_subset(run, source, n_test)
        reference_stats(reference, lambda: extract_features(raw, test))
        return SimpleNamespace(model=model, sampler=out / "sampler.pt", out=out, reference=reference, run=run,
                               source=source, raw=raw, test=test)

    return make


@pytest.fixture()
def fresh_memory_cache():
    """The data layer's in-memory cache emptied before and after the test, so no test sees another's arrays.
    Data tests opt in with ``pytestmark = pytest.mark.usefixtures("fresh_memory_cache")``."""
    from rae_bench.data import clear_cache

    clear_cache()
    yield
    clear_cache()


@pytest.fixture(autouse=True, scope="session")
def _backend_cache(tmp_path_factory):
    """Converted Inception models (OpenVINO's IR, ~95 MB) go to a temporary folder, not ~/.cache."""
    import os

    from rae_bench.metrics.inception_backends import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("backend-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


def pytest_configure(config):
    """The user's RAE_BENCH_DATA would redirect the data roots the tests build for themselves (the env var
    outranks a config's data_root, by design), and a leftover RAE_BENCH_SETTINGS stops every command (it no
    longer carries settings); real data comes via RAE_BENCH_TEST_DATA.
    Removed before collection, so module-level copies of os.environ (subprocess envs) do not see them either."""
    import os

    for var in ("RAE_BENCH_DATA", "RAE_BENCH_SETTINGS"):
        os.environ.pop(var, None)
