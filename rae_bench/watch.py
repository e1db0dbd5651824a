"""TensorBoard event files of a training run: every loss and learning rate per step, a sample grid at intervals.

Optional: ``pip install -e '.[tensorboard]'``; switched on by ``tensorboard: true`` in the workflow config
(a setting, like ``checkpoint_every``: not part of a run's identity) or ``rae-bench train --tensorboard``.
The events go to ``{run folder}/tb/``, so ``tensorboard --logdir results/`` shows every run.

Watching never changes what is trained: the grid's codes come from their own generator (the same codes at
every step, so the grid shows the decoder improving), the global RNG is forked around it, and the model
is decoded in eval mode with no gradients (no BatchNorm statistic moves) and put back in its modes after.
"""
from __future__ import annotations

import math
import shutil
import time
from pathlib import Path
from typing import Any, Mapping

import torch

from .errors import ConfigError
from .grid import image_grid

TB_DIR = "tb"
GRID = 64  # samples in the grid (8 x 8), as in the evaluation's samples.png
INSTALL_HINT = "pip install -e '.[tensorboard]'"


def tensorboard_dir(out_dir: Path) -> Path:
    return Path(out_dir) / TB_DIR


def clear(out_dir: Path) -> None:
    """Events of an earlier training of this folder (a run started afresh) would mix with the new ones."""
    shutil.rmtree(tensorboard_dir(out_dir), ignore_errors=True)


def require_tensorboard() -> None:
    """One error line when the optional package is missing (torch.utils.tensorboard needs it)."""
    try:
        import tensorboard  # noqa: F401 - an optional extra (pip install '.[tensorboard]')
    except ImportError:
        raise ConfigError(f"tensorboard logging needs the tensorboard package: {INSTALL_HINT} "
                          f"(or set tensorboard: false)") from None


def after_earlier_files(folder: Path) -> None:
    """Wait (at most a second) until this second is later than the newest event file's.

    TensorBoard reads a folder's event files in name order, and the name starts with the writer's start
    time in whole seconds: the resumed run's file must sort after the killed run's for its purge of the
    killed run's steps past the checkpoint to apply.
    """
    stamps = [int(f.name.split(".")[3]) for f in folder.glob("events.out.tfevents.*")
              if len(f.name.split(".")) > 3 and f.name.split(".")[3].isdigit()]
    if stamps and time.time() < max(stamps) + 1:
        time.sleep(max(stamps) + 1 - time.time())


class TensorBoardLog:
    """One run's event writer. ``resume_step``: the checkpoint's step when resuming, so that the events the
    killed process wrote after it are hidden (TensorBoard's purge) and every step shows once."""

    def __init__(self, out_dir: Path, seed: int, resume_step: int = 0) -> None:
        require_tensorboard()
        from torch.utils.tensorboard import SummaryWriter  # the optional extra; 0.35 s (-X importtime)

        if resume_step:
            after_earlier_files(tensorboard_dir(out_dir))
        self.seed = int(seed)
        self.writer = SummaryWriter(str(tensorboard_dir(out_dir)), flush_secs=10,
                                    purge_step=resume_step + 1 if resume_step else None)

    def scalars(self, step: int, losses: Mapping[str, float], lrs: Mapping[str, float]) -> None:
        for name, value in losses.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        for name, value in lrs.items():
            self.writer.add_scalar(f"lr/{name.removeprefix('lr_')}", value, step)

    @torch.no_grad()
    def samples(self, step: int, model: Any) -> None:
        """A grid of decoded prior samples (image data only: vectors have no picture to show)."""
        if not getattr(model, "is_image", False):
            return
        modes = [(m, m.training) for m in model.modules()]
        devices = [model_device(model)] if model_device(model).type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices):
                model.eval()
                z = model.sample_prior(GRID, torch.Generator().manual_seed(self.seed))
                images = model.decode(z).float().clamp(0, 1).mul(255).round().to(torch.uint8).cpu()  # as PNG holds them
        finally:
            for m, mode in modes:
                m.training = mode
        self.writer.add_image("samples", image_grid(images, nrow=int(math.isqrt(GRID))), step, dataformats="HWC")

    def checkpoint(self, step: int, model: Any) -> None:
        """At a checkpoint: the grid, and every event up to ``step`` flushed (a resume starts after it)."""
        self.samples(step, model)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
