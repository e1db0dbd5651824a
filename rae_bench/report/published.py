"""Published values the suite reproduces, transcribed by hand with their source.

Source for every table: A. P. Prathosh, "The landscape of Regularized
Auto-Encoders for Generative modeling" (talk; shared/paper/rae-landscape-talk.txt),
which presents Tables 1-2 from Mondal et al., "MaskAAE: Latent space
optimization for adversarial auto-encoders", UAI 2020, and Tables 3-5 from
Mondal, Asnani, Singla, Prathosh, "FlexAE: Flexibly learning latent priors for
Wasserstein auto-encoders", UAI 2021. FID uses Inception features
(Heusel et al. 2017); precision/recall is Sajjadi et al. 2018.

These are the only hand-copied numbers in the project; they appear only in the
"paper" columns of generated tables, never as our results.
"""
from __future__ import annotations

# TABLE[row][dataset][metric] = value
TABLE1_GEN_FID: dict[str, dict[str, float]] = {
    "VAE (cross-entr.)": {"mnist": 16.6, "fashion_mnist": 43.6, "cifar10": 106.0, "celeba": 53.3},
    "VAE (fixed variance)": {"mnist": 52.0, "fashion_mnist": 84.6, "cifar10": 160.5, "celeba": 55.9},
    "VAE (learned variance)": {"mnist": 54.5, "fashion_mnist": 60.0, "cifar10": 76.7, "celeba": 60.5},
    "VAE + Flow": {"mnist": 54.8, "fashion_mnist": 62.1, "cifar10": 81.2, "celeba": 65.7},
    "WAE-MMD": {"mnist": 115.0, "fashion_mnist": 101.7, "cifar10": 80.9, "celeba": 62.9},
    "WAE-GAN": {"mnist": 12.4, "fashion_mnist": 31.5, "cifar10": 93.1, "celeba": 66.5},
    "2-Stage VAE": {"mnist": 12.6, "fashion_mnist": 29.3, "cifar10": 72.9, "celeba": 44.4},
    "MAAE": {"mnist": 10.5, "fashion_mnist": 28.4, "cifar10": 71.9, "celeba": 40.5},
}

# MaskAAE paper, Table 2 (MNIST): model capacity m -> active dims m_A and NAC of WAE and MAAE.
# The talk's table has a sixth row (m = 256: WAE 256 / 0.046, MAAE 77 / 0.039) whose dataset the
# extracted text does not name; it is left out rather than guessed.
TABLE2_LATENT: dict[str, dict[str, dict[int, dict[str, float]]]] = {
    "mnist": {
        "WAE": {16: {"active_dims": 16, "nac": 0.040}, 32: {"active_dims": 32, "nac": 0.031},
                64: {"active_dims": 64, "nac": 0.027}, 128: {"active_dims": 128, "nac": 0.025},
                256: {"active_dims": 256, "nac": 0.017}},
        "MAAE": {16: {"active_dims": 9, "nac": 0.030}, 32: {"active_dims": 16, "nac": 0.013},
                 64: {"active_dims": 13, "nac": 0.020}, 128: {"active_dims": 40, "nac": 0.019},
                 256: {"active_dims": 120, "nac": 0.013}},
    },
}

