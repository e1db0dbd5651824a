"""The fast FID path gives pytorch-fid's numbers (no timing here; see benchmarks/).

``InceptionExtractor`` folds BatchNorm into the convolutions and runs channels-last
by default; these tests hold that path to pytorch-fid's own file-based pipeline
(PNG files -> ``calculate_activation_statistics`` -> ``calculate_frechet_distance``)
with the same random weights.  Feature-level agreement with pytorch-fid's module is
in test_features.py, the Fréchet distance against sqrtm in test_frechet.py.
"""
from __future__ import annotations

from fixtures_data import save_random_inception

from unittest import mock

import numpy as np
import pytest
import pytorch_fid.inception as pfi
import torch
from PIL import Image
from pytorch_fid.fid_score import calculate_activation_statistics, calculate_frechet_distance

from rae_bench.metrics import (
    InceptionExtractor,
    extract_features,
    frechet_distance,
    gaussian_stats,
)
from rae_bench.metrics.inception import fast_inference

pytestmark = pytest.mark.filterwarnings("ignore:.*not the official FID weights:UserWarning")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return save_random_inception(tmp_path_factory, 2)


def _images(seed: int, n: int, shift: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    base = torch.randint(0, 256 - shift, (n, 3, 40, 40), dtype=torch.uint8, generator=g)
    return base + shift  # the two sets differ in brightness: a clearly non-zero FID


def _write_pngs(images: torch.Tensor, folder) -> list:
    folder.mkdir()
    files = []
    for i, img in enumerate(images.permute(0, 2, 3, 1).numpy()):
        files.append(folder / f"{i:03d}.png")
        Image.fromarray(img).save(files[-1])
    return files


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pytorch-fid passes sqrtm's deprecated disp
@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # 10 images: singular covariances
def test_fid_path_matches_pytorch_fid_files(weights, tmp_path):
    path, state = weights
    a, b = _images(0, 10, 0), _images(1, 10, 40)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kw: state):
        ref_model = pfi.InceptionV3([3]).eval()
    ref_a = calculate_activation_statistics(_write_pngs(a, tmp_path / "a"), ref_model, batch_size=4, num_workers=0)
    ref_b = calculate_activation_statistics(_write_pngs(b, tmp_path / "b"), ref_model, batch_size=4, num_workers=0)
    ref_fid = float(calculate_frechet_distance(*ref_a, *ref_b))

    ours = InceptionExtractor(path, batch_size=3)  # the default, fast path; 3 does not divide 10
    assert ours.fast
    ours_a = gaussian_stats(extract_features(ours, a, batch_size=7))
    ours_b = gaussian_stats(extract_features(ours, b, batch_size=7))
    scale = np.abs(ref_a[1]).max()
    np.testing.assert_allclose(ours_a[0], ref_a[0], rtol=1e-5, atol=1e-6 * np.abs(ref_a[0]).max())
    np.testing.assert_allclose(ours_a[1], ref_a[1], rtol=1e-4, atol=1e-5 * scale)
    assert ref_fid > 1e-3 * np.trace(ref_a[1])  # the sets really differ
    assert frechet_distance(*ours_a, *ours_b) == pytest.approx(ref_fid, rel=1e-4)


def test_fast_and_plain_extractors_agree(weights):
    path, _ = weights
    fast, plain = InceptionExtractor(path, batch_size=4), InceptionExtractor(path, batch_size=4, fast=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.model.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.model.modules())
    conv = fast.model.blocks[0][0].conv
    assert conv.bias is not None and conv.weight.is_contiguous(memory_format=torch.channels_last)
    gray = _images(2, 5, 0)[:, :1]  # grayscale goes through the same (expanded, channels-last) input
    f_fast, f_plain = fast(gray), plain(gray)
    scale = np.abs(f_plain).max()
    np.testing.assert_allclose(f_fast, f_plain, rtol=1e-5, atol=1e-6 * scale)


def test_fast_inference_keeps_eval_function():
    """Folding uses the running statistics: the module's output is unchanged and nothing trains."""
    net = torch.nn.Sequential()
    block = torch.nn.Module()
    block.conv = torch.nn.Conv2d(3, 4, 3, bias=False)
    block.bn = torch.nn.BatchNorm2d(4, eps=1e-3)
    block.forward = lambda x: torch.relu(block.bn(block.conv(x)))
    net.add_module("b", block)
    with torch.no_grad():
        block.bn.running_mean.uniform_(-1, 1)
        block.bn.running_var.uniform_(0.5, 2)
        block.bn.weight.uniform_(0.5, 1.5)
        block.bn.bias.uniform_(-0.5, 0.5)
    net.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        before = net(x)
        fast_inference(net)
        after = net(x.contiguous(memory_format=torch.channels_last))
    assert isinstance(block.bn, torch.nn.Identity) and not net.training
    torch.testing.assert_close(after, before, rtol=1e-5, atol=1e-6)


def test_bf16_is_an_explicit_option_that_says_so(weights):
    """bf16 autocast is never the default; it moves the features a little and renames the extractor,
    so a table built from it cannot pass for fp32 (pytorch-fid) numbers."""
    path, _ = weights
    images = _images(3, 6, 0)
    fp32 = InceptionExtractor(path)
    bf16 = InceptionExtractor(path, precision="bf16")
    assert fp32.name == "inception" and bf16.name == "inception-bf16"
    a, b = fp32(images), bf16(images)
    assert b.dtype == np.float32 and np.isfinite(b).all()
    rel = np.linalg.norm(a - b) / np.linalg.norm(a)
    assert 0 < rel < 3e-2


def test_unknown_precision_is_one_clear_error(weights):
    from rae_bench.errors import ConfigError

    with pytest.raises(ConfigError, match="valid: fp32, bf16"):
        InceptionExtractor(weights[0], precision="fp16")
