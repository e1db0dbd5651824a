"""How the report spells names in LaTeX: the escape rule and the heads of datasets and metrics, shared by
the tables, their agreement captions, the sweeps and the claims."""
from __future__ import annotations

DATASET_HEAD = {"mnist": "MNIST", "fashion_mnist": "Fashion", "cifar10": "CIFAR-10", "celeba": "CelebA"}
METRIC_HEAD = {"fid_rec": "Rec.", "fid_gen": "Gen.", "precision": "Precision", "recall": "Recall", "kid": "KID",
               # opt-in columns (a table's metrics: list): k-NN metrics (metrics/knn.py), FID at N = infinity
               "knn_precision": "k-NN Prec.", "knn_recall": "k-NN Rec.", "density": "Density", "coverage": "Coverage",
               "fid_gen_inf": "Gen. FID-inf"}


def latex_escape(text: str) -> str:
    """``text`` in a LaTeX cell or caption: \\ & % _ # escaped, "beta-" as $\\beta$-, the dagger as $^\\dagger$,
    the plus-minus and greater-or-equal signs in math mode."""
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#")):
        text = text.replace(a, b)
    text = text.replace("beta-", r"$\beta$-").replace("\u2020", r"$^\dagger$")
    return text.replace("\u00b1", r"$\pm$").replace("\u2265", r"$\geq$")
