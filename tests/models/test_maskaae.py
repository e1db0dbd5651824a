"""MaskAAE: the mask layer, the masked prior, dimension pruning on synthetic data, the polarising schedule."""
from __future__ import annotations

import io
import math
from functools import partial

import pytest
import torch

from rae_bench.data import DataSource, load
from rae_bench.errors import ConfigError
from rae_bench.models.maskaae import authors_poly_every

from helpers.models import tiny_model
from resume_check import whole_and_resumed


make = partial(tiny_model, "maskaae", latent=6)  # vectors of 12 unless a shape is given


def test_mask_stays_in_unit_interval_and_alpha_nonnegative_with_a_large_lr():
    model = make(poly_weight_init=50.0, mask_lr_ratio=500.0)  # mask lr 1.0: steps far below zero
    with torch.no_grad():
        model.alpha[:2] = 0.05  # mask ~0.05: the polarising penalty drives these to 0 and beyond
    opts = model.optimizers({"lr": 2e-3})
    x = torch.randn(32, 12, generator=torch.Generator().manual_seed(1))
    for _ in range(25):
        model.train_step(x, opts)
        assert (model.alpha >= 0).all()
        mask = model.mask
        assert (mask >= 0).all() and (mask <= 1).all()
        assert torch.equal(mask, 1.0 - torch.exp(-model.alpha))
    assert (model.alpha == 0).any(), "the clamp was never exercised"
    assert (model.mask == 0).any()


@pytest.mark.parametrize("shape", [(12,), (1, 28, 28)], ids=["vector", "image"])
def test_masked_dimensions_are_exactly_zero_in_codes_and_prior(shape):
    model = make(shape).eval()
    with torch.no_grad():
        model.alpha.fill_(1.0)
        model.alpha[[1, 3]] = 0.0
    assert model.mask[1] == 0 and model.mask[3] == 0
    assert model.active_dims() == 4
    x = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        z = model.encode(x)
    assert torch.all(z[:, [1, 3]] == 0)
    assert torch.all(z[:, [0, 2, 4, 5]] != 0)
    prior = model.sample_prior(50, generator=torch.Generator().manual_seed(0))
    assert torch.all(prior[:, [1, 3]] == 0) and torch.all(prior[:, [0, 2, 4, 5]] != 0)
    # the prior is the masked standard normal drawn from the given generator
    noise = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(prior, model.mask.detach() * noise)
    assert model.decode(prior).shape == (50, *shape)


def test_active_dims_threshold():
    model = make()
    with torch.no_grad():
        # m = 1 - exp(-alpha): alpha = -log(1 - m); 0.1 is active, just below is not
        model.alpha.copy_(-torch.log1p(-torch.tensor([0.0, 0.05, 0.0999, 0.1001, 0.5, 0.999])))
    assert model.active_dims() == 3


def test_active_dimensions_fall_on_synthetic_data_with_m_above_n(tmp_path):
    """n = 2 true latent dimensions, m = 8: prior matching closes spurious dimensions.

    All masks start equal (so no dimension is singled out by its initial value) and the
    polarising weight is held at its initial value, so any pruning comes from the
    reconstruction + prior-matching terms of the mask loss.
    """
    data = load("synthetic", "train", DataSource(root=tmp_path, cache=tmp_path),
                {"n": 2, "d": 8, "n_train": 2000, "n_test": 200})
    model = make((8,), latent=8, mask_lr_ratio=20.0, poly_every=10**9)
    with torch.no_grad():
        model.alpha.fill_(2.0)  # every mask 0.865
    start = model.active_dims()
    assert start == 8
    opts = model.optimizers({"lr": 2e-3})
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(500):
        terms = model.train_step(data[torch.randint(0, len(data), (100,), generator=g)], opts)
        first = terms["rec"] if first is None else first
    assert model.poly_weight() == pytest.approx(2 / 8)
    assert model.active_dims() < start, model.mask
    assert terms["rec"] < 0.2 * first


def test_polarising_weight_grows_with_steps_and_survives_a_round_trip():
    model = make(poly_weight_init=0.5, poly_every=3, poly_growth=2.0, poly_weight_max=4.0)
    weights = [model.poly_weight(s) for s in range(15)]
    assert weights[0] == 0.5 and weights[3] == 1.0 and weights[6] == 2.0 and weights[9] == 4.0
    assert all(b >= a for a, b in zip(weights, weights[1:])) and max(weights) == 4.0
    opts = model.optimizers({"lr": 1e-3})
    x = torch.randn(16, 12)
    logged = [model.train_step(x, opts)["poly_weight"] for _ in range(7)]
    assert logged == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0]  # the weight used at steps 0..6
    assert int(model.step) == 7 and model.poly_weight() == 2.0
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    buf.seek(0)
    other = make(seed=5, poly_weight_init=0.5, poly_every=3, poly_growth=2.0, poly_weight_max=4.0)
    assert int(other.step) == 0
    other.load_state_dict(torch.load(buf, weights_only=True))
    assert int(other.step) == 7 and other.poly_weight() == 2.0
    assert torch.equal(other.alpha, model.alpha)