# (Rec. FID, Gen. FID) per dataset
_T3: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    #                    MNIST             CIFAR-10           CelebA
    "VAE": ((65.10, 57.04), (176.5, 169.1), (62.36, 72.48)),
    "beta-VAE": ((7.91, 24.31), (43.86, 83.59), (30.06, 50.66)),
    "VAE-VampPrior": ((11.01, 49.75), (107.33, 161.02), (49.71, 64.26)),
    "VAE-IOP": ((8.01, 32.61), (92.17, 141.92), (41.52, 57.30)),
    "WAE-GAN": ((8.06, 13.30), (42.39, 72.90), (29.34, 39.58)),
    "AE + GMM (L2)": ((8.69, 12.14), (41.45, 70.97), (30.16, 43.89)),
    "RAE + GMM (L2)": ((6.15, 7.30), (40.48, 69.24), (29.05, 35.30)),
    "VAE + Flow": ((8.62, 20.17), (43.87, 73.28), (36.31, 42.39)),
    "InjFlow": ((7.40, 35.96), (40.11, 78.78), (27.93, 47.70)),
    "InjFlow + GMM": ((7.40, 9.93), (40.11, 68.26), (27.93, 40.23)),
    "2-Stage VAE": ((6.38, 7.41), (47.03, 86.15), (29.38, 37.85)),
    "MaskAAE": ((8.46, 10.52), (58.40, 71.90), (35.75, 40.49)),
    "FlexAE": ((4.33, 4.69), (39.91, 62.66), (20.47, 24.72)),
}
TABLE3_FID: dict[str, dict[str, dict[str, float]]] = {
    row: {ds: {"fid_rec": v[0], "fid_gen": v[1]} for ds, v in zip(("mnist", "cifar10", "celeba"), vals)}
    for row, vals in _T3.items()
}

# (precision, recall) per dataset
TABLE4_PR: dict[str, dict[str, tuple[float, float]]] = {
    "VAE": {"mnist": (0.69, 0.76), "cifar10": (0.23, 0.47), "celeba": (0.47, 0.58)},
    "2-Stage VAE": {"mnist": (0.97, 0.98), "cifar10": (0.47, 0.76), "celeba": (0.75, 0.72)},
    "RAE + GMM (L2)": {"mnist": (0.98, 0.98), "cifar10": (0.61, 0.87), "celeba": (0.74, 0.75)},
    "MaskAAE": {"mnist": (0.94, 0.96), "cifar10": (0.58, 0.83), "celeba": (0.59, 0.68)},
    "FlexAE": {"mnist": (0.99, 0.99), "cifar10": (0.68, 0.85), "celeba": (0.89, 0.88)},
}

# FlexAE on limited training sets, prior-generator capacity 1..6: (Rec., Gen.)
TABLE5_FID: dict[str, list[tuple[float, float]]] = {
    "mnist": [(60.51, 55.49), (21.00, 53.93), (13.41, 42.14), (14.40, 31.00), (8.11, 63.64), (8.94, 62.43)],
    "cifar10": [(154.17, 135.32), (91.85, 104.06), (82.95, 108.63), (83.88, 108.46), (94.2, 120.64), (94.54, 121.96)],
    "celeba": [(79.04, 66.84), (42.77, 56.16), (47.02, 54.32), (42.75, 54.14), (44.02, 59.3), (39.1, 58.49)],
}


def published_latent(dataset: str, model: str | None, m: int, metric: str) -> float | None:
    """Table 2's value for (dataset, paper model name, capacity m, metric), or None."""
    if model is None:
        return None
    return TABLE2_LATENT.get(dataset, {}).get(model, {}).get(m, {}).get(metric)


def published(table: str, row: str | None, dataset: str, metric: str) -> float | None:
    """The published value of one cell, or None where the paper has none."""
    if row is None:
        return None
    if table == "table1" and metric == "fid_gen":
        return TABLE1_GEN_FID.get(row, {}).get(dataset)
    if table == "table3":
        return TABLE3_FID.get(row, {}).get(dataset, {}).get(metric)
    if table == "table4" and metric in ("precision", "recall"):
        pair = TABLE4_PR.get(row, {}).get(dataset)
        return None if pair is None else pair[0 if metric == "precision" else 1]
    if table == "table5" and row.startswith("Model ") and dataset in TABLE5_FID:
        k = int(row.split()[1]) - 1
        values = TABLE5_FID[dataset]
        if 0 <= k < len(values) and metric in ("fid_rec", "fid_gen"):
            return values[k][0 if metric == "fid_rec" else 1]
    return None
