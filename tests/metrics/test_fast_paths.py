"""The fast FID path gives pytorch-fid's numbers (no timing here; see benchmarks/).

``InceptionExtractor`` folds BatchNorm into the convolutions and runs channels-last
by default; these tests hold that path to pytorch-fid's own file-based pipeline
(PNG files -> ``get_activations`` -> mean and covariance, as ``calculate_activation_statistics``)
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
from pytorch_fid.fid_score import get_activations

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


def _exact_fid(fa: np.ndarray, fb: np.ndarray) -> float:
    """The FID of two small feature sets from the features themselves, without a 2048-d matrix root.

    With sigma_a = A'A and sigma_b = B'B (A, B: centred features / sqrt(n - 1)), the non-zero eigenvalues of
    sigma_a sigma_b are the squared singular values of A B', so tr sqrt(sigma_a sigma_b) is the nuclear norm of
    the n x n matrix A B'. pytorch-fid's ``calculate_frechet_distance`` gives the same number through scipy's
    ``sqrtm`` (test_frechet.py holds ours to it on singular covariances), but takes ~30 s at 2048-d.
    """
    fa, fb = fa.astype(np.float64), fb.astype(np.float64)
    a = (fa - fa.mean(0)) / np.sqrt(len(fa) - 1)
    b = (fb - fb.mean(0)) / np.sqrt(len(fb) - 1)
    diff = fa.mean(0) - fb.mean(0)
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * np.linalg.svd(a @ b.T, compute_uv=False).sum())


def test_fid_path_matches_pytorch_fid_files(weights, tmp_path):
    path, state = weights
    a, b = _images(0, 10, 0), _images(1, 10, 40)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kw: state):
        ref_model = pfi.InceptionV3([3]).eval()
    files_a, files_b = _write_pngs(a, tmp_path / "a"), _write_pngs(b, tmp_path / "b")
    # pytorch-fid's features of its own PNG reader; the statistics as its calculate_activation_statistics
    # takes them (np.mean, np.cov of get_activations), so that one Inception pass serves both
    act_a, act_b = (get_activations(f, ref_model, batch_size=4, num_workers=0) for f in (files_a, files_b))
    ref_a = (np.mean(act_a, axis=0), np.cov(act_a, rowvar=False))
    ref_b = (np.mean(act_b, axis=0), np.cov(act_b, rowvar=False))
    ref_fid = _exact_fid(act_a, act_b)

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
