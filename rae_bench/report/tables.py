"""FID tables (the paper's Tables 1 and 3) as tidy CSV and booktabs LaTeX.

A table spec comes from config (rows are (model, sampler) pairs, columns are
datasets); our numbers are read from ``results/{dataset}/{model}/seed{s}/{sampler}/metrics.json``
and averaged over seeds; the paper's number sits beside each of ours.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..atomic import write_text
from ..errors import ConfigError, DataError
from .agreement import table_caption
from .latex import DATASET_HEAD, METRIC_HEAD, latex_escape
from .published import published
from .specs import BEST_MARK, HIGHER_IS_BETTER

TABLE_METRICS = {"table1": ("fid_gen",), "table3": ("fid_rec", "fid_gen"), "table4": ("precision", "recall"),
                 "table5": ("fid_rec", "fid_gen")}
NUMERIC_METRICS = ("fid_rec", "fid_gen", "mse_rec", "precision", "recall", "kid", "kid_std", "active_dims", "nac",
                   "knn_precision", "knn_recall", "density", "coverage", "fid_gen_inf")
# tables printed with datasets as rows and the config's rows as column groups
TRANSPOSED = {"table5"}
INFINITE_N = {"fid_gen_inf"}  # columns extrapolated to infinitely many samples (metrics/fid_infinity.py)
METRIC_DIGITS = {"kid": 4}  # decimals in LaTeX cells (default 2): KID values are around 1e-2


def table_metrics(name: str, spec: Mapping[str, Any]) -> tuple[str, ...]:
    """The metrics a table shows: the spec's ``metrics`` list (config ``tables.<name>.metrics``), else the paper's."""
    metrics = tuple(spec.get("metrics") or TABLE_METRICS[name])
    unknown = [m for m in metrics if m not in METRIC_HEAD]
    if unknown:
        raise ConfigError(f"table '{name}' asks for unknown metrics {', '.join(unknown)}; "
                          f"valid table metrics: {', '.join(METRIC_HEAD)}")
    return metrics


TABLE_SOURCE = {"table1": "MaskAAE (Mondal et al., UAI 2020), Table 1",
                "table3": "FlexAE (Mondal et al., UAI 2021), Table 3",
                "table4": "FlexAE (Mondal et al., UAI 2021), Table 4 (precision/recall of Sajjadi et al. 2018, max F_1/8 / max F_8)",
                "table5": "FlexAE (Mondal et al., UAI 2021), Table 5"}
COLUMNS = ["table", "row", "model", "sampler", "dataset", "metric", "ours", "ours_std", "n_seeds", "paper",
           "extractor", "n_samples", "extractor_accuracy", "extractor_baseline", "unfinished_warmup", "selection"]
# in the frame, not the CSV: each seed's value and, where evaluate wrote them (features.bootstrap), each
# seed's bootstrap replicates over test samples, for the agreement intervals and the claims' tests
PER_SEED = ["seeds", "seed_values", "boot"]


def metrics_path(results: str | Path, dataset: str, model: str, seed: int, sampler: str,
                 selection: str = "final") -> Path:
    folder = Path(results) / dataset / model / f"seed{seed}" / sampler
    return (folder / "best_checkpoint" if selection == "best_checkpoint" else folder) / "metrics.json"


def read_metrics(path: Path) -> dict[str, Any]:
    """One run's metrics.json; a truncated, foreign or hand-edited file is one error line naming it."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"metrics file {path} is unreadable ({type(exc).__name__}); delete it and rerun its "
                        f"evaluation (snakemake {path})") from None
    bad = [k for k, v in metrics.items() if k in NUMERIC_METRICS and v is not None
           and (isinstance(v, bool) or not isinstance(v, (int, float)))] if isinstance(metrics, dict) else ["(not an object)"]
    if bad:
        raise DataError(f"metrics file {path} holds a non-numeric {bad[0]}; delete it and rerun its evaluation "
                        f"(snakemake {path})")
    return metrics


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean over seeds and the sample standard deviation (nan for fewer than two values)."""
    mean = sum(values) / len(values) if values else math.nan
    std = (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5 if len(values) > 1 else math.nan
    return mean, std


def per_seed(runs: Mapping[int, dict[str, Any]], metric: str) -> dict[str, Any]:
    """The frame's PER_SEED columns of one cell from its runs (seed -> metrics): the seeds holding ``metric``,
    their values and, when every one of those runs holds ``{metric}_boot``, their replicates moved to centre
    on each seed's value (the resampling bias of FID removed: a reader wants the spread, metrics/bootstrap.py),
    else None."""
    held = {seed: r for seed, r in runs.items() if r.get(metric) is not None}
    boots = [r.get(f"{metric}_boot") for r in held.values()]
    boot = None
    if held and all(isinstance(b, list) and b for b in boots):
        boot = tuple(tuple(float(r[metric]) + v - sum(b) / len(b) for v in b) for r, b in zip(held.values(), boots))
    return {"seeds": tuple(held), "seed_values": tuple(float(r[metric]) for r in held.values()), "boot": boot}


def tidy(df: pd.DataFrame) -> pd.DataFrame:
    """A frame without its PER_SEED columns: what the CSVs hold."""
    return df.drop(columns=[c for c in PER_SEED if c in df.columns])


def collect(name: str, spec: Mapping[str, Any], results: str | Path) -> pd.DataFrame:
    """One row per (table row, dataset, metric): our mean over seeds, its spread, and the paper's value."""
    if name not in TABLE_METRICS:
        raise ConfigError(f"unknown table '{name}'; valid tables: {', '.join(TABLE_METRICS)}")
    records = []
    for row in spec["rows"]:
        for ds in spec["datasets"]:
            by_seed = {}
            for seed in spec["seeds"] if "model" in row else []:
                path = metrics_path(results, ds, row["model"], seed, row["sampler"], row.get("selection", "final"))
                if path.exists():
                    by_seed[int(seed)] = read_metrics(path)
            runs = list(by_seed.values())
            paper_ds = spec.get("paper_columns", {}).get(ds, ds)
            for metric in table_metrics(name, spec):
                values = [r[metric] for r in runs if r.get(metric) is not None]
                mean, std = mean_std(values)
                records.append({
                    "table": name, "row": row["label"], "model": row.get("model"), "sampler": row.get("sampler"),
                    "dataset": ds, "metric": metric, "ours": mean, "ours_std": std, "n_seeds": len(values),
                    "paper": published(name, row.get("paper"), paper_ds, metric),
                    "extractor": runs[0]["extractor"] if runs else spec.get("extractors", {}).get(ds),
                    "n_samples": runs[0]["n_samples"] if runs else spec.get("n_samples", {}).get(ds),
                    "extractor_accuracy": runs[0].get("extractor_accuracy") if runs else None,
                    "extractor_baseline": runs[0].get("extractor_baseline") if runs else None,
                    # a run that stopped before a warm-up or schedule finished (any seed's): the caption says so
                    "unfinished_warmup": next((r["unfinished_warmup"] for r in runs if r.get("unfinished_warmup")), None),
                    "selection": row.get("selection", "final") if "model" in row else None,
                    **per_seed(by_seed, metric),
                })
    return pd.DataFrame.from_records(records, columns=COLUMNS + PER_SEED)


