"""What each table and figure needs from the workflow config, as plain JSON data.

The Snakemake rules pass these specs to ``rae-bench table|figure`` (so a table
reruns only when its own spec changes) and ask ``required_metrics`` for the
``metrics.json`` files it reads.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping

from ..config.resolve import extractor_for, n_samples_for, resolve_run, sweep_latent_dims, sweep_run_name
from ..errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

BEST_MARK = " \u2020"  # the dagger that marks a best-checkpoint row (LaTeX: $^\dagger$)
HIGHER_IS_BETTER = {"table4"}  # tables where the highest value is best


def _true_n(cfg: Mapping[str, Any], ds: str) -> int | None:
    entry = cfg["datasets"][ds]
    return entry.get("options", {}).get("n") if entry["source"] == "synthetic" else None


def sweep_spec(cfg: Mapping[str, Any], sweep: str, models: list[str] | None = None,
               datasets: list[str] | None = None) -> dict[str, Any]:
    sweeps = cfg.get("sweeps", {})
    if sweep not in sweeps:
        raise ConfigError(f"sweep '{sweep}' is not in the config; configured sweeps: {', '.join(sweeps) or 'none'}")
    s = sweeps[sweep]
    datasets = list(datasets or s["datasets"])
    return {
        "kind": "sweep", "sweep": sweep, "datasets": datasets, "models": list(models or s["models"]),
        "latent_dims": {ds: sweep_latent_dims(s, ds) for ds in datasets},
        "sampler": s.get("sampler", "prior"), "seeds": list(cfg.get("seeds", [0])),
        "true_n": {ds: _true_n(cfg, ds) for ds in datasets},
        "labels": dict(s.get("labels", {})), "paper_models": dict(s.get("paper_models", {})),
        "paper_columns": {ds: cfg["datasets"][ds].get("paper_column", ds) for ds in datasets},
    }


def table_spec(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    tables = cfg.get("tables", {})
    if name not in tables:
        raise ConfigError(f"table '{name}' is not in the config; configured tables: {', '.join(tables) or 'none'}")
    entry = dict(tables[name])
    if "sweep" in entry:
        return sweep_spec(cfg, entry["sweep"], entry.get("models"), entry.get("datasets"))
    spec = {"kind": "rows", **entry}
    spec["rows"] = selected_rows(cfg, name, entry)
    spec.pop("selection", None)
    spec["seeds"] = list(cfg.get("seeds", [0]))
    spec["extractors"] = {ds: extractor_for(cfg, ds) for ds in spec["datasets"]}
    spec["n_samples"] = {ds: n_samples_for(cfg, ds) for ds in spec["datasets"]}
    spec["paper_columns"] = {ds: cfg["datasets"][ds].get("paper_column", ds) for ds in spec["datasets"]}
    return spec


def _has_snapshots(cfg: Mapping[str, Any], model: str, datasets: list[str]) -> bool:
    if model not in cfg.get("models", {}):
        return False  # an unknown model is check_references' error, not this one
    return any(resolve_run(cfg, ds, model, 0)["training"].get("snapshots") for ds in datasets)


def selected_rows(cfg: Mapping[str, Any], name: str, entry: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The table's rows with their ``selection``: the row's own, else the table's (``both``: a final row and
    a best-checkpoint twin, labelled with a dagger) for runs with ``training.snapshots``; others are final."""
    table_choice = entry.get("selection", "final")
    out = []
    for row in entry["rows"]:
        row = dict(row)
        if "model" not in row:
            out.append(row)
            continue
        snaps = _has_snapshots(cfg, row["model"], list(entry["datasets"]))
        choice = row.pop("selection", None)
        if choice == "best_checkpoint" and not snaps:
            raise ConfigError(f"table '{name}' row '{row['label']}' asks for selection: best_checkpoint, but run "
                              f"'{row['model']}' keeps no snapshots; set models.{row['model']}.training.snapshots "
                              f"(e.g. {{every: 5000}}) or drop the row's selection")
        choice = choice or (table_choice if snaps else "final")
        if choice == "both":
            out += [{**row, "selection": "final"},
                    {**row, "label": row["label"] + BEST_MARK, "selection": "best_checkpoint"}]
        else:
            out.append({**row, "selection": choice})
    return out


def figure_spec(cfg: Mapping[str, Any], name: str) -> dict[str, Any]:
    figures = cfg.get("figures", {})
    if name not in figures:
        raise ConfigError(f"figure '{name}' is not in the config; configured figures: {', '.join(figures) or 'none'}")
    entry = dict(figures[name])
    models = entry.get("models") or [entry["model"]]
    spec = sweep_spec(cfg, entry["sweep"], models, entry.get("datasets"))
    spec.update({k: v for k, v in entry.items() if k in ("model", "mask_model")})
    return spec


def required_metrics(spec: Mapping[str, Any], results: str = "results") -> list[str]:
    """The metrics.json files a table or figure spec reads."""
    if spec["kind"] == "sweep":
        return [f"{results}/{ds}/{sweep_run_name(model, m)}/seed{seed}/{spec['sampler']}/metrics.json"
                for ds in spec["datasets"] for model in spec["models"] for m in spec["latent_dims"][ds]
                for seed in spec["seeds"]]
    return [f"{results}/{ds}/{row['model']}/seed{seed}/{row['sampler']}/{selection_folder(row)}metrics.json"
            for row in spec["rows"] if "model" in row for ds in spec["datasets"] for seed in spec["seeds"]]


def selection_folder(row: Mapping[str, Any]) -> str:
    """'' for the final weights, 'best_checkpoint/' for the best-snapshot metrics (rule evaluate_best_checkpoint)."""
    return "best_checkpoint/" if row.get("selection") == "best_checkpoint" else ""


def claims_spec(cfg: Mapping[str, Any], claims: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The table and sweep specs the claims read, for those the config has (the others are "not run")."""
    tables = sorted({c["table"] for c in claims if c.get("kind", "order") == "order"} & set(cfg.get("tables", {})))
    sweeps = sorted({c["sweep"] for c in claims if c.get("kind", "order") != "order"} & set(cfg.get("sweeps", {})))
    return {"kind": "claims", "tables": {t: table_spec(cfg, t) for t in tables},
            "sweeps": {s: sweep_spec(cfg, s) for s in sweeps}}


def claims_metrics(spec: Mapping[str, Any], results: str = "results") -> list[str]:
    """The metrics.json files a claims spec reads."""
    specs = [*spec.get("tables", {}).values(), *spec.get("sweeps", {}).values()]
    return list(dict.fromkeys(p for s in specs for p in required_metrics(s, results)))


def without_best_twins(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that rank: a best-checkpoint twin of a final row would count one model twice."""
    if "selection" not in df:
        return df
    finals = set(df.loc[df["selection"] != "best_checkpoint", "row"])
    twin = (df["selection"] == "best_checkpoint") & df["row"].str.removesuffix(BEST_MARK).isin(finals)
    return df[~twin]
