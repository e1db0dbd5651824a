"""k-NN precision/recall and density/coverage (rae_bench.metrics.knn) against clovaai's prdc, and FID-infinity."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from rae_bench.metrics import FeatureSpace, fid_infinity, frechet_distance, gaussian_stats, prdc

reference = pytest.importorskip("prdc")  # the test extra pins prdc==0.2


def _reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = reference.compute_prdc(real_features=real, fake_features=fake, nearest_k=k)
    return {f"knn_{m}" if m in ("precision", "recall") else m: float(v) for m, v in out.items()}


def _fixed(n: int, d: int, seed: int, shift: float = 0.0) -> np.ndarray:
    # small integers: every distance is exact in float64, so ties fall the same way in both implementations
    return np.random.default_rng(seed).integers(-4, 5, size=(n, d)).astype(np.float64) + shift


@pytest.mark.parametrize("k", [3, 5])
def test_matches_prdc_on_overlapping_sets(k):
    real, fake = _fixed(120, 16, 0), _fixed(90, 16, 1, shift=0.5)
    ours = prdc(real, fake, k=k, block_elements=1000)  # many strips and a partial last one
    for name, value in _reference(real, fake, k).items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert 0 < ours["knn_precision"] < 1 and 0 < ours["coverage"] < 1


def test_matches_prdc_on_gaussian_features():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(150, 32)), rng.normal(0.3, 1.2, size=(130, 32))
    ours = prdc(real, fake, k=5, block_elements=777)
    for name, value in _reference(real, fake, 5).items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name


def test_identical_sets():
    real = _fixed(100, 8, 4)
    ours = prdc(real, real.copy(), k=5)
    ref = _reference(real, real.copy(), 5)
    for name, value in ref.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert ours["knn_precision"] == ours["knn_recall"] == ours["coverage"] == 1.0


def test_disjoint_sets():
    real, fake = _fixed(80, 8, 5), _fixed(70, 8, 6, shift=100.0)
    ours = prdc(real, fake, k=5, block_elements=500)
    ref = _reference(real, fake, 5)
    for name, value in ref.items():
        assert ours[name] == pytest.approx(value, abs=1e-6), name
    assert all(ours[m] == 0.0 for m in ("knn_precision", "knn_recall", "density", "coverage"))


def test_strip_size_does_not_change_the_result():
    real, fake = np.random.default_rng(7).normal(size=(2, 200, 10))
    assert prdc(real, fake, block_elements=10**8) == prdc(real, fake, block_elements=300)


def test_needs_more_points_than_k():
    with pytest.raises(ValueError, match="more than 5 feature vectors"):
        prdc(np.zeros((5, 3)), np.zeros((10, 3)), k=5)


def test_fid_infinity_removes_the_1_over_n_bias():
    rng = np.random.default_rng(0)
    d = 8
    mu_ref, sigma_ref = np.full(d, 0.5), np.eye(d)
    feats = rng.normal(size=(4000, d))  # true FID: |0.5|^2 * 8 = 2.0
    out = fid_infinity(feats, mu_ref, sigma_ref, points=10, seed=0)
    fid_n = frechet_distance(*gaussian_stats(feats[:400]), mu_ref, sigma_ref)
    assert abs(out["fid_inf"] - 2.0) < abs(fid_n - 2.0)
    assert abs(out["fid_inf"] - 2.0) < 0.1
    assert out["fid_inf_points"] == 10 and out["fid_inf_min_n"] == 400


def test_evaluate_writes_knn_metrics_and_fid_infinity(tmp_path, tiny_ae_pair):
    """evaluate(): metrics.json holds prdc(reference features, sample features) and, when asked, fid_gen_inf."""
    import json

    import torch

    from rae_bench.evaluate import draw_samples, evaluate, load_pair
    from rae_bench.metrics import load_features, load_stats

    pair = tiny_ae_pair(20)
    source, raw, reference = pair.source, pair.raw, pair.reference
    evaluate(tmp_path / "run" / "model.pt", tmp_path / "run" / "prior" / "sampler.pt", tmp_path / "run" / "prior",
             features=FeatureSpace.of(raw), reference=reference,
             n_samples=20, source=source, knn_k=3, fid_infinity_points=4)
    stored = json.loads((tmp_path / "run" / "prior" / "metrics.json").read_text())
    model, blob, smp = load_pair(tmp_path / "run" / "model.pt", tmp_path / "run" / "prior" / "sampler.pt", "cpu")
    samples = raw(draw_samples(model, smp, 20, blob["run"]["seed"], torch.device("cpu")))
    expected = prdc(load_features(reference), samples, k=3)
    assert {k: stored[k] for k in expected} == expected and stored["n_samples"] == 20
    assert stored["fid_gen_inf"] == pytest.approx(fid_infinity(samples, *load_stats(reference), 4, seed=5)["fid_inf"])
    assert stored["fid_inf_points"] == 4 and stored["fid_inf_min_n"] == 2


def test_table_columns_and_caption_say_which_n(tmp_path):
    from rae_bench.config.files import DEFAULT_CONFIG
    from rae_bench.config.validate import load_config, validate_config
    from rae_bench.report.tables import collect, to_latex

    spec = {"kind": "rows", "datasets": ["mnist"], "seeds": [0],
            "rows": [{"label": "AE", "model": "ae", "sampler": "prior"}]}
    path = tmp_path / "mnist" / "ae" / "seed0" / "prior" / "metrics.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"extractor": "classifier", "n_samples": 100, "fid_rec": 1.0, "fid_gen": 2.0, '
                    '"fid_gen_inf": 1.5, "knn_precision": 0.7, "knn_recall": 0.6, "density": 0.9, "coverage": 0.8}')
    assert list(dict.fromkeys(collect("table3", spec, tmp_path)["metric"])) == ["fid_rec", "fid_gen"]  # unchanged
    metrics = ["fid_gen", "fid_gen_inf", "knn_precision", "knn_recall", "density", "coverage"]
    df = collect("table3", {**spec, "metrics": metrics}, tmp_path)
    assert df.set_index("metric")["ours"].to_dict() == {"fid_gen": 2.0, "fid_gen_inf": 1.5, "knn_precision": 0.7,
                                                         "knn_recall": 0.6, "density": 0.9, "coverage": 0.8}
    tex = to_latex("table3", df)
    assert "{Density}" in tex and "{Coverage}" in tex and "{k-NN Prec.}" in tex
    assert "100 samples" in tex and "Gen. FID-inf: N = infinity" in tex
    assert "N = infinity" not in to_latex("table3", collect("table3", spec, tmp_path))
    cfg = load_config([DEFAULT_CONFIG])
    cfg["tables"]["table3"]["metrics"] = metrics
    cfg["features"].update({"knn_k": 3, "fid_infinity": True, "fid_infinity_points": 10})
    validate_config(cfg)


def test_workflow_passes_per_sample_settings_as_params():
    from pathlib import Path

    ns = {"config": {}, "workflow": None}
    text = (Path(__file__).parents[2] / "workflow" / "rules" / "common.smk").read_text()
    start = text.index("def per_sample_args")
    exec(text[start:text.index("\ndef ", start + 1)], ns)
    assert ns["per_sample_args"]({}) == "--knn-k 5"
    assert ns["per_sample_args"]({"features": {"knn_k": 3, "fid_infinity": True}}) == "--knn-k 3 --fid-infinity-points 15"
