"""Agreement with the paper: Spearman's rho per column, the rows most out of place, the sidecar CSV and caption."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rae_bench.cli import main
from rae_bench.report.agreement import COLUMNS, SWEEP_COLUMNS, agreement, sweep_agreement
from rae_bench.report.published import TABLE2_LATENT, TABLE3_FID
from rae_bench.report.sweeps import collect_sweep, table2_latex
from rae_bench.report.tables import collect, to_latex

NAMES = ["A", "B", "C", "D", "E", "F"]


def frame(ours, paper, table="table3", dataset="mnist", metric="fid_gen"):
    """A tidy frame as collect() returns it: one column, a row per value (None = missing)."""
    return pd.DataFrame({"table": table, "row": NAMES[:len(ours)], "dataset": dataset, "metric": metric,
                         "ours": [math.nan if v is None else v for v in ours], "paper": paper})


def stats(df, table="table3"):
    return agreement(table, df).iloc[0]


def test_same_order_gives_rho_one_and_nothing_out_of_place():
    paper = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    row = stats(frame([10 * p + 3 for p in paper], paper))
    assert row["spearman"] == pytest.approx(1.0) and row["n_rows"] == 6 and row["most_out_of_place"] == ""


def test_reversed_order_gives_rho_minus_one():
    row = stats(frame([6.0, 5.0, 4.0, 3.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]))
    assert row["spearman"] == pytest.approx(-1.0)
    assert row["most_out_of_place"] == "A (+5), F (-5), B (+3)"  # ties in row order


def test_the_displaced_row_is_named_first():
    # F is the paper's worst (rank 6) but our best (rank 1): -5; everyone else moves down one
    df = frame([2.0, 3.0, 4.0, 5.0, 6.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    row = stats(df)
    assert row["most_out_of_place"] == "F (-5), A (+1), B (+1)"
    assert row["spearman"] == pytest.approx(1 - 6 * (5 ** 2 + 5 * 1) / (6 * 35))


def test_higher_is_better_ranks_the_highest_first():
    df = frame([2.0, 3.0, 4.0, 5.0, 6.0, 1.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], table="table4", metric="precision")
    row = stats(df, "table4")
    # F: the paper's best (highest) and our worst: ranked from the top it moves down, +5
    assert row["most_out_of_place"] == "F (+5), A (-1), B (-1)"
    assert row["spearman"] == pytest.approx(stats(df.assign(table="table3"))["spearman"])  # rho has no direction


def test_fewer_than_three_rows_give_nan_and_no_list():
    df = frame([1.0, 5.0, None, 4.0], [2.0, 1.0, 3.0, None], table="table1")  # rows with both: A and B only
    row = stats(df, "table1")
    assert row["n_rows"] == 2 and math.isnan(row["spearman"]) and row["most_out_of_place"] == ""
    tidy = df.assign(model=None, sampler=None, ours_std=math.nan, n_seeds=1, extractor=None, n_samples=None)
    assert "MNIST Gen. n/a (n=2)." in to_latex("table1", tidy)


def test_constant_values_give_nan():
    assert math.isnan(stats(frame([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))["spearman"])


def test_columns_without_published_values_are_left_out():
    df = pd.concat([frame([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), frame([1.0, 2.0, 3.0], [None] * 3, dataset="celeba")])
    out = agreement("table3", df, {"mnist": "mnist_paper"})
    assert list(out.columns) == COLUMNS
    assert out[["dataset", "paper_column", "metric", "n_rows"]].values.tolist() == [["mnist", "mnist_paper", "fid_gen", 3]]


# end to end: metrics.json files -> rae-bench table -> CSV, LaTeX and the agreement sidecar

ROWS = ["VAE", "beta-VAE", "WAE-GAN", "RAE + GMM (L2)", "FlexAE"]


def put(root, ds, model, rec, gen):
    path = root / ds / model / "seed0" / "prior" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fid_rec": rec, "fid_gen": gen, "extractor": "inception", "n_samples": 100}))


@pytest.fixture()
def table3(tmp_path):
    """Five published rows on MNIST: Rec. in the paper's order, Gen. reversed; CelebA only two rows."""
    spec = {"kind": "rows", "datasets": ["mnist", "celeba"], "seeds": [0], "paper_columns": {"mnist": "mnist"},
            "rows": [{"label": r, "model": f"m{i}", "sampler": "prior", "paper": r} for i, r in enumerate(ROWS)]}
    for i, r in enumerate(ROWS):
        put(tmp_path / "results", "mnist", f"m{i}", TABLE3_FID[r]["mnist"]["fid_rec"], -TABLE3_FID[r]["mnist"]["fid_gen"])
        if i < 2:
            put(tmp_path / "results", "celeba", f"m{i}", 1.0, 2.0)
    return spec


