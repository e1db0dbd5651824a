"""The user's own data: ``image_folder`` and ``npz`` sources, their validation, errors, cache and the real DAG."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from rae_bench.config.validate import load_config
from rae_bench.data import DataSource, clear_cache, data_shape, has_labels, load, load_labels
from rae_bench.data.custom import seeded_split, to_square
from rae_bench.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
# subprocesses (the CLI, Snakemake and its jobs) import this checkout's package, not another installed copy
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}
pytestmark = pytest.mark.usefixtures("fresh_memory_cache")


def one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg
    return msg


def grey(value: int, size: tuple[int, int] = (28, 28)) -> Image.Image:
    return Image.new("L", size, int(value))


def save_indexed(folder: Path, count: int, start: int = 0) -> None:
    """``count`` grey images whose constant pixel value is 2 * (start + i): the value names the image."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + count):
        grey(2 * i).save(folder / f"img{i:03d}.png")


def ids(images: torch.Tensor) -> list[int]:
    """The index each (constant) image encodes; asserts it is constant."""
    flat = images.reshape(len(images), -1)
    assert (flat == flat[:, :1]).all()
    return (flat[:, 0].long() // 2).tolist()


OPTS_28 = {"size": 28, "channels": 1}

# --------------------------------------------------------------------------- preprocessing


def test_centre_crop_then_resize_on_known_content(tmp_path):
    # 60 x 40: red and blue 10-px bands left and right (outside the centred 40 x 40 square), and inside
    # that square a white top-left quadrant on black
    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :10] = (255, 0, 0)
    img[:, 50:] = (0, 0, 255)
    img[:20, 10:30] = 255
    out = to_square(Image.fromarray(img), 32, 3)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint8
    assert (out[0] == out[1]).all() and (out[1] == out[2]).all()  # the coloured bands were cropped away
    assert (out[:, :14, :14] == 255).all()  # the quadrant, away from its antialiased edge
    assert (out[:, 18:, :] == 0).all() and (out[:, :, 18:] == 0).all()
    assert to_square(Image.fromarray(img), 32, 1).shape == (1, 32, 32)
    # an image already of the target size is kept exactly
    exact = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(to_square(Image.fromarray(exact), 32, 3), exact.transpose(2, 0, 1))

    # the loader applies the same transform, whatever the file size (a portrait 30 x 50 grey image here)
    for split in ("train", "test"):
        (tmp_path / "d" / split).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "d" / split / "wide.png")
        grey(77, (30, 50)).save(tmp_path / "d" / split / "tall.jpg")
    x = load("image_folder", "train", DataSource(tmp_path, tmp_path / "cache"), {"path": "d"})
    assert x.shape == (2, 3, 32, 32)
    rows = {int(t[0, 0, 0]): t.numpy() for t in x}
    assert np.array_equal(rows[255], to_square(Image.fromarray(img), 32, 3))
    assert abs(int(rows[77].min()) - 77) <= 1 and abs(int(rows[77].max()) - 77) <= 1  # jpeg rounding


# --------------------------------------------------------------------------- splits


def test_seeded_split_is_deterministic_and_disjoint(tmp_path):
    save_indexed(tmp_path / "flat", 50)
    src = DataSource(tmp_path, tmp_path / "cache")
    opts = {"path": "flat", **OPTS_28}
    train, test = ids(load("image_folder", "train", src, opts)), ids(load("image_folder", "test", src, opts))
    assert len(test) == 10 and len(train) == 40  # default test_fraction 0.2
    assert set(train).isdisjoint(test) and set(train) | set(test) == set(range(50))
    assert test != sorted(test)  # a seeded random order: the first n_samples are a random subset
    clear_cache()
    other = DataSource(tmp_path, tmp_path / "cache2")  # a fresh cache decodes again: the same split
    assert ids(load("image_folder", "test", other, opts)) == test
    assert set(ids(load("image_folder", "test", src, {**opts, "split_seed": 1}))) != set(test)
    assert len(ids(load("image_folder", "test", src, {**opts, "test_fraction": 0.3}))) == 15
    a, b = seeded_split(7, 0.01, 3), seeded_split(7, 0.99, 3)  # at least one item on each side
    assert len(a["test"]) == 1 and len(b["train"]) == 1


