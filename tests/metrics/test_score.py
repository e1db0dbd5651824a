"""``rae-bench score`` and ``rae-bench sample``: pytorch-fid's FID on files, the workflow's numbers on run
folders, and one-line errors."""
from __future__ import annotations

from fixtures_data import face, save_random_inception, write_mnist

import json
from unittest import mock

import numpy as np
import pytest
import pytorch_fid.inception as pfi
import torch
from PIL import Image

from rae_bench.cli import main
from rae_bench.score import open_input

pytestmark = pytest.mark.filterwarnings("ignore:.*not the official FID weights:UserWarning")


def _save(images: np.ndarray, folder, mode: str | None = None, ext: str = "png") -> None:
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(img, mode).save(folder / f"{i:03d}.{ext}")


def _fid_of_activations(act1: np.ndarray, act2: np.ndarray) -> float:
    """pytorch-fid's FID of two activation sets, computed exactly in the n x n space they span.

    With centred activations A1, A2 (n x d), S_i = A_i^T A_i / (n_i - 1), and the nonzero eigenvalues of
    S1 S2 are the squared singular values of B = A1 A2^T / sqrt((n1 - 1)(n2 - 1)): tr sqrt(S1 S2) = ||B||_*.
    Neither our eigen-solver nor scipy's sqrtm (whose deprecated disp pytorch-fid 0.3.0 passes) is involved.
    """
    a1, a2 = (np.asarray(a, np.float64) - np.mean(a, 0) for a in (act1, act2))
    n1, n2 = len(a1), len(a2)
    tr1, tr2 = (a1**2).sum() / (n1 - 1), (a2**2).sum() / (n2 - 1)
    cross = np.linalg.svd(a1 @ a2.T / np.sqrt((n1 - 1) * (n2 - 1)), compute_uv=False).sum()
    diff = act1.mean(0).astype(np.float64) - act2.mean(0)
    return float(diff @ diff + tr1 + tr2 - 2 * cross)


# --------------------------------------------------------------------------- parity with pytorch-fid


N_FID = 6  # Inception resizes to 299 x 299: few images keep the test short on 2 cores


@pytest.fixture(scope="module")
def fid_case(tmp_path_factory):
    """A: smooth grayscale PNGs; B: bright RGB noise PNGs; pytorch-fid's activations of both, B's statistics file."""
    from pytorch_fid.fid_score import IMAGE_EXTENSIONS, get_activations

    root = tmp_path_factory.mktemp("fid")
    weights, state = save_random_inception(tmp_path_factory, 7)
    gray = np.stack([np.asarray(face(32, 32, seed).convert("L")) for seed in range(N_FID)])
    rgb = np.random.default_rng(0).integers(60, 256, size=(N_FID, 32, 32, 3), dtype=np.uint8)
    _save(gray, root / "a", "L")
    _save(rgb, root / "b")
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *args, **kw: state):
        model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
    acts = []
    for d in ("a", "b"):  # the files `python -m pytorch_fid A B` reads, in its order
        files = sorted(f for ext in IMAGE_EXTENSIONS for f in (root / d).glob(f"*.{ext}"))
        acts.append(get_activations(files, model, batch_size=8, dims=2048, device="cpu", num_workers=0))
    np.savez(root / "b_stats.npz", mu=acts[1].mean(0), sigma=np.cov(acts[1], rowvar=False))  # pytorch-fid's format
    return root, weights, acts


def test_fid_equals_pytorch_fid(fid_case, capsys):
    """A grayscale PNG folder (read and featurised by us) against pytorch-fid statistics of an RGB folder:
    `python -m pytorch_fid A B_stats.npz` would print the same number to 1e-4 relative."""
    root, weights, (act_a, act_b) = fid_case
    ref = _fid_of_activations(act_a, act_b)
    assert ref > 0.05 * (act_a.var(0).sum() + act_b.var(0).sum())  # visibly different sets: far from zero
    out = root / "score.json"
    code = main(["score", str(root / "a"), str(root / "b_stats.npz"), "--inception-weights", str(weights),
                 "--batch-size", "10", "--device", "cpu", "--json", str(out)])
    printed = capsys.readouterr().out.strip()
    assert code == 0
    result = json.loads(out.read_text())
    assert printed == f"fid: {result['fid']:.4f}"
    assert result["fid"] == pytest.approx(ref, rel=1e-4)
    assert result["a"] == {"path": str(root / "a"), "kind": "folder", "n": N_FID}
    assert result["b"] == {"path": str(root / "b_stats.npz"), "kind": "stats", "n": None}
    assert result["extractor"] == "inception"


