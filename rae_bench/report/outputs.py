"""What ``rae-bench table`` and ``rae-bench figure`` write: a table's CSV, LaTeX, agreement (and HTML), a
sweep figure's files. The one place that picks the table or sweep writers by the spec's kind."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..atomic import write_text
from .agreement import agreement, sweep_agreement, write_agreement
from .html import table_html
from .sweeps import collect_sweep, figure2, figure5, table2_latex
from .tables import tidy, write_table


def write_table_files(name: str, spec: Mapping[str, Any], results: str | Path, csv_path: str | Path,
                      tex_path: str | Path, agreement_path: str | Path,
                      html_path: str | Path | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A table's CSV and LaTeX from its rows' metrics.json files, its agreement with the paper and, with
    ``html_path``, the report's HTML view; returns (the table, the agreement)."""
    if spec.get("kind") == "sweep":  # Table 2: active dimensions of the latent sweep
        df = collect_sweep(spec, results)
        df = df[df.metric.isin(["active_dims", "nac"])]
        write_text(csv_path, tidy(df).to_csv(index=False, float_format="%.4f"))
        write_text(tex_path, table2_latex(df))
        agree = sweep_agreement(name, df, spec.get("paper_columns"))
    else:
        df = write_table(name, spec, results, csv_path, tex_path)
        agree = agreement(name, df, spec.get("paper_columns"))
    write_agreement(agreement_path, agree)
    if html_path:
        write_text(html_path, table_html(name, df))  # the report's view of the table
    return df, agree


def draw_figure(spec: Mapping[str, Any], results: str | Path, out: str | Path) -> None:
    """A sweep figure (PDF, PNG, CSV, LaTeX at ``out``.*): Figure 5 when the spec names a mask model, else 2."""
    df = collect_sweep(spec, results)
    if "mask_model" in spec:
        figure5(df, spec["models"], spec["mask_model"], out)
    else:
        figure2(df, spec["model"], out)
