"""The latent-dimension study: Table 2 and Figures 2 and 5 from a sweep's runs.

A sweep (``sweeps:`` in config) trains each listed model at every latent size
m; the runs are named ``{model}_m{m}``. Here their ``metrics.json`` files
become one tidy frame (dataset, model, m, metric, value), then the MaskAAE
paper's Table 2 (m_A and NAC per m), Figure 2 (WAE's scaled FID against m) and
Figure 5 (FID of WAE and MaskAAE against m, MaskAAE's m_A on a second axis).

Scaled FID (Figure 2) is a curve's FID divided by the largest FID on that
curve, so curves of different datasets share one axis.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import pandas as pd

from ..atomic import atomic_path, write_text
from .agreement import caption_sentence, dataset_head, sweep_agreement
from .latex import DATASET_HEAD, latex_escape
from .published import published_latent
from .tables import PER_SEED, mean_std, metrics_path, per_seed, read_metrics, seed_count, seeds_sentence

SWEEP_METRICS = ("fid_gen", "fid_rec", "active_dims", "nac", "precision", "recall")
COLUMNS = ["dataset", "model", "label", "m", "true_n", "metric", "ours", "ours_std", "n_seeds", "paper"]
TABLE2_HEAD = {"active_dims": "$m_A$", "nac": "NAC"}  # Table 2's metrics, as LaTeX


def collect_sweep(spec: Mapping[str, Any], results: str | Path) -> pd.DataFrame:
    """One row per (dataset, model, m, metric) of a sweep spec (see ``sweep_spec`` in the CLI)."""
    records = []
    for ds in spec["datasets"]:
        for model in spec["models"]:
            label = spec.get("labels", {}).get(model, model)
            for m in spec["latent_dims"][ds]:
                by_seed = {int(seed): read_metrics(p) for seed in spec["seeds"]
                           if (p := metrics_path(results, ds, f"{model}_m{m}", seed, spec.get("sampler", "prior"))).exists()}
                runs = list(by_seed.values())
                for metric in SWEEP_METRICS:
                    values = [r[metric] for r in runs if r.get(metric) is not None]
                    mean, std = mean_std(values)
                    records.append({"dataset": ds, "model": model, "label": label, "m": int(m),
                                    "true_n": spec.get("true_n", {}).get(ds), "metric": metric, "ours": mean,
                                    "ours_std": std, "n_seeds": len(values),
                                    "paper": published_latent(spec.get("paper_columns", {}).get(ds, ds),
                                                              spec.get("paper_models", {}).get(model), int(m), metric),
                                    # seeds whose run stopped before a warm-up or schedule finished
                                    "unfinished": sum(bool(r.get("unfinished_warmup")) for r in runs),
                                    **per_seed(by_seed, metric)})
    return pd.DataFrame.from_records(records, columns=COLUMNS + ["unfinished"] + PER_SEED)


def _known(true_n: Any) -> bool:
    """Whether a dataset's true latent dimension is known (synthetic data)."""
    return isinstance(true_n, (int, float)) and not math.isnan(true_n)


def _dataset_title(ds: str, true_n: Any) -> str:
    head = DATASET_HEAD.get(ds, ds)
    return f"{head} (n = {int(true_n)})" if _known(true_n) else head