def test_stats_only_side_allows_fid_only(fid_case, capsys):
    root, weights, _ = fid_case
    code = main(["score", str(root / "b"), str(root / "b_stats.npz"), "--metrics", "fid,kid",
                 "--inception-weights", str(weights)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: KID needs feature vectors")
    assert "--metrics fid" in err


# --------------------------------------------------------------------------- inputs


def test_folder_and_npz_inputs(tmp_path):
    rgba = np.random.default_rng(1).integers(0, 256, size=(3, 5, 7, 4), dtype=np.uint8)
    _save(rgba[[2, 0, 1]], tmp_path / "rgba", "RGBA")  # file 000 holds image 2
    (tmp_path / "rgba" / "notes.txt").write_text("not an image")
    images = open_input(tmp_path / "rgba").images[0:3]
    assert images.dtype == torch.uint8 and images.shape == (3, 3, 5, 7)  # alpha dropped, sorted by name
    np.testing.assert_array_equal(images.permute(0, 2, 3, 1).numpy(), rgba[[2, 0, 1], ..., :3])
    assert len(open_input(tmp_path / "rgba", n=2)) == 2

    gray = rgba[..., 0]
    _save(gray, tmp_path / "gray", "L", ext="JPEG")  # extensions in any case
    assert open_input(tmp_path / "gray").images[0:3].shape == (3, 1, 5, 7)

    np.savez(tmp_path / "hw.npz", images=gray, labels=np.arange(3))
    hw = open_input(tmp_path / "hw.npz")
    assert hw.kind == "npz" and torch.equal(hw.images, torch.from_numpy(gray[:, None]))
    np.savez(tmp_path / "only.npz", whatever=rgba)
    np.testing.assert_array_equal(open_input(tmp_path / "only.npz", n=2).images.numpy(),
                                  rgba[:2, ..., :3].transpose(0, 3, 1, 2))


def _error(argv, capsys) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    return err


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    ok = tmp_path / "ok"
    _save(np.zeros((3, 8, 8, 3), np.uint8), ok)
    score = lambda a, *more: ["score", str(a), str(ok), *more]  # noqa: E731
    assert "missing" in _error(score(tmp_path / "missing"), capsys)
    (tmp_path / "empty").mkdir()
    assert "holds no images" in _error(score(tmp_path / "empty"), capsys)
    mixed = tmp_path / "mixed"
    _save(np.zeros((2, 8, 8, 3), np.uint8), mixed)
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(mixed / "002.png")
    assert "differ in size" in _error(score(mixed), capsys)
    broken = tmp_path / "broken"
    _save(np.zeros((2, 8, 8, 3), np.uint8), broken)
    (broken / "002.png").write_bytes(b"not a png")
    assert "002.png" in _error(score(broken), capsys)
    np.savez(tmp_path / "two.npz", x=np.zeros((2, 8, 8), np.uint8), y=np.zeros(2))
    assert "no image array" in _error(score(tmp_path / "two.npz"), capsys)
    np.savez(tmp_path / "float.npz", np.zeros((2, 8, 8, 3)))
    assert "uint8" in _error(score(tmp_path / "float.npz"), capsys)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    assert "numpy.savez" in _error(score(tmp_path / "bad.npz"), capsys)
    assert "prd" in _error(score(ok, "--metrics", "prd"), capsys)  # 3 images: too few to cluster
    assert "valid metrics" in _error(score(ok, "--metrics", "fid,is"), capsys)
    assert "--classifier PATH or --dataset" in _error(score(ok, "--extractor", "classifier"), capsys)


# --------------------------------------------------------------------------- run folders and `sample`


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A tiny MNIST AE with a prior sampler, evaluated by the workflow's evaluate() with a trained classifier."""
    from rae_bench.data import DataSource, load, load_labels
    from rae_bench.evaluate import evaluate, fit_sampler, test_subset
    from rae_bench.metrics import FeatureSpace, ClassifierExtractor, extract_features, reference_stats, save_classifier, train_classifier
    from rae_bench.train import train

    root = tmp_path_factory.mktemp("run")
    write_mnist(root / "data", n_train=64, n_test=16)
    source = DataSource(root=root / "data", cache=root / "cache", verify=False)
    clf = root / "features" / "classifier.pt"
    model = train_classifier(load("mnist", "train", source), load_labels("mnist", "train", source), multilabel=False,
                             epochs=1, batch_size=32, lr=1e-3, seed=0, progress=False)
    save_classifier(model, clf, meta={"test": {"accuracy": 0.5, "baseline": 0.125}})  # as train-classifier records
    run = {"dataset": "mnist", "source": "mnist", "options": {}, "n_train": None, "run": "ae", "model": "ae",
           "params": {}, "latent_dim": 4, "arch": "tiny", "seed": 3,
           "training": {"epochs": 1, "batch_size": 16, "optim": {"lr": 1e-3}, "lr_schedule": {"type": "none"}}}
    train(run, root / "seed3", source, progress=False)
    fit_sampler(root / "seed3" / "model.pt", "prior", {}, root / "seed3" / "prior" / "sampler.pt", source)
    extractor = ClassifierExtractor(clf)
    reference = root / "features" / "reference_test_n16.npz"
    reference_stats(reference, lambda: extract_features(extractor, test_subset(run, source, 16)))
    metrics = evaluate(root / "seed3" / "model.pt", root / "seed3" / "prior" / "sampler.pt", root / "seed3" / "prior",
                       features=FeatureSpace.of(extractor),
                       reference=reference, n_samples=16, source=source)
    return root, clf, reference, metrics


def _score(a, b, clf, out, *more) -> dict:
    code = main(["score", str(a), str(b), "--extractor", "classifier", "--classifier", str(clf),
                 "--device", "cpu", "--json", str(out), *more])
    assert code == 0
    return json.loads(out.read_text())


def test_run_folder_scores_as_evaluate_did(evaluated, tmp_path, capsys):
    root, clf, reference, metrics = evaluated
    got = _score(root / "seed3" / "prior", reference, clf, tmp_path / "s.json", "--metrics", "fid,kid,prd",
                 "--seed", "3")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["fid", "kid", "precision"]
    assert got["a"] == {"path": str(root / "seed3" / "prior"), "kind": "run", "n": 16}  # sized by B's 16 features
    assert got["fid"] == pytest.approx(metrics["fid_gen"], rel=1e-6) and got["fid"] > 0
    assert got["kid"] == pytest.approx(metrics["kid"], rel=1e-6)
    assert (got["precision"], got["recall"]) == pytest.approx((metrics["precision"], metrics["recall"]), rel=1e-6)
    # the feature space is described by the same entries as in evaluate's metrics.json
    assert metrics["extractor_accuracy"] == 0.5
    for key in ("extractor", "extractor_accuracy", "extractor_baseline"):
        assert got.get(key) == metrics.get(key), key


def test_sample_exports_what_evaluate_scored(evaluated, tmp_path, capsys):
    root, clf, reference, metrics = evaluated
    model, sampler = root / "seed3" / "model.pt", root / "seed3" / "prior" / "sampler.pt"
    assert main(["sample", "--model-path", str(model), "--sampler-path", str(sampler), "--n", "16",
                 "--out", str(tmp_path / "s.npz")]) == 0
    with np.load(tmp_path / "s.npz") as data:
        arr = data["arr_0"]
    assert arr.dtype == np.uint8 and arr.shape == (16, 28, 28, 1)
    assert _score(tmp_path / "s.npz", reference, clf, tmp_path / "a.json")["fid"] == pytest.approx(metrics["fid_gen"], rel=1e-6)

    common = ["--data-root", str(root / "data"), "--cache-dir", str(root / "cache"), "--no-verify"]
    assert main(["sample", "--model-path", str(model), "--sampler-path", str(sampler), "--n", "16",
                 "--out", str(tmp_path / "png"), "--reconstructions", *common]) == 0
    pngs = sorted((tmp_path / "png").iterdir())
    assert len(pngs) == 16 and all(Image.open(p).mode == "L" for p in pngs)
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(p)) for p in pngs]), arr[..., 0])
    rec = _score(tmp_path / "png_reconstructions", reference, clf, tmp_path / "r.json")
    assert rec["fid"] == pytest.approx(metrics["fid_rec"], rel=1e-6)
    test = _score(tmp_path / "png_test", reference, clf, tmp_path / "t.json")
    assert test["fid"] == pytest.approx(0, abs=1e-6 * rec["fid"])  # the reference's own images
    capsys.readouterr()
    assert "already exists" in _error(["sample", "--model-path", str(model), "--sampler-path", str(sampler),
                                       "--n", "4", "--out", str(tmp_path / "png")], capsys)
    assert "run folder" in _error(["score", str(root / "seed3"), str(reference)], capsys)


