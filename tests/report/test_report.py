"""Tables from metrics.json files: tidy CSV, booktabs LaTeX, published values beside ours."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from rae_bench.report.published import TABLE3_FID, published
from rae_bench.report.tables import collect, to_latex, write_table

SPEC = {
    "datasets": ["mnist", "celeba"],
    "rows": [{"label": "RAE + GMM (L2)", "model": "rae_l2", "sampler": "gmm", "paper": "RAE + GMM (L2)"},
             {"label": "AE", "model": "ae", "sampler": "prior"}],
    "seeds": [0, 1],
    "extractors": {"mnist": "classifier", "celeba": "classifier"},
    "n_samples": {"mnist": 100, "celeba": 100},
}


def put(root, ds, model, seed, sampler, rec, gen):
    path = root / ds / model / f"seed{seed}" / sampler / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"fid_rec": rec, "fid_gen": gen, "extractor": "classifier", "n_samples": 100}))


def test_collect_averages_seeds_and_marks_missing(tmp_path):
    put(tmp_path, "mnist", "rae_l2", 0, "gmm", 1.0, 3.0)
    put(tmp_path, "mnist", "rae_l2", 1, "gmm", 2.0, 5.0)
    put(tmp_path, "celeba", "ae", 0, "prior", 7.0, 9.0)
    df = collect("table3", SPEC, tmp_path).set_index(["row", "dataset", "metric"])
    cell = df.loc[("RAE + GMM (L2)", "mnist", "fid_gen")]
    assert cell["ours"] == 4.0 and cell["ours_std"] == pytest.approx(math.sqrt(2)) and cell["n_seeds"] == 2
    assert cell["paper"] == 7.30
    assert math.isnan(df.loc[("RAE + GMM (L2)", "celeba", "fid_rec"), "ours"])
    assert df.loc[("AE", "celeba", "fid_rec"), "ours"] == 7.0 and df.loc[("AE", "celeba", "fid_rec"), "n_seeds"] == 1
    assert pd.isna(df.loc[("AE", "celeba", "fid_rec"), "paper"])


def test_latex_layout(tmp_path):
    put(tmp_path, "mnist", "rae_l2", 0, "gmm", 1.0, 3.0)
    tex = to_latex("table3", collect("table3", SPEC, tmp_path))
    assert tex.count(r"\multicolumn{4}{c}") == 2  # two datasets x (Rec., Gen.) x (ours, paper)
    assert r"\multicolumn{2}{c}{Rec.}" in tex and "Ours & Paper" in tex
    row = next(line for line in tex.splitlines() if line.startswith("RAE + GMM"))
    cells = [c.strip(" \\") for c in row.split("&")[1:]]
    assert cells[:4] == ["1.00", "6.15", "3.00", "7.30"]
    assert cells[4:] == ["--", "29.05", "--", "35.30"]
    assert "not on the published scale" in tex


def test_published_transcription_spot_checks():
    # a few cells re-read from the talk's Table 3 (and Table 1) to guard against typos in the dict shape
    assert TABLE3_FID["FlexAE"]["celeba"] == {"fid_rec": 20.47, "fid_gen": 24.72}
    assert TABLE3_FID["VAE"]["cifar10"]["fid_rec"] == 176.5
    assert published("table1", "WAE-MMD", "mnist", "fid_gen") == 115.0
    assert published("table3", "MaskAAE", "fashion_mnist", "fid_gen") is None


def test_write_table_is_atomic_and_complete(tmp_path):
    put(tmp_path, "mnist", "ae", 0, "prior", 1.0, 2.0)
    write_table("table3", SPEC, tmp_path, tmp_path / "t.csv", tmp_path / "t.tex")
    assert len(pd.read_csv(tmp_path / "t.csv")) == 2 * 2 * 2
    assert not list(tmp_path.glob(".t.*"))


def test_table5_is_transposed_with_published_values(tmp_path):
    spec = {"datasets": ["mnist"], "seeds": [0],
            "rows": [{"label": f"Model {k}", "model": f"flexae_cap{k}", "sampler": "prior", "paper": f"Model {k}"}
                     for k in (1, 2)]}
    put(tmp_path, "mnist", "flexae_cap2", 0, "prior", 11.0, 12.0)
    df = collect("table5", spec, tmp_path)
    assert df.set_index(["row", "metric"]).loc[("Model 2", "fid_gen"), "paper"] == 53.93
    tex = to_latex("table5", df)
    assert r"\multicolumn{4}{c}{Model 1}" in tex and "Dataset & Ours & Paper" in tex
    line = next(l for l in tex.splitlines() if l.startswith("MNIST"))
    assert [c.strip(" \\") for c in line.split("&")[1:]] == ["--", "60.51", "--", "55.49", "11.00", "21.00", "12.00", "53.93"]


def test_placeholder_row_shows_paper_value_only(tmp_path):
    spec = {**SPEC, "rows": [{"label": "MaskAAE", "paper": "MaskAAE"}]}
    df = collect("table3", spec, tmp_path)
    assert df["ours"].isna().all() and df.loc[df.dataset == "mnist", "paper"].tolist() == [8.46, 10.52]


@pytest.mark.parametrize("channels,n", [(1, 64), (3, 10), (1, 3)])
def test_sample_grid_is_pixel_identical_to_torchvisions(tmp_path, channels, n):
    """Our PNG grid (no torchvision import in evaluation jobs) equals torchvision's save_image(make_grid)."""
    import numpy as np
    import torch
    from PIL import Image
    from torchvision.utils import save_image

    from rae_bench.grid import save_grid

    x = torch.randint(0, 256, (n, channels, 12, 9), generator=torch.Generator().manual_seed(n), dtype=torch.uint8)
    save_grid(x, tmp_path / "ours.png", nrow=8)
    save_image(x.float() / 255, tmp_path / "theirs.png", nrow=8)
    ours, theirs = (np.asarray(Image.open(tmp_path / f)) for f in ("ours.png", "theirs.png"))
    assert ours.shape == theirs.shape and np.array_equal(ours, theirs)


