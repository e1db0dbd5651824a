"""Feature extractors (Inception, classifier, raw) and cached reference statistics."""
from __future__ import annotations

import os

from fixtures_data import save_random_inception

import warnings
from unittest import mock

import numpy as np
import pytest
import pytorch_fid.inception as pfi
import torch

from rae_bench.errors import CheckpointError, ConfigError, DataError, RaeBenchError
from rae_bench.metrics import (
    EXTRACTORS,
    FID_WEIGHTS_FILE,
    ClassifierExtractor,
    InceptionExtractor,
    RawExtractor,
    build_extractor,
    evaluate_classifier,
    extract_features,
    gaussian_stats,
    load_classifier,
    load_stats,
    random_fid_inception_state,
    reference_stats,
    resolve_inception_weights,
    save_classifier,
    save_stats,
    train_classifier,
)
from rae_bench.metrics.inception import WEIGHTS_ENV

# --------------------------------------------------------------------------- Inception


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    return save_random_inception(tmp_path_factory, 0)


def _pytorch_fid_features(state, images_float3: torch.Tensor) -> np.ndarray:
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        model = pfi.InceptionV3([3]).eval()
    with torch.no_grad():
        return model(images_float3)[0].reshape(images_float3.shape[0], -1).numpy()


def test_inception_features_match_pytorch_fid(random_weights):
    path, state = random_weights
    with pytest.warns(UserWarning, match="not the official FID weights"):
        extractor = build_extractor("inception", inception_weights=str(path), batch_size=3)
    assert isinstance(extractor, InceptionExtractor) and extractor.name == "inception" and extractor.dim == 2048
    assert not extractor.official

    gen = torch.Generator().manual_seed(1)
    rgb = torch.randint(0, 256, (4, 3, 64, 64), dtype=torch.uint8, generator=gen)
    gray = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8, generator=gen)

    ours_rgb = extractor(rgb)  # batch_size 3: two batches
    ours_gray = extractor(gray)
    assert ours_rgb.shape == (4, 2048) and ours_gray.shape == (2, 2048)

    ref_rgb = _pytorch_fid_features(state, rgb.float() / 255.0)
    ref_gray = _pytorch_fid_features(state, (gray.float() / 255.0).repeat(1, 3, 1, 1))
    scale = np.abs(ref_rgb).max()
    assert scale > 0 and ref_rgb.std(axis=0).max() > 1e-3 * scale  # features are not trivial
    np.testing.assert_allclose(ours_rgb, ref_rgb, rtol=1e-5, atol=1e-6 * scale)
    np.testing.assert_allclose(ours_gray, ref_gray, rtol=1e-5, atol=1e-6 * scale)
    # float input in [0, 1] gives the same as uint8
    np.testing.assert_allclose(extractor(gray.float() / 255.0), ours_gray, rtol=1e-5, atol=1e-6 * scale)


def test_random_state_is_seeded():
    a, b, c = random_fid_inception_state(3), random_fid_inception_state(3), random_fid_inception_state(4)
    key = "Conv2d_1a_3x3.conv.weight"
    assert torch.equal(a[key], b[key]) and not torch.equal(a[key], c[key])
    assert "fc.weight" in a and a["fc.weight"].shape == (1008, 2048)


def test_inception_rejects_bad_channels(random_weights):
    path, _ = random_weights
    with pytest.warns(UserWarning, match="not comparable"):
        extractor = InceptionExtractor(path)
    with pytest.raises(DataError, match="C = 1 or 3"):
        extractor(torch.zeros(1, 2, 32, 32, dtype=torch.uint8))


@pytest.fixture
def hub_dir(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    monkeypatch.delenv(WEIGHTS_ENV, raising=False)
    return hub


def test_resolve_nothing_present(hub_dir):
    with pytest.raises(RaeBenchError) as info:
        resolve_inception_weights()
    msg = str(info.value)
    assert "\n" not in msg
    assert str(hub_dir / "checkpoints" / FID_WEIGHTS_FILE) in msg
    assert WEIGHTS_ENV in msg and pfi.FID_WEIGHTS_URL in msg and "95,628,359" in msg
    assert resolve_inception_weights(download=True) is None


def test_resolve_hub_cache(hub_dir):
    target = hub_dir / "checkpoints" / FID_WEIGHTS_FILE
    target.parent.mkdir(parents=True)
    target.write_bytes(b"x")
    assert resolve_inception_weights() == target


def test_resolve_env_wins_over_hub(hub_dir, tmp_path, monkeypatch):
    (hub_dir / "checkpoints").mkdir(parents=True)
    (hub_dir / "checkpoints" / FID_WEIGHTS_FILE).write_bytes(b"x")
    env_file = tmp_path / "env_weights.pth"
    env_file.write_bytes(b"y")
    monkeypatch.setenv(WEIGHTS_ENV, str(env_file))
    assert resolve_inception_weights() == env_file
    explicit = tmp_path / "explicit.pth"
    explicit.write_bytes(b"z")
    assert resolve_inception_weights(str(explicit)) == explicit  # config beats env

    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path / "gone.pth"))
    with pytest.raises(RaeBenchError, match="gone.pth"):
        resolve_inception_weights()


