"""Inception forward per backend vs pytorch-fid's own InceptionV3 forward, and FID parity far from zero.

Timing: the same CelebA 64x64 faces (uint8) through ``InceptionExtractor(backend=B)``
(resize to 299 x 299 inside, as pytorch-fid does) against pytorch-fid's unmodified
``InceptionV3([3])`` at its CLI's batch of 50 on the same pixels as float.  Runs
are paired and interleaved (ref, B1, B2, ..., ref, B1, ...); each candidate's
ratio is the median over repeats of (ref time / its time) in the same round.
Build / compile time is measured once per backend and reported separately.

Parity: CelebA faces against MNIST digits rendered as RGB, a pair of very
different sets, so the FID is far from zero (about 1.1 with the seeded random
weights, against about 0.02 for faces against faces); each backend's FID
against the one from pytorch-fid's forward, same Fréchet code.

    nice -n 5 python benchmarks/fid_backends.py [--n 100] [--repeats 5] [--backends torch,openvino,...]
"""
from __future__ import annotations

import argparse
import time
import warnings
from unittest import mock

import numpy as np
import torch

from _common import ROOT, SCRATCH, median, row, save

import pytorch_fid.inception as pfi

from rae_bench.data import DataSource, load
from rae_bench.metrics import InceptionExtractor, frechet_distance, gaussian_stats, random_fid_inception_state
from rae_bench.metrics import inception_backends as ib

NAME = "fid_backends"
WORK = SCRATCH / "fid_backends"
PARITY_RTOL = 1e-4


def source() -> DataSource:
    return DataSource.from_config(str(ROOT.parent / "shared" / "data"), str(WORK / "cache"))


def pytorch_fid_forward(model: pfi.InceptionV3, images: torch.Tensor, batch: int = 50) -> np.ndarray:
    """What pytorch-fid's get_activations does per batch: float [0, 1] in, pool3 out."""
    out = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = images[start:start + batch].float() / 255.0
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            out.append(model(x)[0].squeeze(3).squeeze(2).numpy())
    return np.concatenate(out)


def fid(fa: np.ndarray, fb: np.ndarray) -> float:
    return frechet_distance(*gaussian_stats(fa), *gaussian_stats(fb))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="images per timed run")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--parity-n", type=int, default=64, help="faces and digits each for the parity FID")
    ap.add_argument("--backends", default=",".join(b for b in ib.BACKENDS if b != "auto"))
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--name", default=NAME, help=f"results file name (default {NAME}; another machine: another name)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    WORK.mkdir(parents=True, exist_ok=True)
    weights = WORK / "random_inception.pth"
    state = random_fid_inception_state(0)
    torch.save(state, weights)
    with mock.patch.object(pfi, "load_state_dict_from_url", lambda *a, **k: state):
        ref_model = pfi.InceptionV3([3]).eval()

    src = source()
    faces = load("celeba", "test", src, {"holdout": 2000})
    digits = load("mnist", "test", src)
    timing_images = faces[:args.n]
    pf, pd = faces[:args.parity_n], digits[:args.parity_n]

    backends = [b for b in args.backends.split(",") if ib.available(b)]
    skipped = [b for b in args.backends.split(",") if b not in backends]
    print(f"backends {backends} (not available: {skipped}), torch threads {torch.get_num_threads()}, n {args.n}")
    extractors: dict[str, InceptionExtractor] = {}
    build_s: dict[str, float] = {}
    first_call_s: dict[str, float] = {}
    for b in backends:
        t0 = time.perf_counter()
        extractors[b] = InceptionExtractor(weights, batch_size=args.batch_size, backend=b)
        build_s[b] = time.perf_counter() - t0
        t0 = time.perf_counter()
        extractors[b](timing_images[:args.batch_size])  # warm-up (compile: the compilation itself)
        first_call_s[b] = time.perf_counter() - t0
        print(f"  {b}: build {build_s[b]:.1f} s, first batch {first_call_s[b]:.1f} s", flush=True)

    # Parity far from zero: faces vs digits.
    ref_fid = fid(pytorch_fid_forward(ref_model, pf), pytorch_fid_forward(ref_model, pd))
    parity: dict[str, dict[str, float]] = {}
    for b, ext in extractors.items():
        value = fid(ext(pf), ext(pd))
        parity[b] = {"fid": value, "pytorch_fid_forward_fid": ref_fid, "rel": abs(value - ref_fid) / ref_fid}
        print(f"  parity {b}: FID {value:.6f} vs pytorch-fid forward {ref_fid:.6f}, rel {parity[b]['rel']:.2g}")

    # Paired, interleaved timing.
    times: dict[str, list[float]] = {"pytorch_fid": [], **{b: [] for b in backends}}
    for r in range(args.repeats):
        t0 = time.perf_counter()
        pytorch_fid_forward(ref_model, timing_images)
        times["pytorch_fid"].append(time.perf_counter() - t0)
        for b, ext in extractors.items():
            t0 = time.perf_counter()
            ext(timing_images)
            times[b].append(time.perf_counter() - t0)
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)

    per_k = 1000 / args.n
    rows = []
    summary = {}
    for b in backends:
        ratios = [rt / bt for rt, bt in zip(times["pytorch_fid"], times[b])]
        summary[b] = {"median_ratio": median(ratios), "ratios": ratios, "s_per_1000": median(times[b]) * per_k,
                      "build_s": build_s[b], "first_batch_s": first_call_s[b], **parity[b]}
        ok = parity[b]["rel"] <= PARITY_RTOL
        rows.append(row(f"Inception forward per 1,000 CelebA images (64x64 -> 299x299), backend `{b}` vs pytorch-fid's "
                        f"InceptionV3 forward (batch 50)", ours=median(times[b]) * per_k,
                        reference=median(times["pytorch_fid"]) * per_k, unit="s", ratio=median(ratios),
                        target=f">= 3x, FID to {PARITY_RTOL:g} rel.", met=median(ratios) >= 3 and ok,
                        runs={"ours": times[b], "pytorch_fid": times["pytorch_fid"]},
                        note=(f"median of {args.repeats} paired ratios ({min(ratios):.2f}-{max(ratios):.2f}); "
                              f"build {build_s[b]:.0f} s + first batch {first_call_s[b]:.0f} s; "
                              f"faces-vs-digits FID {parity[b]['fid']:.4g}, rel. diff {parity[b]['rel']:.1g}")))
        print(f"{b}: median ratio {median(ratios):.2f}x, {summary[b]['s_per_1000']:.0f} s / 1,000 images "
              f"(pytorch-fid {median(times['pytorch_fid']) * per_k:.0f} s), parity {parity[b]['rel']:.2g}")
    command = (f"nice -n 5 python benchmarks/fid_backends.py --n {args.n} --repeats {args.repeats} "
               f"--backends {','.join(backends)}" + ("" if args.name == NAME else f" --name {args.name}"))
    save(args.name, command, rows, {"summary": summary, "skipped": skipped,
                               "versions": {b: ib.version(b) for b in backends},
                               "settings": {**vars(args), "torch_threads": torch.get_num_threads()}})


if __name__ == "__main__":
    main()