def test_subfolder_split_and_class_labels(tmp_path):
    root = tmp_path / "cls"
    save_indexed(root / "train" / "cat", 6, 0)
    save_indexed(root / "train" / "dog", 5, 10)
    save_indexed(root / "test" / "dog", 3, 20)
    save_indexed(root / "test" / "cat", 2, 30)
    src = DataSource(tmp_path, tmp_path / "cache")
    opts = {"path": "cls", "labels": True, **OPTS_28}
    assert has_labels("image_folder", opts) and not has_labels("image_folder", {"path": "cls"})
    for split, expected in (("train", set(range(6)) | set(range(10, 15))), ("test", set(range(20, 23)) | {30, 31})):
        x, y = load("image_folder", split, src, opts), load_labels("image_folder", split, src, opts)
        assert set(ids(x)) == expected  # each split holds exactly its folder's images
        assert y.dtype == torch.int64 and [int(i >= 10 and i < 30) for i in ids(x)] == y.tolist()  # cat 0, dog 1
    # without labels the split folders must hold images themselves
    with pytest.raises(DataError) as exc:
        load("image_folder", "train", src, {"path": "cls"})
    assert "labels: true" in one_line(exc)
    with pytest.raises(ConfigError) as exc:
        load_labels("image_folder", "train", src, {"path": "cls"})
    assert "has no labels" in one_line(exc) and "extractor: raw" in str(exc.value)
    # a test class without training images
    save_indexed(root / "test" / "emu", 1, 40)
    clear_cache()
    with pytest.raises(DataError) as exc:
        load("image_folder", "test", src, opts)
    assert "emu" in one_line(exc) and "no counterpart" in str(exc.value)


def test_image_folder_errors_are_one_line(tmp_path):
    src = DataSource(tmp_path, tmp_path / "cache")
    cases = {}
    cases["missing"] = "nowhere"
    (tmp_path / "empty").mkdir()
    cases["empty"] = "empty"
    save_indexed(tmp_path / "half" / "train", 3)
    cases["half"] = "half"
    save_indexed(tmp_path / "bad", 3)
    (tmp_path / "bad" / "img001.png").write_bytes(b"not a png")
    cases["bad"] = "bad"
    expected = {"missing": ("is missing", "relative to the data root"), "empty": ("holds no images",),
                "half": ("no test/",), "bad": ("img001.png cannot be read", "replace or delete")}
    for name, path in cases.items():
        with pytest.raises(DataError) as exc:
            load("image_folder", "train", src, {"path": path})
        assert all(part in one_line(exc) for part in expected[name]), (name, exc.value)


# --------------------------------------------------------------------------- npz


def test_npz_layouts_and_splits(tmp_path):
    rng = np.random.default_rng(0)
    src = DataSource(tmp_path, tmp_path / "cache")
    nhw = rng.integers(0, 256, (20, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "nhw.npz", nhw)  # arr_0, N x H x W
    x = load("npz", "train", src, {"path": "nhw.npz", **OPTS_28})
    test = load("npz", "test", src, {"path": "nhw.npz", **OPTS_28})
    assert x.shape == (16, 1, 28, 28) and test.shape == (4, 1, 28, 28)
    rows = {r.tobytes() for r in nhw}
    got = [r.numpy().tobytes() for r in torch.cat([x, test])]
    assert len(set(got)) == 20 and set(got) == rows  # a disjoint split of the very images

    nhwc = rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8)
    np.savez(tmp_path / "tr.npz", images=nhwc, labels=np.arange(6) % 2)
    np.savez(tmp_path / "te.npz", x=nhwc[:3])  # the only array
    opts = {"train": "tr.npz", "test": "te.npz"}
    x = load("npz", "train", src, opts)
    order = [int(np.flatnonzero((nhwc.transpose(0, 3, 1, 2) == r.numpy()).all(axis=(1, 2, 3)))[0]) for r in x]
    assert sorted(order) == list(range(6)) and x.shape == (6, 3, 32, 32)
    assert load("npz", "test", src, opts).shape == (3, 3, 32, 32)
    labelled = {**opts, "train": "tr.npz", "test": "tr.npz", "labels": True}
    assert load_labels("npz", "train", src, labelled).tolist() == [i % 2 for i in order]
    with pytest.raises(DataError) as exc:
        load_labels("npz", "train", src, {**opts, "labels": True, "train": "te.npz"})
    assert "no 'labels' array" in one_line(exc)

    # another size is centre-cropped and resized like an image folder's, and cached
    small = rng.integers(0, 256, (5, 24, 20, 3), dtype=np.uint8)
    np.savez(tmp_path / "small.npz", small)
    y = load("npz", "train", src, {"train": "small.npz", "test": "small.npz", "size": 64})
    assert y.shape == (5, 3, 64, 64)
    assert any(np.array_equal(r.numpy(), to_square(Image.fromarray(small[0]), 64, 3)) for r in y)
    assert list((tmp_path / "cache" / "custom").glob("npz_train_*.npy"))


