"""Best-checkpoint selection: evaluate a run's snapshots and report the authors' minimum.

``selection: best_checkpoint`` reproduces the MaskAAE and FlexAE protocol (rae_bench/snapshots.py has
the citations): every snapshot of the run (``training.snapshots``) is evaluated like ``model.pt``
(sampler fitted on that snapshot's codes, the same test items, samples and features), and the reported
Rec. and Gen. FIDs are each the minimum over the snapshots, chosen separately (FlexAE's L661 and L688).
The evaluation set is also the selection set, so the numbers are optimistic; the tables mark such rows.

Files in ``out_dir`` (``.../{sampler}/best_checkpoint/``):
  step{N:09d}/   one ``evaluate`` per snapshot (metrics.json, sampler.pt, samples.png) and key.json,
                 which lets a killed job resume without redoing the snapshots it finished
  snapshots.csv  step, fid_rec, fid_gen, mse_rec per snapshot and which were selected
  metrics.json   the Gen.-selected snapshot's metrics, with fid_rec and mse_rec from the Rec.-selected one,
                 plus selection, selected_step_gen, selected_step_rec and candidates
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from .atomic import write_json, write_text
from .errors import CheckpointError
from .evaluate import evaluate
from .snapshots import snapshot_files

REC_KEYS = ("fid_rec", "mse_rec", "fid_rec_boot")  # what the Rec. choice carries over from its snapshot


def _hash_of(path: Path) -> str | None:
    """A model file's config hash; mmap: the weights stay on disk (evaluate reads them once)."""
    blob = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    return blob.get("config_hash") if isinstance(blob, dict) else None


def _key(snapshot: Path, fit: Any, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What one snapshot's metrics depend on, beyond the code: its file and the evaluation settings."""
    stat = snapshot.stat()
    return {"snapshot": snapshot.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
            "fit": json.loads(json.dumps(fit)), **{k: json.loads(json.dumps(v, default=str)) for k, v in settings.items()}}


def evaluate_snapshots(model_path: str | Path, out_dir: str | Path, *, fit: tuple[str, dict[str, Any] | None, int],
                       **settings: Any) -> dict[str, Any]:
    """Evaluate every snapshot beside ``model_path`` into ``out_dir`` and write the selected metrics.json.

    ``settings`` are :func:`rae_bench.evaluate.evaluate`'s keyword arguments (features, reference,
    n_samples, source, ...); ``fit`` is required, since each snapshot needs its own sampler.
    """
    model_path, out = Path(model_path), Path(out_dir)
    snaps = snapshot_files(model_path.parent)
    if not snaps:
        raise CheckpointError(f"no snapshots beside {model_path} (expected {model_path.parent}/snapshots/step*.pt); "
                              f"set training.snapshots for this run and train it again, or use selection: final")
    final_hash = _hash_of(model_path) if model_path.exists() else None
    # the keys that the extractor_* arguments of evaluate() once gave: finished snapshots stay finished
    identity = {**{k: v for k, v in settings.items() if k not in ("features", "source", "device")},
                **settings["features"].identity()}
    rows = []
    for step, snap in snaps:
        if final_hash is not None and _hash_of(snap) != final_hash:
            raise CheckpointError(f"snapshot {snap} belongs to another config than {model_path}; delete "
                                  f"{snap.parent} and train the run again")
        step_dir = out / snap.stem
        key = _key(snap, fit, identity)
        key_path, metrics_path = step_dir / "key.json", step_dir / "metrics.json"
        done = (key_path.exists() and metrics_path.exists()
                and json.loads(key_path.read_text()) == key)
        if done:
            metrics = json.loads(metrics_path.read_text())
        else:
            metrics_path.unlink(missing_ok=True)
            metrics = evaluate(snap, step_dir / "sampler.pt", step_dir, fit=fit, **settings)
            write_json(key_path, key)
        rows.append((step, metrics))
    return _select(rows, out)


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


def _select(rows: list[tuple[int, dict[str, Any]]], out: Path) -> dict[str, Any]:
    def best(key: str) -> tuple[int, dict[str, Any]]:
        ok = [r for r in rows if _finite(r[1].get(key))]
        if not ok:
            raise CheckpointError(f"no snapshot in {out} has a finite {key}; the run diverged, use selection: final")
        return min(ok, key=lambda r: (r[1][key], r[0]))  # ties: the earlier step

    step_gen, gen = best("fid_gen")
    step_rec, rec = best("fid_rec")
    metrics = {**gen, **{k: rec[k] for k in REC_KEYS if k in rec},
               "selection": "best_checkpoint", "selected_step_gen": step_gen, "selected_step_rec": step_rec,
               "candidates": len(rows)}
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "fid_rec", "fid_gen", "mse_rec", "selected_rec", "selected_gen"])
    for step, m in rows:
        w.writerow([step, m.get("fid_rec"), m.get("fid_gen"), m.get("mse_rec"), step == step_rec, step == step_gen])
    write_text(out / "snapshots.csv", buf.getvalue())
    write_json(out / "metrics.json", metrics)
    return metrics
