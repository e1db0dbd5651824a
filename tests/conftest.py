"""Shared fixtures."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny nets run faster on one thread than on two, and are immune to a busy machine's thread contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
