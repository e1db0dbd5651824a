"""The GMM sampler's two mixtures: the plain EM fit and the RAE authors' Bayesian (Dirichlet-process) fit,
their saved state, their parameter checks, and a run's own sampler settings in the config."""
from __future__ import annotations

import json

import pytest
import torch
import yaml

from rae_bench.config.resolve import resolve_sampler
from rae_bench.config.validate import load_config
from rae_bench.errors import ConfigError
from rae_bench.models import build_model
from rae_bench.samplers import build_sampler, load_sampler, save_sampler

pytestmark = pytest.mark.usefixtures("one_thread")


def two_clusters(n: int = 2000) -> torch.Tensor:
    """Two well-separated isotropic 4-d Gaussians, 60 / 40."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g) * 0.5
    x[: int(0.6 * n)] += 4.0
    return x


def model():
    torch.manual_seed(0)
    return build_model("ae", (12,), 4, "tiny")


def fitted(params: dict) -> object:
    sampler = build_sampler("gmm", model(), {"components": 10, **params}, seed=0)
    sampler.fit(two_clusters())
    return sampler


def top2(sampler) -> float:
    return float(torch.as_tensor(sampler.gmm.weights_).sort(descending=True).values[:2].sum())


def test_bayesian_mixture_puts_its_weight_on_the_two_clusters():
    bayes = fitted({"mixture": "bayesian", "weight_concentration_prior": 1e-3})
    plain = fitted({})
    assert type(bayes.gmm).__name__ == "BayesianGaussianMixture" and type(plain.gmm).__name__ == "GaussianMixture"
    # variational inference empties the eight unneeded components; EM spreads weight over all ten
    assert top2(bayes) > 0.95, bayes.gmm.weights_
    assert top2(plain) < 0.8, plain.gmm.weights_
    # and its samples still follow the data: 60 / 40 between the clusters
    x = bayes.sample(4000, torch.Generator().manual_seed(1))
    assert abs(float((x.mean(1) > 2.0).float().mean()) - 0.6) < 0.03


def test_default_weight_prior_is_one_over_components():
    s = build_sampler("gmm", model(), {"components": 8, "mixture": "bayesian"})
    assert s._new().weight_concentration_prior == pytest.approx(1 / 8)  # the authors' 1/K
    assert build_sampler("gmm", model(), {"mixture": "bayesian", "weight_concentration_prior": 0.5}
                         )._new().weight_concentration_prior == 0.5


def test_bayesian_state_round_trips_to_identical_samples(tmp_path):
    m = model()
    sampler = build_sampler("gmm", m, {"components": 10, "mixture": "bayesian"}, seed=3)
    sampler.fit(two_clusters())
    save_sampler(sampler, tmp_path / "s.pt")
    blob = torch.load(tmp_path / "s.pt", weights_only=True)
    assert blob["params"]["mixture"] == "bayesian" and set(blob["state"]) == {
        "weights_", "means_", "covariances_", "precisions_cholesky_"}
    loaded = load_sampler(tmp_path / "s.pt", m)
    assert type(loaded.gmm).__name__ == "BayesianGaussianMixture"
    a = sampler.sample(500, torch.Generator().manual_seed(7))
    b = loaded.sample(500, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, loaded.sample(500, torch.Generator().manual_seed(8)))


@pytest.mark.parametrize("params,words", [
    ({"mixture": "dirichlet"}, "mixture 'dirichlet' unknown; valid: plain, bayesian"),
    ({"mixture": "bayesian", "weight_concentration_prior": 0}, "weight_concentration_prior must be a number > 0"),
    ({"mixture": "bayesian", "weight_concentration_prior": -1.0}, "weight_concentration_prior must be a number > 0"),
    ({"mixture": "bayesian", "weight_concentration_prior": "0.1"}, "weight_concentration_prior must be a number > 0"),
    ({"mixture": "bayesian", "weight_concentration_prior": True}, "weight_concentration_prior must be a number > 0"),
    ({"weight_concentration_prior": 0.1}, "applies only to the Bayesian mixture; set mixture: bayesian"),
    ({"mixture": 1}, "parameter 'mixture' must be"),
])
def test_bad_mixture_options_are_one_line_errors(params, words):
    with pytest.raises(ConfigError) as err:
        build_sampler("gmm", model(), params)
    assert words in str(err.value) and "\n" not in str(err.value)


def config(tmp_path, overrides: dict) -> dict:
    cfg = {"training": {"epochs": 1, "batch_size": 10},
           "datasets": {"d": {"source": "synthetic", "latent_dim": 2, "options": {"n": 2, "d": 8}}},
           "models": {"a": {"model": "ae"}, "r": {"model": "ae", "samplers": {"gmm": overrides}}},
           "samplers": {"gmm": {"components": 4, "datasets": {"d": {"max_iter": 50}}}, "prior": {}},
           "tables": {"t": {"datasets": ["d"], "rows": [{"label": "A", "model": "a", "sampler": "gmm"},
                                                        {"label": "R", "model": "r", "sampler": "gmm"}]}}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return load_config([path])


def test_a_run_overrides_its_sampler_and_the_others_keep_theirs(tmp_path):
    cfg = config(tmp_path, {"mixture": "bayesian"})
    assert resolve_sampler(cfg, "d", "gmm", "a") == {"components": 4, "max_iter": 50}
    assert resolve_sampler(cfg, "d", "gmm", "r") == {"components": 4, "max_iter": 50, "mixture": "bayesian"}
    assert resolve_sampler(cfg, "d", "prior", "r") == {}


def test_the_cli_reads_the_run_of_the_model_it_fits(tmp_path):
    """fit-sampler without --params: the dataset and run of the model's config.json (train.py's record)."""
    from rae_bench.cli import _sampler_params

    cfg = config(tmp_path, {"mixture": "bayesian"})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"run": {"dataset": "d", "run": "r"}, "config_hash": "x"}))
    params = _sampler_params(None, cfg, "gmm", str(tmp_path / "run" / "model.pt"))
    assert params == {"components": 4, "max_iter": 50, "mixture": "bayesian"}


@pytest.mark.parametrize("overrides,words", [
    ({"mixture": "bayes"}, "models.r.samplers.gmm: samplers.gmm.mixture 'bayes' unknown"),
    ({"componets": 3}, "models.r.samplers.gmm: sampler 'gmm' has no parameter(s) ['componets']"),
])
def test_bad_run_sampler_overrides_are_refused_at_load(tmp_path, overrides, words):
    with pytest.raises(ConfigError) as err:
        config(tmp_path, overrides)
    assert words in str(err.value) and "\n" not in str(err.value)


def test_a_run_cannot_override_a_sampler_the_config_lacks(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "datasets": {"d": {"source": "synthetic", "latent_dim": 2, "options": {"n": 2, "d": 8}}},
        "models": {"r": {"model": "ae", "samplers": {"two_stage": {"depth": 1}}}}, "samplers": {"gmm": {}}}))
    with pytest.raises(ConfigError, match=r"models\.r\.samplers\.two_stage: no sampler 'two_stage' under samplers"):
        load_config([path])


def test_paper_profile_gives_the_rae_rows_the_authors_bayesian_gmm():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config([repo / "config" / "config.yaml", repo / "config" / "paper.yaml"])
    for run in ("ae", "rae_l2", "rae_gp", "rae_sn"):  # the RAE paper's rows, AE + GMM included (config.py L162)
        for ds in ("mnist", "celeba"):
            p = resolve_sampler(cfg, ds, "gmm", run)
            assert p["mixture"] == "bayesian" and p["weight_concentration_prior"] == 1 / p["components"], (run, ds)
    assert "mixture" not in resolve_sampler(cfg, "mnist", "gmm", "vae_learned")  # other rows keep EM
    quick = load_config([repo / "config" / "config.yaml"])
    assert "mixture" not in resolve_sampler(quick, "mnist", "gmm", "ae")  # the quick profile is unchanged
