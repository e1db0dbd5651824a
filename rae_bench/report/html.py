"""A table as a standalone HTML page: what the Snakemake report shows of it (a CSV there is only a download).

Rows are the table's rows, columns (dataset, metric); a cell is our value, with the published one beside
it in parentheses where the paper has it. The tidy CSV and the LaTeX are the table's full record.
"""
from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

STYLE = ("body{font-family:sans-serif;font-size:14px;margin:1em;background:#fff;color:#111}"
         "table{border-collapse:collapse}th,td{border-bottom:1px solid #ccc;padding:3px 8px;text-align:right}"
         "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}.paper{color:#666}")


def _number(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if math.isnan(v) else f"{v:.2f}"


def _cell(ours: Any, paper: Any, std: Any = None) -> str:
    text = html.escape(_number(ours) or "–")
    if _number(ours) and _number(std):
        text += f" ± {html.escape(_number(std))}"
    published = _number(paper)
    return text + (f' <span class="paper">({html.escape(published)})</span>' if published else "")


def table_html(name: str, df: pd.DataFrame) -> str:
    """``df``: a table's tidy rows (``rae-bench table``'s CSV: row or label [, m], dataset, metric, ours, paper,
    and where present ours_std and n_seeds: cells then read mean ± sd)."""
    index = [c for c in ("row", "label", "m") if c in df.columns]
    columns = [c for c in ("dataset", "metric") if c in df.columns]
    keys = list(dict.fromkeys(tuple(r) for r in df[index].itertuples(index=False)))
    heads = list(dict.fromkeys(tuple(r) for r in df[columns].itertuples(index=False)))
    cells = {(tuple(r[c] for c in index), tuple(r[c] for c in columns)):
             _cell(r.get("ours"), r.get("paper"), r.get("ours_std")) for r in df.to_dict("records")}
    counts = pd.to_numeric(df["n_seeds"], errors="coerce") if "n_seeds" in df else pd.Series(dtype=float)
    n = int(counts.max()) if (counts > 0).any() else 0
    seeds = (f"<p>ours: mean ± sd over up to n = {n} seeds per cell</p>\n" if n > 1
             else "<p>ours: one seed per cell</p>\n" if n == 1 else "")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in index)
    head += "".join(f"<th>{html.escape(' '.join(map(str, h)))}</th>" for h in heads)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(k))}</td>" for k in key)
                   + "".join(f"<td>{cells.get((key, h), '')}</td>" for h in heads) + "</tr>\n" for key in keys)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{html.escape(name)}</title>"
            f"<style>{STYLE}</style></head><body>\n<h3>{html.escape(name)}: ours (paper)</h3>\n{seeds}"
            f"<table><thead><tr>{head}</tr></thead><tbody>\n{body}</tbody></table>\n</body></html>\n")
