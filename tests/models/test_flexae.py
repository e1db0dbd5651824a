"""FlexAE: the learned prior generator, its noise size, determinism, latent smoothing, prior chasing the codes."""
from __future__ import annotations

from functools import partial

import pytest
import torch

from rae_bench.data import DataSource, load
from rae_bench.errors import ConfigError
from rae_bench.metrics.frechet import frechet_distance, gaussian_stats

from helpers.models import tiny_model
from resume_check import whole_and_resumed


make = partial(tiny_model, "flexae")  # vectors of 12, a 4-d code


@pytest.mark.parametrize("noise_dim", [None, 4, 7, 32])
def test_generator_maps_any_noise_size_to_the_code_size(noise_dim):
    model = make(noise_dim=noise_dim)
    m_prime = 4 if noise_dim is None else noise_dim
    assert model.noise_dim == m_prime
    assert model.prior_generator[0].in_features == m_prime
    assert model.generate(torch.randn(9, m_prime)).shape == (9, 4)
    assert model.sample_prior(9).shape == (9, 4)
    assert model.encode(torch.randn(9, 12)).shape == (9, 4)


def test_noise_smaller_than_latent_is_a_config_error():
    with pytest.raises(ConfigError, match=r"noise_dim m'=3 is smaller than latent_dim m=4"):
        make(noise_dim=3)
    with pytest.raises(ConfigError, match="noise_dim"):
        make(noise_dim=4.5)


def test_an_absurd_prior_depth_is_a_config_error_not_a_hang():
    # 10**9 layers would take hours to build (the config fuzz scales values by 10**9)
    with pytest.raises(ConfigError, match=r"flexae prior generator depth must be an integer from 0 to 256, got 1000000000"):
        make(prior_depth=10**9)


def test_prior_capacity_is_configurable():
    model = make(prior_depth=3, prior_width=7)
    linears = [layer for layer in model.prior_generator if isinstance(layer, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [7, 7, 7, 4]
    assert not any(isinstance(layer, torch.nn.modules.batchnorm._BatchNorm) for layer in model.prior_generator)


def test_sample_prior_is_deterministic_for_a_fixed_seed():
    model = make()
    a = model.sample_prior(20, generator=torch.Generator().manual_seed(3))
    model.eval()
    b = model.sample_prior(20, generator=torch.Generator().manual_seed(3))
    c = model.sample_prior(20, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert not a.requires_grad
    noise = torch.randn(20, 4, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, model.generate(noise).detach())


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64), (12,)], ids=["mnist", "celeba", "vector"])
def test_latent_smoothing_trains_the_image_critic(shape):
    model = make(shape, latent_smoothing=True, n_critic=2)
    assert not hasattr(make(shape), "image_critic")
    opts = model.optimizers({"lr": 2e-3})
    assert {"image_critic", "smoothing"} <= set(opts)
    before = [p.detach().clone() for p in model.image_critic.parameters()]
    dec_before = [p.detach().clone() for p in model.decoder.parameters()]
    x = torch.rand(16, *shape, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        terms = model.train_step(x, opts)
    assert {"smooth", "img_critic", "img_gp", "img_wdist", "rec", "wdist", "gen", "enc"} <= set(terms)
    assert all(isinstance(v, float) and torch.isfinite(torch.tensor(v)) for v in terms.values())
    after = list(model.image_critic.parameters())
    # every parameter moves but the output bias, which a Wasserstein critic's loss cannot see
    assert all(not torch.equal(a, b) for a, b in zip(before[:-1], after[:-1]))
    assert any(not torch.equal(a, b) for a, b in zip(dec_before, model.decoder.parameters()))
    assert "image_critic.net.0.weight" in model.state_dict() or "image_critic.0.weight" in model.state_dict()


def test_resumed_training_equals_uninterrupted(tmp_path):
    """All randomness (prior noise, interpolation pairs and weights, penalty points) comes from the
    global RNG the trainer checkpoints, so a resumed run matches an uninterrupted one exactly."""
    run = {"dataset": "synth", "source": "synthetic", "options": {"n": 2, "d": 12, "n_train": 160, "n_test": 40},
           "n_train": None, "run": "flexae", "model": "flexae",
           "params": {"latent_smoothing": True, "n_critic": 2, "noise_dim": 6}, "latent_dim": 4, "arch": "tiny",
           "seed": 1, "training": {"epochs": 3, "batch_size": 32, "optim": {"lr": 1e-3}}}
    full, cut = whole_and_resumed(run, tmp_path)
    assert any(k.startswith("image_critic.") for k in full) and any(k.startswith("prior_generator.") for k in full)
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


def test_generator_samples_move_toward_the_codes(tmp_path):
    data = load("synthetic", "train", DataSource(root=tmp_path, cache=tmp_path),
                {"n": 2, "d": 8, "n_train": 2000, "n_test": 200})
    model = make((8,), latent=4)
    fixed_x = data[:500]
    fixed_noise = torch.randn(500, 4, generator=torch.Generator().manual_seed(9))

    def distance() -> float:
        with torch.no_grad():
            codes, prior = model.encode(fixed_x), model.generate(fixed_noise)
        return frechet_distance(*gaussian_stats(codes.numpy()), *gaussian_stats(prior.numpy()))

    opts = model.optimizers({"lr": 2e-3})
    g = torch.Generator().manual_seed(0)
    late = []
    for step in range(1, 351):
        model.train_step(data[torch.randint(0, len(data), (100,), generator=g)], opts)
        if step == 50:  # the auto-encoder has spread the codes out; the prior is far behind
            early = distance()
        if step >= 250 and step % 25 == 0:
            late.append(distance())
    late.sort()
    assert late[len(late) // 2] < 0.25 * early, (early, late)
