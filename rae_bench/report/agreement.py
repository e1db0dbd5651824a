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
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from ..atomic import write_text
from .tables import DATASET_HEAD, HIGHER_IS_BETTER, METRIC_HEAD, _latex_escape, without_best_twins

STATS = ["n_rows", "spearman", "most_out_of_place"]
COLUMNS = ["table", "dataset", "paper_column", "metric", *STATS]
SWEEP_COLUMNS = ["table", "dataset", "paper_column", "model", "metric", *STATS]
MIN_ROWS = 3  # fewer rows give no rank correlation
TOP = 3  # rows listed as most out of place (the caption lists one per column)


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


def column_stats(part: pd.DataFrame, higher_is_better: bool, top: int = TOP) -> dict[str, Any]:
    """n_rows, spearman and most_out_of_place of one column (its rows named by ``part["row"]``)."""
    ours = pd.to_numeric(part["ours"], errors="coerce").astype(float)
    paper = pd.to_numeric(part["paper"], errors="coerce").astype(float)
    both = np.isfinite(ours) & np.isfinite(paper)
    ours, paper = ours[both], paper[both]
    moved = out_of_place(part.loc[both, "row"], displacement(ours, paper, higher_is_better), top) \
        if len(ours) >= MIN_ROWS else []
    return {"n_rows": len(ours), "spearman": spearman(ours, paper), "most_out_of_place": format_out_of_place(moved)}


def _agreement(name: str, df: pd.DataFrame, keys: list[str], higher_is_better: bool,
               paper_columns: Mapping[str, str] | None, top: int, columns: list[str]) -> pd.DataFrame:
    """Stats of every ``keys`` group with a published value, in the frame's order."""
    records = [{**dict(zip(keys, key)), **column_stats(part, higher_is_better, top)}
               for key, part in df.groupby(keys, sort=False)
               if pd.to_numeric(part["paper"], errors="coerce").notna().any()]
    out = pd.DataFrame.from_records(records, columns=keys + STATS)
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
    moved = "; ".join(f"{head} {_latex_escape(r.most_out_of_place)}" for head, r in records if r.most_out_of_place)
    return text + (f" Most out of place (our rank minus the paper's): {moved}." if moved else "")


def dataset_head(ds: str) -> str:
    return DATASET_HEAD.get(ds, _latex_escape(ds))


def table_caption(name: str, df: pd.DataFrame) -> str:
    """The caption sentence of a row table: one most displaced row per column."""
    frame = agreement(name, df, top=1)
    heads = [f"{dataset_head(r.dataset)} {METRIC_HEAD.get(r.metric, _latex_escape(r.metric))}"
             for r in frame.itertuples()]
    return caption_sentence(frame, heads)


def summary(frame: pd.DataFrame) -> str:
    """One line for the terminal: rho and n per column."""
    keys = [c for c in frame.columns if c not in ("table", "paper_column", *STATS)]
    cells = [f"{' '.join(str(getattr(r, k)) for k in keys)} {_rho(r.spearman)} (n={r.n_rows})"
             for r in frame.itertuples()]
    return "agreement with the paper (Spearman rho per column): " + ("; ".join(cells) or "no published column")


def write_agreement(path: str | Path, frame: pd.DataFrame) -> None:
    write_text(path, frame.to_csv(index=False, float_format="%.4f"))