def test_cells_from_runs_short_of_their_warmup_say_so_in_the_caption(tmp_path):
    put(tmp_path, "mnist", "rae_l2", 0, "gmm", 1.0, 3.0)
    path = tmp_path / "mnist" / "rae_l2" / "seed0" / "gmm" / "metrics.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "unfinished_warmup": "mask not polarised (50% binary)"}))
    df = collect("table3", SPEC, tmp_path)
    assert set(df[df.model == "rae_l2"].query("dataset == 'mnist'")["unfinished_warmup"]) == {"mask not polarised (50% binary)"}
    caption = next(line for line in to_latex("table3", df).splitlines() if line.startswith(r"\caption"))
    assert r"Not past warm-up: RAE + GMM (L2) (MNIST): mask not polarised (50\% binary)." in caption
    put(tmp_path / "other", "mnist", "rae_l2", 0, "gmm", 1.0, 3.0)
    assert "warm-up" not in to_latex("table3", collect("table3", SPEC, tmp_path / "other"))


def test_cells_are_mean_sd_with_n_in_caption_and_for_short_cells(tmp_path):
    """Three seeds: each cell is mean +- sd, the caption states n = 3, a cell with two seeds says n=2."""
    spec = {**SPEC, "seeds": [0, 1, 2]}
    for seed, (rec, gen) in enumerate([(1.0, 3.0), (2.0, 5.0), (3.0, 7.0)]):
        put(tmp_path, "mnist", "rae_l2", seed, "gmm", rec, gen)
        if seed < 2:
            put(tmp_path, "mnist", "ae", seed, "prior", rec, gen)
    df = collect("table3", spec, tmp_path)
    cell = df.set_index(["row", "dataset", "metric"]).loc[("RAE + GMM (L2)", "mnist", "fid_gen")]
    assert cell["ours"] == 5.0 and cell["ours_std"] == pytest.approx(2.0) and cell["n_seeds"] == 3
    tex = to_latex("table3", df)
    assert r"Our cells: mean $\pm$ sd over $n=3$ seeds. A subscript $n$ marks a cell with fewer seeds." in tex
    rae = next(line for line in tex.splitlines() if line.startswith("RAE + GMM"))
    ae = next(line for line in tex.splitlines() if line.startswith("AE &"))
    assert r"$5.00\pm2.00$" in rae and "_{n=" not in rae
    assert r"$4.00\pm1.41_{n=2}$" in ae
    one = to_latex("table3", collect("table3", {**SPEC, "seeds": [0]}, tmp_path))
    assert "Our cells: one seed each, so no spread" in one and r"\pm" not in one.split(r"\midrule")[1]


