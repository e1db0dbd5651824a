"""The papers' verbal claims (config/claims.yaml), each tested on our runs: holds, fails or inconclusive.

A claim becomes comparisons of two cells of one table frame (:func:`~rae_bench.report.tables.collect`) or
sweep frame (:func:`~rae_bench.report.sweeps.collect_sweep`): the same frames the tables are built from, so
there is no second reader of metrics.json. Per comparison, ``difference`` is how much better side A is
than side B (B - A for lower-is-better metrics, A - B for higher-is-better; for a target claim, the
tolerance minus the distance to the target), so a comparison holds when its interval lies above 0 and
fails when it lies below 0. Its test:

- ``paired t over n seeds`` when both sides ran the same n >= 3 seeds: a t interval of the mean of the
  per-seed differences (training and evaluation noise, as far as n seeds show it);
- otherwise a bootstrap over test samples, when every run of both sides holds FID replicates
  (evaluate's ``features.bootstrap``): each of BOOT_RESAMPLES draws takes one replicate per run, the same
  replicate index on both sides (the same resampled test items), the percentile interval (the
  evaluation's sampling noise only, not training's: the test says so);
- otherwise none: the verdict is inconclusive and the test names what is missing.

A claim holds when all of its comparisons hold at 95 % (an intersection-union test: no correction needed),
fails when one of them fails at the Bonferroni level 1 - 0.05 / k over its k comparisons, and is
inconclusive otherwise; a claim whose table, rows or datasets the config does not have is "not run".
"""
from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from ..atomic import write_text
from ..errors import ConfigError
from .html import STYLE
from .latex import DATASET_HEAD, latex_escape
from .specs import HIGHER_IS_BETTER
from .sweeps import collect_sweep
from .tables import collect

LEVEL = 0.95
BOOT_RESAMPLES = 1000
BOOT_SEED = 1000
MIN_PAIRED_SEEDS = 3  # fewer seeds: the bootstrap over test samples (issue 22)
KINDS = ("order", "sweep_order", "target")
COLUMNS = ["claim", "statement", "source", "claim_verdict", "dataset", "metric", "comparison", "side_a", "a_mean",
           "a_sd", "a_n", "side_b", "b_mean", "b_sd", "b_n", "difference", "ci_low", "ci_high", "test", "verdict"]
VERDICTS = ("holds", "fails", "inconclusive", "not run")


# --- the claims file -----------------------------------------------------------------------------------

def _need(claim: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in claim:
        raise ConfigError(f"{where} has no '{key}'; add it (see the header of config/claims.yaml)")
    return claim[key]


def check_claims(claims: Any, path: str = "claims file") -> list[dict[str, Any]]:
    """The claims of a loaded claims file, their shape checked (one error line naming the claim and key)."""
    items = claims.get("claims") if isinstance(claims, Mapping) else None
    if not isinstance(items, list):
        raise ConfigError(f"{path} must hold `claims:`, a list of claims; see config/claims.yaml")
    seen: set[str] = set()
    for i, claim in enumerate(items):
        where = f"{path}: claim {i + 1}"
        if not isinstance(claim, Mapping):
            raise ConfigError(f"{where} is not a mapping; write it as `- id: ...` with its keys")
        cid = _need(claim, "id", where)
        if not isinstance(cid, str) or not cid:
            raise ConfigError(f"{where}: `id` must be a non-empty string")
        where = f"{path}: claim '{cid}'"
        if cid in seen:
            raise ConfigError(f"{where} appears twice; give each claim its own id")
        seen.add(cid)
        for key in ("claim", "source", "metric"):
            _text(_need(claim, key, where), where, key)
        kind = claim.get("kind", "order")
        if kind not in KINDS:
            raise ConfigError(f"{where} has kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        if not isinstance(claim.get("datasets", []), list) or not all(isinstance(d, str) for d in claim.get("datasets", [])):
            raise ConfigError(f"{where}: `datasets` must be a list of dataset names")
        if kind == "order":
            _text(_need(claim, "table", where), where, "table")
            if "pairs" not in claim and not ("better" in claim and "worse" in claim):
                raise ConfigError(f"{where} needs `pairs: [[better, worse], ...]` or `better:` and `worse:`")
            pairs = claim.get("pairs", [])
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(x, str) for x in p)
                                                      for p in pairs):
                raise ConfigError(f"{where}: `pairs` must be a list of [better, worse] pairs of row labels")
            if "better" in claim:
                _text(claim["better"], where, "better")
                worse = claim["worse"] if isinstance(claim["worse"], list) else [claim["worse"]]
                for w in worse:
                    _text(w, where, "worse")
        else:
            _text(_need(claim, "sweep", where), where, "sweep")
            if kind == "target":
                _text(_need(claim, "model", where), where, "model")
                if not isinstance(claim.get("tolerance", 0), (int, float)) or isinstance(claim.get("tolerance"), bool):
                    raise ConfigError(f"{where}: `tolerance` must be a number")
            else:
                worse = _need(claim, "worse", where)
                for side in [_need(claim, "better", where), *(worse if isinstance(worse, list) else [worse])]:
                    if not isinstance(side, Mapping) or not isinstance(side.get("model"), str) or not (
                            side.get("m") in (None, "n", "min", "max")
                            or (isinstance(side.get("m"), int) and not isinstance(side.get("m"), bool))):
                        raise ConfigError(f"{where}: each side must be {{model: name}} with an optional m "
                                          f"(a number, n, min or max), got {str(side)[:60]}")
    return [dict(c) for c in items]


