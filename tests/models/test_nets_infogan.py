"""FlexAE's InfoGAN-style nets (arch ``infogan``) against the authors' FlexAESR.py layer list."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from rae_bench.config.files import config_schema, run_schema
from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.models.base import build_model
from rae_bench.nets import PRESETS, build_decoder, build_encoder


def layer_kinds(net: nn.Module) -> list[str]:
    out = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            out.append(f"conv{m.out_channels}k{m.kernel_size[0]}s{m.stride[0]}")
        elif isinstance(m, nn.ConvTranspose2d):
            out.append(f"convT{m.out_channels}k{m.kernel_size[0]}s{m.stride[0]}")
        elif isinstance(m, nn.Linear):
            out.append(f"fc{m.out_features}")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            out.append("bn")
    return out


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32), (3, 64, 64)])
def test_infogan_layers_and_shapes_follow_the_authors(shape):
    torch.manual_seed(0)
    s = shape[1] // 4
    enc, dec = build_encoder(shape, 16, "infogan"), build_decoder(shape, 16, "infogan")
    # FlexAESR.py L186-204 and L206-244
    assert layer_kinds(enc) == ["conv64k4s2", "conv128k4s2", "bn", "fc1024", "bn", "fc16"]
    assert layer_kinds(dec) == ["fc1024", "bn", f"fc{128 * s * s}", "bn", "convT128k4s2", "bn", "convT64k4s2", "bn",
                                f"conv{shape[0]}k3s1"]
    x = torch.rand(4, *shape)
    z = enc(x)
    assert z.shape == (4, 16)
    assert dec(z).shape == (4, *shape)  # no padding to 32 for MNIST: 28 -> 14 -> 7 -> 14 -> 28
    bn = next(m for m in enc.modules() if isinstance(m, nn.BatchNorm2d))
    assert (bn.eps, bn.momentum) == (1e-3, 0.01)  # TF's batch_normalization defaults


def test_infogan_decoder_starts_glorot_normal():
    torch.manual_seed(0)
    dec = build_decoder((1, 28, 28), 32, "infogan")
    w = dec.net[3].weight  # FC(1024 -> 128 * 7 * 7)
    expected_std = (2.0 / (w.shape[0] + w.shape[1])) ** 0.5
    assert abs(w.std().item() / expected_std - 1) < 0.02


def test_every_schema_knows_the_presets():
    schema = config_schema()
    assert schema["properties"]["arch"]["enum"] == list(PRESETS)
    assert run_schema()["properties"]["arch"]["enum"] == list(PRESETS)
    for where in ("datasets", "models"):  # the per-dataset and per-model overrides
        assert "infogan" in str(schema["properties"][where])


def test_paper_profile_gives_flexae_the_infogan_nets_and_the_others_not():
    cfg = load_config(["config/config.yaml", "config/paper.yaml"])
    for run in ["flexae", "flexae_cap1", "flexae_cap6"]:
        for ds in ["mnist", "celeba"]:
            assert resolve_run(cfg, ds, run, 0)["arch"] == "infogan", (run, ds)
    assert resolve_run(cfg, "mnist", "rae_l2", 0)["arch"] == "paper"
    # the quick profile keeps FlexAE on the small nets
    quick = load_config(["config/config.yaml"])
    assert resolve_run(quick, "mnist", "flexae", 0)["arch"] == "small"


def test_flexae_builds_and_steps_on_infogan_nets():
    torch.manual_seed(0)
    model = build_model("flexae", (1, 28, 28), 8, "infogan", {"prior_width": 16, "prior_depth": 1,
                                                              "critic_width": 16, "critic_depth": 1})
    assert layer_kinds(model.encoder)[:2] == ["conv64k4s2", "conv128k4s2"]
    x = torch.rand(8, 1, 28, 28)
    stats = model.train_step(x, model.optimizers({"lr": 1e-4, "betas": [0.9, 0.999]}))
    assert all(torch.isfinite(torch.tensor(v)) for v in stats.values())
