"""KID: torch-fidelity's value on the same features, the unbiased estimator by definition, metrics.json and tables."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rae_bench.metrics import FeatureSpace, KID_SUBSET_SIZE, KID_SUBSETS, kid, mmd2_unbiased, polynomial_kernel
from rae_bench.report.tables import collect, to_latex


def _sets(n1: int = 150, n2: int = 120, d: int = 16, shift: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n1, d)), rng.normal(loc=shift, scale=1.1, size=(n2, d))


def test_matches_torch_fidelity():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    f1, f2 = _sets()
    # (7, 50): the per-subset kernels; (5, 120): subsets summed from the whole sets' kernels (the cheaper one)
    for subsets, size, seed in ((7, 50, 3), (5, 120, 11)):
        ref = metric_kid.kid_features_to_metric(
            torch.from_numpy(f1), torch.from_numpy(f2), kid_subsets=subsets, kid_subset_size=size, rng_seed=seed,
            kid_kernel="poly", kid_kernel_poly_degree=3, kid_kernel_poly_gamma=None, kid_kernel_poly_coef0=1,
            verbose=False)
        ours = kid(f1, f2, subsets=subsets, subset_size=size, seed=seed)
        assert ours["kid"] > 0.01  # the sets differ: a real value, not round-off
        assert ours["kid"] == pytest.approx(ref[metric_kid.KEY_METRIC_KID_MEAN], rel=1e-10)
        assert ours["kid_std"] == pytest.approx(ref[metric_kid.KEY_METRIC_KID_STD], rel=1e-8)
        assert ours["kid_subset_size"] == size and ours["kid_subsets"] == subsets


def test_defaults_are_torch_fidelitys():
    defaults = pytest.importorskip("torch_fidelity.defaults").DEFAULTS
    assert (KID_SUBSETS, KID_SUBSET_SIZE) == (defaults["kid_subsets"], defaults["kid_subset_size"])
    assert (defaults["kid_kernel"], defaults["kid_kernel_poly_degree"], defaults["kid_kernel_poly_coef0"]) == ("poly", 3, 1)


def test_unbiased_estimator_by_its_definition():
    """MMD^2_u = mean_{i!=j} k(x_i, x_j) + mean_{i!=j} k(y_i, y_j) - 2 mean_{i,j} k(x_i, y_j), k = (x.y/d + 1)^3."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(6, 3)), rng.normal(loc=0.5, size=(6, 3))
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    expected = xx + yy - 2 * xy
    got = mmd2_unbiased(polynomial_kernel(x, x), polynomial_kernel(x, y), polynomial_kernel(y, y))
    assert got == pytest.approx(expected, rel=1e-12)
    # one subset holding every point: KID is that number, with no spread over subsets
    whole = kid(x, y, subsets=4, subset_size=m)
    assert whole["kid"] == pytest.approx(expected, rel=1e-12) and whole["kid_std"] == pytest.approx(0, abs=1e-12)


def test_near_zero_for_one_distribution_and_seeded():
    f1, _ = _sets(n1=400, seed=2)
    same = np.random.default_rng(3).normal(size=(400, 16))
    _, other = _sets(n2=400, shift=0.5, seed=4)
    close, far = kid(f1, same, subsets=20, subset_size=100), kid(f1, other, subsets=20, subset_size=100)
    assert abs(close["kid"]) < 3 * close["kid_std"] + 1e-3  # unbiased: centred on 0, may dip below
    assert far["kid"] > 10 * abs(close["kid"]) and far["kid"] > 5 * far["kid_std"]
    assert kid(f1, other, subsets=5, subset_size=50, seed=9) == kid(f1, other, subsets=5, subset_size=50, seed=9)
    assert kid(f1, other, subsets=5, subset_size=50, seed=9)["kid"] != kid(f1, other, subsets=5, subset_size=50, seed=8)["kid"]