def test_npz_errors_are_one_line(tmp_path):
    src = DataSource(tmp_path, tmp_path / "cache")
    (tmp_path / "junk.npz").write_bytes(b"no zip here")
    np.savez(tmp_path / "floats.npz", np.zeros((4, 8, 8), np.float32))
    np.savez(tmp_path / "stats.npz", mu=np.zeros(3), sigma=np.eye(3))
    np.savez(tmp_path / "two.npz", a=np.zeros((4, 8, 8), np.uint8), b=np.zeros(4))
    for path, part in (("gone.npz", "is missing"), ("junk.npz", "cannot read"), ("floats.npz", "uint8"),
                       ("stats.npz", "statistics"), ("two.npz", "no image array")):
        with pytest.raises(DataError) as exc:
            load("npz", "train", src, {"path": path})
        assert part in one_line(exc), (path, exc.value)


# --------------------------------------------------------------------------- cache


def test_cache_is_reused_and_follows_changed_files(tmp_path):
    data = tmp_path / "data"
    save_indexed(data / "flat", 10)
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    src = DataSource(data, tmp_path / "cache")
    opts = {"path": "flat", **OPTS_28}
    first = load("image_folder", "train", src, opts).clone()
    cached = list((tmp_path / "cache" / "custom").glob("image_folder_train_*.npy"))
    assert len(cached) == 1 and np.array_equal(np.load(cached[0]), first.numpy())
    assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before  # nothing written under the data root
    clear_cache()
    assert torch.equal(load("image_folder", "train", src, opts), first)
    assert len(list((tmp_path / "cache" / "custom").glob("image_folder_train_*.npy"))) == 1
    # a changed image gets a new cache file with its new pixels
    victim = sorted((data / "flat").iterdir())[ids(first)[0]]
    grey(201).save(victim)
    os.utime(victim, ns=(1, 1))
    clear_cache()
    again = load("image_folder", "train", src, opts)
    assert 100 in ids(again) and len(list((tmp_path / "cache" / "custom").glob("image_folder_train_*.npy"))) == 2


# --------------------------------------------------------------------------- config validation


