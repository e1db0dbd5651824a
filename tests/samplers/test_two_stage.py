"""The two-stage VAE sampler: it learns the code distribution, and its fit and state are reproducible."""
from __future__ import annotations

import pytest
import torch

from rae_bench.errors import ConfigError
from rae_bench.models import build_model
from rae_bench.samplers import build_sampler, load_sampler, save_sampler
from rae_bench.samplers.two_stage import TwoStageSampler

# a correlated, non-centred 4-d Gaussian: correlations up to 0.6, the smallest
# eigenvalue of its correlation matrix 0.3
MEAN = torch.tensor([2.0, -1.0, 0.5, 3.0])
CHOL = torch.tensor([[1.2, 0.0, 0.0, 0.0], [0.6, 0.8, 0.0, 0.0], [0.0, 0.3, 0.6, 0.0], [-0.5, 0.0, 0.3, 0.9]])
COV = CHOL @ CHOL.T
FAST = {"width": 64, "depth": 2, "epochs": 20, "batch_size": 100, "lr": 3e-3}


def gaussian_codes(n: int = 4000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 4, generator=g) @ CHOL.T + MEAN


def stage1():
    torch.manual_seed(0)
    return build_model("ae", (12,), 4, "tiny")


def moments_close(x: torch.Tensor) -> bool:
    """Means within 0.15; covariance entries within 0.2 * max(1, |entry|)."""
    cov = torch.cov(x.T)
    return bool((x.mean(0) - MEAN).abs().max() < 0.15
                and ((cov - COV).abs() / COV.abs().clamp_min(1.0)).max() < 0.2)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def fitted(one_thread) -> TwoStageSampler:
    sampler = build_sampler("two_stage", stage1(), FAST, seed=0)
    sampler.fit(gaussian_codes())
    return sampler


def test_samples_match_mean_and_covariance_of_codes(fitted):
    x = fitted.sample(5000, torch.Generator().manual_seed(1))
    assert x.shape == (5000, 4) and x.dtype == torch.float32
    assert moments_close(x), (x.mean(0), torch.cov(x.T))
    # the tolerance has teeth: the prior, and a fit that ignores the correlations, both fail it
    g = torch.Generator().manual_seed(1)
    assert not moments_close(torch.randn(5000, 4, generator=g))
    codes = gaussian_codes()
    independent = torch.randn(5000, 4, generator=g) * codes.std(0) + codes.mean(0)
    assert not moments_close(independent)


def test_code_size_follows_the_model_and_latent_size_is_a_parameter():
    model = stage1()
    codes = gaussian_codes(300)
    sampler = build_sampler("two_stage", model, {**FAST, "epochs": 1, "latent_dim": 2}, seed=0)
    sampler.fit(codes)
    assert sampler.vae.latent_dim == 2 and sampler.vae.data_dim == 4
    out = sampler.sample(7, torch.Generator().manual_seed(0))
    assert out.shape == (7, 4) and out.device == next(model.parameters()).device


def test_same_seed_same_fit_and_global_rng_untouched():
    codes = gaussian_codes(500)
    params = {**FAST, "epochs": 2}
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = build_sampler("two_stage", stage1(), params, seed=3)
    torch.set_rng_state(before)
    a.fit(codes)
    assert torch.equal(torch.get_rng_state(), before)
    b = build_sampler("two_stage", stage1(), params, seed=3)
    b.fit(codes)
    for (ka, va), (kb, vb) in zip(a.state_dict()["vae"].items(), b.state_dict()["vae"].items()):
        assert ka == kb and torch.equal(va, vb)
    c = build_sampler("two_stage", stage1(), params, seed=4)
    c.fit(codes)
    assert not torch.equal(a.state_dict()["vae"]["decoder.head.weight"], c.state_dict()["vae"]["decoder.head.weight"])


def test_save_load_round_trip_gives_identical_samples(fitted, tmp_path):
    path = tmp_path / "sampler.pt"
    save_sampler(fitted, path)
    blob = torch.load(path, weights_only=True)  # plain tensors and numbers only
    assert blob["sampler"] == "two_stage"
    loaded = load_sampler(path, stage1())
    assert isinstance(loaded, TwoStageSampler)
    a = fitted.sample(50, torch.Generator().manual_seed(7))
    b = loaded.sample(50, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)
    assert not torch.equal(a, loaded.sample(50, torch.Generator().manual_seed(8)))


def test_decoder_mean_option_and_bad_parameters():
    codes = gaussian_codes(300)
    sampler = build_sampler("two_stage", stage1(), {**FAST, "epochs": 1, "add_noise": False}, seed=0)
    sampler.fit(codes)
    u = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = sampler.vae.decoder(u) * sampler.scale + sampler.shift
    assert torch.allclose(sampler.sample(5, torch.Generator().manual_seed(0)), expected)
    with pytest.raises(ConfigError, match="no parameter"):
        build_sampler("two_stage", stage1(), {"widht": 3})
    with pytest.raises(ConfigError, match="positive"):
        build_sampler("two_stage", stage1(), {"epochs": 0})


def test_posterior_samples_fit_the_aggregate_posterior_not_the_means(one_thread):
    """Dai and Wipf's stage 2 learns q(z) = E_x q(z|x) from fresh draws mu + sigma * eps: with a posterior
    spread sigma the samples' covariance is cov(mu) + sigma^2 I; fitting the means alone gives cov(mu)."""
    sigma = 0.8
    means = gaussian_codes()  # the correlated Gaussian of the other tests
    spread = torch.full_like(means, sigma)
    target = COV + sigma**2 * torch.eye(4)
    draws = {}
    for posterior in (True, False):
        sampler = build_sampler("two_stage", stage1(), {**FAST, "posterior_samples": posterior}, seed=0)
        sampler.fit(means, spread)
        draws[posterior] = torch.cov(sampler.sample(5000, torch.Generator().manual_seed(1)).T)
    rel = lambda cov: float(((cov - target).abs() / target.abs().clamp_min(1.0)).max())  # noqa: E731
    assert rel(draws[True]) < 0.2, draws[True]
    assert rel(draws[False]) > 0.3, draws[False]  # the means alone miss the posterior spread


def test_stage_two_nets_concatenate_input_and_hidden_layer():
    """Dai and Wipf's stage-2 heads read [input, last hidden layer] (two_stage_vae_model.py L81, L93)."""
    from rae_bench.samplers.two_stage import SecondStageVAE

    vae = SecondStageVAE(4, 3, width=16, depth=2)
    assert vae.encoder.head.in_features == 4 + 16 and vae.decoder.head.in_features == 3 + 16
    plain = SecondStageVAE(4, 3, width=16, depth=2, skip=False)
    assert plain.encoder.head.in_features == 16
