"""Model-specific properties of the critic models (wae_gan, vae_iop) and the RAE variants (rae_gp, rae_sn)."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rae_bench.errors import ConfigError
from rae_bench.models import build_model
from rae_bench.models.autoencoders import SN_LAYERS


pytestmark = pytest.mark.usefixtures("one_thread")


def seeded(name: str, shape=(1, 28, 28), latent: int = 4, params=None):
    torch.manual_seed(0)
    return build_model(name, shape, latent, "tiny", params or {})


def structured_batch(shape=(1, 28, 28), n: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(2)
    u, v = torch.randn(n, 2, generator=g), torch.randn(2, math.prod(shape), generator=g)
    return torch.sigmoid(3 * u @ v).reshape(n, *shape)


def snapshot(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: nn.Module) -> bool:
    return any(not torch.equal(b, p) for b, p in zip(before, module.parameters()))


# -- WAE-GAN ---------------------------------------------------------------------------------------

def test_wae_gan_discriminator_learns_to_separate_shifted_codes_from_prior():
    model = seeded("wae_gan", (12,), latent=4)
    opt = model.optimizers({})["critic"]
    g = torch.Generator().manual_seed(5)
    codes_test, prior_test = torch.randn(1000, 4, generator=g) + 3.0, torch.randn(1000, 4, generator=g)

    def evaluate() -> tuple[float, float, float]:
        with torch.no_grad():
            lq, lp = model.discriminator_logits(codes_test), model.discriminator_logits(prior_test)
        acc = 0.5 * float((lq <= 0).float().mean() + (lp > 0).float().mean())  # prior = 1, codes = 0
        bce = float(nn.functional.binary_cross_entropy_with_logits(lq, torch.zeros_like(lq))
                    + nn.functional.binary_cross_entropy_with_logits(lp, torch.ones_like(lp)))
        spread = float(torch.sigmoid(torch.cat([lq, lp])).sub(0.5).abs().max())
        return acc, bce, spread

    _, bce0, spread0 = evaluate()
    # untrained: D(z) ~ 1/2 everywhere, i.e. a chance-level logistic loss of 2 log 2
    assert spread0 < 0.15 and abs(bce0 - 2 * math.log(2)) < 0.1, (bce0, spread0)
    for _ in range(50):
        model.update_critic(torch.randn(256, 4) + 3.0, opt)
    acc, bce, _ = evaluate()
    assert acc > 0.9 and bce < bce0 - 0.5, (acc, bce)


def test_wae_gan_prior_logit_trick_adds_the_prior_log_density():
    plain = seeded("wae_gan", (12,), latent=3)
    trick = seeded("wae_gan", (12,), latent=3, params={"prior_logit_trick": True})
    z = torch.randn(5, 3)
    expected = plain.discriminator_logits(z) + torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    assert torch.allclose(trick.discriminator_logits(z), expected, atol=1e-5)


@pytest.mark.parametrize("name", ["wae_gan", "vae_iop"])
def test_train_step_updates_critic_and_autoencoder(name):
    model = seeded(name).train()
    opts = model.optimizers({"lr": 1e-3})
    critic, enc, dec = snapshot(model.critic), snapshot(model.encoder), snapshot(model.decoder)
    terms = model.train_step(structured_batch(), opts)
    assert changed(critic, model.critic) and changed(enc, model.encoder) and changed(dec, model.decoder)
    assert {"critic_loss", "critic_acc"} <= set(terms)
    assert {id(p) for p in opts["critic"].param_groups[0]["params"]} == {id(p) for p in model.critic.parameters()}
    assert not {id(p) for g in opts["model"].param_groups for p in g["params"]} & {id(p) for p in model.critic.parameters()}


@pytest.mark.parametrize("name", ["wae_gan", "vae_iop"])
def test_autoencoder_step_leaves_critic_fixed(name):
    """With the critic's own steps switched off, train_step must not move the critic (T / D fixed)."""
    model = seeded(name, params={"critic_steps": 0}).train()
    opts = model.optimizers({"lr": 1e-3})
    critic, enc = snapshot(model.critic), snapshot(model.encoder)
    for _ in range(3):
        model.train_step(structured_batch(), opts)
    assert not changed(critic, model.critic) and changed(enc, model.encoder)
    assert all(p.requires_grad for p in model.critic.parameters())  # frozen only inside the step


