"""Train a run whole and with an interruption plus resume; return both final states."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from rae_bench.data import DataSource
from rae_bench.train import train


def whole_and_resumed(run: dict[str, Any], tmp_path: Path, every: int = 4, stop: int = 10) -> tuple[dict, dict]:
    src = DataSource(root=tmp_path / "data", cache=tmp_path / "cache")
    train(run, tmp_path / "full", src, progress=False, checkpoint_every=every)
    with pytest.raises(KeyboardInterrupt):
        train(run, tmp_path / "cut", src, progress=False, checkpoint_every=every, interrupt_at=stop)
    train(run, tmp_path / "cut", src, progress=False, checkpoint_every=every)
    return tuple(torch.load(tmp_path / name / "model.pt", weights_only=True)["state"] for name in ("full", "cut"))
