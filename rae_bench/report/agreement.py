"""How closely our numbers reproduce the paper's ordering, column by column.

A column is one (dataset, metric) of a row table (the frame of
:func:`~rae_bench.report.tables.collect`), or one (dataset, model, metric) of
the sweep table, whose rows are the capacities m. Over the n rows holding both
our value and the published one it gives the Spearman rank correlation of ours
against the paper's (nan below three rows or for a constant side) and the rows
most out of place: our rank among the n minus the paper's rank (1 = best, that
is the lowest value, the highest in higher-is-better tables; in the sweep
table the lowest), the largest shifts first. The frame, one row per column
with published values, is written beside the table as ``{table}.agreement.csv``
and summed up in one sentence of the table's caption.

Each rho carries a 95 % percentile bootstrap interval (BOOT_RESAMPLES resamples, seeded by BOOT_SEED, so
the sidecar is reproducible), and ``interval_resamples`` names the noise it covers:

- ``seeds``: every row has two or more seeds; each resample draws each row's seeds with replacement and
  ranks their means (training and evaluation noise, as far as that many seeds show it);
- ``test samples``: a row has one seed, but every row's runs hold FID bootstrap replicates (evaluate's
  ``features.bootstrap``); each resample takes one replicate per run (the evaluation's sampling noise
  only: test items and samples, not training);
- ``rows``: neither; the rows (models) are resampled, which says how much rho hangs on which models are
  listed, not on the noise of any one value (the fallback, named so).

With two or more seeds ``seed_rho`` is the seed-to-seed rho, the mean over pairs of seeds of the Spearman
rho between their values, over the same rows as rho (``seed_rho_all_rows`` over every row of the column,
published or not): a column whose rows reorder from seed to seed cannot agree with anyone better than that,
so it is the column's noise ceiling (a conservative one: rho compares the seeds' mean, less noisy than one
seed). ``vs_ceiling`` says whether rho against the paper is distinguishable from it: ``below`` (the ceiling
lies above rho's interval: the gap to the paper is more than noise), ``above``, or ``within``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import write_text
from .latex import DATASET_HEAD, METRIC_HEAD, latex_escape
from .specs import HIGHER_IS_BETTER, without_best_twins

STATS = ["n_rows", "spearman", "rho_low", "rho_high", "interval_resamples", "n_seeds", "seed_rho",
         "seed_rho_all_rows", "vs_ceiling", "most_out_of_place"]
COLUMNS = ["table", "dataset", "paper_column", "metric", *STATS]
SWEEP_COLUMNS = ["table", "dataset", "paper_column", "model", "metric", *STATS]
MIN_ROWS = 3  # fewer rows give no rank correlation
TOP = 3  # rows listed as most out of place (the caption lists one per column)
BOOT_RESAMPLES = 1000
BOOT_SEED = 1000
LEVEL = 0.95


def spearman(ours: pd.Series, paper: pd.Series) -> float:
    """Spearman's rho (Pearson's r of the average ranks); nan below MIN_ROWS pairs or for a constant side."""
    if len(ours) < MIN_ROWS or ours.nunique() < 2 or paper.nunique() < 2:
        return math.nan
    return float(ours.rank().corr(paper.rank()))


def displacement(ours: pd.Series, paper: pd.Series, higher_is_better: bool) -> pd.Series:
    """Our rank minus the paper's per row (1 = best; tied values share the better rank)."""
    ascending = not higher_is_better
    return (ours.rank(method="min", ascending=ascending) - paper.rank(method="min", ascending=ascending)).astype(int)


def out_of_place(names: pd.Series, shift: pd.Series, top: int = TOP) -> list[tuple[str, int]]:
    """The up-to-``top`` (name, shift) with the largest |shift|, ties in row order; rows in place are left out."""
    size = shift.abs().sort_values(ascending=False, kind="stable")
    return [(str(names.loc[i]), int(shift.loc[i])) for i in size[size > 0].index[:top]]