def test_wae_gan_critic_lr_is_its_own():
    model = seeded("wae_gan", params={"critic_lr": 2.5e-4})
    opts = model.optimizers({"lr": 1e-3, "betas": [0.5, 0.999]})
    assert opts["critic"].param_groups[0]["lr"] == 2.5e-4 and opts["model"].param_groups[0]["lr"] == 1e-3
    assert opts["critic"].param_groups[0]["betas"] == (0.5, 0.999)


def test_wae_gan_penalty_pulls_codes_towards_the_prior():
    """Encoder trained against the discriminator: codes of a batch move from far away towards N(0, I)."""
    model = seeded("wae_gan", (12,), latent=2, params={"lambda": 5.0, "critic_steps": 2, "critic_lr": 2e-3})
    with torch.no_grad():
        model.encoder[-1].bias.fill_(4.0)  # start with codes around (4, 4)
    x = torch.randn(128, 12, generator=torch.Generator().manual_seed(3))
    opts = model.optimizers({"lr": 2e-3})
    with torch.no_grad():
        start = float(model.encode(x).mean(0).norm())
    for _ in range(100):
        model.train_step(x, opts)
    with torch.no_grad():
        end = float(model.encode(x).mean(0).norm())
    assert start > 5 and end < 0.5 * start, (start, end)


def test_wae_gan_updates_the_autoencoder_first_and_the_critic_on_its_new_codes():
    """tolstikhin/wae wae.py L590-595 (AE step), then L603-611 (discriminator, the batch encoded again)."""
    model = seeded("wae_gan", (12,), latent=3).train()
    opts = model.optimizers({"lr": 1e-2})
    steps: list[str] = []
    for name, opt in opts.items():
        opt.register_step_pre_hook(lambda *_, name=name: steps.append(name))
    seen: list[torch.Tensor] = []  # inputs of the critic while it trains (the AE step sees it in eval mode)
    model.critic.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()) if m.training else None)
    x = torch.randn(16, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        before = model.encoder(x)
    model.train_step(x, opts)
    assert steps == ["model", "critic"]
    with torch.no_grad():
        after = model.encoder(x)
    assert not torch.allclose(before, after)
    assert torch.equal(seen[-1], after)  # the critic's negatives: the updated encoder's codes

    other = seeded("wae_gan", (12,), latent=3, params={"update_order": "critic_first"}).train()
    opts = other.optimizers({"lr": 1e-2})
    steps.clear()
    for name, opt in opts.items():
        opt.register_step_pre_hook(lambda *_, name=name: steps.append(name))
    other.train_step(x, opts)
    assert steps == ["critic", "model"]  # the paper's Algorithm 1
    with pytest.raises(ConfigError, match="update_order 'sideways' unknown; valid: ae_first, critic_first"):
        seeded("wae_gan", params={"update_order": "sideways"})


# -- VAE-IOP ---------------------------------------------------------------------------------------

def train_ratio(model, mu: torch.Tensor, steps: int = 150) -> None:
    opt = model.optimizers({})["critic"]
    for _ in range(steps):
        model.update_critic(torch.randn(256, mu.numel()) + mu, opt)


def test_iop_discriminator_learns_the_log_density_ratio():
    """q = N(mu, I), p = N(0, I): log q/p = mu.z - |mu|^2/2 is linear; the trained logit must track it."""
    model = seeded("vae_iop", (12,), latent=2)
    mu = torch.tensor([1.5, -1.0])
    train_ratio(model, mu)
    g = torch.Generator().manual_seed(7)
    z = torch.cat([torch.randn(1000, 2, generator=g) + mu, torch.randn(1000, 2, generator=g)])
    with torch.no_grad():
        t = model.density_ratio_logits(z)
    true = z @ mu - 0.5 * mu.pow(2).sum()
    corr = float(torch.corrcoef(torch.stack([t, true]))[0, 1])
    slope = float(((t - t.mean()) * (true - true.mean())).sum() / (true - true.mean()).pow(2).sum())
    assert corr > 0.9 and 0.7 < slope < 1.3, (corr, slope)


def test_iop_kl_is_gaussian_kl_minus_the_ratio():
    model = seeded("vae_iop").eval()
    x = structured_batch()
    eps = torch.randn(32, 4, generator=torch.Generator().manual_seed(4))
    z, kl = model.sample_latent(x, eps)
    mu, logvar = model.posterior(x)
    expected = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)).sum(1)
    assert torch.allclose(kl, expected - model.density_ratio_logits(z), atol=1e-5)
    terms = model.loss_terms(x, mu, logvar, z)
    assert torch.allclose(terms["kl"], kl.mean(), atol=1e-5)
    assert torch.allclose(terms["loss"], terms["nll"] + terms["kl"])