def test_seeds3_profile_adds_seeds_and_keeps_the_profile():
    from rae_bench.config.validate import load_config

    root = __import__("pathlib").Path(__file__).resolve().parents[2] / "config"
    quick = load_config([root / "config.yaml"])
    three = load_config([root / "config.yaml", root / "seeds3.yaml"])
    assert three["seeds"] == [0, 1, 2] and quick["seeds"] == [0]
    assert {k: v for k, v in three.items() if k != "seeds"} == {k: v for k, v in quick.items() if k != "seeds"}
    paper = load_config([root / "config.yaml", root / "paper.yaml", root / "seeds3.yaml"])
    assert paper["seeds"] == [0, 1, 2] and paper["arch"] == "paper"


def test_sweep_table_and_html_show_the_spread_and_n(tmp_path):
    from rae_bench.report.html import table_html
    from rae_bench.report.sweeps import collect_sweep, table2_latex

    spec = {"kind": "sweep", "datasets": ["mnist"], "models": ["maskaae"], "latent_dims": {"mnist": [16, 32]},
            "sampler": "prior", "seeds": [0, 1], "true_n": {"mnist": None}, "labels": {"maskaae": "MaskAAE"},
            "paper_models": {"maskaae": "MAAE"}, "paper_columns": {"mnist": "mnist"}}
    for seed, dims in ((0, 9), (1, 11)):
        for m in (16, 32):
            if m == 32 and seed == 1:
                continue
            path = tmp_path / "mnist" / f"maskaae_m{m}" / f"seed{seed}" / "prior" / "metrics.json"
            path.parent.mkdir(parents=True)
            path.write_text(json.dumps({"active_dims": dims, "nac": 0.02, "fid_gen": 1.0}))
    df = collect_sweep(spec, tmp_path)
    tex = table2_latex(df[df.metric.isin(["active_dims", "nac"])])
    assert r"Our cells: mean $\pm$ sd over $n=2$ seeds." in tex
    row16 = next(line for line in tex.splitlines() if line.startswith("16 &"))
    row32 = next(line for line in tex.splitlines() if line.startswith("32 &"))
    assert r"$10\pm1.4$" in row16 and "$9_{n=1}$" in row32
    page = table_html("table3", collect("table3", {**SPEC, "seeds": [0, 1]}, tmp_path / "none"))
    assert "one seed" not in page
    put(tmp_path / "t", "mnist", "ae", 0, "prior", 1.0, 3.0)
    put(tmp_path / "t", "mnist", "ae", 1, "prior", 3.0, 5.0)
    page = table_html("table3", collect("table3", {**SPEC, "seeds": [0, 1]}, tmp_path / "t"))
    assert "2.00 ± 1.41" in page and "mean ± sd over up to n = 2 seeds" in page


def test_caption_names_the_cells_whose_seed_spread_is_large():
    """A several-seed cell with sd above SPREAD_LIMIT of its mean is named with its mean +- sd; a tight cell,
    and any one-seed cell, is not."""
    from rae_bench.report.tables import SPREAD_LIMIT, spread_notes

    def cell(row, ours, sd, n):
        return {"row": row, "dataset": "celeba", "metric": "fid_rec", "ours": ours, "ours_std": sd, "n_seeds": n}

    df = pd.DataFrame([cell("MaskAAE", 57.0, 57.0 * (SPREAD_LIMIT + 0.05), 3), cell("AE", 40.0, 40.0 * (SPREAD_LIMIT - 0.05), 3),
                       cell("VAE", 50.0, float("nan"), 1)])
    note = spread_notes(df)
    assert "MaskAAE (CelebA) Rec. 57.0 $\\pm$ 11.4" in note and "AE (" not in note.replace("MaskAAE (", "")
    assert "VAE" not in note and "15\\%" in note
    assert spread_notes(df[df.row != "MaskAAE"]) == ""