def _text(value: Any, where: str, key: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: `{key}` must be a non-empty string, got {str(value)[:60]!r}")
    return value


def load_claims(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"claims file {p} not found; pass an existing file (e.g. config/claims.yaml)")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError:
        raise ConfigError(f"claims file {p} is not valid YAML; fix the syntax there") from None
    return check_claims(loaded, str(p))


# --- the tests -----------------------------------------------------------------------------------------

def _cell_values(cell: Mapping[str, Any]) -> dict[int, float]:
    seeds, values = cell.get("seeds"), cell.get("seed_values")
    return dict(zip(seeds, values)) if isinstance(seeds, tuple) and isinstance(values, tuple) else {}


def _boot(cell: Mapping[str, Any]) -> tuple | None:
    boot = cell.get("boot")
    return boot if isinstance(boot, tuple) and boot else None


def _t_interval(d: np.ndarray, level: float) -> tuple[float, float]:
    from scipy.stats import t  # here: 0.95 s (-X importtime), only for a claim's interval

    half = float(t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return float(d.mean()) - half, float(d.mean()) + half


def _drawn(boot: tuple, picks: dict[int, np.ndarray], rng: np.random.Generator, resamples: int) -> np.ndarray:
    """A cell's mean over its seeds, redrawn: one replicate per seed's run per resample. ``picks`` (replicate
    count -> indices) is shared by both sides: replicate b of every run with the same seed resampled the same
    test items (metrics/bootstrap.py), so taking the same b keeps the test set's noise common to both sides,
    as it is in the comparison itself."""
    out = np.zeros(resamples)
    for reps in boot:
        r = np.asarray(reps, dtype=float)
        if len(r) not in picks:
            picks[len(r)] = rng.integers(0, len(r), resamples)
        out += r[picks[len(r)]] / len(boot)
    return out


def compare(a: Mapping[str, Any], b: Mapping[str, Any] | None, gain: Callable[[Any, Any], Any],
            levels: Sequence[float], metric: str, seed: int = BOOT_SEED) -> dict[str, Any]:
    """Difference = gain(a, b) (> 0: the claim's way), its interval at each of ``levels`` and the test.

    ``b`` None: a target claim, ``gain`` takes side A alone (b is ignored)."""
    va, vb = _cell_values(a), (_cell_values(b) if b is not None else None)
    ours_b = b["ours"] if b is not None else None
    out: dict[str, Any] = {"difference": float(gain(a["ours"], ours_b)) if va and (b is None or vb) else math.nan}
    common = sorted(set(va) & set(vb)) if vb is not None else sorted(va)
    if len(common) >= MIN_PAIRED_SEEDS:
        d = np.array([gain(va[s], vb[s] if vb is not None else None) for s in common], dtype=float)
        out["difference"] = float(d.mean())
        out["intervals"] = [_t_interval(d, lv) if d.std(ddof=1) > 0 else (float(d.mean()),) * 2 for lv in levels]
        out["test"] = f"paired t over n={len(common)} seeds (training and evaluation noise)"
        return out
    ba, bb = _boot(a), (_boot(b) if b is not None else None)
    if ba is not None and (b is None or bb is not None):
        rng, picks = np.random.default_rng(seed), {}
        da = _drawn(ba, picks, rng, BOOT_RESAMPLES)
        d = gain(da, _drawn(bb, picks, rng, BOOT_RESAMPLES) if bb is not None else None)
        out["intervals"] = [tuple(float(x) for x in np.percentile(d, [50 * (1 - lv), 100 - 50 * (1 - lv)]))
                            for lv in levels]
        out["test"] = (f"bootstrap over test samples, {BOOT_RESAMPLES} resamples (the evaluation's sampling noise "
                       f"only, not training's; n={min(len(va), len(vb) if vb is not None else len(va))} seed(s))")
        return out
    n = min(len(va), len(vb)) if vb is not None else len(va)
    # evaluate writes replicates of Rec./Gen. FID only (features.bootstrap); other metrics need seeds
    why = "no test-sample replicates" + (" (features.bootstrap)" if metric in ("fid_rec", "fid_gen") else "")
    out["intervals"] = [(math.nan, math.nan) for _ in levels]
    out["test"] = (f"none: n={n} common seed(s), fewer than {MIN_PAIRED_SEEDS} for a paired test, and {metric} has "
                   f"{why}; three seeds: config/seeds3.yaml") if n else "none: no run"
    return out


def _verdict(interval: tuple[float, float], edge_holds: bool = False) -> str:
    """holds above 0, fails below; ``edge_holds``: a target's edge (|x - n| = tolerance) is inside it."""
    low, high = interval
    if math.isnan(low):
        return "inconclusive"
    return "holds" if low > 0 or (edge_holds and low >= 0) else "fails" if high < 0 else "inconclusive"


# --- claims -> comparisons -----------------------------------------------------------------------------

def _side_text(cell: Mapping[str, Any]) -> str:
    return str(cell["row"]) if "row" in cell else f"{cell['label']} m={int(cell['m'])}"


def _cells_of_table(claim: Mapping[str, Any], frame: pd.DataFrame) -> list[tuple[str, dict, dict]]:
    """(dataset, better cell, worse cell) of an order claim; [] where a row or dataset is missing."""
    metric = claim["metric"]
    part = frame[frame.metric == metric]
    rows = list(dict.fromkeys(part["row"]))
    if "pairs" in claim:
        pairs = [tuple(p) for p in claim["pairs"]]
    else:
        worse = claim["worse"]
        worse = [r for r in rows if r != claim["better"]] if worse == "others" else (
            worse if isinstance(worse, list) else [worse])
        pairs = [(claim["better"], w) for w in worse]
    datasets = list(claim.get("datasets") or dict.fromkeys(part["dataset"]))
    cells = {(r["row"], r["dataset"]): r for r in part.to_dict("records")}
    return [(ds, cells[(a, ds)], cells[(b, ds)]) for ds in datasets for a, b in pairs
            if (a, ds) in cells and (b, ds) in cells]


def _m_of(spec_m: Any, dims: list[int], true_n: Any) -> int | None:
    if spec_m is None:
        return None
    if spec_m == "n":
        try:
            return None if true_n is None or math.isnan(float(true_n)) else int(true_n)
        except (TypeError, ValueError):
            return None
    if spec_m in ("min", "max"):
        return (min if spec_m == "min" else max)(dims) if dims else None
    return int(spec_m)


def _cells_of_sweep(claim: Mapping[str, Any], frame: pd.DataFrame) -> list[tuple[str, dict, dict | None]]:
    """(dataset, side A cell, side B cell or None for a target) of a sweep claim."""
    part = frame[frame.metric == claim["metric"]]
    cells = {(r["dataset"], r["model"], int(r["m"])): r for r in part.to_dict("records")}
    out: list[tuple[str, dict, dict | None]] = []
    for ds in claim.get("datasets") or list(dict.fromkeys(part["dataset"])):
        here = part[part.dataset == ds]
        if here.empty:
            continue
        true_n = here["true_n"].iloc[0]
        if claim.get("kind") == "target":
            if _m_of("n", [], true_n) is None:
                continue  # no known true dimension (real data)
            dims = sorted(int(m) for m in here.loc[here.model == claim["model"], "m"])
            out += [(ds, cells[(ds, claim["model"], m)], None) for m in dims if m >= true_n]
            continue
        worse = claim["worse"] if isinstance(claim["worse"], list) else [claim["worse"]]
        for w in worse:
            a, b = claim["better"], w
            dims_a = sorted(int(m) for m in here.loc[here.model == a["model"], "m"])
            dims_b = sorted(int(m) for m in here.loc[here.model == b["model"], "m"])
            if "m" not in a and "m" not in b:
                pairs = [(m, m) for m in dims_a if m in dims_b]
            else:
                pairs = [(_m_of(a.get("m"), dims_a, true_n), _m_of(b.get("m"), dims_b, true_n))]
            out += [(ds, cells[(ds, a["model"], ma)], cells[(ds, b["model"], mb)]) for ma, mb in pairs
                    if (ds, a["model"], ma) in cells and (ds, b["model"], mb) in cells]
    return out


def _mean_sd_n(cell: Mapping[str, Any] | None) -> tuple[float, float, int]:
    if cell is None:
        return math.nan, math.nan, 0
    return float(cell["ours"]), float(cell["ours_std"]), int(cell["n_seeds"])


def claim_comparisons(claim: Mapping[str, Any], frames: Mapping[str, pd.DataFrame]) -> list[dict[str, Any]]:
    """One record per comparison of ``claim`` (COLUMNS), ``frames``: table or sweep name -> its frame."""
    kind = claim.get("kind", "order")
    source = claim["table"] if kind == "order" else claim["sweep"]
    base = {"claim": claim["id"], "statement": claim["claim"], "source": claim["source"], "metric": claim["metric"]}
    frame = frames.get(source)
    comparisons = [] if frame is None else (
        _cells_of_table(claim, frame) if kind == "order" else _cells_of_sweep(claim, frame))
    if not comparisons:
        why = f"'{source}' is not in the config" if frame is None else "its rows, models or datasets are not in the config"
        return [{**base, "claim_verdict": "not run", "dataset": "", "comparison": f"not run: {why}", "test": "",
                 "verdict": "not run"}]
    higher = kind == "order" and source in HIGHER_IS_BETTER
    if kind == "target":
        tol = float(claim.get("tolerance", 0))
    k = len(comparisons)
    levels = (LEVEL, 1 - (1 - LEVEL) / k)
    records = []
    for i, (ds, a, b) in enumerate(comparisons):
        if kind == "target":
            n = float(a["true_n"])
            # per seed (paired) or per resample: > 0 inside n +- tol
            gain = lambda x, _, n=n: tol - np.abs(np.asarray(x, dtype=float) - n)
            relation, side_b = f"within {tol:g} of", f"n={int(n)}"
        else:
            gain = (lambda x, y: np.asarray(x, dtype=float) - y) if higher else (lambda x, y: np.asarray(y, dtype=float) - x)
            relation, side_b = (">" if higher else "<"), _side_text(b)
        result = compare(a, b, gain, levels, claim["metric"], seed=BOOT_SEED + i)
        (low, high), (blow, bhigh) = result["intervals"]
        am, asd, an = _mean_sd_n(a)
        bm, bsd, bn = _mean_sd_n(b) if b is not None else (n, math.nan, 0)
        records.append({**base, "dataset": ds, "comparison": f"{DATASET_HEAD.get(ds, ds)}: {_side_text(a)} {relation} {side_b}",
                        "side_a": _side_text(a), "a_mean": am, "a_sd": asd, "a_n": an, "side_b": side_b,
                        "b_mean": bm, "b_sd": bsd, "b_n": bn, "difference": result["difference"],
                        "ci_low": low, "ci_high": high, "test": result["test"],
                        "verdict": _verdict((low, high), kind == "target"),
                        "_strict": _verdict((blow, bhigh), kind == "target")})
    verdict = ("holds" if all(r["verdict"] == "holds" for r in records)
               else "fails" if any(r["_strict"] == "fails" for r in records) else "inconclusive")
    for r in records:
        r.pop("_strict")
        r["claim_verdict"] = verdict
    return records


def claims_frame(claims: Sequence[Mapping[str, Any]], frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Every claim's comparisons, in the claims file's order."""
    records = [r for claim in claims for r in claim_comparisons(claim, frames)]
    frame = pd.DataFrame.from_records(records, columns=COLUMNS)
    return frame.astype({"a_n": "Int64", "b_n": "Int64"})  # counts, empty where a claim did not run


def collect_frames(spec: Mapping[str, Any], results: str | Path) -> dict[str, pd.DataFrame]:
    """The frames the claims read: ``spec["tables"]`` (name -> table spec) and ``spec["sweeps"]``."""
    frames = {name: collect(name, s, results) for name, s in spec.get("tables", {}).items()}
    frames.update({name: collect_sweep(s, results) for name, s in spec.get("sweeps", {}).items()})
    return frames


# --- outputs -------------------------------------------------------------------------------------------

def _num(v: Any, digits: int = 2) -> str:
    return "--" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _side(mean: Any, sd: Any, n: Any) -> str:
    if isinstance(mean, float) and math.isnan(mean):
        return "--"
    spread = "" if isinstance(sd, float) and math.isnan(sd) else f"\\pm{sd:.2f}"
    return f"${mean:.2f}{spread}$" + (f" ($n={int(n)}$)" if pd.notna(n) and n else "")


def _tex(text: Any) -> str:
    """Text for LaTeX: escaped, and < > +- in math mode (text-mode < prints as an inverted exclamation mark)."""
    out = latex_escape(str(text))
    for a, b in (("<", "$<$"), (">", "$>$"), ("+-", "$\\pm$")):
        out = out.replace(a, b)
    return out


def to_latex(frame: pd.DataFrame) -> str:
    """booktabs: per claim a header line (statement, verdict, source), then its comparisons."""
    lines = [r"\begin{table}[t]", r"\centering", r"\scriptsize",
             r"\caption{The papers' claims tested on our runs (config/claims.yaml). A comparison holds when the "
             r"95\% interval of the difference (how much better side A is than side B) lies above 0, fails below "
             r"0; a claim holds when all its comparisons hold, fails when one fails at the Bonferroni level over "
             r"its comparisons, and is inconclusive otherwise. The test column says what noise the interval "
             r"covers: seeds (paired t, $n \geq 3$) or, with fewer seeds, the test samples only.}",
             r"\label{tab:claims}", r"\begin{tabular}{llllll}", r"\toprule",
             r"Comparison & A & B & Difference [95\% CI] & Test & Verdict \\", r"\midrule"]
    for cid, part in frame.groupby("claim", sort=False):
        first = part.iloc[0]
        lines.append(rf"\multicolumn{{6}}{{p{{0.95\linewidth}}}}{{\textbf{{{_tex(first['statement'])}}}: "
                     rf"{first['claim_verdict']}}} \\")
        lines.append(rf"\multicolumn{{6}}{{p{{0.95\linewidth}}}}{{\quad\textit{{{_tex(first['source'])}}}}} \\")
        for r in part.to_dict("records"):
            if r["verdict"] == "not run":
                lines.append(rf"\quad {_tex(r['comparison'])} & & & & & not run \\")
                continue
            diff = f"{_num(r['difference'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
            test = "paired t" if str(r["test"]).startswith("paired") else (
                "bootstrap, test samples" if str(r["test"]).startswith("bootstrap") else "none")
            lines.append(rf"\quad {_tex(r['comparison'])} & {_side(r['a_mean'], r['a_sd'], r['a_n'])} & "
                         rf"{_side(r['b_mean'], r['b_sd'], r['b_n'])} & {diff} & {test} & {r['verdict']} \\")
        lines.append(r"\midrule" if cid != frame["claim"].iloc[-1] else r"\bottomrule")
    lines += [r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def to_html(frame: pd.DataFrame) -> str:
    """The claims as a page of the Snakemake report."""
    head = "".join(f"<th>{h}</th>" for h in ("Comparison", "A", "B", "Difference [95% CI]", "Test", "Verdict"))
    body = []
    for _, part in frame.groupby("claim", sort=False):
        first = part.iloc[0]
        body.append(f'<tr><th colspan="6" style="text-align:left">{html.escape(str(first["statement"]))}: '
                    f'{html.escape(str(first["claim_verdict"]))}<br><span class="paper">'
                    f'{html.escape(str(first["source"]))}</span></th></tr>')
        for r in part.to_dict("records"):
            a = "" if r["verdict"] == "not run" else f"{_num(r['a_mean'])} ± {_num(r['a_sd'])} (n={r['a_n']})"
            b = "" if r["verdict"] == "not run" else f"{_num(r['b_mean'])} ± {_num(r['b_sd'])} (n={r['b_n']})"
            diff = "" if r["verdict"] == "not run" else f"{_num(r['difference'])} [{_num(r['ci_low'])}, {_num(r['ci_high'])}]"
            body.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in
                                         (r["comparison"], a, b, diff, r["test"], r["verdict"])) + "</tr>")
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>claims</title><style>{STYLE}</style>"
            f"</head><body>\n<h3>The papers' claims, tested</h3>\n<table><thead><tr>{head}</tr></thead><tbody>\n"
            + "\n".join(body) + "\n</tbody></table>\n</body></html>\n")


def summary(frame: pd.DataFrame) -> str:
    verdicts = frame.drop_duplicates("claim")["claim_verdict"].value_counts()
    return "claims: " + ", ".join(f"{int(verdicts.get(v, 0))} {v}" for v in VERDICTS)


def write_claims(claims: Sequence[Mapping[str, Any]], spec: Mapping[str, Any], results: str | Path,
                 csv_path: str | Path, tex_path: str | Path, html_path: str | Path | None = None) -> pd.DataFrame:
    frame = claims_frame(claims, collect_frames(spec, results))
    write_text(csv_path, frame.to_csv(index=False, float_format="%.4f"))
    write_text(tex_path, to_latex(frame))
    if html_path:
        write_text(html_path, to_html(frame))
    return frame