def table2_latex(df: pd.DataFrame) -> str:
    """m_A and NAC per capacity m: a block per dataset, (Ours, Paper) per model and metric."""
    models = list(dict.fromkeys(df["model"]))
    labels = dict(zip(df["model"], df["label"]))
    width = 4 * len(models)
    agree = _table2_agreement(df)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             r"\caption{Active dimensions $m_A$ and NAC (mean absolute off-diagonal correlation of the test codes, "
             r"over the active dimensions) against the model capacity $m$. Ours beside the published values of "
             r"MaskAAE (Mondal et al., UAI 2020), Table 2; a dash marks a missing cell."
             + "".join(f" {t}" for t in (seeds_sentence(df), agree) if t) + "}",
             r"\label{tab:table2}", rf"\begin{{tabular}}{{l{'r' * width}}}", r"\toprule",
             " & " + " & ".join(f"\\multicolumn{{4}}{{c}}{{{latex_escape(labels[m])}}}" for m in models) + r" \\",
             " ".join(f"\\cmidrule(lr){{{2 + 4 * i}-{5 + 4 * i}}}" for i in range(len(models))),
             " & " + " & ".join(f"\\multicolumn{{2}}{{c}}{{{TABLE2_HEAD[k]}}}" for _ in models for k in TABLE2_HEAD)
             + r" \\",
             "$m$ & " + " & ".join(["Ours", "Paper"] * (2 * len(models))) + r" \\"]
    indexed = df.set_index(["dataset", "model", "m", "metric"])
    common_n = seed_count(df)
    for ds in dict.fromkeys(df["dataset"]):
        true_n = df.loc[df.dataset == ds, "true_n"].iloc[0]
        lines += [r"\midrule", f"\\multicolumn{{{width + 1}}}{{l}}{{{latex_escape(_dataset_title(ds, true_n))}}} \\\\"]
        for m in sorted(set(df.loc[df.dataset == ds, "m"])):
            cells = []
            for model in models:
                for metric, digits in (("active_dims", 0), ("nac", 3)):
                    rec = indexed.loc[(ds, model, m, metric)] if (ds, model, m, metric) in indexed.index else None
                    cells += [_ours(rec, digits, common_n), _num(None if rec is None else rec["paper"], digits)]
            lines.append(f"{m} & " + " & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def _table2_agreement(df: pd.DataFrame) -> str:
    """The caption sentence of Table 2: rho over m per (dataset, model, metric) with published values."""
    labels = dict(zip(df["model"], df["label"]))
    frame = sweep_agreement("table2", df, top=1)
    heads = [f"{dataset_head(r.dataset)} {latex_escape(labels[r.model])} "
             f"{TABLE2_HEAD.get(r.metric, latex_escape(r.metric))}" for r in frame.itertuples()]
    return caption_sentence(frame, heads)


def _ours(rec: Any, digits: int, common_n: int) -> str:
    """Our mean, with +- sd over seeds where several ran and a subscript n where fewer than the table's n."""
    text = _num(None if rec is None else rec["ours"], digits)
    if rec is None or text == "--":
        return text
    std = rec["ours_std"]
    n = int(rec["n_seeds"])
    sub = f"_{{n={n}}}" if 0 < n < common_n else ""
    spread = "" if std is None or math.isnan(std) else f"\\pm{std:.{max(digits, 1)}f}"
    return f"${text}{spread}{sub}$" if spread or sub else text


def _num(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "--"
    return f"{value:.{digits}f}" if digits else f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _pyplot():
    import matplotlib  # here: pyplot is 0.44 s (-X importtime), which the tables never pay

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _write_figure(fig: Any, stem: Path, table: pd.DataFrame, label: str, caption: str) -> None:
    """The figure as PDF and PNG, its plotted numbers as CSV, and a LaTeX snippet that includes it."""
    for ext in ("pdf", "png"):
        with atomic_path(stem.with_suffix(f".{ext}")) as tmp:
            # no creation date in the PDF: the same runs redraw a byte-identical figure
            fig.savefig(tmp, dpi=150, bbox_inches="tight", metadata={"CreationDate": None} if ext == "pdf" else None)
    _pyplot().close(fig)
    write_text(stem.with_suffix(".csv"), table.to_csv(index=False, float_format="%.5g"))
    write_text(stem.with_suffix(".tex"), _figure_tex(stem, label, caption))


def figure2(df: pd.DataFrame, model: str, stem: str | Path) -> pd.DataFrame:
    """Scaled FID of ``model`` against m, one curve per dataset, a marker at the true n."""
    plt = _pyplot()
    stem = Path(stem)
    data = df[(df.model == model) & (df.metric == "fid_gen")].copy()
    data["scaled_fid"] = data["ours"] / data.groupby("dataset")["ours"].transform("max")
    fig, ax = plt.subplots(figsize=(5, 3.5))
    for ds, curve in data.groupby("dataset", sort=False):
        curve = curve.sort_values("m")
        line, = ax.plot(curve["m"], curve["scaled_fid"], marker="o", label=_dataset_title(ds, curve["true_n"].iloc[0]))
        n = curve["true_n"].iloc[0]
        if _known(n):
            ax.axvline(n, color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("latent dimension m")
    ax.set_ylabel("scaled FID (FID / max FID of its curve)")
    ax.set_title(f"{data['label'].iloc[0] if len(data) else model}: generation FID against m")
    ax.legend(fontsize=8)
    table = data[["dataset", "m", "true_n", "ours", "scaled_fid"]].rename(columns={"ours": "fid_gen"})
    _write_figure(fig, stem, table, "figure2",
               "Scaled generation FID (FID divided by the largest FID of its curve) of a WAE against the latent "
               "dimension m; dotted lines mark the true latent dimension n of the synthetic data "
               "(cf. Mondal et al., UAI 2020, Figure 2).")
    return table


def figure5(df: pd.DataFrame, models: list[str], mask_model: str, stem: str | Path) -> pd.DataFrame:
    """Per dataset: generation FID of each model against m, and ``mask_model``'s m_A on a second axis."""
    plt = _pyplot()
    stem = Path(stem)
    datasets = list(dict.fromkeys(df["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.4), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        part = df[df.dataset == ds]
        for model in models:
            curve = part[(part.model == model) & (part.metric == "fid_gen")].sort_values("m")
            ax.plot(curve["m"], curve["ours"], marker="o", label=f"FID {curve['label'].iloc[0] if len(curve) else model}")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("model capacity m")
        ax.set_ylabel("generation FID")
        ax.set_title(_dataset_title(ds, part["true_n"].iloc[0]))
        twin = ax.twinx()
        active = part[(part.model == mask_model) & (part.metric == "active_dims")].sort_values("m")
        twin.plot(active["m"], active["ours"], color="black", linestyle="--", marker="s", label="$m_A$")
        twin.set_ylabel("active dimensions $m_A$")
        n = part["true_n"].iloc[0]
        if _known(n):
            twin.axhline(n, color="grey", linestyle=":", linewidth=1)
        handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
        ax.legend(handles, [h.get_label() for h in handles], fontsize=7, loc="upper left")
    fig.tight_layout()
    wide = df[df.model.isin(models) & df.metric.isin(["fid_gen", "active_dims"])]
    table = wide.pivot_table(index=["dataset", "m", "true_n"], columns=["model", "metric"], values="ours")
    table.columns = [f"{m}_{k}" for m, k in table.columns]
    table = table.reset_index()
    _write_figure(fig, stem, table, "figure5",
               "Generation FID of WAE and MaskAAE against the model capacity m, and the number of active "
               "dimensions m_A of the trained MaskAAE (dashed, right axis); the dotted line marks the true latent "
               "dimension n (cf. Mondal et al., UAI 2020, Figure 5)." + true_dimension_note(df, mask_model))
    return table


def true_dimension_note(df: pd.DataFrame, mask_model: str) -> str:
    """Caption sentences of Figure 5: per dataset with a known true dimension n, ``mask_model``'s m_A at every
    m >= n (mean over seeds, with the seeds' range where several ran) and how many of them lie within n ± 1
    (the paper's claim); then in how many of those runs the mask's schedule stopped short (``unfinished``)."""
    rows = df[(df.model == mask_model) & (df.metric == "active_dims") & df.ours.notna()]
    sentences, short, total = [], 0, 0
    for ds, part in rows.groupby("dataset", sort=False):
        n = part["true_n"].iloc[0]
        if not _known(n):
            continue
        part = part[part.m >= n].sort_values("m")
        if part.empty:
            continue
        cells, within = [], 0
        for r in part.itertuples():
            values = list(r.seed_values) or [r.ours]
            within += all(abs(v - n) <= 1 for v in values)
            spread = f" ({min(values):g}-{max(values):g})" if len(values) > 1 and min(values) != max(values) else ""
            cells.append(f"{r.ours:.3g}{spread} at m = {r.m}")
        short, total = short + int(part["unfinished"].sum()), total + int(part["n_seeds"].sum())
        sentences.append(f"{_dataset_title(ds, n)}: m_A {', '.join(cells)}; within n ± 1 at {within} of {len(part)}.")
    if not sentences:
        return ""
    label = rows["label"].iloc[0]
    tail = (f" In {short} of these {total} {label} runs the mask's polarising weight stopped short of its cap "
            "(not driven to 0/1; metrics.json unfinished_warmup)." if short else "")
    return f" {label} with m ≥ n: " + " ".join(sentences) + tail


def _figure_tex(stem: Path, label: str, caption: str) -> str:
    text = latex_escape(caption).replace(r"m\_A", "$m_A$")  # after escaping, which writes m_A as m\_A
    return "\n".join([r"\begin{figure}[t]", r"\centering", rf"\includegraphics[width=\linewidth]{{{stem.name}.pdf}}",
                      rf"\caption{{{text}}}", rf"\label{{fig:{label}}}", r"\end{figure}", ""])