def test_resolve_explicit_missing(hub_dir, tmp_path):
    missing = tmp_path / "nope" / "weights.pth"
    with pytest.raises(RaeBenchError) as info:
        resolve_inception_weights(str(missing))
    assert str(missing) in str(info.value) and "\n" not in str(info.value)


def test_corrupt_weights_file(hub_dir, tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a torch file")
    with warnings.catch_warnings():  # one error, no "unofficial weights" warning about a file that does not load
        warnings.simplefilter("error")
        with pytest.raises(CheckpointError, match="bad.pth"):
            InceptionExtractor(bad)


# --------------------------------------------------------------------------- classifier


def _halves(n: int, seed: int):
    """Class 0: bright top half, class 1: bright bottom half, plus noise (1 x 28 x 28 uint8)."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 2, (n,), generator=g)
    img = torch.rand(n, 1, 28, 28, generator=g) * 0.6
    bright = 0.4 + 0.2 * torch.rand(n, 1, 1, 1, generator=g)
    top = (labels == 0).view(n, 1, 1, 1)
    img[:, :, :14] += torch.where(top, bright, torch.zeros_like(bright))
    img[:, :, 14:] += torch.where(~top, bright, torch.zeros_like(bright))
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


TRAIN = dict(multilabel=False, epochs=2, batch_size=32, lr=2e-3, seed=0, device="cpu", progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    images, labels = _halves(320, seed=0)
    model = train_classifier(images, labels, **TRAIN)
    path = tmp_path_factory.mktemp("clf") / "classifier.pt"
    save_classifier(model, path, {"dataset": "halves", "epochs": 2})
    return model, path


def test_classifier_learns(trained):
    model, _ = trained
    images, labels = _halves(200, seed=1)  # held out
    result = evaluate_classifier(model, images, labels, multilabel=False)
    assert result["accuracy"] > 0.9 and result["n"] == 200


def test_classifier_features_and_round_trip(trained):
    model, path = trained
    images, _ = _halves(10, seed=2)
    with torch.no_grad():
        direct = model.features(images.float() / 255.0).numpy()
    assert direct.shape == (10, 128)

    extractor = build_extractor("classifier", classifier_path=path)
    assert isinstance(extractor, ClassifierExtractor) and extractor.name == "classifier" and extractor.dim == 128
    feats = extractor(images)
    assert feats.shape == (10, 128)
    # the extractor runs channels-last (faster convolutions): the NCHW features to float rounding, and
    # bit-identical to the same net in that layout on one batch
    np.testing.assert_allclose(feats, direct, rtol=1e-5, atol=1e-6)
    with torch.no_grad():
        same_layout = model.to(memory_format=torch.channels_last).features(images.float() / 255.0).numpy()
    np.testing.assert_array_equal(feats, same_layout)
    # smaller batches: same up to float round-off of batch-size dependent kernels
    np.testing.assert_allclose(ClassifierExtractor(path, batch_size=4)(images), direct, rtol=1e-5, atol=1e-6)

    loaded, meta = load_classifier(path)
    assert meta == {"dataset": "halves", "epochs": 2}
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)

    with pytest.raises(DataError, match="1x28x28"):
        extractor(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_classifier_bad_files(trained, tmp_path):
    _, path = trained
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_classifier(truncated)
    assert "truncated.pt" in str(info.value) and "\n" not in str(info.value)

    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a classifier file"):
        load_classifier(other)

    missing = tmp_path / "missing.pt"
    with pytest.raises(RaeBenchError, match=r"missing\.pt.*snakemake"):
        load_classifier(missing)


def test_classifier_training_is_deterministic():
    images, labels = _halves(96, seed=3)
    kwargs = {**TRAIN, "epochs": 1}
    torch.manual_seed(123)
    before = torch.rand(1)
    a = train_classifier(images, labels, **kwargs)
    b = train_classifier(images, labels, **kwargs)
    c = train_classifier(images, labels, **{**kwargs, "seed": 1})
    torch.manual_seed(123)
    assert torch.equal(torch.rand(1), before)  # fork_rng: the global RNG stream is untouched
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_multilabel_classifier():
    """Three independent attributes on 16x16 RGB images: left half red, right half green, top half blue."""
    g = torch.Generator().manual_seed(0)
    n = 384
    attrs = torch.randint(0, 2, (n, 3), generator=g).float()
    img = torch.rand(n, 3, 16, 16, generator=g) * 0.4
    img[:, 0, :, :8] += 0.6 * attrs[:, 0].view(n, 1, 1)
    img[:, 1, :, 8:] += 0.6 * attrs[:, 1].view(n, 1, 1)
    img[:, 2, :8, :] += 0.6 * attrs[:, 2].view(n, 1, 1)
    images = (img.clamp(0, 1) * 255).to(torch.uint8)
    model = train_classifier(images[:320], attrs[:320], multilabel=True, epochs=3, batch_size=32, lr=3e-3,
                             seed=0, device="cpu", feature_dim=32, progress=False)
    assert model.n_outputs == 3 and model.feature_dim == 32
    result = evaluate_classifier(model, images[320:], attrs[320:], multilabel=True)
    assert result["accuracy"] > 0.9


def test_classifier_label_checks():
    images, labels = _halves(8, seed=4)
    with pytest.raises(DataError, match="8 images but 7 labels"):
        train_classifier(images, labels[:7], **TRAIN)
    with pytest.raises(DataError, match="multilabel"):
        train_classifier(images, labels.float().view(8, 1).repeat(1, 2), **TRAIN)


# --------------------------------------------------------------------------- raw, registry, batching


def test_raw_extractor():
    x = torch.randn(5, 2, 3)
    feats = build_extractor("raw")(x)
    assert isinstance(build_extractor("raw"), RawExtractor)
    assert feats.dtype == np.float64 and feats.shape == (5, 6)
    np.testing.assert_array_equal(feats, x.double().reshape(5, 6).numpy())
    x64 = torch.randn(3, 4, dtype=torch.float64)
    np.testing.assert_array_equal(RawExtractor()(x64), x64.numpy())  # float64 precision kept
    u8 = torch.tensor([[0, 255], [51, 102]], dtype=torch.uint8)
    np.testing.assert_allclose(RawExtractor()(u8), [[0.0, 1.0], [0.2, 0.4]], rtol=1e-6)


def test_build_extractor_errors():
    with pytest.raises(ConfigError) as info:
        build_extractor("vgg")
    msg = str(info.value)
    assert "vgg" in msg and all(name in msg for name in EXTRACTORS)
    with pytest.raises(ConfigError, match="classifier_path"):
        build_extractor("classifier")


def test_extract_features_batches():
    seen = []

    def extractor(batch):
        seen.append((batch.shape[0], batch.dtype))
        return RawExtractor()(batch)

    data = torch.randint(0, 256, (23, 1, 4, 4), dtype=torch.uint8)
    feats = extract_features(extractor, data, batch_size=10)
    assert [s for s, _ in seen] == [10, 10, 3] and all(d == torch.uint8 for _, d in seen)
    np.testing.assert_allclose(feats, data.reshape(23, -1).double().numpy() / 255.0)


# --------------------------------------------------------------------------- reference statistics


def test_reference_stats_cache(tmp_path):
    path = tmp_path / "stats" / "ref.npz"
    feats = np.random.default_rng(0).normal(size=(40, 6))
    calls = []

    def compute():
        calls.append(1)
        return feats

    mu1, s1 = reference_stats(path, compute)
    mu2, s2 = reference_stats(path, compute)
    assert len(calls) == 1
    exp_mu, exp_sigma = gaussian_stats(feats)
    np.testing.assert_array_equal(mu1, exp_mu)
    np.testing.assert_array_equal(s1, exp_sigma)
    np.testing.assert_array_equal(mu2, exp_mu)
    np.testing.assert_array_equal(s2, exp_sigma)
    with np.load(path, allow_pickle=False) as data:
        assert {"mu", "sigma", "n"} <= set(data.files) and int(data["n"]) == 40
        np.testing.assert_array_equal(data["sigma"], exp_sigma)
    assert [p.name for p in path.parent.iterdir()] == ["ref.npz"]  # no temp files left


def test_reference_stats_meta_mismatch_recomputes(tmp_path):
    path = tmp_path / "ref.npz"
    calls = []

    def compute():
        calls.append(1)
        return np.random.default_rng(len(calls)).normal(size=(10, 3))

    reference_stats(path, compute, meta={"extractor": "raw"})
    reference_stats(path, compute, meta={"extractor": "raw"})
    assert len(calls) == 1
    with pytest.warns(UserWarning, match="extractor"):
        reference_stats(path, compute, meta={"extractor": "inception"})
    assert len(calls) == 2


def test_load_stats_errors(tmp_path):
    with pytest.raises(RaeBenchError, match="absent.npz"):
        load_stats(tmp_path / "absent.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(DataError) as info:
        load_stats(bad)
    assert "bad.npz" in str(info.value) and "\n" not in str(info.value)
    good = tmp_path / "good.npz"
    save_stats(good, np.zeros(2), np.eye(2), 5, extractor="raw")
    mu, sigma = load_stats(good)
    np.testing.assert_array_equal(sigma, np.eye(2))


def test_majority_baseline_is_the_accuracy_of_always_answering_the_training_majority():
    from rae_bench.metrics import majority_baseline

    train = torch.tensor([[1, 0], [1, 1], [1, 0], [0, 0]], dtype=torch.float32)  # majorities: 1, 0
    test = torch.tensor([[1, 0], [0, 0], [1, 1]], dtype=torch.float32)
    assert majority_baseline(train, test, multilabel=True) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert majority_baseline(torch.tensor([3, 3, 1]), torch.tensor([3, 1, 2, 3]), multilabel=False) == 0.5


# --------------------------------------------------------------------------- Inception backends

from rae_bench.metrics import frechet_distance  # noqa: E402
from rae_bench.metrics import inception_backends as ib  # noqa: E402


OPT_IN_BACKENDS = pytest.mark.skipif(os.environ.get("RAE_BENCH_TEST_COMPILED_BACKENDS") != "1",
                                     reason="compiled Inception backends take minutes: set RAE_BENCH_TEST_COMPILED_BACKENDS=1")


def _far_apart_sets() -> tuple[torch.Tensor, torch.Tensor]:
    """Two very different uint8 RGB sets (noise vs white strokes on black): FID far from zero."""
    gen = torch.Generator().manual_seed(3)
    noise = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8, generator=gen)
    strokes = torch.zeros(8, 3, 32, 32, dtype=torch.uint8)
    for i in range(8):  # a bright bar per image, like a digit's stroke
        r = int(torch.randint(4, 24, (1,), generator=gen))
        strokes[i, :, r:r + 4, 6:26] = 255
    return noise, strokes


def _fid(fa: np.ndarray, fb: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))


@pytest.fixture(scope="module")
def far_apart_reference(random_weights):
    """Both sets and their FID from pytorch-fid's own InceptionV3 forward."""
    _, state = random_weights
    a, b = _far_apart_sets()
    return a, b, _fid(_pytorch_fid_features(state, a.float() / 255), _pytorch_fid_features(state, b.float() / 255))


@pytest.mark.parametrize("backend", [
    "torch", "openvino", "onnxruntime",
    # TorchScript trace + fusion warm-up, and inductor's compile: a minute or more each; opt-in
    pytest.param("onednn", marks=[pytest.mark.slow, OPT_IN_BACKENDS]),
    pytest.param("compile", marks=[pytest.mark.slow, OPT_IN_BACKENDS]),
])
def test_inception_backend_fid_matches_pytorch_fid(random_weights, far_apart_reference, backend, tmp_path,
                                                   monkeypatch):
    if not ib.available(backend):
        pytest.skip(f"Inception backend '{backend}' not installed (pip install 'rae-bench[fast]')")
    monkeypatch.setenv(ib.CACHE_ENV, str(tmp_path))  # converted models go here, not to ~/.cache
    path, _ = random_weights
    a, b, ref = far_apart_reference
    assert ref > 0.5  # far from zero (faces vs faces with these weights: ~0.02)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extractor = InceptionExtractor(path, batch_size=8, backend=backend)
    assert extractor.backend == backend and extractor.name == "inception"
    assert extractor.info["backend"] == backend
    assert abs(_fid(extractor(a), extractor(b)) - ref) <= 1e-4 * ref
    if backend == "openvino":  # a second build reads the cached f32 IR: same numbers
        assert len(list(tmp_path.glob("openvino-*/model.bin"))) == 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = InceptionExtractor(path, batch_size=8, backend=backend)
        np.testing.assert_array_equal(again(a), extractor(a))


def test_inception_backend_auto_and_errors(random_weights):
    path, _ = random_weights
    # auto: the first installed engine of AUTO_ORDER, the torch path when none is
    assert ib.resolve("auto", have=lambda name: False) == "torch"
    assert ib.resolve("auto", have=lambda name: True) == ib.AUTO_ORDER[0]
    assert ib.resolve("onnxruntime", have=lambda name: False) == "onnxruntime"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ConfigError, match="unknown Inception backend"):
            InceptionExtractor(path, backend="tensorrt")
        missing = [b for b in ib.BACKENDS if b != "auto" and not ib.available(b)]
        if missing:
            with pytest.raises(ConfigError, match="not installed"):
                InceptionExtractor(path, backend=missing[0])
        # bf16 keeps its own torch autocast path whatever the default backend; it runs no engine
        bf16 = InceptionExtractor(path, backend="auto", precision="bf16")
        assert bf16.backend == "torch" and bf16.info["backend"] == "torch"
