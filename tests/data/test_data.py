"""Tests of rae_bench.data: real offline datasets where present, format-exact fixtures otherwise."""
from __future__ import annotations

import os
import pickle
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rae_bench.data import SOURCES, DataSource, clear_cache, data_shape, load, load_labels, to_float
from rae_bench.data import celeba as celeba_mod
from rae_bench.data.synthetic import synthetic_map
from rae_bench.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("fresh_memory_cache")

try:
    from tests import fixtures_data as fx
except ImportError:  # tests/ is not a package: pytest put it on sys.path
    import fixtures_data as fx  # type: ignore[no-redef]

SHARED = Path(os.environ.get("RAE_BENCH_TEST_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
MNIST_FILES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"offline data {path} is absent (see /work/shared/data/README.md)")
    return path


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One disk cache for the real datasets, shared by the tests of this module."""
    return tmp_path_factory.mktemp("shared-cache")


def assert_one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


# --------------------------------------------------------------------------- real MNIST / Fashion-MNIST


def test_real_mnist(shared_cache):
    need(SHARED / "MNIST" / "raw")
    src = DataSource(SHARED, shared_cache)
    train, test = load("mnist", "train", src), load("mnist", "test", src)
    ytrain, ytest = load_labels("mnist", "train", src), load_labels("mnist", "test", src)
    assert train.shape == (60000, 1, 28, 28) and train.dtype == torch.uint8
    assert test.shape == (10000, 1, 28, 28) and test.dtype == torch.uint8
    assert ytrain.dtype == torch.int64 and ytrain.shape == (60000,) and ytest.shape == (10000,)
    assert set(ytrain.unique().tolist()) == set(range(10)) == set(ytest.unique().tolist())
    assert ytrain[0].item() == 5 and ytest[0].item() == 7
    # The well-known normalisation constant of MNIST: mean 0.1307 of x/255.
    assert abs(train.double().mean().item() / 255 - 0.1307) < 5e-4
    assert train.max().item() == 255 and train.min().item() == 0
    # The extracted files are in the cache (the data root may be read only).
    assert (shared_cache / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file()


def test_real_fashion_mnist(shared_cache):
    need(SHARED / "FashionMNIST" / "raw")
    src = DataSource(SHARED, shared_cache)
    train, test = load("fashion_mnist", "train", src), load("fashion_mnist", "test", src)
    ytrain, ytest = load_labels("fashion_mnist", "train", src), load_labels("fashion_mnist", "test", src)
    assert train.shape == (60000, 1, 28, 28) and test.shape == (10000, 1, 28, 28)
    assert train.dtype == test.dtype == torch.uint8
    assert torch.equal(torch.bincount(ytrain), torch.full((10,), 6000))  # balanced classes
    assert torch.equal(torch.bincount(ytest), torch.full((10,), 1000))
    assert ytrain[0].item() == 9  # the first training image is an ankle boot
    assert abs(train.double().mean().item() / 255 - 0.2860) < 5e-4  # Fashion-MNIST's usual mean


def test_mnist_extracted_files_are_reused(shared_cache):
    need(SHARED / "MNIST" / "raw")
    src = DataSource(SHARED, shared_cache)
    first = load("mnist", "test", src).clone()
    extracted = shared_cache / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    stamp = extracted.stat().st_mtime_ns
    clear_cache()
    again = load("mnist", "test", src)
    assert torch.equal(first, again)
    assert extracted.stat().st_mtime_ns == stamp  # not extracted a second time


def test_mnist_later_loads_need_no_torchvision(shared_cache):
    """After the first read through torchvision, a process loads the parsed arrays without importing it
    (torchvision pulls in torch._dynamo: seconds per job), and gets the same tensors."""
    import subprocess
    import sys

    need(SHARED / "MNIST" / "raw")
    src = DataSource(SHARED, shared_cache)
    images, labels = load("mnist", "test", src), load_labels("mnist", "test", src)
    code = ("import sys, torch; from rae_bench.data import DataSource, load, load_labels; "
            f"src = DataSource({str(SHARED)!r}, {str(shared_cache)!r}); "
            "x, y = load('mnist', 'test', src), load_labels('mnist', 'test', src); "
            "assert 'torchvision' not in sys.modules, 'torchvision imported'; "
            "print(int(x.sum()), int(y.sum()), tuple(x.shape))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(int(images.sum())), str(int(labels.sum())), "(10000,", "1,", "28,", "28)"]


def test_mnist_file_list_is_torchvisions():
    import torchvision.datasets as tvd

    from rae_bench.data.mnist import RESOURCES

    assert RESOURCES == {"MNIST": list(tvd.MNIST.resources), "FashionMNIST": list(tvd.FashionMNIST.resources)}


def _copy_mnist(dst_root: Path, files: list[str]) -> Path:
    raw = dst_root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in files:
        shutil.copyfile(SHARED / "MNIST" / "raw" / name, raw / name)
        os.chmod(raw / name, 0o644)
    return raw


def test_mnist_missing_file_names_it(tmp_path):
    need(SHARED / "MNIST" / "raw")
    _copy_mnist(tmp_path / "root", [f for f in MNIST_FILES if f != "t10k-labels-idx1-ubyte.gz"])
    with pytest.raises(DataError) as exc:
        load("mnist", "train", DataSource(tmp_path / "root", tmp_path / "cache"))
    msg = assert_one_line(exc)
    assert "t10k-labels-idx1-ubyte.gz" in msg and "download: true" in msg


def test_mnist_corrupt_gz_is_a_checksum_error(tmp_path):
    need(SHARED / "MNIST" / "raw")
    raw = _copy_mnist(tmp_path / "root", MNIST_FILES)
    target = raw / "train-labels-idx1-ubyte.gz"
    data = bytearray(target.read_bytes())
    for i in range(100, 110):
        data[i] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError) as exc:
        load("mnist", "test", DataSource(tmp_path / "root", tmp_path / "cache"))
    msg = assert_one_line(exc)
    assert "train-labels-idx1-ubyte.gz" in msg and "checksum" in msg


def test_mnist_fixture_unverified_and_stale_cache(tmp_path):
    """verify=False reads hand-made idx files; a changed source replaces the extracted cache."""
    root, cache = tmp_path / "root", tmp_path / "cache"
    src = DataSource(root, cache, verify=False)
    written = fx.write_mnist(root, "FashionMNIST", seed=1)
    assert np.array_equal(load("fashion_mnist", "train", src)[:, 0].numpy(), written["train"][0])
    assert np.array_equal(load_labels("fashion_mnist", "test", src).numpy(), written["test"][1])
    time.sleep(0.01)
    rewritten = fx.write_mnist(root, "FashionMNIST", n_train=7, seed=2)
    clear_cache()
    again = load("fashion_mnist", "train", src)
    assert again.shape == (7, 1, 28, 28)
    assert np.array_equal(again[:, 0].numpy(), rewritten["train"][0])


def test_mnist_unverified_corrupt_gz(tmp_path):
    root = tmp_path / "root"
    fx.write_mnist(root)
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08garbage")
    with pytest.raises(DataError) as exc:
        load("mnist", "train", DataSource(root, tmp_path / "cache", verify=False))
    msg = assert_one_line(exc)
    assert "train-images-idx3-ubyte.gz" in msg and "corrupt" in msg


# --------------------------------------------------------------------------- CIFAR-10 fixtures


def test_cifar10_fixture_round_trip(tmp_path):
    written = fx.write_cifar10(tmp_path, per_batch=3)
    src = DataSource(tmp_path, tmp_path / "cache", verify=False)
    for split, count in (("train", 15), ("test", 3)):
        images, labels = load("cifar10", split, src), load_labels("cifar10", split, src)
        assert images.shape == (count, 3, 32, 32) and images.dtype == torch.uint8
        assert labels.dtype == torch.int64
        assert np.array_equal(images.numpy(), written[split][0])
        assert np.array_equal(labels.numpy(), written[split][1])
    # Channel planes: the first 1024 values of a row are the red plane, row-major.
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as handle:
        raw = pickle.load(handle, encoding="bytes")  # as the original python-2 pickles read
    assert set(raw) >= {b"data", b"labels"}
    assert load("cifar10", "train", src)[0, 0, 1, 2].item() == raw[b"data"][0, 32 + 2]
    assert load("cifar10", "train", src)[0, 2, 0, 0].item() == raw[b"data"][0, 2048]


def test_cifar10_fixture_fails_checksum_when_verified(tmp_path):
    fx.write_cifar10(tmp_path, per_batch=2)
    with pytest.raises(DataError) as exc:
        load("cifar10", "train", DataSource(tmp_path, tmp_path / "cache", verify=True))
    msg = assert_one_line(exc)
    assert "checksum" in msg and "data_batch_1" in msg


def test_cifar10_missing_folder_and_file(tmp_path):
    with pytest.raises(DataError) as exc:
        load("cifar10", "test", DataSource(tmp_path / "empty", tmp_path / "cache"))
    msg = assert_one_line(exc)
    assert "cifar-10-batches-py" in msg and "cifar-10-python.tar.gz" in msg and "download: true" in msg
    fx.write_cifar10(tmp_path / "root", per_batch=2)
    (tmp_path / "root" / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DataError) as exc:
        load("cifar10", "test", DataSource(tmp_path / "root", tmp_path / "cache", verify=False))
    assert "data_batch_4" in assert_one_line(exc)


# --------------------------------------------------------------------------- CelebA


def manual_64(path: Path, left: int, top: int, side: int) -> np.ndarray:
    """Independent reference: PIL crop box, then bilinear resize to 64 (3 x 64 x 64 uint8)."""
    with Image.open(path) as img:
        out = img.convert("RGB").crop((left, top, left + side, top + side)).resize((64, 64), Image.BILINEAR)
    return np.asarray(out).transpose(2, 0, 1)


def test_celeba_offline_fixture(tmp_path):
    attrs = fx.write_celeba_offline(tmp_path / "root", count=12)
    cache = tmp_path / "cache"
    src = DataSource(tmp_path / "root", cache, verify=True)  # sha256 of the images is checked
    opts = {"holdout": 4}
    train, test = load("celeba", "train", src, opts), load("celeba", "test", src, opts)
    assert train.shape == (8, 3, 64, 64) and test.shape == (4, 3, 64, 64)
    assert train.dtype == test.dtype == torch.uint8
    image_dir = tmp_path / "root" / "celeba" / "img_align_celeba_89x109"
    # 89 x 109 -> centre crop 70 (left 10, top 20) -> 64 x 64.
    assert celeba_mod.crop_size(89) == 70 and celeba_mod.crop_size(178) == 140
    assert np.array_equal(train[0].numpy(), manual_64(image_dir / "000001.jpg", 10, 20, 70))
    assert np.array_equal(test[-1].numpy(), manual_64(image_dir / "000012.jpg", 10, 20, 70))
    # The attribute file is not torchvision's original: read it unverified.
    plain = DataSource(tmp_path / "root", cache, verify=False)
    ytrain, ytest = load_labels("celeba", "train", plain, opts), load_labels("celeba", "test", plain, opts)
    assert ytrain.shape == (8, 40) and ytest.shape == (4, 40) and ytrain.dtype == torch.float32
    expected = np.stack([(attrs[f"{i:06d}.jpg"] + 1) // 2 for i in range(1, 13)]).astype(np.float32)
    assert np.array_equal(torch.cat([ytrain, ytest]).numpy(), expected)
    # The preprocessed splits are cached on disk and reused without decoding.
    cached = sorted(p.name for p in (cache / "celeba").glob("*.npy"))
    assert len(cached) == 2 and all(n.startswith("celeba64_offline_") for n in cached)
    assert any("_train_holdout4_" in n for n in cached) and any("_test_holdout4_" in n for n in cached)
    for jpg in image_dir.glob("*.jpg"):
        jpg.write_bytes(b"not a jpeg any more")
    clear_cache()
    assert torch.equal(load("celeba", "test", src, opts), test)


def test_celeba_offline_checksum_and_corrupt_jpg(tmp_path):
    fx.write_celeba_offline(tmp_path / "root", count=6)
    bad = tmp_path / "root" / "celeba" / "img_align_celeba_89x109" / "000003.jpg"
    fx.face(89, 109, seed=99).save(bad, quality=95)  # a valid jpg, but not the listed one
    with pytest.raises(DataError) as exc:
        load("celeba", "train", DataSource(tmp_path / "root", tmp_path / "cache"), {"holdout": 2})
    msg = assert_one_line(exc)
    assert "000003.jpg" in msg and "sha256" in msg
    bad.write_bytes(bad.read_bytes()[:200])  # truncated
    with pytest.raises(DataError) as exc:
        load("celeba", "train", DataSource(tmp_path / "root", tmp_path / "cache", verify=False), {"holdout": 2})
    msg = assert_one_line(exc)
    assert "000003.jpg" in msg and "corrupt" in msg


def test_celeba_holdout_must_leave_train_images(tmp_path):
    fx.write_celeba_offline(tmp_path / "root", count=3)
    with pytest.raises(ConfigError, match="holdout"):
        load("celeba", "test", DataSource(tmp_path / "root", tmp_path / "cache"), {"holdout": 3})


def test_celeba_standard_layout_fixture(tmp_path):
    partitions = [0, 0, 0, 1, 2, 2]
    fx.write_celeba_offline(tmp_path / "root", count=5)  # present too, but (a) is preferred
    attrs = fx.write_celeba_standard(tmp_path / "root", partitions)  # (replaces its attribute file)
    src = DataSource(tmp_path / "root", tmp_path / "cache", verify=False)
    train, test = load("celeba", "train", src), load("celeba", "test", src)
    assert train.shape == (3, 3, 64, 64) and test.shape == (2, 3, 64, 64)
    image_dir = tmp_path / "root" / "celeba" / "img_align_celeba"
    # 178 x 218 -> centre crop 140 (left 19, top 39) -> 64 x 64; test = partition 2 = images 5 and 6.
    assert np.array_equal(train[1].numpy(), manual_64(image_dir / "000002.jpg", 19, 39, 140))
    assert np.array_equal(test[0].numpy(), manual_64(image_dir / "000005.jpg", 19, 39, 140))
    ytest = load_labels("celeba", "test", src)
    assert np.array_equal(ytest.numpy(), np.stack([(attrs[n] + 1) // 2 for n in ("000005.jpg", "000006.jpg")]))
    assert any(p.name.startswith("celeba64_standard_test_") for p in (tmp_path / "cache" / "celeba").glob("*.npy"))
    # Verified, the hand-made partition file is refused.
    with pytest.raises(DataError, match="checksum"):
        load("celeba", "test", DataSource(tmp_path / "root", tmp_path / "cache2", verify=True))


def test_celeba_standard_layout_through_torchvision(tmp_path, monkeypatch):
    """With all of torchvision's files present and verified, the listing comes from torchvision's CelebA."""
    import torchvision.datasets as tvd

    attrs = fx.write_celeba_standard(tmp_path / "root", [0, 2, 0, 2, 1], torchvision_extras=True)
    folder = tmp_path / "root" / "celeba"
    # Our fixture files stand in for the originals: give torchvision (and us) their md5s.
    file_list = [(fid, md5 if fname.endswith(".zip") else fx.md5(folder / fname), fname)
                 for fid, md5, fname in tvd.CelebA.file_list]
    monkeypatch.setattr(tvd.CelebA, "file_list", file_list)
    calls = []
    real_init = tvd.CelebA.__init__

    def spy_init(self, *args, **kwargs):
        calls.append(kwargs)
        real_init(self, *args, **kwargs)

    monkeypatch.setattr(tvd.CelebA, "__init__", spy_init)
    src = DataSource(tmp_path / "root", tmp_path / "cache", verify=True)
    test = load("celeba", "test", src)
    assert calls and calls[0]["split"] == "test"
    assert test.shape == (2, 3, 64, 64)
    assert np.array_equal(test[1].numpy(), manual_64(folder / "img_align_celeba" / "000004.jpg", 19, 39, 140))
    ytest = load_labels("celeba", "test", src)
    assert np.array_equal(ytest.numpy(), np.stack([(attrs[n] + 1) // 2 for n in ("000002.jpg", "000004.jpg")]))


def test_celeba_missing_names_both_layouts(tmp_path):
    with pytest.raises(DataError) as exc:
        load("celeba", "train", DataSource(tmp_path, tmp_path / "cache"))
    msg = assert_one_line(exc)
    assert "img_align_celeba/" in msg and "img_align_celeba_89x109/" in msg


def test_real_celeba_offline_copy(shared_cache):
    folder = need(SHARED / "celeba" / "img_align_celeba_89x109").parent
    manifest = (folder / "img_align_celeba_89x109.sha256").read_text().splitlines()
    assert len(manifest) == 8000
    src = DataSource(SHARED, shared_cache)
    start = time.perf_counter()
    test = load("celeba", "test", src)  # default holdout: the last 1000 images
    train = load("celeba", "train", src)
    first_time = time.perf_counter() - start
    assert test.shape == (1000, 3, 64, 64) and train.shape == (7000, 3, 64, 64)
    assert test.dtype == torch.uint8
    assert np.array_equal(train[0].numpy(), manual_64(folder / "img_align_celeba_89x109" / "000001.jpg", 10, 20, 70))
    assert np.array_equal(test[0].numpy(), manual_64(folder / "img_align_celeba_89x109" / "007001.jpg", 10, 20, 70))
    labels = load_labels("celeba", "train", src)
    names = (folder / "list_attr_celeba.txt").read_text().splitlines()[1].split()
    # 000001.jpg is a smiling young woman.
    assert labels.shape == (7000, 40)
    assert labels[0, names.index("Male")] == 0 and labels[0, names.index("Smiling")] == 1
    assert labels[0, names.index("Young")] == 1
    assert set(labels.unique().tolist()) == {0.0, 1.0}
    clear_cache()
    start = time.perf_counter()
    again = load("celeba", "train", src)
    assert time.perf_counter() - start < max(1.0, first_time / 2)  # from the .npy cache
    assert torch.equal(again, train)


# --------------------------------------------------------------------------- synthetic

SYN = {"n": 3, "d": 16, "hidden": 32, "n_train": 1500, "n_test": 300, "seed": 0}


def test_synthetic_shape_and_determinism():
    x = load("synthetic", "train", None, SYN)
    assert x.shape == (1500, 16) and x.dtype == torch.float32
    assert load("synthetic", "test", None, SYN).shape == (300, 16)
    assert data_shape("synthetic", SYN) == (16,) and data_shape("synthetic") == (64,)
    clear_cache()
    again = load("synthetic", "train", None, dict(SYN))
    assert again is not x and torch.equal(again, x)  # recomputed, bit-identical
    assert not torch.allclose(load("synthetic", "train", None, {**SYN, "seed": 1}), x)
    assert not torch.allclose(load("synthetic", "test", None, SYN), x[:300])  # different generator
    # Prefixes do not depend on the split size.
    assert torch.equal(load("synthetic", "train", None, {**SYN, "n_train": 100}), x[:100])


def test_synthetic_map_is_lipschitz_with_documented_constant():
    f = synthetic_map(3, 16, 32, 0)
    gen = torch.Generator().manual_seed(0)
    z1 = 2 * torch.randn(4000, 3, generator=gen, dtype=torch.float64)
    for eps in (3.0, 0.1, 1e-4):
        z2 = z1 + eps * torch.randn(4000, 3, generator=gen, dtype=torch.float64)
        ratio = (f(z1) - f(z2)).norm(dim=1) / (z1 - z2).norm(dim=1)
        assert ratio.max().item() <= f.lipschitz * (1 + 1e-9)
    assert f.lipschitz == pytest.approx(f.scale * f.g1 * f.g2)
    for w in (f.w1, f.w2, f.w3):
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, abs=1e-12)
    # The data is what the map gives on the documented latents.
    from rae_bench.data.synthetic import latents, options
    opts = options("synthetic", SYN)
    assert torch.equal(f(latents("train", opts)).float(), load("synthetic", "train", None, SYN))


def test_synthetic_has_latent_dimension_n_and_is_curved():
    n = SYN["n"]
    f = synthetic_map(n, 16, 32, 0)
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        z0 = torch.randn(n, generator=gen, dtype=torch.float64)
        jac = torch.autograd.functional.jacobian(lambda z: f(z[None])[0], z0)
        sv = torch.linalg.svdvals(jac)
        assert jac.shape == (16, n) and sv[-1] / sv[0] > 1e-3  # rank exactly n: an immersion
        # Local PCA of data near f(z0): n directions, the rest is curvature of order eps^2.
        local = f(z0 + 1e-3 * torch.randn(200, n, generator=gen, dtype=torch.float64))
        lsv = torch.linalg.svdvals(local - local.mean(0))
        assert lsv[n - 1] / lsv[0] > 1e-3 and lsv[n] / lsv[0] < 1e-2
    # Globally not a linear subspace: the top n principal components miss a visible share.
    x = load("synthetic", "train", None, SYN).double()
    var = torch.linalg.svdvals(x - x.mean(0)) ** 2
    assert (var[:n].sum() / var.sum()).item() < 0.98


def test_synthetic_options_are_validated():
    with pytest.raises(ConfigError, match="'n'"):
        load("synthetic", "train", None, {})
    with pytest.raises(ConfigError, match="n=20"):
        load("synthetic", "train", None, {"n": 20, "d": 16})
    with pytest.raises(ConfigError, match="valid options"):
        load("synthetic", "train", None, {"n": 2, "latent": 3})
    with pytest.raises(ConfigError, match="no labels"):
        load_labels("synthetic", "train", None, {"n": 2})
    with pytest.raises(ConfigError, match="takes no options"):
        load("mnist", "train", DataSource(Path("."), Path(".")), {"holdout": 3})


# --------------------------------------------------------------------------- API


def test_to_float():
    batch = torch.tensor([[0, 1, 128, 255]], dtype=torch.uint8)
    out = to_float(batch)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor([[0.0, 1 / 255, 128 / 255, 1.0]]))
    assert batch.dtype == torch.uint8 and batch[0, 3].item() == 255  # input untouched
    doubles = torch.tensor([0.5, -2.0], dtype=torch.float64)
    assert to_float(doubles).dtype == torch.float32 and torch.equal(to_float(doubles), doubles.float())


def test_load_is_cached_in_memory(tmp_path):
    fx.write_cifar10(tmp_path, per_batch=2)
    src = DataSource(tmp_path, tmp_path / "cache", verify=False)
    assert load("cifar10", "train", src) is load("cifar10", "train", src)
    assert load_labels("cifar10", "train", src) is load_labels("cifar10", "train", src)
    # The files are read once: removing them does not matter to the cached split.
    shutil.rmtree(tmp_path / "cifar-10-batches-py")
    assert load("cifar10", "train", src).shape == (10, 3, 32, 32)
    clear_cache()
    with pytest.raises(DataError):
        load("cifar10", "train", src)


def test_unknown_source_and_split():
    src = DataSource(Path("."), Path("."))
    with pytest.raises(ConfigError) as exc:
        load("imagenet", "train", src)
    assert all(name in str(exc.value) for name in SOURCES) and "imagenet" in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        load_labels("mnist", "valid", src)
    assert "train" in str(exc.value) and "test" in str(exc.value) and "valid" in str(exc.value)
    with pytest.raises(ConfigError):
        data_shape("svhn")


def test_data_shape_without_loading():
    assert data_shape("mnist") == data_shape("fashion_mnist") == (1, 28, 28)
    assert data_shape("cifar10") == (3, 32, 32)
    assert data_shape("celeba") == data_shape("celeba", {"holdout": 10}) == (3, 64, 64)
    assert data_shape("synthetic", {"n": 4, "d": 10}) == (10,)
    assert SOURCES == ("mnist", "fashion_mnist", "cifar10", "celeba", "synthetic", "image_folder", "npz")


def test_data_source_from_config(monkeypatch):
    monkeypatch.delenv("RAE_BENCH_DATA", raising=False)
    src = DataSource.from_config("data", "cache/x", download=True, verify=False)
    assert src == DataSource(Path("data"), Path("cache/x"), True, False)
    monkeypatch.setenv("RAE_BENCH_DATA", "")
    assert DataSource.from_config("data", "c").root == Path("data")
    monkeypatch.setenv("RAE_BENCH_DATA", "/elsewhere")
    assert DataSource.from_config("data", "c").root == Path("/elsewhere")
    hash(src)  # usable as a cache key