def test_subset_size_capped_and_errors():
    f1, f2 = _sets(n1=30, n2=20)
    assert kid(f1, f2, subsets=3)["kid_subset_size"] == 20  # default 1000, capped at the smaller set
    with pytest.raises(ValueError, match="at least 2"):
        kid(f1[:1], f2)
    with pytest.raises(ValueError, match="dimensions differ"):
        kid(f1, f2[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        kid(np.full((4, 2), np.nan), f2[:, :2])


def test_evaluate_writes_kid_of_the_fid_features(tmp_path, tiny_ae_pair):
    """evaluate(): metrics.json's kid is kid(sample features, stored reference features, run seed)."""
    from rae_bench.evaluate import draw_samples, evaluate, load_pair
    from rae_bench.metrics import load_features

    pair = tiny_ae_pair(12)
    source, raw, reference = pair.source, pair.raw, pair.reference
    metrics = evaluate(tmp_path / "run" / "model.pt", tmp_path / "run" / "prior" / "sampler.pt", tmp_path / "run" / "prior",
                       features=FeatureSpace.of(raw), reference=reference,
                       n_samples=12, source=source)
    stored = json.loads((tmp_path / "run" / "prior" / "metrics.json").read_text())
    assert stored["kid"] == metrics["kid"] and math.isfinite(stored["kid"]) and stored["kid_std"] >= 0

    model, blob, smp = load_pair(tmp_path / "run" / "model.pt", tmp_path / "run" / "prior" / "sampler.pt", "cpu")
    samples = draw_samples(model, smp, 12, blob["run"]["seed"], torch.device("cpu"))
    expected = kid(raw(samples), load_features(reference), seed=5)
    assert stored["kid"] == pytest.approx(expected["kid"], rel=1e-6)
    assert stored["kid_std"] == pytest.approx(expected["kid_std"], rel=1e-6, abs=1e-12)


# --------------------------------------------------------------------------- tables


SPEC = {"kind": "rows", "datasets": ["mnist"], "seeds": [0, 1],
        "rows": [{"label": "AE", "model": "ae", "sampler": "prior"}, {"label": "VAE", "model": "vae", "sampler": "prior", "paper": "VAE"}]}


def _write_metrics(results, model: str, seed: int, **values) -> None:
    path = results / "mnist" / model / f"seed{seed}" / "prior" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"extractor": "classifier", "n_samples": 100, "fid_rec": 1.0, "fid_gen": 2.0, **values}))


def test_table_metric_kid_from_config(tmp_path):
    for seed, value in ((0, 0.0123), (1, 0.0145)):
        _write_metrics(tmp_path, "ae", seed, kid=value, kid_std=0.001)
    _write_metrics(tmp_path, "vae", 0)  # written before KID existed: a dash
    default = collect("table3", SPEC, tmp_path)
    assert list(dict.fromkeys(default["metric"])) == ["fid_rec", "fid_gen"]  # defaults unchanged

    df = collect("table3", {**SPEC, "metrics": ["fid_gen", "kid"]}, tmp_path)
    assert list(dict.fromkeys(df["metric"])) == ["fid_gen", "kid"]
    ae = df[(df.row == "AE") & (df.metric == "kid")].iloc[0]
    assert ae.ours == pytest.approx(0.0134) and ae.n_seeds == 2 and math.isnan(ae.paper)
    tex = to_latex("table3", df)
    assert "{KID}" in tex and "{Gen.}" in tex and "{Rec.}" not in tex
    assert r"$0.0134\pm0.0016$" in tex  # four decimals for KID
    assert "VAE & $2.00$" not in tex and tex.count("--") >= 2


def test_table_metrics_validated(tmp_path):
    from rae_bench.config.validate import validate_config
    from rae_bench.errors import ConfigError
    from rae_bench.report.specs import table_spec

    with pytest.raises(ConfigError, match="fid_foo"):
        collect("table3", {**SPEC, "metrics": ["fid_foo"]}, tmp_path)
    from rae_bench.config.files import DEFAULT_CONFIG
    from rae_bench.config.validate import load_config

    cfg = load_config([DEFAULT_CONFIG])
    cfg["tables"]["table3"]["metrics"] = ["fid_gen", "kid"]
    validate_config(cfg)
    assert table_spec(cfg, "table3")["metrics"] == ["fid_gen", "kid"]
    cfg["tables"]["table3"]["metrics"] = ["fid_gen", "kdi"]
    with pytest.raises(ConfigError, match="kdi"):
        validate_config(cfg)
