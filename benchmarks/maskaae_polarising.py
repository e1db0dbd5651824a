"""MaskAAE's active dimensions m_A on the synthetic data of Figure 5, under a chosen polarising schedule.

Issue 22 asks that m_A land within n +- 1 for every m >= n. This trains the default config's synthetic
MaskAAE runs (synth_n8 / synth_n16 and the sweep's ``maskaae_m{m}``, resolved from config/config.yaml)
with the polarising schedule given here, and prints one JSON line per run: m_A, the
final polarising weight and the largest mask values. Nothing is written outside ``--out``.

    python benchmarks/maskaae_polarising.py --n 8 --m 8 16 32 64 --epochs 10 --poly-every 40

Results (AMD EPYC, 2 cores, seed 0, synth_n8; 2026-12-07), m_A at m = 8 / 16 / 32 / 64:
- default (10 epochs = 1,000 steps, the authors' ``poly_every`` 300 / 300 / 14,400 / 28,800): the weight
  never leaves 2/m, the mask is not polarised; 6 / 10 / 14 / 18 (the default run's Figure 5).
- ``--epochs 10 --poly-every 40`` (cap 2048 by step ~650): polarised, mostly open: 7 / 12 / 24 / 39.
- ``--epochs 20 --poly-every 120`` (cap by step ~1,900): 6 / 11 / 19 / 21.
- the same with ``--mask-lr-ratio 10``: 7 / 10 / 12 / 10; on synth_n16 (``--n 16``), 12 at m = 16 and 13 at
  m = 64. Closer, but it closes true dimensions on synth_n16, so not yet within n +- 1 everywhere.
- ``--epochs 20 --poly-every 120 --mask-lr-ratio 5``: 7 / 11 / 12 / 14 on synth_n8; 12 / 19 / 18 at m = 16 / 32 / 64 on synth_n16 (``--mask-lr-ratio 3`` is the config's value: the run above, 12 / 20 / 22 on synth_n16). Even m = n closes true dimensions, so the schedule alone does not reach n +- 1.
- ``--poly-every 40 --optimizer rmsprop --mask-lr-ratio 1`` (the authors' optimizer and mask lr, cap by step
  ~650): m = 8 keeps all 8 dimensions open (Adam closes the two with the smallest initial mask, 0.66 and 0.59, by
  step 400) and ends at rec / d 0.079 against Adam's 0.159; but m = 16 keeps 12 and m = 32 keeps 25 open,
  and on synth_n16 m = 16 closes 4 true dimensions (12). RMSprop mends m = n on synth_n8 only, and closes
  no extra dimensions (seed 0).
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import ROOT
from rae_bench.config.resolve import resolve_run, sweep_run_name
from rae_bench.config.validate import load_config
from rae_bench.data import DataSource
from rae_bench.runs import load_model
from rae_bench.train import train


def run_config(n: int, m: int, epochs: int, params: dict, seed: int, arch: str | None = None) -> dict:
    """The default config's synthetic MaskAAE run (config/config.yaml: synth_n{n}, sweep run maskaae_m{m}),
    with ``epochs`` and the given MaskAAE params in place of the config's."""
    cfg = load_config([ROOT / "config" / "config.yaml"], validate=False)  # expands the sweeps into runs
    run = resolve_run(cfg, f"synth_n{n}", sweep_run_name("maskaae", m), seed)
    run["training"]["epochs"] = epochs
    run["params"] = {**run["params"], **params}
    if arch is not None:
        run["arch"] = arch
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, choices=(8, 16), default=8, help="true latent dimension (synth_n8 / synth_n16)")
    ap.add_argument("--m", type=int, nargs="+", default=[8, 16, 32, 64], help="latent sizes to train")
    ap.add_argument("--epochs", type=int, default=10, help="epochs of 100 steps (default config: 10)")
    ap.add_argument("--poly-every", type=int, default=None, help="steps per doubling (default: the authors')")
    ap.add_argument("--mask-lr-ratio", type=float, default=None, help="default: the config's")
    ap.add_argument("--optimizer", choices=("adam", "rmsprop"), default=None, help="default: the config's (adam)")
    ap.add_argument("--var-weight", type=float, default=None, help="variance-penalty weight (default: the config's)")
    ap.add_argument("--arch", choices=("paper", "small", "tiny"), default=None, help="default: the config's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="folder for the runs (default: a temporary one)")
    args = ap.parse_args()
    given = {"mask_lr_ratio": args.mask_lr_ratio, "poly_every": args.poly_every, "optimizer": args.optimizer,
             "var_weight": args.var_weight}
    params = {key: value for key, value in given.items() if value is not None}
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        source = DataSource(root / "data", root / "cache")
        for m in args.m:
            out, start = root / f"n{args.n}_m{m}_s{args.seed}", time.time()
            train(run_config(args.n, m, args.epochs, params, args.seed, args.arch), out, source, progress=False, threads=1)
            model, _ = load_model(out / "model.pt")
            mask = sorted(model.mask.detach().tolist(), reverse=True)
            print(json.dumps({"n": args.n, "m": m, "seed": args.seed, "active_dims": model.active_dims(),
                              "poly_weight": model.poly_weight(),
                              "largest_mask": [round(v, 2) for v in mask[:args.n + 4]],
                              "seconds": round(time.time() - start, 1)}), flush=True)


if __name__ == "__main__":
    main()