def config(tmp_path: Path, dataset: dict, **top) -> Path:
    cfg = {"arch": "tiny", "data_root": str(tmp_path), "training": {"epochs": 1, "batch_size": 8},
           "datasets": {"mine": {"latent_dim": 4, **dataset}}, "models": {"ae": {"model": "ae"}}, **top}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize("dataset, parts", [
    ({"source": "image_folder", "options": {"path": "x", "size": 48}, "extractor": "raw"},
     ("datasets.mine.options.size", "48 is not one of [28, 32, 64]")),
    ({"source": "image_folder", "options": {"size": 32}, "extractor": "raw"}, ("'path' is a required property",)),
    ({"source": "image_folder", "extractor": "raw"}, ("'options' is a required property",)),
    ({"source": "image_folder", "options": {"path": "x", "colour": 1}, "extractor": "raw"}, ("'colour' was unexpected",)),
    ({"source": "image_folder", "options": {"path": "x", "channels": 2}, "extractor": "raw"}, ("options.channels",)),
    ({"source": "npz", "options": {"path": "a.npz", "train": "b.npz", "test": "c.npz"}, "extractor": "raw"},
     ("datasets.mine.options", "not both")),
    ({"source": "npz", "options": {"train": "b.npz"}, "extractor": "raw"}, ("'test' is a dependency of 'train'",)),
    ({"source": "npz", "options": {"size": 32}, "extractor": "raw"}, ("needs option 'path'",)),
    ({"source": "image_folder", "options": {"path": "x"}},  # the default extractor is the classifier
     ("datasets.mine", "extractor 'classifier' needs class labels", "extractor: raw", "labels: true")),
    ({"source": "npz", "options": {"path": "a.npz"}, "extractor": "classifier"}, ("a labels array",)),
])
def test_schema_and_checks_refuse_bad_custom_datasets(tmp_path, dataset, parts):
    with pytest.raises(ConfigError) as exc:
        load_config([config(tmp_path, dataset)])
    assert all(part in one_line(exc) for part in parts), exc.value


@pytest.mark.parametrize("options, shape", [({"size": 28, "channels": 1}, (1, 28, 28)), ({}, (3, 32, 32)),
                                            ({"size": 64}, (3, 64, 64)), ({"size": 28}, (3, 28, 28)),
                                            ({"size": 64, "channels": 1, "labels": True}, (1, 64, 64))])
def test_schema_accepts_custom_datasets_of_every_supported_size(tmp_path, options, shape):
    """Validation builds every model on these shapes (on the meta device); the 3 x 28 x 28 net also runs."""
    extractor = "classifier" if options.get("labels") else "raw"
    for source, paths in (("image_folder", {"path": "x"}), ("npz", {"train": "a.npz", "test": "b.npz"})):
        load_config([config(tmp_path, {"source": source, "options": {**paths, **options}, "extractor": extractor})])
        assert data_shape(source, {**paths, **options}) == shape
    from rae_bench.models import build_model

    model = build_model("ae", shape, 4, "tiny", {})
    assert model.decode(model.encode(torch.rand(2, *shape))).shape == (2, *shape)


# --------------------------------------------------------------------------- the CLI


def settings(tmp_path: Path) -> str:
    return json.dumps({"data_root": str(tmp_path / "data"), "cache_dir": str(tmp_path / "cache"), "device": "cpu"})