def run_table(tmp_path, spec, name, *extra):
    return main(["table", "--name", name, "--spec", json.dumps(spec), "--results", str(tmp_path / "results"),
                 "--csv", str(tmp_path / "t" / f"{name}.csv"), "--tex", str(tmp_path / "t" / f"{name}.tex"), *extra])


def test_cli_writes_the_sidecar_and_the_caption_line(tmp_path, table3, capsys):
    assert run_table(tmp_path, table3, "table3") == 0
    out = pd.read_csv(tmp_path / "t" / "table3.agreement.csv")
    assert list(out.columns) == COLUMNS
    assert out[["table", "dataset", "paper_column", "metric", "n_rows"]].values.tolist() == [
        ["table3", "mnist", "mnist", "fid_rec", 5], ["table3", "mnist", "mnist", "fid_gen", 5],
        ["table3", "celeba", "celeba", "fid_rec", 2], ["table3", "celeba", "celeba", "fid_gen", 2]]
    assert out["spearman"].tolist()[:2] == [1.0, -1.0] and out["spearman"].iloc[2:].isna().all()
    # Gen. reversed: the paper's worst (VAE, 57.04) is our best, the paper's best (FlexAE) our worst
    assert out["most_out_of_place"].fillna("").tolist() == ["", "VAE (-4), FlexAE (+4), beta-VAE (-2)", "", ""]
    tex = (tmp_path / "t" / "table3.tex").read_text()
    caption = next(line for line in tex.splitlines() if line.startswith(r"\caption"))
    assert (r"Agreement with the paper (Spearman $\rho$ of ours against the published values, per column): "
            "MNIST Rec. 1.00 (n=5), MNIST Gen. -1.00 (n=5), CelebA Rec. n/a (n=2), CelebA Gen. n/a (n=2).") in caption
    assert caption.endswith("Most out of place (our rank minus the paper's): MNIST Gen. VAE (-4).}")
    printed = capsys.readouterr().out
    assert "mnist fid_rec 1.00 (n=5); mnist fid_gen -1.00 (n=5); celeba fid_rec n/a (n=2)" in printed


def test_cli_agreement_option_and_atomic_write(tmp_path, table3):
    assert run_table(tmp_path, table3, "table3", "--agreement", str(tmp_path / "a" / "x.csv")) == 0
    assert len(pd.read_csv(tmp_path / "a" / "x.csv")) == 4
    assert not (tmp_path / "t" / "table3.agreement.csv").exists()
    assert not list((tmp_path / "a").glob(".x.csv.*"))


def test_latex_escapes_row_names_in_the_caption(tmp_path, table3):
    df = collect("table3", table3, tmp_path / "results")
    gen = (df.metric == "fid_gen") & (df.dataset == "mnist")
    df.loc[gen, "ours"] = df.loc[gen, "paper"]
    df.loc[gen & (df.row == "beta-VAE"), "ours"] = -100.0  # the paper's fourth, our first
    assert r"MNIST Gen. $\beta$-VAE (-3)" in to_latex("table3", df)


# the sweep table: rows are the capacities m, columns (dataset, model, metric)

