"""Fit a sampler on a trained model's codes, and evaluate a (model, sampler) pair.

Reconstruction FID compares the first ``n`` test items with their
reconstructions; generation FID compares them with ``n`` decoded samples.
Precision and recall (Sajjadi et al. 2018) compare the features of the same
``n`` test items and ``n`` samples. NAC and the active dimensions describe the
test codes (over the active dimensions, for models with a mask).
Generated and reconstructed images are quantised to 8 bits first, exactly as
they would be if saved as PNG, so our numbers match a file-based FID.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any, Iterator

import torch

from .atomic import atomic_path, write_json
from .checks import ACTIVE_THRESHOLD
from .data import DataSource, load, to_float
from .errors import DataError
from .metrics import active_dims, frechet_distance, gaussian_stats, kid, load_features, load_stats, nac, prd_scores
from .metrics import KNN_K, FeatureSpace, fid_bootstrap, fid_infinity, prdc
from .models import GenerativeAE
from .grid import save_grid
from .samplers import build_sampler, load_sampler, save_sampler
from .runs import load_model, pick_device, training_data

BATCH = 500


def _batches(n: int, size: int = BATCH) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def quantize(x: torch.Tensor, is_image: bool) -> torch.Tensor:
    """Model output -> what a file would hold: uint8 pixels for images, float vectors unchanged."""
    if not is_image:
        return x.float().cpu()
    return x.clamp(0, 1).mul(255).round().to(torch.uint8).cpu()


@torch.inference_mode()
def encode_all(model: GenerativeAE, data: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.cat([model.encode(to_float(data[s]).to(device)).cpu() for s in _batches(len(data))])


@torch.inference_mode()
def encode_with_spread(model: GenerativeAE, data: torch.Tensor,
                       device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Codes and, for Gaussian posteriors, their standard deviations (None for deterministic encoders)."""
    codes, spreads = [], []
    for s in _batches(len(data)):
        code, spread = model.encode_with_std(to_float(data[s]).to(device))
        codes.append(code.cpu())
        if spread is not None:
            spreads.append(spread.cpu())
    return torch.cat(codes), torch.cat(spreads) if spreads else None


@torch.inference_mode()
def generate(model: GenerativeAE, codes: torch.Tensor, device: torch.device) -> torch.Tensor:
    return torch.cat([quantize(model.decode(codes[s].to(device)), model.is_image) for s in _batches(len(codes))])


