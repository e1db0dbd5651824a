"""Does a table's ranking hold across seeds? The check of issue 22 on finished runs.

For every (dataset, metric) column of a row table, from the metrics.json files of a finished workflow:
  - Spearman rho against the paper, per seed (over the rows with a published value);
  - rho seed to seed, per pair of seeds (over every row: the column's noise ceiling);
  - broken rows: a row whose ratio to its column's median is more than 3x the paper's ratio for that row
    (3x the median where the paper has no value), per seed.

    snakemake tables/table3.tex --cores 2 --configfile config/config.yaml seeds01.yaml   # seeds: [0, 1]
    python benchmarks/seed_stability.py --workdir . --configfile config/config.yaml seeds01.yaml \
        --name seed_stability_default

writes ``benchmarks/results/<name>.json`` and prints the issue's table (MNIST/CelebA, Rec./Gen.).
"""
from __future__ import annotations

import argparse
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from _common import RESULTS, machine
from rae_bench.atomic import write_json
from rae_bench.report.agreement import spearman
from rae_bench.report.specs import table_spec, without_best_twins
from rae_bench.report.tables import collect
from rae_bench.config.validate import load_config

BROKEN = 3.0  # a row's ratio to its column's median may be at most this multiple of the paper's ratio


def broken_rows(part: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of one column (one seed) whose ratio to the column's median exceeds BROKEN x the paper's."""
    ours = part["ours"].astype(float)
    paper = pd.to_numeric(part["paper"], errors="coerce").astype(float)
    ours_median, paper_median = float(np.nanmedian(ours)), float(np.nanmedian(paper))
    out = []
    for row, value, pub in zip(part["row"], ours, paper):
        ratio = value / ours_median
        limit = BROKEN * (pub / paper_median if math.isfinite(pub) else 1.0)
        if math.isfinite(ratio) and ratio > limit:
            out.append({"row": row, "ratio": round(ratio, 2), "limit": round(limit, 2), "value": round(value, 2)})
    return out


def column_report(frames: dict[int, pd.DataFrame]) -> dict[str, Any]:
    """rho vs paper per seed, rho per pair of seeds, broken rows per seed, each row's value per seed."""
    seeds = sorted(frames)
    out: dict[str, Any] = {"rho_vs_paper": {}, "rho_seed_pairs": {}, "broken": {}, "values": {}}
    for s in seeds:
        part = frames[s]
        both = part["ours"].notna() & pd.to_numeric(part["paper"], errors="coerce").notna()
        out["rho_vs_paper"][str(s)] = round(spearman(part.loc[both, "ours"], part.loc[both, "paper"]), 3)
        out["broken"][str(s)] = broken_rows(part)
        for row, value in zip(part["row"], part["ours"]):
            out["values"].setdefault(row, {})[str(s)] = None if pd.isna(value) else round(float(value), 2)
    for a, b in itertools.combinations(seeds, 2):
        pa, pb = frames[a].set_index("row")["ours"], frames[b].set_index("row")["ours"]
        rows = pa.index[pa.notna() & pb.reindex(pa.index).notna()]
        out["rho_seed_pairs"][f"{a}-{b}"] = round(spearman(pa[rows], pb[rows]), 3)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", default=".", help="the workflow's folder (its results/ are read)")
    ap.add_argument("--configfile", nargs="+", default=["config/config.yaml"])
    ap.add_argument("--table", default="table3")
    ap.add_argument("--name", default=None, help="result file name (default: no file, print only)")
    ap.add_argument("--wall-s", type=float, default=None, help="the run's wall time, recorded with the result")
    args = ap.parse_args()
    cfg = load_config([Path(p) for p in args.configfile])
    spec = table_spec(cfg, args.table)
    results = Path(args.workdir) / "results"
    frames = {s: without_best_twins(collect(args.table, {**spec, "seeds": [s]}, results)) for s in spec["seeds"]}
    report: dict[str, Any] = {}
    for (ds, metric), _ in frames[spec["seeds"][0]].groupby(["dataset", "metric"], sort=False):
        report[f"{ds} {metric}"] = column_report({s: f[(f["dataset"] == ds) & (f["metric"] == metric)].reset_index()
                                                   for s, f in frames.items()})
    seeds = spec["seeds"]
    print(f"| column | {' | '.join(f'rho vs paper, seed {s}' for s in seeds)} | seed-to-seed rho | broken rows |")
    print("| --- " * (len(seeds) + 3) + "|")
    for col, r in report.items():
        broken = "; ".join(f"s{s}: " + ", ".join(f"{b['row']} {b['ratio']}x>{b['limit']}x" for b in rows)
                           for s, rows in r["broken"].items() if rows) or "none"
        pairs = ", ".join(f"{v:.2f}" for v in r["rho_seed_pairs"].values())
        vs_paper = " | ".join(f"{r['rho_vs_paper'][str(s)]:.2f}" for s in seeds)
        print(f"| {col} | {vs_paper} | {pairs} | {broken} |")
    if args.name:
        write_json(RESULTS / f"{args.name}.json", {"machine": machine(), "configfiles": args.configfile,
                                                   "table": args.table, "seeds": seeds, "wall_s": args.wall_s,
                                                   "columns": report})


if __name__ == "__main__":
    main()