def _cell(value: Any, std: Any = math.nan, digits: int = 2, n: int | None = None) -> str:
    """``value``, ``value +- std`` when several seeds ran, with ``_{n=k}`` where ``n`` is given (a cell with
    fewer seeds than the rest of its table: the caption states the common n)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    sub = f"_{{n={n}}}" if n is not None else ""
    if isinstance(std, float) and not math.isnan(std):
        return f"${value:.{digits}f}\\pm{std:.{digits}f}{sub}$"
    return f"${value:.{digits}f}{sub}$" if sub else f"{value:.{digits}f}"


def seed_count(df: pd.DataFrame) -> int:
    """The most seeds behind a cell of a table: the n its caption states (0: no cell filled)."""
    counts = pd.to_numeric(df.get("n_seeds", pd.Series(dtype=float)), errors="coerce")
    return int(counts.max()) if (counts > 0).any() else 0


def seeds_sentence(df: pd.DataFrame) -> str:
    """LaTeX: how many seeds each of our cells averages, the n of the mean +- sd."""
    n = seed_count(df)
    if n == 0:
        return ""
    fewer = " A subscript $n$ marks a cell with fewer seeds." if (
        pd.to_numeric(df["n_seeds"], errors="coerce").between(1, n - 1).any()) else ""
    if n == 1:
        return "Our cells: one seed each, so no spread (config/seeds3.yaml gives mean $\\pm$ sd over three)." + fewer
    return f"Our cells: mean $\\pm$ sd over $n={n}$ seeds.{fewer}"


def _quality(r: Any) -> str:
    """' (classifier: 88.1% test accuracy, majority baseline 80.6%)' where the run recorded it."""
    acc, base = getattr(r, "extractor_accuracy", None), getattr(r, "extractor_baseline", None)
    if acc is None or (isinstance(acc, float) and math.isnan(acc)):
        return ""
    baseline = "" if base is None or (isinstance(base, float) and math.isnan(base)) else f", majority baseline {100 * base:.1f}%"
    return f" ({100 * acc:.1f}% test accuracy{baseline})"


def _warmup_notes(df: pd.DataFrame) -> str:
    """'Not past warm-up: MaskAAE (MNIST): <what>. ...' for cells from runs that stopped before a warm-up or
    schedule finished (models report it: ``GenerativeAE.unfinished_warmup``), else ''."""
    if "unfinished_warmup" not in df:
        return ""
    cells = df[df["unfinished_warmup"].notna()].drop_duplicates(["row", "dataset"])
    notes = [f"{r.row} ({DATASET_HEAD.get(r.dataset, r.dataset)}): {r.unfinished_warmup}." for r in cells.itertuples()]
    return ("Not past warm-up: " + " ".join(notes)) if notes else ""


SPREAD_LIMIT = 0.15  # a cell whose sd over seeds exceeds this share of its mean is not stable at this scale


def spread_notes(df: pd.DataFrame) -> str:
    """LaTeX: 'Not stable over seeds (sd above 15% of the mean) ...: MaskAAE (CelebA) Rec. 57.0 $\\pm$ 7.1; ...' for the cells
    of a several-seed run whose seed-to-seed spread is large beside their value, else ''. Computed from the
    run itself, so a one-seed run says nothing here (its seeds sentence says there is no spread)."""
    n = pd.to_numeric(df["n_seeds"], errors="coerce")
    mean, sd = pd.to_numeric(df["ours"], errors="coerce"), pd.to_numeric(df["ours_std"], errors="coerce")
    loose = df[(n >= 2) & (mean.abs() > 0) & (sd > SPREAD_LIMIT * mean.abs())]
    if loose.empty:
        return ""
    cells = [latex_escape(f"{r.row} ({DATASET_HEAD.get(r.dataset, r.dataset)}) {METRIC_HEAD.get(r.metric, r.metric)} ")
             + f"{r.ours:.1f} $\\pm$ {r.ours_std:.1f}" for r in loose.itertuples()]
    return (latex_escape(f"Not stable over seeds (sd above {100 * SPREAD_LIMIT:.0f}% of the mean), so their rank is "
                         f"not a verdict: ") + "; ".join(cells) + ".")


def _sample_sizes(df: pd.DataFrame) -> str:
    """' Columns Gen., KID: N samples as above; Gen. FID-inf: N = infinity (...).' where a column is extrapolated."""
    metrics = list(dict.fromkeys(df["metric"]))
    if not any(m in INFINITE_N for m in metrics):
        return ""
    finite = [METRIC_HEAD.get(m, m) for m in metrics if m not in INFINITE_N]
    inf = [METRIC_HEAD.get(m, m) for m in metrics if m in INFINITE_N]
    return ((" Columns " + ", ".join(finite) + ": the N samples above;" if finite else "") + " " + ", ".join(inf)
            + ": N = infinity (FID-infinity of Chong and Forsyth 2020, a linear fit of FID against 1/N over N/10 to N "
              "samples, read at 1/N = 0).")


def _selection_note(df: pd.DataFrame) -> str:
    """Where a row reports the best snapshot, what that means (it selects on the set it reports)."""
    if "selection" not in df or not (df["selection"] == "best_checkpoint").any():
        return ""
    marked = any(str(r).endswith(BEST_MARK) for r in df.loc[df["selection"] == "best_checkpoint", "row"])
    who = "\u2020 rows: " if marked else "Rows of runs with snapshots: "
    return (f" {who}the checkpoint with the lowest FID on the evaluation set, Rec. and Gen. chosen separately "
            "(the MaskAAE and FlexAE authors' protocol); it selects on the data it reports, so these numbers are "
            "optimistic beside the final-weights rows.")


def _caption(name: str, df: pd.DataFrame) -> str:
    """The caption as LaTeX: the setup, then how well our ordering agrees with the paper's."""
    df = df.reindex(columns=list(dict.fromkeys([*df.columns, "extractor_accuracy", "extractor_baseline"])))
    setup = (df.sort_values("extractor_accuracy", na_position="last").drop_duplicates("dataset")
             .set_index("dataset").loc[list(dict.fromkeys(df["dataset"]))].reset_index())
    parts = [f"{DATASET_HEAD.get(r.dataset, r.dataset)}: {r.extractor} features{_quality(r)}, {r.n_samples} samples"
             for r in setup.itertuples() if isinstance(r.extractor, str)]
    note = (("Higher" if name in HIGHER_IS_BETTER else "Lower") + " is better. Ours beside the published values of "
            + TABLE_SOURCE[name] + " (Inception features, 10,000 samples); a dash marks a missing cell. ")
    if any(r.extractor != "inception" for r in setup.itertuples() if isinstance(r.extractor, str)):
        note += "Values from other feature extractors are not on the published scale. "
    text = latex_escape(note + ("Ours: " + "; ".join(parts) + "." if parts else "") + _sample_sizes(df)
                         + _selection_note(df))
    return " ".join(t for t in (text.rstrip(), seeds_sentence(df), spread_notes(df),
                                latex_escape(_warmup_notes(df)), table_caption(name, df)) if t)