def draw_samples(model: GenerativeAE, smp, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """``n`` quantised samples of a (model, sampler) pair, drawn from a generator seeded with ``seed``
    (the run's seed: the samples ``evaluate`` scores and ``rae-bench sample`` exports)."""
    return generate(model, smp.sample(n, torch.Generator().manual_seed(int(seed))), device)


def load_pair(model_path: str | Path, sampler_path: str | Path,
              device: torch.device) -> tuple[GenerativeAE, dict[str, Any], Any]:
    """A trained model, its stored record and its fitted sampler (checked to belong to the model)."""
    model, blob = load_model(model_path, device)
    return model, blob, load_sampler(sampler_path, model, model_hash=blob.get("config_hash"))


def scatter_vectors(real: torch.Tensor, fake: torch.Tensor, path: Path) -> None:
    """Vector data has no image grid: plot the first two coordinates of real and generated points."""
    import matplotlib  # here: pyplot is 0.44 s (-X importtime), which image evaluations never pay

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(real[:, 0], real[:, 1], s=2, alpha=0.4, label="test")
    ax.scatter(fake[:, 0], fake[:, 1], s=2, alpha=0.4, label="generated")
    ax.set_xlabel("x[0]")
    ax.set_ylabel("x[1]")
    ax.legend(loc="upper right")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def fit_on_model(model: GenerativeAE, blob: dict[str, Any], sampler: str, params: dict[str, Any] | None,
                 source: DataSource, device: torch.device, seed: int = 0):
    """A sampler fitted on the training codes (and posterior spreads, where it uses them) of a loaded model."""
    smp = build_sampler(sampler, model, params, seed)
    codes, spread = None, None
    if smp.needs_codes:
        data = training_data(blob["run"], source)
        codes, spread = encode_with_spread(model, data, device) if smp.uses_spread else (encode_all(model, data, device), None)
    smp.fit(codes, spread)
    return smp


def fit_sampler(model_path: str | Path, sampler: str, params: dict[str, Any] | None, out_path: str | Path,
                source: DataSource, device: str = "auto", seed: int = 0) -> None:
    dev = pick_device(device)
    model, blob = load_model(model_path, dev)
    smp = fit_on_model(model, blob, sampler, params, source, dev, seed)
    save_sampler(smp, out_path, model_hash=blob.get("config_hash"))


def test_subset(run: dict[str, Any], source: DataSource, n: int) -> torch.Tensor:
    test = load(run["source"], "test", source, run.get("options"))
    if n > len(test):
        raise DataError(f"{n} evaluation samples asked for dataset '{run['dataset']}' but its test split has "
                        f"{len(test)}; set datasets.{run['dataset']}.n_samples to at most {len(test)}")
    return test[:n]


def evaluate(model_path: str | Path, sampler_path: str | Path, out_dir: str | Path, *,
             features: FeatureSpace, reference: str | Path,
             n_samples: int, source: DataSource, device: str = "auto", grid: int = 64,
             fit: tuple[str, dict[str, Any] | None, int] | None = None, knn_k: int = KNN_K,
             fid_infinity_points: int | None = None, fid_bootstrap_replicates: int = 0) -> dict[str, Any]:
    """Write ``metrics.json`` and ``samples.png`` for one (model, sampler) pair into ``out_dir``.

    With ``fit = (sampler, params, seed)`` the sampler is first fitted on the model in this process and
    saved to ``sampler_path`` (what the workflow does: one job and one model load per pair); without it
    the fitted state at ``sampler_path`` is loaded.

    ``features`` is the feature space of every FID, PRD, KID and k-NN metric; its name, backend and quality
    go into metrics.json (:class:`~rae_bench.metrics.FeatureSpace`). ``knn_k`` is the k of the k-NN
    metrics; ``fid_infinity_points`` (config ``features.fid_infinity``) adds ``fid_gen_inf``, the
    generation FID extrapolated to infinitely many samples from that many subset sizes.
    ``fid_bootstrap_replicates`` (config ``features.bootstrap``) adds ``fid_rec_boot``/``fid_gen_boot``, that
    many FIDs over resampled test items and samples (metrics/bootstrap.py).
    """
    t0 = time.perf_counter()
    dev = pick_device(device)
    if fit is not None:
        model, blob = load_model(model_path, dev)
        smp = fit_on_model(model, blob, fit[0], fit[1], source, dev, int(fit[2]))
        save_sampler(smp, sampler_path, model_hash=blob.get("config_hash"))
    else:
        model, blob, smp = load_pair(model_path, sampler_path, dev)
    t_fit = time.perf_counter() - t0
    run = blob["run"]
    mu_ref, sigma_ref = load_stats(reference, n=n_samples)
    test = test_subset(run, source, n_samples)

    codes = encode_all(model, test, dev)  # once: for the reconstructions and for NAC
    recon = generate(model, codes, dev)
    mse = float(((to_float(recon) - to_float(test)) ** 2).flatten(1).mean(1).mean())
    recon_features = features.features(recon)
    recon_stats = gaussian_stats(recon_features)
    if recon_stats[0].shape != mu_ref.shape:
        raise DataError(f"reference statistics {reference} hold {mu_ref.shape[0]}-d features but extractor "
                        f"'{features.name}' gives {recon_stats[0].shape[0]}-d ones for dataset '{run['dataset']}' "
                        f"(made for another dataset or extractor); delete {reference} and recompute it")
    fid_rec = frechet_distance(*recon_stats, mu_ref, sigma_ref)

    samples = draw_samples(model, smp, n_samples, run["seed"], dev)
    sample_features = features.features(samples)
    fid_gen = frechet_distance(*gaussian_stats(sample_features), mu_ref, sigma_ref)
    ref_features = load_features(reference, n=n_samples)
    pr = prd_scores(sample_features, ref_features, seed=int(run["seed"]))
    kid_gen = kid(sample_features, ref_features, seed=int(run["seed"]))  # the same features as FID and PRD
    if n_samples > knn_k:  # real = the test items, fake = the samples
        knn = prdc(ref_features, sample_features, k=knn_k)
    else:  # too few points for k-NN balls: no values rather than no metrics.json
        knn = {"knn_precision": None, "knn_recall": None, "density": None, "coverage": None, "knn_k": knn_k}
    fid_inf = (fid_infinity(sample_features, mu_ref, sigma_ref, fid_infinity_points, seed=int(run["seed"]))
               if fid_infinity_points else None)

    boot = (fid_bootstrap(ref_features, recon_features, sample_features, fid_bootstrap_replicates, int(run["seed"]))
            if fid_bootstrap_replicates else None)

    mask = getattr(model, "mask", None)  # MaskAAE: dimensions with mask >= ACTIVE_THRESHOLD are active
    mask = mask.detach().cpu() if isinstance(mask, torch.Tensor) else None
    m_active = active_dims(mask, model.latent_dim)
    active = None if mask is None else mask >= ACTIVE_THRESHOLD
    latent_nac = nac(codes, active) if m_active >= 2 else math.nan

    out = Path(out_dir)
    if not model.is_image:
        scatter_vectors(test, samples, out / "samples.png")
    else:
        save_grid(samples[:grid], out / "samples.png", nrow=int(grid**0.5))
        k = min(grid // 2, len(test))
        save_grid(torch.stack([test[:k], recon[:k]], 1).flatten(0, 1), out / "reconstructions.png", nrow=int(grid**0.5))
    metrics = {
        "dataset": run["dataset"], "model": run["run"], "model_class": run["model"], "sampler": smp.name,
        "seed": run["seed"], "latent_dim": run["latent_dim"], "arch": run["arch"],
        "extractor": features.name, "n_samples": n_samples,
        "fid_rec": fid_rec, "fid_gen": fid_gen, "mse_rec": mse,
        "precision": pr["precision"], "recall": pr["recall"], "kid": kid_gen["kid"], "kid_std": kid_gen["kid_std"],
        "active_dims": m_active,
        "nac": latent_nac if math.isfinite(latent_nac) else None,
        **knn,
    }
    if fid_inf is not None:  # FID at N = infinity (Chong & Forsyth 2020), fitted over N/10..N samples
        metrics.update({"fid_gen_inf": fid_inf["fid_inf"], "fid_inf_points": fid_inf["fid_inf_points"],
                        "fid_inf_min_n": fid_inf["fid_inf_min_n"]})
    if boot is not None:  # the sampling noise of this evaluation (test items and samples), for intervals
        metrics.update({**boot, "fid_boot_replicates": int(fid_bootstrap_replicates)})
    warmup = model.unfinished_warmup()
    if warmup:
        metrics["unfinished_warmup"] = warmup
    metrics.update(features.metrics_entries())
    # wall times go beside, not into, metrics.json: the same config and seed give a byte-identical metrics.json
    write_json(out / "timing.json", {"train_seconds": blob["result"]["train_seconds"],
                                     "fit_seconds": round(t_fit, 3) if fit is not None else None,
                                     "eval_seconds": round(time.perf_counter() - t0, 3)})
    write_json(out / "metrics.json", metrics)
    return metrics
