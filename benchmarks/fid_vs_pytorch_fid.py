"""FID evaluation: our in-memory path vs ``python -m pytorch_fid DIR_A DIR_B``.

Ours: uint8 tensors in memory -> ``InceptionExtractor`` (pytorch-fid's own
InceptionV3, BN folded, channels-last) -> ``gaussian_stats`` -> ``frechet_distance``,
the reference statistics cached with ``reference_stats`` as the workflow does.
pytorch-fid: the same pixels as PNG files, its CLI with its defaults
(``--device cpu``, batch 50, ``min(cores, 8)`` loader workers), run as a subprocess.

Both load the same weights file: seeded random FID-Inception weights
(``random_fid_inception_state``) saved where pytorch-fid's download would land,
under a private ``TORCH_HOME`` (``benchmarks/.work/fid/torch``), so nothing is
downloaded and the user's ``~/.cache/torch`` is left alone.  The official
weights are not available offline; random ones have the same cost and serve
for parity (the two FIDs must agree to 1e-4 relative).

Images: CelebA 64x64 faces through ``rae_bench.data`` (offline copy, holdout
2000): the test split is the reference set A; train faces [0, n) stand in for
model B's output and [n, 2n) for a second model C.

Rows: first evaluation (features of A and B computed); second model (A's
statistics cached: ours from the ``reference_stats`` file, pytorch-fid from its
own ``--save-stats`` npz, made once untimed); each also with the PNG writing
pytorch-fid's users must do counted.  Both sides run torch's default thread
count (recorded in the result file).

    python benchmarks/fid_vs_pytorch_fid.py [--n 2000] [--repeats 3] [--backend auto|torch|openvino|...]

``--backend`` picks our Inception engine (``features.backend``; default ``auto``:
OpenVINO when installed, else the torch path); the build (conversion) time is
inside ours, in the "build network" stage.  Forward-only timings per backend:
``benchmarks/fid_backends.py``.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from PIL import Image

from _common import ROOT, SCRATCH, interleaved, median, row, save

from rae_bench.data import DataSource, load
from rae_bench.metrics import inception_backends as ib
from rae_bench.metrics import (
    FID_WEIGHTS_FILE,
    InceptionExtractor,
    extract_features,
    frechet_distance,
    gaussian_stats,
    load_stats,
    random_fid_inception_state,
    reference_stats,
)

NAME = "fid_vs_pytorch_fid"
TARGET = 3.0
PARITY_RTOL = 1e-4
HOLDOUT = 2000
WORK = SCRATCH / "fid"
TORCH_HOME = WORK / "torch"


class Stages:
    """Wall time per named stage of the latest run."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def __call__(self, name: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        value = fn()
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0
        return value


