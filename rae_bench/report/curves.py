"""Loss curves of one training run, drawn from its CSV training log (``train_log.csv``) as a PNG.

One small panel per logged loss (their scales differ: a reconstruction error beside an MMD or a critic's
loss), the raw per-step values faint and a running mean over them, and the learning rates in a last panel.
The train job draws it (``losses.png`` beside the log, a figure of the Snakemake report); for an existing run
``rae-bench curves --log RUN/train_log.csv --out RUN/losses.png``, or for all of them
``rae-bench curves --results results``.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import CheckpointError

NOT_PLOTTED = ("step", "epoch")
COLUMNS = 3


def missing_curves(results: str | os.PathLike[str]) -> list[tuple[Path, Path, str]]:
    """(log, losses.png, title) of every finished run folder under ``results`` whose losses.png is missing."""
    found = []
    for log in sorted(Path(results).glob("*/*/seed*/train_log.csv")):
        run = log.parent
        if not (run / "losses.png").exists():
            found.append((log, run / "losses.png", f"{run.parents[1].name} / {run.parent.name} / {run.name.replace('seed', 'seed ')}"))
    return found


def read_log(path: Path) -> dict[str, np.ndarray]:
    """{column: float values per row} of a training log; a missing cell is NaN."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = list(reader.fieldnames or [])
        if "step" not in fields:
            raise ValueError("no step column")
        return {k: np.array([float(r[k]) if r.get(k) not in (None, "") else math.nan for r in rows]) for k in fields}
    except FileNotFoundError:
        raise CheckpointError(f"training log {path} not found; train the run first (rae-bench train)") from None
    except (ValueError, TypeError, UnicodeDecodeError, csv.Error) as exc:
        raise CheckpointError(f"training log {path} is unreadable ({type(exc).__name__}); train the run "
                              f"again to rewrite it") from None


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at each step (fewer at the start); NaNs are skipped."""
    finite = np.isfinite(values)
    sums = np.cumsum(np.where(finite, values, 0.0))
    counts = np.cumsum(finite)
    lagged_sums = np.concatenate([np.zeros(window), sums[:-window]]) if len(values) > window else np.zeros_like(sums)
    lagged_counts = np.concatenate([np.zeros(window), counts[:-window]]) if len(values) > window else np.zeros_like(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums - lagged_sums) / (counts - lagged_counts)


def plot_losses(log_path: str | os.PathLike[str], out_path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Draw ``log_path``'s losses (and learning rates) into ``out_path`` (PNG, written atomically)."""
    from matplotlib.figure import Figure  # here: 0.44 s (-X importtime); no pyplot: no GUI backend

    log = read_log(Path(log_path))
    steps = log["step"]
    losses = [k for k in log if k not in NOT_PLOTTED and not k.startswith("lr_")]
    lrs = [k for k in log if k.startswith("lr_")]
    panels = len(losses) + (1 if lrs else 0)
    rows = max(1, math.ceil(panels / COLUMNS))
    cols = min(COLUMNS, max(panels, 1))
    fig = Figure(figsize=(3.6 * cols, 2.6 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    window = max(1, len(steps) // 50)
    for ax, name in zip(axes.flat, losses):
        values = log[name]
        ax.plot(steps, values, lw=0.6, alpha=0.35, color="C0")
        ax.plot(steps, running_mean(values, window), lw=1.4, color="C0")
        finite = values[np.isfinite(values)]
        if len(finite) and finite.min() > 0 and finite.max() / finite.min() > 30:
            ax.set_yscale("log")  # losses spanning decades (a KL term early on) stay readable
        ax.set_title(name, fontsize=10)
    if lrs:
        ax = axes.flat[len(losses)]
        for i, name in enumerate(lrs):
            ax.plot(steps, log[name], lw=1.2, color=f"C{i + 1}", label=name.removeprefix("lr_"))
        ax.set_title("learning rate", fontsize=10)
        ax.legend(fontsize=8)
    for ax in axes.flat[:panels]:
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in axes.flat[panels:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    out = Path(out_path)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    return out
