"""InjFlow: the stochastic Jacobian norm, the log-det bounds and what the objective does to codes and decoder."""
from __future__ import annotations

import math

import pytest
import torch

from rae_bench.errors import ConfigError
from rae_bench.models import build_model
from rae_bench.models.injflow import decode_with_jacobian_norm, logdet_bound
from rae_bench.samplers import build_sampler


pytestmark = pytest.mark.usefixtures("one_thread")


def exact_fro2(model, z: torch.Tensor) -> torch.Tensor:
    """||dD/dz||_F^2 per code, from the full Jacobian."""
    def one(zi: torch.Tensor) -> torch.Tensor:
        return torch.autograd.functional.jacobian(lambda v: model.decode(v[None])[0], zi).pow(2).sum()
    return torch.stack([one(zi) for zi in z])


def manifold_data(n: int = 256) -> torch.Tensor:
    """A 2-d linear manifold in R^12."""
    g = torch.Generator().manual_seed(0)
    return 3 * torch.randn(n, 2, generator=g) @ torch.randn(2, 12, generator=g)


@pytest.mark.parametrize("kind", ["gaussian", "rademacher"])
def test_hutchinson_estimate_is_unbiased_for_mlp_decoder(kind):
    torch.manual_seed(0)
    model = build_model("injflow", (12,), 4, "tiny")
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    exact = exact_fro2(model, z)
    out, est = decode_with_jacobian_norm(model.decode, z, 20000, kind, torch.Generator().manual_seed(1))
    assert torch.allclose(out, model.decode(z))
    assert ((est - exact).abs() / exact).max() < 0.03, (est, exact)
    # a single probe is a noisy but unbiased draw: its mean over a batch of copies is the same estimate
    _, one = decode_with_jacobian_norm(model.decode, z.repeat(5000, 1), 1, kind, torch.Generator().manual_seed(2))
    assert ((one.reshape(5000, 3).mean(0) - exact).abs() / exact).max() < 0.05


@pytest.mark.parametrize("kind,n,tol", [("gaussian", 2000, 0.06), ("rademacher", 1000, 0.03)])
def test_hutchinson_estimate_is_unbiased_for_conv_decoder(kind, n, tol):
    torch.manual_seed(0)
    model = build_model("injflow", (1, 28, 28), 4, "tiny").eval()  # eval: BatchNorm per example
    z = torch.randn(1, 4, generator=torch.Generator().manual_seed(0))
    exact = exact_fro2(model, z)
    with torch.no_grad():  # forward-mode AD does not need the reverse graph
        _, est = decode_with_jacobian_norm(model.decode, z, n, kind, torch.Generator().manual_seed(1))
    assert ((est - exact).abs() / exact).max() < tol, (est, exact)


def test_bounds_upper_bound_half_logdet_and_are_tight_where_they_should_be():
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        jac = torch.randn(12, 4, generator=g, dtype=torch.float64)
        half_logdet = 0.5 * torch.logdet(jac.T @ jac)
        fro2 = jac.pow(2).sum()
        ln, fro = logdet_bound(fro2, 4, "ln"), logdet_bound(fro2, 4, "frobenius")
        assert half_logdet <= ln + 1e-9 and ln <= fro + 1e-9
    q, _ = torch.linalg.qr(torch.randn(12, 4, generator=g, dtype=torch.float64))  # orthonormal columns
    for c in (0.5, 1.0, 3.0):
        jac = c * q  # J^T J = c^2 I: the ln bound is exact
        half_logdet = 0.5 * torch.logdet(jac.T @ jac)
        assert torch.isclose(logdet_bound(jac.pow(2).sum(), 4, "ln"), half_logdet)
    assert torch.isclose(logdet_bound(q.pow(2).sum(), 4, "frobenius"), torch.zeros((), dtype=torch.float64))


@pytest.mark.parametrize("shape", [(1, 28, 28), (12,)], ids=["image", "vector"])
def test_loss_terms_are_finite_and_add_up(shape):
    params = {"rec_weight": 2.0, "prior_weight": 0.5, "jacobian_weight": 3.0, "prior_var": 2.0}
    torch.manual_seed(0)
    model = build_model("injflow", shape, 4, "tiny", params)
    x = torch.rand(8, *shape, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(1)
    terms = model.loss(x)
    assert all(torch.isfinite(v) for v in terms.values())
    total = 2.0 * terms["rec"] + 0.5 * terms["prior_nll"] + 3.0 * terms["logdet_bound"]
    assert torch.isclose(terms["loss"], total)
    z = model.encode(x)
    prior = torch.distributions.Normal(0.0, math.sqrt(2.0))
    assert torch.isclose(terms["prior_nll"], -prior.log_prob(z).sum(1).mean(), atol=1e-5)
    assert terms["jac_fro2"] > 0


def test_jacobian_penalty_alone_shrinks_the_decoder_jacobian():
    torch.manual_seed(0)
    model = build_model("injflow", (12,), 4, "tiny", {"rec_weight": 0.0, "prior_weight": 0.0, "bound": "frobenius"})
    z = torch.randn(16, 4, generator=torch.Generator().manual_seed(3))
    before = exact_fro2(model, z).mean()
    opts = model.optimizers({"lr": 1e-2})
    torch.manual_seed(0)
    for _ in range(30):
        model.train_step(manifold_data(), opts)
    assert exact_fro2(model, z).mean() < 0.3 * before


@pytest.mark.parametrize("prior_var", [1.0, 4.0])
def test_ln_bound_and_prior_pin_the_code_scale(prior_var):
    """Rescaling z by c moves the prior term by c^2 and the ln bound by -m ln c: at the optimum E||z||^2 = m sigma^2."""
    torch.manual_seed(0)
    model = build_model("injflow", (12,), 4, "tiny", {"prior_var": prior_var})
    x = manifold_data()
    opts = model.optimizers({"lr": 3e-3})
    torch.manual_seed(0)
    for _ in range(300):
        terms = model.train_step(x, opts)
    with torch.no_grad():
        scale = model.encode(x).pow(2).sum(1).mean() / (4 * prior_var)
    assert terms["rec"] < 1.0  # it still reconstructs the 2-d manifold
    assert 0.75 < float(scale) < 1.35, float(scale)


def test_prior_samples_have_the_prior_variance_and_gmm_works_on_codes():
    model = build_model("injflow", (12,), 4, "tiny", {"prior_var": 4.0}).eval()
    z = model.sample_prior(4000, generator=torch.Generator().manual_seed(0))
    assert abs(float(z.std()) - 2.0) < 0.1
    # "InjFlow + GMM": the same model with the gmm sampler
    with torch.no_grad():
        codes = model.encode(manifold_data())
    gmm = build_sampler("gmm", model, {"components": 2}, seed=0)
    gmm.fit(codes)
    assert model.decode(gmm.sample(5, torch.Generator().manual_seed(0))).shape == (5, 12)


def test_bad_parameters_are_clear():
    with pytest.raises(ConfigError, match="bound"):
        build_model("injflow", (12,), 4, "tiny", {"bound": "log"})
    with pytest.raises(ConfigError, match="projection"):
        build_model("injflow", (12,), 4, "tiny", {"projection": "sphere"})
    with pytest.raises(ConfigError, match="n_projections"):
        build_model("injflow", (12,), 4, "tiny", {"n_projections": 0})