def format_out_of_place(items: Sequence[tuple[str, int]]) -> str:
    """``FlexAE (+7), InjFlow (-5)``."""
    return ", ".join(f"{name} ({shift:+d})" for name, shift in items)


def _rank_rho(ours: np.ndarray, paper: np.ndarray) -> np.ndarray:
    """Spearman rho of every column of ``ours`` (rows x resamples) against ``paper`` (the same shape or one
    vector); nan for a constant side."""
    from scipy.stats import rankdata  # here: 0.95 s (-X importtime), only where a table has paper values

    a = rankdata(ours, axis=0)
    b = rankdata(paper, axis=0) if paper.ndim == 2 else rankdata(paper)[:, None]
    a, b = a - a.mean(0), b - b.mean(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(0) / np.sqrt((a * a).sum(0) * (b * b).sum(0))


def _has(cells: pd.Series) -> pd.Series:
    return cells.map(lambda v: isinstance(v, tuple) and len(v) > 0)


def resampled_ours(part: pd.DataFrame, resamples: int = BOOT_RESAMPLES,
                   seed: int = BOOT_SEED) -> tuple[np.ndarray | None, str]:
    """Rows x resamples of our values redrawn from their noise, and which noise (``seeds``, ``test samples``),
    or (None, "") where neither is known for every row: see the module docstring."""
    rng = np.random.default_rng(seed)
    n = len(part)
    if "seed_values" in part and _has(part["seed_values"]).all() and (part["seed_values"].map(len) >= 2).all():
        out = np.empty((n, resamples))
        for i, values in enumerate(part["seed_values"]):
            v = np.asarray(values, dtype=float)
            out[i] = v[rng.integers(0, len(v), (resamples, len(v)))].mean(1)
        return out, "seeds"
    if "boot" in part and _has(part["boot"]).all():
        # one replicate per seed's run, averaged as the cell averages its seeds; the same replicate index for
        # every row: runs of one seed resampled the same test items at each index (metrics/bootstrap.py), so
        # the rows keep sharing their test set as they do in the table
        out, picks = np.zeros((n, resamples)), {}
        for i, per_seed in enumerate(part["boot"]):
            for reps in per_seed:
                r = np.asarray(reps, dtype=float)
                if len(r) not in picks:
                    picks[len(r)] = rng.integers(0, len(r), resamples)
                out[i] += r[picks[len(r)]] / len(per_seed)
        return out, "test samples"
    return None, ""


def rho_interval(part: pd.DataFrame, resamples: int = BOOT_RESAMPLES, seed: int = BOOT_SEED,
                 level: float = LEVEL) -> tuple[float, float, str]:
    """(low, high, what was resampled) of rho of ``part`` (rows with both values) against the paper."""
    paper = pd.to_numeric(part["paper"], errors="coerce").to_numpy(float)
    if len(part) < MIN_ROWS or len(np.unique(paper)) < 2:
        return math.nan, math.nan, ""
    drawn, how = resampled_ours(part, resamples, seed)
    if drawn is not None:
        rhos = _rank_rho(drawn, paper)
    else:  # the rows themselves, both sides together
        how = "rows"
        ours = pd.to_numeric(part["ours"], errors="coerce").to_numpy(float)
        idx = np.random.default_rng(seed).integers(0, len(part), (len(part), resamples))
        rhos = _rank_rho(ours[idx], paper[idx])
    rhos = rhos[np.isfinite(rhos)]
    if len(rhos) == 0:
        return math.nan, math.nan, how
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(rhos, [tail, 100 - tail])
    return float(low), float(high), how


def seed_to_seed(part: pd.DataFrame) -> float:
    """Mean over pairs of seeds of rho between the two seeds' values, over the rows holding both (pairs with
    fewer than MIN_ROWS such rows left out); nan without two seeds."""
    if "seeds" not in part:
        return math.nan
    by_seed: dict[Any, dict[int, float]] = {}
    for i, (seeds, values) in enumerate(zip(part["seeds"], part["seed_values"])):
        for s, v in zip(seeds if isinstance(seeds, tuple) else (), values if isinstance(values, tuple) else ()):
            by_seed.setdefault(s, {})[i] = v
    rhos = []
    names = sorted(by_seed)
    for k, a in enumerate(names):
        for b in names[k + 1:]:
            rows = sorted(set(by_seed[a]) & set(by_seed[b]))
            rho = spearman(pd.Series([by_seed[a][i] for i in rows]), pd.Series([by_seed[b][i] for i in rows]))
            if not math.isnan(rho):
                rhos.append(rho)
    return float(np.mean(rhos)) if rhos else math.nan


def versus_ceiling(low: float, high: float, ceiling: float) -> str:
    """``below``/``above`` when the ceiling lies above/below rho's interval, ``within`` inside it, else ''."""
    if any(math.isnan(v) for v in (low, high, ceiling)):
        return ""
    eps = 1e-9  # a ceiling of 1.0 against an interval [1.0, 1.0] is within, whatever the rounding
    return "below" if ceiling > high + eps else "above" if ceiling < low - eps else "within"


def column_stats(part: pd.DataFrame, higher_is_better: bool, top: int = TOP) -> dict[str, Any]:
    """The STATS of one column (its rows named by ``part["row"]``)."""
    ours = pd.to_numeric(part["ours"], errors="coerce").astype(float)
    paper = pd.to_numeric(part["paper"], errors="coerce").astype(float)
    filled = np.isfinite(ours)
    both = filled & np.isfinite(paper)
    ours, paper = ours[both], paper[both]
    moved = out_of_place(part.loc[both, "row"], displacement(ours, paper, higher_is_better), top) \
        if len(ours) >= MIN_ROWS else []
    low, high, how = rho_interval(part[both])
    ceiling = seed_to_seed(part[both])
    counts = part.loc[both, "n_seeds"] if "n_seeds" in part else pd.Series(dtype=float)
    return {"n_rows": len(ours), "spearman": spearman(ours, paper), "rho_low": low, "rho_high": high,
            "interval_resamples": how, "n_seeds": int(counts.min()) if len(counts) else math.nan,
            "seed_rho": ceiling, "seed_rho_all_rows": seed_to_seed(part[filled]),
            "vs_ceiling": versus_ceiling(low, high, ceiling), "most_out_of_place": format_out_of_place(moved)}


def _agreement(name: str, df: pd.DataFrame, keys: list[str], higher_is_better: bool,
               paper_columns: Mapping[str, str] | None, top: int, columns: list[str]) -> pd.DataFrame:
    """Stats of every ``keys`` group with a published value, in the frame's order."""
    records = [{**dict(zip(keys, key)), **column_stats(part, higher_is_better, top)}
               for key, part in df.groupby(keys, sort=False)
               if pd.to_numeric(part["paper"], errors="coerce").notna().any()]
    out = pd.DataFrame.from_records(records, columns=keys + STATS)
    out["n_seeds"] = pd.to_numeric(out["n_seeds"], errors="coerce").astype("Int64")  # a count, also in the CSV
    out["table"] = name
    out["paper_column"] = [(paper_columns or {}).get(ds, ds) for ds in out["dataset"]]
    return out[columns]


def agreement(name: str, df: pd.DataFrame, paper_columns: Mapping[str, str] | None = None,
              top: int = TOP) -> pd.DataFrame:
    """One row per (dataset, metric) column of a row table that has published values (best-checkpoint twins
    left out: each model ranks once, by its final weights)."""
    return _agreement(name, without_best_twins(df), ["dataset", "metric"], name in HIGHER_IS_BETTER, paper_columns, top, COLUMNS)


def sweep_agreement(name: str, df: pd.DataFrame, paper_columns: Mapping[str, str] | None = None,
                    top: int = TOP) -> pd.DataFrame:
    """One row per (dataset, model, metric) of a sweep frame that has published values; its rows are the m."""
    rows = df.assign(row=["m=" + str(m) for m in df["m"]])
    return _agreement(name, rows, ["dataset", "model", "metric"], False, paper_columns, top, SWEEP_COLUMNS)


def _rho(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def caption_sentence(frame: pd.DataFrame, heads: Sequence[str]) -> str:
    """LaTeX: rho and n per column (``heads``, LaTeX already), then each column's most displaced rows."""
    if frame.empty:
        return ""
    records = list(zip(heads, frame.itertuples()))
    rhos = ", ".join(f"{head} {_rho(r.spearman)} (n={r.n_rows})" for head, r in records)
    text = rf"Agreement with the paper (Spearman $\rho$ of ours against the published values, per column): {rhos}."
    text += interval_sentence(records)
    moved = "; ".join(f"{head} {latex_escape(r.most_out_of_place)}" for head, r in records if r.most_out_of_place)
    return text + (f" Most out of place (our rank minus the paper's): {moved}." if moved else "")


RESAMPLED = {"seeds": "seeds per row", "test samples": "test samples per run: sampling noise only, not training's",
             "rows": "rows: which models are listed, not the noise of any value"}


CEILING_WORDS = {"below": r"$\rho$ below it", "above": r"$\rho$ above it", "within": "not distinguishable"}


def _interval(r: Any) -> str:
    low, high = getattr(r, "rho_low", math.nan), getattr(r, "rho_high", math.nan)
    return "n/a" if math.isnan(low) else f"[{low:.2f}, {high:.2f}]"


def interval_sentence(records: Sequence[tuple[str, Any]]) -> str:
    """LaTeX: each column's 95 % interval for rho and what it resamples, then the seed-to-seed rho (noise
    ceiling) and whether rho lies below it, where two or more seeds ran."""
    hows = [getattr(r, "interval_resamples", "") for _, r in records]
    if not any(hows):
        return ""
    uniform = len({h for h in hows if h}) == 1
    cells = ", ".join(f"{head} {_interval(r)}" + ("" if uniform or not h else f" ({h})")
                      for (head, r), h in zip(records, hows))
    what = f"; bootstrap over {RESAMPLED[next(h for h in hows if h)]}" if uniform else "; bootstrap over the noise named"
    text = (rf" 95\% interval of $\rho$ ({BOOT_RESAMPLES} resamples{what}): {cells}.")
    ceil = [(head, r) for head, r in records if not math.isnan(getattr(r, "seed_rho", math.nan))]
    if ceil:
        text += (r" Seed-to-seed $\rho$ (the noise ceiling): "
                 + ", ".join(f"{head} {r.seed_rho:.2f} ({CEILING_WORDS.get(r.vs_ceiling, 'n/a')})" for head, r in ceil)
                 + ".")
    return text


def dataset_head(ds: str) -> str:
    return DATASET_HEAD.get(ds, latex_escape(ds))


def table_caption(name: str, df: pd.DataFrame) -> str:
    """The caption sentence of a row table: one most displaced row per column."""
    frame = agreement(name, df, top=1)
    heads = [f"{dataset_head(r.dataset)} {METRIC_HEAD.get(r.metric, latex_escape(r.metric))}"
             for r in frame.itertuples()]
    return caption_sentence(frame, heads)


def summary(frame: pd.DataFrame) -> str:
    """One line for the terminal: rho and n per column."""
    keys = [c for c in frame.columns if c not in ("table", "paper_column", *STATS)]
    cells = [f"{' '.join(str(getattr(r, k)) for k in keys)} {_rho(r.spearman)} (n={r.n_rows})"
             for r in frame.itertuples()]
    line = "agreement with the paper (Spearman rho per column): " + ("; ".join(cells) or "no published column")
    spans = [f"{' '.join(str(getattr(r, k)) for k in keys)} {_interval(r)} ({r.interval_resamples})"
             + ("" if math.isnan(r.seed_rho) else f", seed-to-seed {r.seed_rho:.2f} ({r.vs_ceiling})")
             for r in frame.itertuples() if getattr(r, "interval_resamples", "")]
    return line + ("\n95% interval of rho (bootstrap): " + "; ".join(spans) if spans else "")


def write_agreement(path: str | Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False, float_format="%.4f"))