def test_cli_reports_one_line_without_traceback(tmp_path, capsys):
    from rae_bench.cli import main

    (tmp_path / "data").mkdir()
    spec = json.dumps({"dataset": "mine", "source": "image_folder", "options": {"path": "photos"}})
    argv = ["reference-stats", "--settings", settings(tmp_path), "--dataset-spec", spec, "--extractor", "raw",
            "--n", "4", "--out", str(tmp_path / "ref.npz")]
    done = subprocess.run([sys.executable, "-m", "rae_bench", *argv], capture_output=True, text=True, timeout=300, env=ENV)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "photos is missing" in lines[0], done.stderr[-2000:]
    assert not (tmp_path / "ref.npz").exists()
    # a config the schema refuses: the same one line, from the same entry point (in this process: faster)
    bad_cfg = config(tmp_path, {"source": "image_folder", "options": {"path": "x", "size": 30}, "extractor": "raw"})
    capsys.readouterr()
    assert main(["train", "--config", str(bad_cfg), "--dataset", "mine", "--model", "ae", "--out", str(tmp_path / "run")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: ") and "options.size" in err[0], err
    assert not (tmp_path / "run").exists()


def test_classifier_features_from_class_subfolders(tmp_path, capsys):
    """The labelled path: train the feature classifier on class subfolders, then reference statistics on it."""
    from rae_bench.cli import main

    data = tmp_path / "data" / "shapes"
    write_shapes(data, 60, labels=True)
    spec = {"dataset": "shapes", "source": "image_folder", "options": {"path": "shapes", "labels": True}}
    out = tmp_path / "clf.pt"
    assert main(["train-classifier", "--settings", settings(tmp_path), "--quiet", "--out", str(out), "--spec",
                 json.dumps({**spec, "epochs": 1, "batch_size": 16, "seed": 0})]) == 0
    quality = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert quality["n"] == 12 and 0 <= quality["accuracy"] <= 1
    ref = tmp_path / "ref.npz"
    assert main(["reference-stats", "--settings", settings(tmp_path), "--dataset-spec", json.dumps(spec),
                 "--extractor", "classifier", "--classifier", str(out), "--n", "12", "--out", str(ref)]) == 0
    with np.load(ref) as stats:
        assert stats["features"].shape == (12, 128) and np.isfinite(stats["sigma"]).all()


# --------------------------------------------------------------------------- the real DAG


def write_shapes(folder: Path, count: int, labels: bool = False, size: int = 32) -> None:
    """``count`` filled circles and squares of random place, size and colour on black (PNG)."""
    rng = np.random.default_rng(0)
    for k in range(count):
        kind = "circle" if k % 2 else "square"
        target = folder / kind if labels else folder
        target.mkdir(parents=True, exist_ok=True)
        img = Image.new("RGB", (size, size))
        x, y = (int(v) for v in rng.integers(2, size // 2, 2))
        side = int(rng.integers(size // 4, size // 2))
        fill = tuple(int(c) for c in rng.integers(80, 256, 3))
        getattr(ImageDraw.Draw(img), "ellipse" if kind == "circle" else "rectangle")([x, y, x + side, y + side], fill=fill)
        img.save(target / f"{kind}{k:03d}.png")


@pytest.mark.slow
def test_dag_on_an_image_folder_builds_a_table(tmp_path):
    """Snakemake on tests/configs/tiny.yaml's settings with a 120-image folder (28 x 28 grey, raw features)."""
    write_shapes(tmp_path / "data" / "shapes", 120)
    cfg = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    cfg.update(data_root=str(tmp_path / "data"), samplers={"prior": {}})
    # no FID bootstrap: 200 Frechet distances over 784-d raw features would be ~40 s of this test's ~60
    cfg["features"].update(n_samples=24, batch_size=24, bootstrap=0)
    cfg["datasets"] = {"shapes": {"source": "image_folder", "options": {"path": "shapes", "size": 28, "channels": 1},
                                  "latent_dim": 4, "extractor": "raw"}}
    cfg["models"] = {"ae": {"model": "ae"}}
    cfg["tables"] = {"table3": {"datasets": ["shapes"], "rows": [{"label": "AE", "model": "ae", "sampler": "prior"}]}}
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "custom.yaml").write_text(yaml.safe_dump(cfg))
    # targets before --configfile: Snakemake reads every word after it as a config file
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(wd), "--cores", "2",
           "tables/table3.csv", "--configfile", str(wd / "custom.yaml")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-4000:]
    df = pd.read_csv(wd / "tables" / "table3.csv")
    assert set(df["metric"]) == {"fid_rec", "fid_gen"} and set(df["dataset"]) == {"shapes"}
    assert df["ours"].map(math.isfinite).all() and (df["ours"] >= 0).all()
    assert set(df["extractor"]) == {"raw"} and set(df["n_samples"]) == {24}
    blob = torch.load(wd / "results" / "shapes" / "ae" / "seed0" / "model.pt", map_location="cpu", weights_only=True)
    assert list(blob["data_shape"]) == [1, 28, 28]
    assert list((wd / "results" / "cache" / "custom").glob("image_folder_*.npy"))  # the preprocessed splits


def test_crop_and_resize_match_torchvision():
    """The PIL-only transform gives torchvision's centre crop + antialiased bilinear resize, pixel for pixel."""
    import torchvision.transforms.functional as TF
    from torchvision.transforms import InterpolationMode

    rng = np.random.default_rng(1)
    for (h, w), size in (((45, 61), 32), ((64, 50), 28), ((20, 20), 64), ((89, 109), 64)):
        img = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
        side = min(h, w)
        ref = TF.resize(TF.center_crop(img, [side, side]), [size, size], interpolation=InterpolationMode.BILINEAR,
                        antialias=True)
        assert np.array_equal(to_square(img, size, 3), np.asarray(ref).transpose(2, 0, 1)), (h, w, size)