SWEEP = {"kind": "sweep", "datasets": ["mnist"], "models": ["wae_mmd", "maskaae"],
         "latent_dims": {"mnist": [16, 32, 64, 128]}, "sampler": "prior", "seeds": [0], "true_n": {"mnist": None},
         "labels": {"wae_mmd": "WAE", "maskaae": "MaskAAE"}, "paper_models": {"wae_mmd": "WAE", "maskaae": "MAAE"},
         "paper_columns": {"mnist": "mnist"}}
OURS_MAAE_DIMS = {16: 9, 32: 16, 64: 30, 128: 40}  # paper: 9, 16, 13, 40 (ascending ranks 1, 3, 2, 4)


def put_sweep(root):
    for model in SWEEP["models"]:
        for m in SWEEP["latent_dims"]["mnist"]:
            paper = TABLE2_LATENT["mnist"]["WAE" if model == "wae_mmd" else "MAAE"][m]
            dims = m if model == "wae_mmd" else OURS_MAAE_DIMS[m]
            path = root / "mnist" / f"{model}_m{m}" / "seed0" / "prior" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"fid_gen": 1.0, "active_dims": dims, "nac": paper["nac"]}))


def test_sweep_agreement_over_m(tmp_path):
    put_sweep(tmp_path / "results")
    df = collect_sweep(SWEEP, tmp_path / "results")
    out = sweep_agreement("table2", df, SWEEP["paper_columns"]).set_index(["model", "metric"])
    assert set(out.index) == {(m, k) for m in SWEEP["models"] for k in ("active_dims", "nac")}  # no published FID
    assert out.loc[("wae_mmd", "active_dims"), "spearman"] == pytest.approx(1.0)
    maae = out.loc[("maskaae", "active_dims")]
    assert maae["spearman"] == pytest.approx(0.8) and maae["n_rows"] == 4
    assert maae["most_out_of_place"] == "m=32 (-1), m=64 (+1)"
    assert out.loc[("maskaae", "nac"), "spearman"] == pytest.approx(1.0)
    caption = next(line for line in table2_latex(df[df.metric.isin(["active_dims", "nac"])]).splitlines()
                   if line.startswith(r"\caption"))
    assert r"MNIST WAE $m_A$ 1.00 (n=4), MNIST WAE NAC 1.00 (n=4), MNIST MaskAAE $m_A$ 0.80 (n=4)" in caption
    assert "Most out of place (our rank minus the paper's): MNIST MaskAAE $m_A$ m=32 (-1)." in caption


def test_cli_sweep_writes_its_sidecar(tmp_path, capsys):
    put_sweep(tmp_path / "results")
    assert run_table(tmp_path, SWEEP, "table2") == 0
    out = pd.read_csv(tmp_path / "t" / "table2.agreement.csv")
    assert list(out.columns) == SWEEP_COLUMNS and len(out) == 4 and set(out["table"]) == {"table2"}
    assert "mnist maskaae active_dims 0.80 (n=4)" in capsys.readouterr().out


# uncertainty: a bootstrap interval for rho (seeds, else test-sample replicates, else rows), the seed-to-seed
# rho of each column (its noise ceiling) and whether rho is distinguishable from it

PAPER = {f"r{i}": 10.0 + 3 * i for i in range(8)}  # a published column, strictly increasing


def fabricate(root, seeds, noise, boot_spread=None, seed=0):
    """metrics.json per (row, seed): the paper's value times (1 + noise x N(0, 1)); with ``boot_spread``, 50
    bootstrap replicates per run spread by that much."""
    import numpy as np

    rng = np.random.default_rng(seed)
    spec = {"kind": "rows", "datasets": ["mnist"], "seeds": list(seeds),
            "rows": [{"label": r, "model": r, "sampler": "prior", "paper": r} for r in PAPER]}
    for r, value in PAPER.items():
        for s in seeds:
            gen = value * (1 + noise * rng.normal())
            m = {"fid_rec": gen, "fid_gen": gen, "extractor": "raw", "n_samples": 100}
            if boot_spread is not None:
                m["fid_gen_boot"] = list(gen + 5.0 + boot_spread * value * rng.normal(size=50))  # +5: FID's bias
                m["fid_rec_boot"] = m["fid_gen_boot"]
            path = root / "mnist" / r / f"seed{s}" / "prior" / "metrics.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(m))
    return spec