def faces(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(A, B, C): n reference (test) faces and two disjoint sets of n train faces, uint8 N x 3 x 64 x 64."""
    src = DataSource.from_config(str(ROOT.parent / "shared" / "data"), str(WORK / "cache"))
    test = load("celeba", "test", src, {"holdout": HOLDOUT})
    train = load("celeba", "train", src, {"holdout": HOLDOUT})
    if n > len(test) or 2 * n > len(train):
        raise SystemExit(f"--n {n} too large: {len(test)} test and {len(train)} train faces available")
    return test[:n], train[:n], train[n:2 * n]


def write_pngs(images: torch.Tensor, folder: Path) -> None:
    """What a pytorch-fid user does first: one PNG per image (PIL, default compression)."""
    folder.mkdir(parents=True, exist_ok=False)
    hwc = images.permute(0, 2, 3, 1).contiguous().numpy()
    for i, img in enumerate(hwc):
        Image.fromarray(img).save(folder / f"{i:05d}.png")


def pytorch_fid(*args: str) -> tuple[float | None, str]:
    """Run pytorch-fid's CLI with the private TORCH_HOME; returns (FID or None, stdout)."""
    env = {**os.environ, "TORCH_HOME": str(TORCH_HOME)}
    proc = subprocess.run([sys.executable, "-m", "pytorch_fid", *args, "--device", "cpu"], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pytorch_fid {' '.join(args)} failed:\n{proc.stderr[-3000:]}")
    match = re.search(r"FID:\s+(\S+)", proc.stdout)
    return (float(match.group(1)) if match else None), proc.stdout


def rel_diff(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="images per set (the issue: 2000)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=100, help="our extractor's batch (the config default)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random Inception weights")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="our extractor's precision; bf16 is the explicit option that changes the numbers")
    ap.add_argument("--backend", choices=ib.BACKENDS, default="auto", help="our Inception engine (fp32)")
    ap.add_argument("--name", default=None, help="result file name (default: fid_vs_pytorch_fid + precision/backend suffix)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*not the official FID weights.*")

    if WORK.exists():
        shutil.rmtree(WORK / "png", ignore_errors=True)
        shutil.rmtree(WORK / "stats", ignore_errors=True)
    weights = TORCH_HOME / "hub" / "checkpoints" / FID_WEIGHTS_FILE  # where pytorch-fid looks
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_fid_inception_state(args.seed), weights)
    a, b, c = faces(args.n)
    print(f"{args.n} + {args.n} (+ {args.n}) CelebA faces, torch threads {torch.get_num_threads()}")

    # pytorch-fid's own cache of the reference statistics (untimed, made once).
    write_pngs(a, WORK / "png" / "setup_a")
    pfid_ref_npz = WORK / "stats" / "pytorch_fid_reference.npz"
    pfid_ref_npz.parent.mkdir(parents=True, exist_ok=True)
    pytorch_fid("--save-stats", str(WORK / "png" / "setup_a"), str(pfid_ref_npz))

    our_ref = WORK / "stats" / "ours_reference.npz"
    runs = {"ours_first": 0, "pytorch_fid_first": 0, "ours_second": 0, "pytorch_fid_second": 0}
    fids: dict[str, list[float]] = {k: [] for k in runs}
    stages: dict[str, list[dict[str, float]]] = {k: [] for k in runs}
    last_stats: dict[str, tuple[np.ndarray, ...]] = {}
    inner: dict[str, list[float]] = {"png_writing_first": [], "pytorch_fid_cli_first": [],
                                     "png_writing_second": [], "pytorch_fid_cli_second": []}

    def extractor(st: Stages) -> InceptionExtractor:
        return st("build network", lambda: InceptionExtractor(weights, batch_size=args.batch_size,
                                                                       precision=args.precision,
                                                                       backend=args.backend))

    def ours_first() -> None:
        runs["ours_first"] += 1
        st = Stages()
        ext = extractor(st)
        path = WORK / "stats" / f"ours_first_{runs['ours_first']}.npz"  # a fresh cache file: computed, saved
        feats_a = st("features A", lambda: extract_features(ext, a))
        mu_a, s_a = st("stats A + save", lambda: reference_stats(path, lambda: feats_a, meta={"extractor": "inception"}))
        feats_b = st("features B", lambda: extract_features(ext, b))
        mu_b, s_b = st("stats B", lambda: gaussian_stats(feats_b))
        fids["ours_first"].append(st("frechet", lambda: frechet_distance(mu_b, s_b, mu_a, s_a)))
        last_stats["first"] = (mu_a, s_a, mu_b, s_b)
        stages["ours_first"].append(st.seconds)
        if not our_ref.exists():
            shutil.copyfile(path, our_ref)

    def ours_second() -> None:
        st = Stages()
        ext = extractor(st)
        mu_a, s_a = st("load cached A stats", lambda: load_stats(our_ref))
        feats_c = st("features C", lambda: extract_features(ext, c))
        mu_c, s_c = st("stats C", lambda: gaussian_stats(feats_c))
        fids["ours_second"].append(st("frechet", lambda: frechet_distance(mu_c, s_c, mu_a, s_a)))
        stages["ours_second"].append(st.seconds)

    def pfid_first() -> None:
        runs["pytorch_fid_first"] += 1
        root = WORK / "png" / f"first_{runs['pytorch_fid_first']}"
        t0 = time.perf_counter()
        write_pngs(a, root / "a")
        write_pngs(b, root / "b")
        t1 = time.perf_counter()
        value, _ = pytorch_fid(str(root / "a"), str(root / "b"))
        inner["png_writing_first"].append(t1 - t0)
        inner["pytorch_fid_cli_first"].append(time.perf_counter() - t1)
        fids["pytorch_fid_first"].append(value)

    def pfid_second() -> None:
        runs["pytorch_fid_second"] += 1
        folder = WORK / "png" / f"second_{runs['pytorch_fid_second']}" / "c"
        t0 = time.perf_counter()
        write_pngs(c, folder)
        t1 = time.perf_counter()
        value, _ = pytorch_fid(str(pfid_ref_npz), str(folder))
        inner["png_writing_second"].append(t1 - t0)
        inner["pytorch_fid_cli_second"].append(time.perf_counter() - t1)
        fids["pytorch_fid_second"].append(value)

    totals = interleaved({"ours_first": ours_first, "pytorch_fid_first": pfid_first,
                          "ours_second": ours_second, "pytorch_fid_second": pfid_second}, repeats=args.repeats)

    # Parity: every run's FID against pytorch-fid's (they are deterministic; the worst case counts).
    parity = {
        "first": max(rel_diff(o, r) for o in fids["ours_first"] for r in fids["pytorch_fid_first"]),
        "second": max(rel_diff(o, r) for o in fids["ours_second"] for r in fids["pytorch_fid_second"]),
    }
    print(f"FID first: ours {fids['ours_first'][0]:.6f}, pytorch-fid {fids['pytorch_fid_first'][0]:.6f}, rel {parity['first']:.2g}")
    print(f"FID second: ours {fids['ours_second'][0]:.6f}, pytorch-fid {fids['pytorch_fid_second'][0]:.6f}, rel {parity['second']:.2g}")
    # bf16 is allowed to move the FID (that is why it is an explicit option): report the shift, don't require parity
    parity_ok = args.precision != "fp32" or all(v <= PARITY_RTOL for v in parity.values())

    # Where pytorch-fid's time goes, measured in this process on the same data (untimed above).
    from pytorch_fid.fid_score import calculate_frechet_distance
    import torchvision.transforms as TF

    def decode(folder: Path) -> None:  # what its loader workers do per image
        for f in sorted(folder.glob("*.png")):
            TF.ToTensor()(Image.open(f).convert("RGB"))

    breakdown: dict[str, float] = {}
    t0 = time.perf_counter()
    decode(WORK / "png" / "first_1" / "a")
    decode(WORK / "png" / "first_1" / "b")
    breakdown["png decode, 2n images (loader workers, in parallel with the forward)"] = time.perf_counter() - t0
    mu_a, s_a, mu_b, s_b = last_stats["first"]
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        calculate_frechet_distance(mu_b, s_b, mu_a, s_a)
    breakdown["scipy sqrtm Fréchet distance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    frechet_distance(mu_b, s_b, mu_a, s_a)
    breakdown["our Fréchet distance"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import pytorch_fid.fid_score as f; f.InceptionV3([3])"],
                   env={**os.environ, "TORCH_HOME": str(TORCH_HOME)}, check=True, capture_output=True)
    breakdown["pytorch-fid start-up (interpreter, imports, network build)"] = time.perf_counter() - t0

    med = {k: median(v) for k, v in {**totals, **inner}.items()}
    ours_stage = {k: median([s[k] for s in stages["ours_first"]]) for k in stages["ours_first"][0]}
    ours2_stage = {k: median([s[k] for s in stages["ours_second"]]) for k in stages["ours_second"][0]}
    for name, value in sorted(med.items()):
        print(f"median {name}: {value:.2f} s")
    print("ours first, stages:", {k: round(v, 2) for k, v in ours_stage.items()})
    print("ours second, stages:", {k: round(v, 2) for k, v in ours2_stage.items()})
    print("pytorch-fid breakdown:", {k: round(v, 2) for k, v in breakdown.items()})

    n = args.n
    fwd_ours = ours_stage["features A"] + ours_stage["features B"]
    cli_first = med["pytorch_fid_cli_first"]
    sqrtm_s = breakdown["scipy sqrtm Fréchet distance"]
    startup_s = breakdown["pytorch-fid start-up (interpreter, imports, network build)"]
    decode_s = breakdown["png decode, 2n images (loader workers, in parallel with the forward)"]
    their_fwd = cli_first - sqrtm_s - startup_s  # what is left of its run: the forward (decode overlaps)
    breakdown["pytorch-fid Inception forward, 2n images (CLI time - sqrtm - start-up)"] = their_fwd
    floor = (f"Inception forward on {2 * n:,} images is the shared floor: ours {fwd_ours:.0f} s (BN folded, "
             f"channels-last), pytorch-fid's ~{their_fwd:.0f} s of its {cli_first:.0f} s, plus sqrtm {sqrtm_s:.0f} s "
             f"(ours {ours_stage['frechet']:.0f} s) and start-up {startup_s:.0f} s; PNG decode {decode_s:.1f} s, "
             f"in its loader workers")
    parity_note = f"FID parity {parity['first']:.1g} / {parity['second']:.1g} rel."
    target = f">= {TARGET:g}x, FID to {PARITY_RTOL:g} rel."
    if args.precision != "fp32":
        parity_note = (f"{args.precision} autocast: an explicit option (features.precision: {args.precision}), not the "
                       f"default; FIDs differ from pytorch-fid's by {parity['first']:.1g} / {parity['second']:.1g} rel.")
        target = f">= {TARGET:g}x (numbers change: explicit option)"
    ratio_nocache = cli_first / med["ours_second"]
    tag = "" if args.precision == "fp32" else f", ours in {args.precision} (explicit option)"
    backend = "torch" if args.precision != "fp32" else ib.resolve(args.backend)
    if backend != "torch":
        tag += f", ours on {backend} {ib.version(backend)}"
    rows = [
        row(f"FID, first evaluation, {n:,} + {n:,} CelebA images vs `pytorch_fid A B`{tag}", ours=med["ours_first"],
            reference=cli_first, unit="s", target=target, met=cli_first / med["ours_first"] >= TARGET and parity_ok,
            runs={"ours": totals["ours_first"], "pytorch_fid": inner["pytorch_fid_cli_first"]},
            note=f"{floor}; {parity_note}"),
        row(f"FID, first evaluation, PNG writing of {2 * n:,} images counted{tag}", ours=med["ours_first"],
            reference=med["pytorch_fid_first"], unit="s", target=target,
            met=med["pytorch_fid_first"] / med["ours_first"] >= TARGET and parity_ok,
            runs={"ours": totals["ours_first"], "pytorch_fid": totals["pytorch_fid_first"]},
            note=f"PNG writing {med['png_writing_first']:.1f} s{'; ' + parity_note if tag else ''}"),
        row(f"FID, second model ({n:,} images, reference statistics cached) vs `pytorch_fid ref.npz C`{tag}",
            ours=med["ours_second"], reference=med["pytorch_fid_cli_second"], unit="s", target=target,
            met=med["pytorch_fid_cli_second"] / med["ours_second"] >= TARGET and parity_ok,
            runs={"ours": totals["ours_second"], "pytorch_fid": inner["pytorch_fid_cli_second"]},
            note=(f"pytorch-fid with its own --save-stats cache; against `pytorch_fid A C`, which recomputes the "
                  f"reference ({cli_first:.0f} s, the first-evaluation run), ours is {ratio_nocache:.1f}x")),
        row(f"FID, second model, PNG writing of {n:,} images counted{tag}", ours=med["ours_second"],
            reference=med["pytorch_fid_second"], unit="s", target=target,
            met=med["pytorch_fid_second"] / med["ours_second"] >= TARGET and parity_ok,
            runs={"ours": totals["ours_second"], "pytorch_fid": totals["pytorch_fid_second"]},
            note=f"PNG writing {med['png_writing_second']:.1f} s{'; ' + parity_note if tag else ''}"),
    ]
    command = ("python benchmarks/fid_vs_pytorch_fid.py" + (f" --n {n}" if n != 2000 else "")
               + (f" --repeats {args.repeats}" if args.repeats != 3 else "")
               + (f" --precision {args.precision}" if args.precision != "fp32" else "")
               + (f" --backend {args.backend}" if args.backend != "auto" else "")
               + (f" --name {args.name}" if args.name else ""))
    suffix = ("" if args.precision == "fp32" else f"_{args.precision}") + ("" if backend == "torch" else f"_{backend}")
    save(args.name or NAME + suffix, command, rows, {
        "parity": {"relative_difference": parity, "tolerance": PARITY_RTOL, "fids": fids},
        "stages": {"ours_first": ours_stage, "ours_second": ours2_stage, "pytorch_fid": breakdown},
        "inner_runs": inner,
        "settings": {**vars(args), "backend_resolved": backend, "torch_threads": torch.get_num_threads(), "images": "CelebA 64x64 (offline copy)",
                     "pytorch_fid_args": "--device cpu (batch 50, dims 2048, num_workers min(cores, 8))"},
    })
    shutil.rmtree(WORK / "png", ignore_errors=True)


if __name__ == "__main__":
    main()