def test_iop_learned_decoder_scale_and_warmup_are_trained():
    model = seeded("vae_iop", (12,), params={"likelihood": "gaussian_learned", "kl_warmup_steps": 10}).train()
    opts = model.optimizers({"lr": 1e-2})
    assert any(p is model.log_gamma for g in opts["model"].param_groups for p in g["params"])
    before = float(model.log_gamma)
    terms = [model.train_step(torch.randn(32, 12), opts) for _ in range(3)]
    assert float(model.log_gamma) != before
    assert [t["kl_weight"] for t in terms] == pytest.approx([0.0, 0.1, 0.2])


def test_iop_sir_prior_samples_follow_the_implicit_prior():
    model = seeded("vae_iop", (12,), latent=2, params={"prior_sampling": "sir", "sir_candidates": 64})
    mu = torch.tensor([1.5, -1.0])
    train_ratio(model, mu)
    model.eval()
    s = model.sample_prior(2000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (2000, 2)
    assert torch.allclose(s.mean(0), mu, atol=0.35), s.mean(0)  # N(0, I) samples would have mean 0
    again = model.sample_prior(2000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, again)


def test_iop_defaults_follow_the_data_and_bad_values_are_clear():
    assert seeded("vae_iop").likelihood == "bernoulli"
    assert seeded("vae_iop", (12,)).likelihood == "gaussian"
    with pytest.raises(ConfigError, match="prior_sampling"):
        seeded("vae_iop", params={"prior_sampling": "aggregated"})
    with pytest.raises(ConfigError, match="critic_steps"):
        seeded("wae_gan", params={"critic_steps": -1})



# the authors' schedule (issue 23 item 5): critic epochs over fresh batches between VAE epochs
PER_EPOCH = {"critic_schedule": "per_epoch", "critic_epochs": 2}


def recording(model) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Record the inputs the model encodes and the codes its critic steps see (calling the real methods)."""
    seen_x, seen_codes = [], []
    posterior, update = model.posterior, model.update_critic
    model.posterior = lambda x: (seen_x.append(x), posterior(x))[1]
    model.update_critic = lambda codes, opt: (seen_codes.append(codes), update(codes, opt))[1]
    return seen_x, seen_codes


def test_iop_per_epoch_critic_trains_on_fresh_batches_of_all_the_data():
    from rae_bench.train import TrainingPasses

    model = seeded("vae_iop", (12,), params=PER_EPOCH).train()
    opts = model.optimizers({"lr": 1e-3})
    data = torch.randn(96, 12, generator=torch.Generator().manual_seed(1))
    passes = TrainingPasses(data, 32, 3, torch.device("cpu"), False)
    critic, enc = snapshot(model.critic), snapshot(model.encoder)
    seen_x, seen_codes = recording(model)
    terms = model.on_epoch_end(passes, opts)
    # critic_epochs passes x 3 batches, each a different batch, each pass all 96 items in a new order
    assert len(seen_codes) == 2 * 3 and len(seen_x) == 6
    assert all(not torch.equal(a, b) for i, a in enumerate(seen_x) for b in seen_x[i + 1:])
    for k in (0, 3):
        one_pass = torch.cat(seen_x[k:k + 3])
        assert torch.equal(one_pass[one_pass[:, 0].argsort()], data[data[:, 0].argsort()])
    assert not torch.equal(torch.cat(seen_x[:3]), torch.cat(seen_x[3:]))
    assert changed(critic, model.critic) and not changed(enc, model.encoder)  # codes detached: no encoder step
    assert set(terms) == {"critic_loss", "critic_acc"}
    # and a VAE step takes no critic step of its own
    seen_codes.clear()
    critic = snapshot(model.critic)
    assert "critic_loss" not in model.train_step(data[:32], opts)
    assert not seen_codes and not changed(critic, model.critic)


def test_iop_per_batch_critic_steps_reuse_the_one_batch():
    """The old schedule, still the default: critic_steps steps on the same codes before each VAE step."""
    model = seeded("vae_iop", (12,), params={"critic_steps": 3}).train()
    opts = model.optimizers({"lr": 1e-3})
    _, seen_codes = recording(model)
    model.train_step(torch.randn(32, 12), opts)
    assert len(seen_codes) == 3 and all(c is seen_codes[0] for c in seen_codes)
    assert model.on_epoch_end([torch.randn(32, 12)], opts) == {} and len(seen_codes) == 3


def test_iop_schedule_batches_and_bad_values():
    from rae_bench.models.vae_iop import VAEIOP

    assert VAEIOP.epoch_end_batches({"critic_schedule": "per_epoch", "critic_epochs": 10}, 600) == 6000
    assert VAEIOP.epoch_end_batches({"critic_schedule": "per_epoch"}, 600) == 6000  # default: the authors' 10
    assert VAEIOP.epoch_end_batches({}, 600) == 0
    for params, words in [({"critic_schedule": "epochwise"}, "critic_schedule 'epochwise' unknown; valid: per_batch, per_epoch"),
                          ({**PER_EPOCH, "critic_epochs": 0}, "critic_epochs must be >= 1"),
                          ({**PER_EPOCH, "critic_steps": 5}, "critic_steps (steps per batch) does not apply")]:
        with pytest.raises(ConfigError) as err:
            seeded("vae_iop", (12,), params=params)
        assert words in str(err.value) and "\n" not in str(err.value)


# -- RAE-GP ----------------------------------------------------------------------------------------

def batched_jacobian(model, z: torch.Tensor) -> torch.Tensor:
    """d vec D(Z) / d vec Z for the whole batch, as a (B*D) x (B*m) matrix (brute force)."""
    jac = torch.autograd.functional.jacobian(model.decode, z, vectorize=True, strategy="forward-mode")
    return jac.reshape(z.shape[0] * math.prod(jac.shape[1:-2]), z.numel())


@pytest.mark.parametrize("shape", [(12,), (1, 28, 28)], ids=["vector", "image"])
def test_rae_gp_hutchinson_penalty_matches_brute_force_jacobian(shape):
    model = seeded("rae_gp", shape).train()  # BatchNorm in training mode for images: the batch Jacobian
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    jac = batched_jacobian(model, z)
    v = (torch.randint(0, 2, (2, 3, *shape), generator=torch.Generator().manual_seed(2)) * 2 - 1).float()
    expected = sum((jac.T @ vi.flatten()).pow(2).sum() for vi in v) / (2 * 3)
    got = model.gradient_penalty(z, projections=v)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-7), (got, expected)


def test_rae_gp_hutchinson_estimate_is_unbiased_for_the_frobenius_norm():
    model = seeded("rae_gp", (12,))
    z = torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    frob = batched_jacobian(model, z).pow(2).sum().detach() / 3  # per-example squared Frobenius norm
    many = (torch.randint(0, 2, (1500, 3, 12), generator=torch.Generator().manual_seed(3)) * 2 - 1).float()
    estimate = model.gradient_penalty(z, projections=many).detach()
    assert abs(float(estimate) / float(frob) - 1) < 0.05, (estimate, frob)
    torch.manual_seed(0)
    single = torch.stack([model.gradient_penalty(z).detach() for _ in range(400)])  # default: one random projection
    assert abs(float(single.mean()) / float(frob) - 1) < 0.1 and float(single.std()) > 0


def test_rae_gp_authors_estimator_matches_brute_force():
    model = seeded("rae_gp", (12,), params={"gp_estimator": "authors"})
    z = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))
    jac = batched_jacobian(model, z)
    out = model.decode(z).flatten()
    expected = (2 * jac.T @ out).pow(2).mean()  # mean over batch and latent dims of (grad_z sum D^2)^2
    assert torch.allclose(model.gradient_penalty(z), expected, rtol=1e-4)


@pytest.mark.parametrize("estimator", ["frobenius", "authors"])
def test_rae_gp_penalty_is_zero_for_a_constant_decoder(estimator):
    model = seeded("rae_gp", (12,), params={"gp_estimator": estimator})
    with torch.no_grad():
        model.decoder[0].weight.zero_()  # output no longer depends on z
    z = torch.randn(6, 4)
    assert model.gradient_penalty(z).item() == 0.0
    assert seeded("rae_gp", (12,), params={"gp_estimator": estimator}).gradient_penalty(z).item() > 0


def test_rae_gp_penalty_is_differentiable_and_enters_the_loss():
    model = seeded("rae_gp", params={"gp_weight": 1.0}).train()
    x = structured_batch(n=8)
    torch.manual_seed(0)
    terms = model.loss(x)
    assert torch.allclose(terms["loss"], terms["rec"] + 1e-4 * terms["code_norm"] + terms["grad_pen"])
    grads = torch.autograd.grad(terms["grad_pen"], [model.decoder.fc[0].weight, model.encoder.fc.weight])
    assert all(float(g.abs().sum()) > 0 for g in grads)  # create_graph=True: reaches decoder and encoder


# -- RAE-SN ----------------------------------------------------------------------------------------

def keras_matrix(module: nn.Module) -> torch.Tensor:
    """The normalised weight as the authors' Keras SN layer sees it: the Keras kernel reshaped to
    (all but the last axis) x last axis. Keras kernels: Conv2D (kh, kw, in, out), Conv2DTranspose
    (kh, kw, out, in), Dense (in, out); torch's Conv2d is (out, in, kh, kw), ConvTranspose2d (in, out, kh, kw)."""
    w = module.weight
    if isinstance(module, nn.Linear):
        return w.T
    kernel = w.permute(2, 3, 1, 0)  # Conv2d -> (kh, kw, in, out); ConvTranspose2d -> (kh, kw, out, in)
    return kernel.reshape(-1, kernel.shape[-1])


@pytest.mark.parametrize("shape", [(1, 28, 28), (12,)], ids=["image", "vector"])
def test_rae_sn_every_layer_has_unit_spectral_norm_under_the_authors_grouping(shape):
    """Every normalised weight (decoder and, as in the authors' configs, encoder) has largest singular
    value 1 in the authors' (kh kw out) x in grouping; torch's dim=1 default for ConvTranspose would give
    the 1-channel output layer ||W||_F = 1 and a spectral norm below 1 there."""
    model = seeded("rae_sn", shape).train()
    layers = [m for net in (model.decoder, model.encoder) for m in net.modules() if isinstance(m, SN_LAYERS)]
    assert layers and all(nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    x = structured_batch(shape) if len(shape) == 3 else torch.randn(32, *shape)
    opts = model.optimizers({"lr": 2e-3})
    for _ in range(10):
        model.train_step(x, opts)
    with torch.no_grad():  # one power iteration per training forward pass: let u, v settle on the final weights
        for _ in range(30):
            model.reconstruct(x)
    model.eval()
    with torch.no_grad():
        sigmas = [float(torch.linalg.matrix_norm(keras_matrix(m), ord=2)) for m in layers]
        raw = [float(torch.linalg.matrix_norm(m.parametrizations.weight.original.flatten(1), ord=2)) for m in layers]
    assert all(abs(s - 1) < 0.02 for s in sigmas), sigmas
    assert any(abs(r - 1) > 0.1 for r in raw), raw  # the raw weights are not unit-norm: the normalisation does it


def test_rae_sn_can_normalise_the_encoder_too():
    model = seeded("rae_sn", params={"spectral_norm_encoder": True})
    assert all(nn.utils.parametrize.is_parametrized(m, "weight")
               for m in model.encoder.modules() if isinstance(m, SN_LAYERS))
    plain = seeded("rae_sn", params={"spectral_norm_encoder": False})
    assert not any(nn.utils.parametrize.is_parametrized(m) for m in plain.encoder.modules())
