"""Bootstrap replicates of Rec./Gen. FID over test items and samples (rae_bench.metrics.bootstrap)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from rae_bench.metrics import FeatureSpace, fid_bootstrap, frechet_distance, gaussian_stats


def features(n, d=6, shift=0.3, seed=0):
    rng = np.random.default_rng(seed)
    test = rng.normal(size=(n, d))
    return test, test + 0.2 * rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift


def test_replicates_are_seeded_and_spread_around_the_fid():
    test, recon, samples = features(400)
    a, b = fid_bootstrap(test, recon, samples, 50, seed=3), fid_bootstrap(test, recon, samples, 50, seed=3)
    assert a == b and len(a["fid_rec_boot"]) == len(a["fid_gen_boot"]) == 50
    assert fid_bootstrap(test, recon, samples, 50, seed=4) != a
    gen = frechet_distance(*gaussian_stats(samples), *gaussian_stats(test))
    boot = np.asarray(a["fid_gen_boot"])
    assert boot.std() > 0 and abs(np.median(boot) - gen) < 3 * boot.std()


def test_spread_falls_with_more_samples():
    spreads = [np.std(fid_bootstrap(*features(n), 60, seed=0)["fid_gen_boot"]) for n in (100, 1600)]
    assert spreads[1] < spreads[0] / 2  # sampling noise of FID falls roughly as 1/sqrt(N)


def test_reconstruction_pairs_must_match():
    test, recon, samples = features(50)
    with pytest.raises(ValueError, match="pairs"):
        fid_bootstrap(test, recon[:-1], samples, 5)


def test_evaluate_writes_the_replicates(tmp_path, tiny_ae_pair):
    """evaluate(fid_bootstrap_replicates=B): metrics.json holds B replicates of each FID, those of fid_bootstrap
    on the same features; without it none."""
    import torch

    from rae_bench.evaluate import draw_samples, evaluate, generate, encode_all, load_pair
    from rae_bench.metrics import load_features

    ae = tiny_ae_pair(20)
    source, raw, reference, test = ae.source, ae.raw, ae.reference, ae.test
    args = dict(features=FeatureSpace.of(raw), reference=reference,
                n_samples=20, source=source, knn_k=3)
    pair = (tmp_path / "run" / "model.pt", tmp_path / "run" / "prior" / "sampler.pt", tmp_path / "run" / "prior")
    evaluate(*pair, **args)
    assert "fid_gen_boot" not in json.loads((pair[2] / "metrics.json").read_text())
    evaluate(*pair, **args, fid_bootstrap_replicates=3)
    stored = json.loads((pair[2] / "metrics.json").read_text())
    model, blob, smp = load_pair(pair[0], pair[1], "cpu")
    cpu = torch.device("cpu")
    samples = raw(draw_samples(model, smp, 20, blob["run"]["seed"], cpu))
    recon = raw(generate(model, encode_all(model, test, cpu), cpu))
    expected = fid_bootstrap(load_features(reference), recon, samples, 3, seed=5)
    assert stored["fid_gen_boot"] == pytest.approx(expected["fid_gen_boot"])
    assert stored["fid_rec_boot"] == pytest.approx(expected["fid_rec_boot"]) and stored["fid_boot_replicates"] == 3
