"""Inputs and outputs of ``rae-bench score`` and ``rae-bench sample``.

``score A B`` compares two image sets under the suite's protocol with the
workflow's own feature path (:func:`~rae_bench.metrics.build_extractor`,
:func:`~rae_bench.metrics.extract_features`, :func:`~rae_bench.metrics.gaussian_stats`,
:func:`~rae_bench.metrics.frechet_distance`, :func:`~rae_bench.metrics.kid`,
:func:`~rae_bench.metrics.prd_scores`). Each side is one of

- a folder of images (pytorch-fid's extensions, any case; sorted by name; all
  the same size; grayscale stays 1-channel, everything else becomes RGB, alpha dropped),
- a ``.npz`` of images (key ``arr_0``, ``images`` or the only array; uint8
  N x H x W x C, N x H x W or N x C x H x W),
- a ``.npz`` of statistics (``mu``, ``sigma``, as pytorch-fid writes them; this
  suite's reference files also hold the ``features``, which KID and PRD need),
- a sampler folder of this suite (``results/<ds>/<model>/seed<s>/<sampler>``,
  with ``model.pt`` one level up): ``n`` samples drawn exactly as ``evaluate`` draws them.

PRD, KID, the k-NN metrics (``knn``) and FID-infinity (``fid_inf``: A's FID against B extrapolated to
infinitely many samples of A) treat A as the evaluated set and B as the reference.
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from .atomic import atomic_path, current_umask
from .data.readers import IMAGE_EXTENSIONS, NPZ_READ_ERRORS, npz_content, npz_read_error, open_folder
from .errors import ConfigError, DataError, output_error, unknown_name
from .evaluate import draw_samples, encode_all, generate, load_pair, test_subset
from .metrics import (KNN_K, FeatureSpace, extract_features, fid_infinity, frechet_distance, gaussian_stats, kid,
                      prd_scores, prdc)
from .runs import pick_device

# knn: k-NN precision/recall and density/coverage (prdc's definitions); fid_inf: FID at N = infinity
METRICS = ("fid", "kid", "prd", "knn", "fid_inf")
PRD_CLUSTERS = 20  # prd_scores' default: PRD needs at least half as many images per side


@dataclass
class ScoreInput:
    """One side of ``score``: images (uint8 N x C x H x W, sliceable), stored features, or statistics only."""

    path: str
    kind: str  # folder | npz | stats | run
    images: Any = None
    features: np.ndarray | None = None
    mu: np.ndarray | None = None
    sigma: np.ndarray | None = None

    def __len__(self) -> int:
        data = self.images if self.images is not None else self.features
        return len(data) if data is not None else 0

    def describe(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "n": len(self) or None}


# --------------------------------------------------------------------------- .npz files


def open_npz(path: Path, n: int | None = None) -> ScoreInput:
    """Images, or (pytorch-fid / this suite's) statistics, from a ``.npz`` file."""
    kind, content = npz_content(path)
    if kind == "stats":
        try:
            return _stats_input(path, content, n)
        except NPZ_READ_ERRORS as exc:  # e.g. mu saved as strings
            raise npz_read_error(path, exc) from None
    return ScoreInput(str(path), "npz", images=content[:n])


def _stats_input(path: Path, entries: dict[str, np.ndarray], n: int | None) -> ScoreInput:
    mu, sigma = np.asarray(entries["mu"], np.float64), np.asarray(entries["sigma"], np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise DataError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not match; recompute the statistics")
    feats = entries.get("features")
    if feats is not None and n is not None and n < len(feats):
        feats = feats[:n]
        mu, sigma = gaussian_stats(feats)
    return ScoreInput(str(path), "stats", features=feats, mu=mu, sigma=sigma)


# --------------------------------------------------------------------------- run folders


def sampler_folder(path: Path) -> tuple[Path, Path]:
    """(model.pt, sampler.pt) of a sampler folder ``.../seed<s>/<sampler>``."""
    if (path / "sampler.pt").is_file() and (path.parent / "model.pt").is_file():
        return path.parent / "model.pt", path / "sampler.pt"
    subs = sorted(p.name for p in path.iterdir() if (p / "sampler.pt").is_file())
    if (path / "model.pt").is_file() and subs:
        raise DataError(f"{path} is a run folder; pass one of its sampler folders: "
                        + ", ".join(str(path / s) for s in subs))
    raise DataError(f"folder {path} holds no images and is no sampler folder (sampler.pt here, model.pt one level "
                    f"up); point at an image folder or at results/<dataset>/<model>/seed<s>/<sampler>")


def sample_run(path: Path, n: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """``n`` samples of a sampler folder's (model, sampler) pair, drawn and quantised as ``evaluate`` does."""
    model_path, sampler_path = sampler_folder(path)
    dev = pick_device(str(device))
    model, blob, smp = load_pair(model_path, sampler_path, dev)
    if not model.is_image:
        raise DataError(f"{model_path} models vectors, not images; score image models only")
    return draw_samples(model, smp, n, blob["run"]["seed"], dev)


def open_input(path: str | os.PathLike[str], n: int | None = None, device: str | torch.device = "cpu",
               n_run: int | None = None) -> ScoreInput:
    """One side of ``score``; ``n`` caps the images used, ``n_run`` is how many a sampler folder draws."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"{p} does not exist; pass an image folder, a .npz of images or statistics, or a sampler folder")
    if p.is_file():
        if p.suffix.lower() != ".npz":
            raise DataError(f"{p} is a file but not a .npz; pass a folder of images or a .npz")
        return open_npz(p, n)
    if not is_run_folder(p):  # a sampler folder holds its samples.png grid too: it is no image folder
        if any(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir() if f.is_file()):
            return ScoreInput(str(p), "folder", images=open_folder(p, n))
        sampler_folder(p)  # the one-line error for a folder that is neither
    if n_run is None:
        raise ConfigError(f"how many samples to draw from {p}? pass --n")
    return ScoreInput(str(p), "run", images=sample_run(p, n_run, device))


def is_run_folder(path: str | os.PathLike[str]) -> bool:
    p = Path(path)
    return p.is_dir() and (p / "sampler.pt").is_file()


def open_inputs(a: str, b: str, n: int | None, device: str | torch.device) -> tuple[ScoreInput, ScoreInput]:
    """Both sides; a sampler folder draws ``n`` samples, else as many as the other side holds."""
    paths = [a, b]
    opened: list[ScoreInput | None] = [None, None]
    for i in sorted(range(2), key=lambda i: is_run_folder(paths[i])):  # image sides first: they size a run side
        other = opened[1 - i]
        opened[i] = open_input(paths[i], n, device, n_run=n or (len(other) if other is not None and len(other) else None))
    return opened[0], opened[1]  # type: ignore[return-value]


# --------------------------------------------------------------------------- scoring


def parse_metrics(text: str) -> list[str]:
    names = [m.strip().lower() for m in text.split(",") if m.strip()]
    for m in names:
        if m not in METRICS:
            raise unknown_name("metric", m, METRICS)
    if not names:
        raise ConfigError(f"--metrics is empty; pass some of {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


def check_inputs(a: ScoreInput, b: ScoreInput, metrics: Sequence[str], knn_k: int = KNN_K) -> None:
    """Refuse, before any feature is computed, what the inputs cannot give."""
    for side, inp in (("A", a), ("B", b)):
        if inp.images is None and inp.features is None:
            needs = [m for m in metrics if m != "fid" and not (m == "fid_inf" and side == "B")]
            if needs:
                what = " and ".join(m.upper() for m in needs) + (" needs" if len(needs) == 1 else " need")
                raise DataError(f"{what} feature vectors but {side} ({inp.path}) holds only "
                                f"mu/sigma statistics; pass its images, or use --metrics fid")
            continue
        if len(inp) < 2:
            raise DataError(f"{side} ({inp.path}) holds {len(inp)} image; FID and KID need at least 2 per side")
        if "prd" in metrics and len(inp) < PRD_CLUSTERS // 2:
            raise DataError(f"{side} ({inp.path}) holds {len(inp)} images; PRD needs at least {PRD_CLUSTERS // 2} "
                            f"per side ({PRD_CLUSTERS} clusters); add images or drop prd from --metrics")
        if "knn" in metrics and len(inp) <= knn_k:
            raise DataError(f"{side} ({inp.path}) holds {len(inp)} images; k-NN metrics with k = {knn_k} need more "
                            f"than {knn_k} per side; add images, lower --knn-k or drop knn from --metrics")


def _side_features(inp: ScoreInput, extractor: Any) -> np.ndarray | None:
    if inp.images is None:
        return inp.features
    return extract_features(extractor, inp.images)


def _stats(inp: ScoreInput, feats: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    return (inp.mu, inp.sigma) if inp.mu is not None else gaussian_stats(feats)


def score(a: ScoreInput, b: ScoreInput, metrics: Sequence[str], make_extractor: Callable[[], Any],
          seed: int = 0, knn_k: int = KNN_K) -> dict[str, Any]:
    """The requested metrics of A against B; the extractor is built only when a side has images."""
    check_inputs(a, b, metrics, knn_k)
    extractor = make_extractor() if a.images is not None or b.images is not None else None
    fa, fb = _side_features(a, extractor), _side_features(b, extractor)
    sa, sb = _stats(a, fa), _stats(b, fb)
    if sa[0].shape != sb[0].shape:
        raise DataError(f"A has {sa[0].shape[0]}-d features but B {sb[0].shape[0]}-d ones; both sides must come "
                        f"from the same extractor (statistics files: recompute them with --extractor of the other)")
    out: dict[str, Any] = {"a": a.describe(), "b": b.describe(), "seed": int(seed),
                           "extractor": getattr(extractor, "name", None)}
    if extractor is not None:  # the same extractor entries as evaluate's metrics.json
        out.update(FeatureSpace.of(extractor).metrics_entries())
    if "fid" in metrics:
        out["fid"] = frechet_distance(*sa, *sb)
    if "kid" in metrics:
        out.update(kid(fa, fb, seed=seed))
    if "prd" in metrics:
        m = min(len(fa), len(fb))  # PRD compares equal numbers of points
        pr = prd_scores(fa[:m], fb[:m], seed=seed)
        out.update({"precision": pr["precision"], "recall": pr["recall"], "prd_n": m})
    if "knn" in metrics:
        out.update(prdc(fb, fa, k=knn_k))  # B is the real set, A the fake one
    if "fid_inf" in metrics:
        out.update(fid_infinity(fa, *sb, seed=seed))
    return out


def result_lines(result: dict[str, Any]) -> list[str]:
    """One line per metric, as ``score`` prints them."""
    lines = []
    if "fid" in result:
        lines.append(f"fid: {result['fid']:.4f}")
    if "kid" in result:
        lines.append(f"kid: {result['kid']:.6f} +- {result['kid_std']:.6f}")
    if "precision" in result:
        lines.append(f"precision: {result['precision']:.4f} recall: {result['recall']:.4f}")
    if "knn_precision" in result:
        lines.append(f"knn_precision: {result['knn_precision']:.4f} knn_recall: {result['knn_recall']:.4f} "
                     f"density: {result['density']:.4f} coverage: {result['coverage']:.4f} (k = {result['knn_k']})")
    if "fid_inf" in result:
        lines.append(f"fid_inf: {result['fid_inf']:.4f} (fit over {result['fid_inf_points']} sizes "
                     f"{result['fid_inf_min_n']}..{result['a']['n']})")
    return lines


# --------------------------------------------------------------------------- exporting images


def _beside(out: Path, tag: str) -> Path:
    """``x.npz`` -> ``x_<tag>.npz``; ``dir`` -> ``dir_<tag>``."""
    return out.with_name(f"{out.stem}_{tag}{out.suffix}") if out.suffix.lower() == ".npz" else out.with_name(f"{out.name}_{tag}")


SAMPLE_CHUNK_BYTES = 256 * 2**20  # ``sample`` holds at most this much output in memory; larger requests stream
PNG_OVERHEAD_BYTES = 1024  # our allowance for a PNG's header, chunks and a poor compression, per file


def _png_name(i: int, n: int) -> str:
    return f"{i:0{max(6, len(str(n - 1)))}d}.png"


def _write_pngs(chunks: Iterable[np.ndarray], n: int, folder: Path) -> None:
    """N x H x W x C uint8 (given in chunks) as ``000000.png``.. in a fresh folder, moved into place when complete."""
    from PIL import Image  # here: 15 ms (-X importtime) that scoring never needs

    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise DataError(f"{folder} already exists and is not an empty folder; remove it or choose another --out")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        tmp.chmod(0o777 & ~current_umask())  # mkdtemp makes 0700: give what mkdir would under the umask
    except OSError as exc:
        raise output_error(folder, exc) from None
    try:
        i = 0
        for chunk in chunks:
            for img in chunk:
                Image.fromarray(img[..., 0] if img.shape[-1] == 1 else img).save(tmp / _png_name(i, n))
                i += 1
        if folder.exists():
            folder.rmdir()
        os.replace(tmp, folder)
    except OSError as exc:
        raise output_error(folder, exc) from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _write_npz(chunks: Iterable[np.ndarray], n: int, out: Path) -> None:
    """One ``arr_0`` of ``n`` rows, written chunk by chunk into an uncompressed ``.npz`` (what ``np.savez``
    writes), so that an array larger than memory never has to be held whole."""
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("arr_0.npy", "w", force_zip64=True) as handle:
            header = False
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk)
                if not header:
                    np.lib.format.write_array_header_2_0(handle, {
                        "descr": np.lib.format.dtype_to_descr(chunk.dtype), "fortran_order": False,
                        "shape": (n, *chunk.shape[1:])})
                    header = True
                handle.write(chunk.data)


def _as_arrays(chunks: Iterable[torch.Tensor]) -> Iterator[np.ndarray]:
    """Tensors as numpy rows; uint8 images N x C x H x W -> N x H x W x C."""
    for data in chunks:
        arr = data.cpu().numpy()
        yield arr.transpose(0, 2, 3, 1) if data.dtype == torch.uint8 and arr.ndim == 4 else arr


def _write_rows(chunks: Iterable[torch.Tensor], n: int, out: Path, images: bool) -> Path:
    """``n`` rows (given in chunks) as PNG files in folder ``out``, or as one ``arr_0`` in ``out.npz``."""
    if out.suffix.lower() == ".npz":
        _write_npz(_as_arrays(chunks), n, out)
    elif not images:
        raise DataError("these samples are vectors, not images; pass an --out ending in .npz")
    else:
        _write_pngs(_as_arrays(chunks), n, out)
    return out


def export_images(data: torch.Tensor, out: str | os.PathLike[str]) -> Path:
    """uint8 N x C x H x W images as PNG files in folder ``out``, or as one N x H x W x C ``arr_0`` in ``out.npz``;
    float vectors (non-image models) as an N x D ``.npz`` only."""
    return _write_rows([data], len(data), Path(out), data.dtype == torch.uint8 and data.ndim == 4)


def _size(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n_bytes < 1024 or unit == "TiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    raise AssertionError


def _room(path: Path) -> tuple[Path, int, int, int]:
    """The nearest existing folder at or above ``path``: its free bytes, block size and free inodes."""
    folder = path.parent.resolve()
    while not folder.exists():
        folder = folder.parent
    st = os.statvfs(folder)
    return folder, st.f_bavail * st.f_frsize, st.f_frsize or 4096, st.f_favail


def check_export_room(out: Path, n: int, row_bytes: int, copies: int = 1) -> None:
    """Refuse, before any work, ``n`` rows of ``row_bytes`` (``copies`` sets of them) that the free disk beside
    ``out`` cannot hold: a ``.npz`` needs the raw bytes, a PNG folder a file (at least one block, one inode) per row."""
    folder, free, block, inodes = _room(out)
    if out.suffix.lower() == ".npz":
        per_row, files = row_bytes, 0
    else:
        per_row, files = -(-(row_bytes + PNG_OVERHEAD_BYTES) // block) * block, n * copies
    need = n * per_row * copies
    if need > free:
        fits = free // (per_row * copies)
        raise ConfigError(f"--n {n} needs about {_size(need)} of disk for {out} but {folder} has {_size(free)} free; "
                          f"ask for at most --n {fits}, or choose an --out on a larger disk")
    if inodes and files > inodes:  # 0: the file system does not count them
        raise ConfigError(f"--n {n} writes {files} files but {folder} has room for {inodes} more; ask for fewer, "
                          "or write one file with an --out ending in .npz")


def export_samples(model_path: str | os.PathLike[str], sampler_path: str | os.PathLike[str], n: int,
                   out: str | os.PathLike[str], device: str | torch.device = "cpu",
                   source: Any = None, progress: bool = True) -> list[Path]:
    """Write ``n`` samples to ``out``; with a data ``source`` also the first ``n`` test items and their
    reconstructions, beside it (``<out>_test``, ``<out>_reconstructions``). Returns the paths written.

    Up to :data:`SAMPLE_CHUNK_BYTES` of output the samples are one draw, exactly those ``evaluate`` scores
    for the same ``n``; a larger request is refused when the disk cannot hold it, else drawn and written in
    chunks from the same seeded generator, with a progress bar."""
    if n < 1:
        raise ConfigError(f"--n must be at least 1, got {n}")
    dev = pick_device(str(device))
    model, blob, smp = load_pair(model_path, sampler_path, dev)
    out = Path(out)
    seed = int(blob["run"]["seed"])
    probe = draw_samples(model, smp, 1, seed, dev)  # one sample: the shape and type of a row
    row_bytes = probe[0].numel() * probe.element_size()
    images = probe.dtype == torch.uint8 and probe.ndim == 4
    if not images and out.suffix.lower() != ".npz":
        raise DataError("these samples are vectors, not images; pass an --out ending in .npz")
    test = test_subset(blob["run"], source, n) if source is not None else None  # its size is checked here
    check_export_room(out, n, row_bytes, 1 if test is None else 3)
    chunk = max(1, SAMPLE_CHUNK_BYTES // row_bytes)

    def samples() -> Iterator[torch.Tensor]:
        if n <= chunk:
            yield draw_samples(model, smp, n, seed, dev)
            return
        gen = torch.Generator().manual_seed(seed)
        with tqdm(total=n, desc=f"sampling {out.name}", unit="img", disable=not progress) as bar:
            for start in range(0, n, chunk):
                rows = generate(model, smp.sample(min(chunk, n - start), gen), dev)
                bar.update(len(rows))
                yield rows

    written = [_write_rows(samples(), n, out, images)]
    if test is not None:
        recon = generate(model, encode_all(model, test, dev), dev)
        written.append(export_images(test, _beside(out, "test")))
        written.append(export_images(recon, _beside(out, "reconstructions")))
    return written
