"""Which training steps keep a copy of the weights, for a best-checkpoint selection.

The MaskAAE and FlexAE authors report the lowest FID over checkpoints, not the final one:

* MaskAAE (arnabkmondal/MaskAAE @e508d96, ``MaskAAE_MNIST.py``): weights are saved every
  ``save_interval`` = 5,000 steps (L570, L618-622) of the 500,000, and FID is computed for each saved
  step (L629-630); the paper's number is the minimum.
* FlexAE (dair-iitd/FlexAE @fcc23aa, ``FlexAESR.py``): checkpoints every 1,000 steps (L594, L531-532)
  and FIDs evaluated from step 80,000 to 130,000 (L649, L676), Rec. and Gen. each at its own minimum
  (L661, L688): 51 checkpoints.

``training.snapshots`` asks the trainer for such copies: ``{every: N}`` (steps N, 2N, ... up to the
last step) or ``{from: a, to: b, count: k}`` (k steps evenly spaced from a to b, rounded, within the
run). The copies are model files like ``model.pt`` (same record, BatchNorm statistics re-estimated for
those weights) under ``snapshots/step{N:09d}.pt``; ``rae_bench.selection`` evaluates them. Selecting
on the evaluation set favours the rows that do it, which is why the tables mark such rows
(``selection: best_checkpoint``) and keep ``final`` the default.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

SNAPSHOT_DIR = "snapshots"


def snapshot_steps(spec: Mapping[str, Any] | None, total: int) -> list[int]:
    """The sorted training steps (1..total) whose weights ``spec`` keeps; [] for no spec."""
    if not spec:
        return []
    if "every" in spec:
        every = int(spec["every"])
        return list(range(every, total + 1, every))
    lo, hi, count = int(spec["from"]), int(spec["to"]), int(spec["count"])
    if lo > hi:
        raise ConfigError(f"training.snapshots has from {lo} > to {hi}; give from <= to")
    hi = min(hi, total)
    if lo > hi:
        return []
    if count == 1:
        return [hi]
    return sorted({round(lo + i * (hi - lo) / (count - 1)) for i in range(count)})


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / SNAPSHOT_DIR / f"step{int(step):09d}.pt"


def snapshot_files(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the snapshots in a run folder, by step."""
    folder = Path(run_dir) / SNAPSHOT_DIR
    out = []
    for p in folder.glob("step*.pt") if folder.is_dir() else []:
        digits = p.stem[4:]
        if digits.isdigit():
            out.append((int(digits), p))
    return sorted(out)