def to_latex(name: str, df: pd.DataFrame) -> str:
    """booktabs table: a column group per dataset (per config row for transposed tables), each with
    (Ours, Paper) per metric; a dash where a value is missing."""
    datasets, rows = list(dict.fromkeys(df["dataset"])), list(dict.fromkeys(df["row"]))
    transposed = name in TRANSPOSED
    groups, lines_of = (rows, datasets) if transposed else (datasets, rows)
    metrics = tuple(dict.fromkeys(df["metric"]))  # collect's order: the spec's metrics
    width = 2 * len(metrics)

    def ds_head(d: str) -> str:
        return DATASET_HEAD.get(d, latex_escape(d))

    group_head, line_head = (latex_escape, ds_head) if transposed else (ds_head, latex_escape)

    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_caption(name, df)}}}", rf"\label{{tab:{name}}}",
             rf"\begin{{tabular}}{{l{'r' * width * len(groups)}}}", r"\toprule"]
    lines.append(" & " + " & ".join(f"\\multicolumn{{{width}}}{{c}}{{{group_head(g)}}}" for g in groups) + r" \\")
    lines.append(" ".join(f"\\cmidrule(lr){{{2 + i * width}-{1 + (i + 1) * width}}}" for i in range(len(groups))))
    if len(metrics) > 1:
        sub = [f"\\multicolumn{{2}}{{c}}{{{METRIC_HEAD[m]}}}" for _ in groups for m in metrics]
        lines.append(" & " + " & ".join(sub) + r" \\")
        lines.append(" ".join(f"\\cmidrule(lr){{{2 + 2 * i}-{3 + 2 * i}}}" for i in range(len(groups) * len(metrics))))
    first = "Dataset" if transposed else "Model"
    lines.append(f"{first} & " + " & ".join(["Ours", "Paper"] * (len(groups) * len(metrics))) + r" \\")
    lines.append(r"\midrule")
    indexed = df.set_index(["row", "dataset", "metric"])
    common_n = seed_count(df)
    for line in lines_of:
        cells = []
        for group in groups:
            row, ds = (group, line) if transposed else (line, group)
            for m in metrics:
                rec = indexed.loc[(row, ds, m)]
                digits = METRIC_DIGITS.get(m, 2)
                n = int(rec["n_seeds"]) if "n_seeds" in rec and 0 < rec["n_seeds"] < common_n else None
                cells += [_cell(rec["ours"], rec["ours_std"], digits, n), _cell(rec["paper"], digits=digits)]
        lines.append(line_head(line) + " & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def write_table(name: str, spec: Mapping[str, Any], results: str | Path, csv_path: str | Path,
                tex_path: str | Path) -> pd.DataFrame:
    df = collect(name, spec, results)
    write_text(csv_path, tidy(df).to_csv(index=False, float_format="%.4f"))
    write_text(tex_path, to_latex(name, df))
    return df
