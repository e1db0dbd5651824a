"""Latent sweeps: config expansion, Table 2 and Figures 2 and 5 from metrics.json files."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.errors import ConfigError
from rae_bench.report.specs import figure_spec, required_metrics, table_spec
from rae_bench.report.sweeps import collect_sweep, figure2, figure5, table2_latex

from test_config import DEFAULT, write

SWEEP = {
    "datasets": {"synth": {"source": "synthetic", "options": {"n": 4, "d": 12}, "latent_dim": 8}},
    "sweeps": {"latent": {"models": ["wae_mmd", "ae"], "datasets": ["synth", "mnist"],
                          "latent_dims": {"synth": [2, 4, 8], "mnist": [16, 32]},
                          "labels": {"wae_mmd": "WAE", "ae": "AE"}, "paper_models": {"wae_mmd": "WAE", "ae": "MAAE"}}},
    "figures": {"figure2": {"sweep": "latent", "model": "wae_mmd"},
                "figure5": {"sweep": "latent", "models": ["wae_mmd", "ae"], "mask_model": "ae"}},
    "tables": {"table2": {"sweep": "latent", "datasets": ["mnist"]}},
}


@pytest.fixture()
def cfg(tmp_path):
    return load_config([DEFAULT, write(tmp_path, SWEEP)])


def test_sweep_expands_into_runs(cfg):
    assert {"wae_mmd_m2", "wae_mmd_m4", "wae_mmd_m8", "wae_mmd_m16", "wae_mmd_m32", "ae_m2"} <= set(cfg["models"])
    run = resolve_run(cfg, "synth", "wae_mmd_m2", 0)
    assert run["latent_dim"] == 2 and run["model"] == "wae_mmd"
    paths = required_metrics(table_spec(cfg, "table2"))
    assert sorted(paths) == sorted(f"results/mnist/{m}_m{d}/seed0/prior/metrics.json" for m in ("wae_mmd", "ae") for d in (16, 32))


def test_figure_model_outside_the_sweep_is_rejected(tmp_path):
    bad = {**SWEEP, "figures": {"figure2": {"sweep": "latent", "model": "vae"}}}
    with pytest.raises(ConfigError, match="figure 'figure2' draws model 'vae'"):
        load_config([DEFAULT, write(tmp_path, bad)])


def fake_results(root, spec):
    """FID lowest at m = n; the masked model keeps min(m, n) dimensions."""
    for ds in spec["datasets"]:
        n = spec["true_n"][ds] or 16
        for model in spec["models"]:
            for m in spec["latent_dims"][ds]:
                path = root / ds / f"{model}_m{m}" / "seed0" / "prior" / "metrics.json"
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps({"fid_gen": 10.0 + abs(m - n), "fid_rec": 1.0, "precision": 0.9,
                                            "recall": 0.8, "nac": 0.01 * m, "active_dims": min(m, n)}))


def test_figures_and_table2(cfg, tmp_path, monkeypatch):
    spec = figure_spec(cfg, "figure5")
    fake_results(tmp_path / "results", spec)
    df = collect_sweep(spec, tmp_path / "results")
    fig2 = figure2(df, "wae_mmd", tmp_path / "figures" / "figure2")
    for ext in ("pdf", "png", "csv", "tex"):
        assert (tmp_path / "figures" / f"figure2.{ext}").stat().st_size > 0
    synth = fig2[fig2.dataset == "synth"].set_index("m")["scaled_fid"]
    assert synth.max() == 1.0 and synth.idxmin() == 4  # lowest at the true n
    assert "includegraphics" in (tmp_path / "figures" / "figure2.tex").read_text()
    # redrawn from the same results, byte for byte (no creation date in the PDF)
    first = {ext: (tmp_path / "figures" / f"figure2.{ext}").read_bytes() for ext in ("pdf", "png")}
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "0")  # a redraw in 1970: a dated PDF would differ
    figure2(df, "wae_mmd", tmp_path / "figures" / "figure2")
    assert all((tmp_path / "figures" / f"figure2.{ext}").read_bytes() == first[ext] for ext in first)
    fig5 = figure5(df, ["wae_mmd", "ae"], "ae", tmp_path / "figures" / "figure5")
    assert set(fig5.columns) >= {"wae_mmd_fid_gen", "ae_active_dims"}
    assert fig5[fig5.dataset == "synth"].set_index("m")["ae_active_dims"].to_dict() == {2: 2, 4: 4, 8: 4}
    t2 = collect_sweep(table_spec(cfg, "table2"), tmp_path / "results")
    tex = table2_latex(t2[t2.metric.isin(["active_dims", "nac"])])
    line = next(l for l in tex.splitlines() if l.startswith("16 &"))
    # WAE: m_A ours 16 / paper 16, NAC ours 0.160 / paper 0.040; "AE" sits beside the paper's MAAE: 9 and 0.030
    assert [c.strip(" \\") for c in line.split("&")[1:]] == ["16", "16", "0.160", "0.040", "16", "9", "0.160", "0.030"]


def test_figure5_caption_reports_the_true_dimension(cfg, tmp_path):
    """The caption gives the mask model's m_A at every m >= n with the seeds' range, counts the capacities within
    n +- 1 over every seed, and says how many runs stopped before the polarising schedule reached its cap."""
    spec = {**figure_spec(cfg, "figure5"), "seeds": [0, 1]}
    fake_results(tmp_path / "results", spec)  # seed 0: m_A = min(m, n), n = 4 on "synth"
    for m, dims in ((4, 5), (8, 7)):  # seed 1: m_A 5 at m = 4 (within n +- 1), 7 at m = 8 (not), short of its cap
        path = tmp_path / "results" / "synth" / f"ae_m{m}" / "seed1" / "prior" / "metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"fid_gen": 10.0, "active_dims": dims, "unfinished_warmup": "mask not polarised"}))
    df = collect_sweep(spec, tmp_path / "results")
    figure5(df, ["wae_mmd", "ae"], "ae", tmp_path / "figure5")
    tex = (tmp_path / "figure5.tex").read_text()
    assert (r"AE with m $\geq$ n: synth (n = 4): $m_A$ 4.5 (4-5) at m = 4, 5.5 (4-7) at m = 8; "
            r"within n $\pm$ 1 at 1 of 2.") in tex
    assert "In 2 of these 4 AE runs the mask's polarising weight stopped short of its cap" in tex
    assert r"m\_A" not in tex  # every m_A typeset as math, none escaped as text