def test_default_schedule_is_the_authors():
    assert authors_poly_every(8) == 300 and authors_poly_every(20) == 300
    assert authors_poly_every(32) == 4 * 3600 and authors_poly_every(128) == 40000
    model = make(latent=16)
    assert model.poly_weight(0) == pytest.approx(2 / 16)
    assert model.poly_weight(300) == pytest.approx(4 / 16)
    assert model.poly_weight(10**7) == 2048.0


def test_resumed_training_equals_uninterrupted(tmp_path):
    """The step counter, the critic and the mask resume exactly through the trainer's checkpoints."""
    run = {"dataset": "synth", "source": "synthetic", "options": {"n": 2, "d": 12, "n_train": 160, "n_test": 40},
           "n_train": None, "run": "maskaae", "model": "maskaae",
           "params": {"poly_every": 4, "n_critic": 2}, "latent_dim": 4, "arch": "tiny", "seed": 1,
           "training": {"epochs": 3, "batch_size": 32, "optim": {"lr": 1e-3}}}
    full, cut = whole_and_resumed(run, tmp_path)
    assert int(full["step"]) == 15
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)


def test_bad_parameters_are_clear():
    with pytest.raises(ConfigError, match="bce"):
        make((12,), reconstruction="bce")
    with pytest.raises(ConfigError, match="optimizer"):
        make((12,), optimizer="sgd")
    with pytest.raises(ConfigError, match="n_critic"):
        make((12,), n_critic=0)
    model = make((1, 28, 28), reconstruction="bce", optimizer="rmsprop")
    opts = model.optimizers({"lr": 1e-4})
    assert isinstance(opts["mask"], torch.optim.RMSprop) and set(opts) == {"ae", "critic", "generator", "mask"}
    terms = model.train_step(torch.rand(8, 1, 28, 28), opts)
    assert all(v == v for v in terms.values())


def test_an_unpolarised_mask_is_reported_until_the_weight_reaches_its_cap():
    """A run stopped before the polarising weight reached its cap says so (evaluation -> table caption),
    with the share of mask values already near 0 or 1; at the cap it reports nothing."""
    model = make(latent=4, poly_every=1, poly_weight_init=1.0, poly_weight_max=8.0)
    with torch.no_grad():
        model.alpha.copy_(torch.tensor([0.0, 0.5, 1.0, 3.0]))
    binary = int(((model.mask < 0.05) | (model.mask > 0.95)).sum())
    note = model.unfinished_warmup()
    assert note is not None and "reached 1 of its cap 8" in note and f"({binary / 4:.0%} of mask values" in note
    model.step.fill_(3)  # 1 * 2**3 = the cap
    assert model.poly_weight() == 8.0 and model.unfinished_warmup() is None


def test_celeba_paper_run_takes_the_squared_error_mnist_keeps_the_authors_bce():
    """Issue 23 item 7: the authors' BCE (MaskAAE_MNIST.py L246-248) is their MNIST choice; the paper
    profile's CelebA run reconstructs with the squared error, summed over pixels."""
    from pathlib import Path

    from rae_bench.config.resolve import resolve_run
    from rae_bench.config.validate import load_config

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config([repo / "config" / "config.yaml", repo / "config" / "paper.yaml"])
    params = {ds: resolve_run(cfg, ds, "maskaae", 0)["params"] for ds in ("mnist", "celeba")}
    assert params["mnist"]["reconstruction"] == "bce" and params["celeba"]["reconstruction"] == "squared_error"
    celeba = make((3, 64, 64), latent=8, **params["celeba"])
    mnist = make((3, 64, 64), latent=8, **params["mnist"])
    # a known pair: output sigmoid(0) = 0.5 everywhere against all-black and all-white images
    x = torch.cat([torch.zeros(1, 3, 64, 64), torch.ones(1, 3, 64, 64)])
    logits = torch.zeros_like(x)
    d = 3 * 64 * 64
    assert celeba.reconstruction_cost(x, logits).item() == pytest.approx(0.25 * d)  # (0.5 - x)^2 = 0.25
    assert mnist.reconstruction_cost(x, logits).item() == pytest.approx(math.log(2) * d)  # -log 0.5 per pixel
