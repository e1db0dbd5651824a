"""The training data path holds one uint8 copy of a split and converts only batches (issue 7, memory).

benchmarks/memory_celeba.py measures this at full CelebA size (2.5 GB); these
tests prove the same property on a 12-face fixture.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

import rae_bench.train as train_mod
from rae_bench.data import DataSource, clear_cache, load
from rae_bench.runs import training_data

try:
    from tests import fixtures_data as fx
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import fixtures_data as fx  # type: ignore[no-redef]


@pytest.fixture()
def celeba_src(tmp_path) -> DataSource:
    fx.write_celeba_offline(tmp_path / "root", count=12)
    src = DataSource(tmp_path / "root", tmp_path / "cache")
    load("celeba", "train", src, {"holdout": 2})  # decodes the jpgs and writes the .npy cache
    clear_cache()
    yield src
    clear_cache()


def run_config(n_train: int | None = None) -> dict:
    return {"dataset": "celeba", "source": "celeba", "options": {"holdout": 2}, "n_train": n_train,
            "run": "ae", "model": "ae", "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 0,
            "training": {"epochs": 1, "batch_size": 4, "optim": {"lr": 1e-3}}}


def test_training_tensor_is_the_cached_array_itself(celeba_src, monkeypatch):
    loaded: list[np.ndarray] = []
    real_load = np.load

    def spy(*args, **kwargs):
        arr = real_load(*args, **kwargs)
        loaded.append(arr)
        return arr

    monkeypatch.setattr(np, "load", spy)
    full = load("celeba", "train", celeba_src, {"holdout": 2})
    data = training_data(run_config(n_train=6), celeba_src)
    assert len(loaded) == 1 and loaded[0].dtype == np.uint8
    # no copy between the .npy read and the trainer: same memory, and n_train is a view
    assert np.shares_memory(loaded[0], full.numpy())
    assert data.dtype == torch.uint8 and data.shape == (6, 3, 64, 64)
    assert data.untyped_storage().data_ptr() == full.untyped_storage().data_ptr()
    assert load("celeba", "train", celeba_src, {"holdout": 2}) is full  # memoised, not reloaded


def test_trainer_converts_only_batches(celeba_src, monkeypatch, tmp_path, one_thread):
    seen: list[tuple[torch.dtype, tuple[int, ...]]] = []
    real = train_mod.to_float

    def spy(batch: torch.Tensor) -> torch.Tensor:
        seen.append((batch.dtype, tuple(batch.shape)))
        return real(batch)

    monkeypatch.setattr(train_mod, "to_float", spy)
    result = train_mod.train(run_config(), tmp_path / "run", celeba_src, progress=False)
    # the training steps, then the BatchNorm re-estimation's batches: every conversion is one batch
    assert result["n_train"] == 10 and result["steps"] == 2
    assert len(seen) == result["steps"] + result["bn_recalibration_batches"]
    assert all(dtype == torch.uint8 and shape[0] <= 4 and shape[1:] == (3, 64, 64) for dtype, shape in seen)