def test_score_knn_metrics_equal_evaluates(evaluated, tmp_path, capsys):
    root, clf, reference, metrics = evaluated
    got = _score(root / "seed3" / "prior", reference, clf, tmp_path / "k.json", "--metrics", "knn,fid_inf",
                 "--seed", "3")
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["knn_precision", "fid_inf"]
    for key in ("knn_precision", "knn_recall", "density", "coverage", "knn_k"):
        assert got[key] == metrics[key], key
    assert np.isfinite(got["fid_inf"]) and got["fid_inf_min_n"] == 2
    assert main(["score", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(m in text for m in ("knn (k-NN", "fid_inf", "density", "coverage")), text


def test_sample_refuses_what_the_disk_cannot_hold(evaluated, tmp_path, capsys):
    """Issue 25: `sample --n 1000000000` is refused at once, saying how much it needs; nothing is written."""
    root = evaluated[0]
    model, sampler = root / "seed3" / "model.pt", root / "seed3" / "prior" / "sampler.pt"
    for n, out in (("1000000000", "s.npz"), ("1e9", "pngs")):
        err = _error(["sample", "--model-path", str(model), "--sampler-path", str(sampler), "--n", n,
                      "--out", str(tmp_path / out)], capsys)
        assert "--n 1000000000 needs about" in err and "free" in err and "at most --n" in err, err
    assert list(tmp_path.iterdir()) == []
    assert "not a whole number" in _error(["sample", "--model-path", str(model), "--sampler-path", str(sampler),
                                           "--n", "1.5", "--out", str(tmp_path / "x.npz")], capsys)


def test_sample_streams_in_chunks(evaluated, tmp_path, monkeypatch, capsys):
    """A request larger than the in-memory budget is drawn and written chunk by chunk, the same rows
    into the .npz and the PNG folder; the draw stays the seeded generator's."""
    import rae_bench.score as score_module

    root = evaluated[0]
    model, sampler = root / "seed3" / "model.pt", root / "seed3" / "prior" / "sampler.pt"
    monkeypatch.setattr(score_module, "SAMPLE_CHUNK_BYTES", 28 * 28 * 5)  # chunks of 5 rows
    args = ["sample", "--model-path", str(model), "--sampler-path", str(sampler), "--n", "12", "--quiet"]
    assert main([*args, "--out", str(tmp_path / "s.npz")]) == 0
    assert main([*args, "--out", str(tmp_path / "png")]) == 0
    with np.load(tmp_path / "s.npz") as data:
        arr = data["arr_0"]
    assert arr.dtype == np.uint8 and arr.shape == (12, 28, 28, 1)
    pngs = sorted((tmp_path / "png").iterdir())
    np.testing.assert_array_equal(np.stack([np.asarray(Image.open(p)) for p in pngs]), arr[..., 0])
    assert len({arr[i].tobytes() for i in range(12)}) == 12  # each chunk went on drawing, none repeated
    assert main([*args, "--out", str(tmp_path / "again.npz")]) == 0
    with np.load(tmp_path / "again.npz") as data:
        np.testing.assert_array_equal(data["arr_0"], arr)  # seeded: a rerun streams the same rows