def gen_stats(tmp_path, name, *args, **kw):
    from rae_bench.report import published

    spec = fabricate(tmp_path / name, *args, **kw)
    old = published.TABLE3_FID
    published.TABLE3_FID = {r: {"mnist": {"fid_rec": v, "fid_gen": v}} for r, v in PAPER.items()}
    try:
        df = collect("table3", spec, tmp_path / name)
    finally:
        published.TABLE3_FID = old
    return df, agreement("table3", df).set_index("metric").loc["fid_gen"]


def test_seed_interval_contains_rho_and_narrows_with_less_noise(tmp_path):
    df, noisy = gen_stats(tmp_path, "noisy", [0, 1, 2], 0.3)
    _, calm = gen_stats(tmp_path, "calm", [0, 1, 2], 0.05)
    for row in (noisy, calm):
        assert row["interval_resamples"] == "seeds" and row["n_seeds"] == 3
        assert row["rho_low"] <= row["spearman"] <= row["rho_high"]
    assert calm["rho_high"] - calm["rho_low"] < noisy["rho_high"] - noisy["rho_low"]
    # the ceiling: mean over the three pairs of seeds of rho between their values
    gen = df[df.metric == "fid_gen"]
    per_seed = pd.DataFrame([dict(zip(s, v)) for s, v in zip(gen["seeds"], gen["seed_values"])])
    pairs = [per_seed[a].rank().corr(per_seed[b].rank()) for a, b in ((0, 1), (0, 2), (1, 2))]
    assert noisy["seed_rho"] == pytest.approx(sum(pairs) / 3) and noisy["seed_rho_all_rows"] == noisy["seed_rho"]
    assert calm["seed_rho"] > noisy["seed_rho"]
    expected = "below" if noisy["seed_rho"] > noisy["rho_high"] else "above" if noisy["seed_rho"] < noisy["rho_low"] \
        else "within"
    assert noisy["vs_ceiling"] == expected


def test_one_seed_resamples_test_samples_when_evaluate_wrote_replicates(tmp_path):
    _, wide = gen_stats(tmp_path, "wide", [0], 0.2, boot_spread=0.3)
    _, narrow = gen_stats(tmp_path, "narrow", [0], 0.2, boot_spread=0.02)
    for row in (wide, narrow):
        assert row["interval_resamples"] == "test samples" and math.isnan(row["seed_rho"]) and row["vs_ceiling"] == ""
        assert row["rho_low"] <= row["spearman"] <= row["rho_high"]
    assert narrow["rho_high"] - narrow["rho_low"] < wide["rho_high"] - wide["rho_low"]
    _, rows = gen_stats(tmp_path, "plain", [0], 0.2)  # no replicates: the rows bootstrap, named so
    assert rows["interval_resamples"] == "rows" and rows["rho_low"] <= rows["spearman"] <= rows["rho_high"]


def test_intervals_are_deterministic_and_in_sidecar_and_caption(tmp_path):
    df, first = gen_stats(tmp_path, "a", [0, 1], 0.2)
    again = agreement("table3", df).set_index("metric").loc["fid_gen"]
    assert (first["rho_low"], first["rho_high"]) == (again["rho_low"], again["rho_high"])
    for col in ("rho_low", "rho_high", "interval_resamples", "seed_rho", "vs_ceiling"):
        assert col in COLUMNS
    caption = next(line for line in to_latex("table3", df).splitlines() if line.startswith(r"\caption"))
    assert (rf"95\% interval of $\rho$ (1000 resamples; bootstrap over seeds per row): "
            rf"MNIST Rec. [{first['rho_low']:.2f}, {first['rho_high']:.2f}]") in caption
    assert rf"Seed-to-seed $\rho$ (the noise ceiling): MNIST Rec. {first['seed_rho']:.2f}" in caption
