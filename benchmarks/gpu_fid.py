"""FID on a GPU: our Inception path against pytorch-fid's, images/s and agreement (issue 13 item 4).

Ours: uint8 tensors in memory -> ``InceptionExtractor`` (pytorch-fid's InceptionV3, BN folded,
channels-last, batch ``--batch-size``) -> ``gaussian_stats`` -> ``frechet_distance``.
pytorch-fid's code path: the same pixels as PNG files -> its ``get_activations`` (its ``ImagePathDataset``
and ``DataLoader`` with ``--workers`` loader processes, batch ``--pfid-batch-size``, its own
``InceptionV3``) -> ``np.mean``/``np.cov`` -> ``calculate_frechet_distance`` (scipy ``sqrtm``); with
``--cli`` also its command line end to end, ``python -m pytorch_fid A B --device cuda``, start-up included.

Both load one weights file: seeded random FID-Inception weights (``random_fid_inception_state``; the
official weights are not available offline, random ones cost the same) saved where pytorch-fid looks,
under a private ``TORCH_HOME``. Images: two synthetic sets of ``--n`` smooth random colour images of
``--size`` x ``--size`` (different tints, so the FID is well away from 0), written once as PNGs (untimed).

``--tf32``: cuDNN runs convolutions in TF32 by default on Ampere and later (``torch.backends.cudnn.allow_tf32``
is true), which is not float32; ``off`` measures true fp32 (both flags false, in this process and in the CLI's),
``on`` PyTorch's default, ``both`` each. Forward passes of ours and theirs alternate (``interleaved``).

    python benchmarks/gpu_fid.py                                  # 2,000 + 2,000 64x64 images, fp32 and TF32
    python benchmarks/gpu_fid.py --device cpu --n 20 --size 32 --repeats 1 --tf32 off --no-cli --no-sqrtm  # smoke
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
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from _common import SCRATCH, interleaved, median, row, save

from rae_bench.metrics import (
    FID_WEIGHTS_FILE,
    InceptionExtractor,
    frechet_distance,
    gaussian_stats,
    random_fid_inception_state,
)

PARITY_RTOL = 1e-4

CLI_WRAPPER = (
    "import runpy, sys, torch\n"
    "tf32 = sys.argv.pop(1) == 'on'\n"
    "torch.backends.cudnn.allow_tf32 = tf32\n"
    "torch.backends.cuda.matmul.allow_tf32 = tf32\n"
    "sys.argv[0] = 'pytorch_fid'\n"
    "runpy.run_module('pytorch_fid', run_name='__main__', alter_sys=True)\n"
)


def images(n: int, size: int, seed: int, tint: float) -> torch.Tensor:
    """n smooth random colour images, uint8 N x 3 x size x size (low-resolution noise, upsampled, tinted)."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g)
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)
    x = x + 0.05 * torch.randn(n, 3, size, size, generator=g)
    x[:, 0] += tint
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def write_pngs(x: torch.Tensor, folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(x.permute(0, 2, 3, 1).contiguous().numpy()):
        Image.fromarray(img).save(folder / f"{i:05d}.png")
    return sorted(str(p) for p in folder.glob("*.png"))


def set_tf32(on: bool) -> None:
    torch.backends.cudnn.allow_tf32 = on
    torch.backends.cuda.matmul.allow_tf32 = on


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def run_cli(dirs: tuple[Path, Path], device: str, workers: int, batch: int, tf32: str, torch_home: Path
            ) -> tuple[float, float | None, str]:
    env = {**os.environ, "TORCH_HOME": str(torch_home)}
    cmd = [sys.executable, "-c", CLI_WRAPPER, tf32, str(dirs[0]), str(dirs[1]), "--device", device,
           "--num-workers", str(workers), "--batch-size", str(batch)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"pytorch_fid CLI failed:\n{proc.stderr[-3000:]}")
    match = re.search(r"FID:\s+(\S+)", proc.stdout)
    return wall, (float(match.group(1)) if match else None), proc.stdout[-500:]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="images per set")
    ap.add_argument("--size", type=int, default=64, help="image side (64: CelebA's; 32: CIFAR's)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-size", type=int, default=100, help="our extractor's batch (the config default)")
    ap.add_argument("--pfid-batch-size", type=int, default=50, help="pytorch-fid's batch (its default)")
    ap.add_argument("--workers", type=int, default=min(len(os.sched_getaffinity(0)), 8),
                    help="pytorch-fid's loader workers (its default: min(cores, 8))")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tf32", choices=("off", "on", "both"), default="both")
    ap.add_argument("--cli", action=argparse.BooleanOptionalAction, default=True,
                    help="also time `python -m pytorch_fid A B` end to end")
    ap.add_argument("--sqrtm", action=argparse.BooleanOptionalAction, default=True,
                    help="compute pytorch-fid's FID with its scipy sqrtm (--no-sqrtm: ours on its statistics)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random Inception weights")
    ap.add_argument("--name", default="gpu_fid", help="result file benchmarks/results/<name>.json")
    ap.add_argument("--work", default=str(SCRATCH / "gpu_fid"), help="scratch folder (PNGs, weights)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*not the official FID weights.*")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda but torch.cuda.is_available() is false")
    gpu = torch.cuda.get_device_name(0) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"

    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    torch_home = work / "torch"
    os.environ["TORCH_HOME"] = str(torch_home)  # pytorch-fid's own network finds the weights here, offline
    weights = torch_home / "hub" / "checkpoints" / FID_WEIGHTS_FILE
    weights.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_fid_inception_state(args.seed), weights)

    import pytorch_fid.inception as pfi
    from pytorch_fid.fid_score import calculate_frechet_distance, get_activations

    a, b = images(args.n, args.size, 1, 0.0), images(args.n, args.size, 2, 0.15)
    t0 = time.perf_counter()
    files_a, files_b = write_pngs(a, work / "png" / "a"), write_pngs(b, work / "png" / "b")
    png_s = time.perf_counter() - t0
    total = 2 * args.n
    print(f"{args.n} + {args.n} images {args.size}x{args.size} on {gpu}; PNG writing {png_s:.1f} s (untimed)")

    modes = {"off": ["off"], "on": ["on"], "both": ["off", "on"]}[args.tf32]
    results: dict[str, Any] = {}
    rows = []
    for mode in modes:
        set_tf32(mode == "on")
        label = "fp32 (TF32 off)" if mode == "off" else "TF32 on (PyTorch's cuDNN default)"
        t0 = time.perf_counter()
        ext = InceptionExtractor(weights, device=device, batch_size=args.batch_size)
        sync(device)
        build_ours = time.perf_counter() - t0
        t0 = time.perf_counter()
        theirs_model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).to(device).eval()
        sync(device)
        build_theirs = time.perf_counter() - t0
        warm = max(args.batch_size, args.pfid_batch_size)
        ext(a[:warm])  # warm-up: CUDA context, kernel loading, allocator
        get_activations(files_a[:warm], theirs_model, args.pfid_batch_size, 2048, device, args.workers)
        feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}

        def ours() -> None:
            feats["ours"] = (ext(a), ext(b))  # numpy out: synced

        def theirs() -> None:
            feats["theirs"] = tuple(get_activations(f, theirs_model, args.pfid_batch_size, 2048, device, args.workers)
                                    for f in (files_a, files_b))

        times = interleaved({"ours": ours, "pytorch_fid": theirs}, repeats=args.repeats)
        t0 = time.perf_counter()
        mu_a, s_a = gaussian_stats(feats["ours"][0])
        mu_b, s_b = gaussian_stats(feats["ours"][1])
        fid_ours = frechet_distance(mu_b, s_b, mu_a, s_a)
        ours_stats_s = time.perf_counter() - t0
        ta, tb = feats["theirs"]
        t0 = time.perf_counter()
        pm_a, ps_a = np.mean(ta, axis=0), np.cov(ta, rowvar=False)
        pm_b, ps_b = np.mean(tb, axis=0), np.cov(tb, rowvar=False)
        if args.sqrtm:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fid_theirs = float(calculate_frechet_distance(pm_b, ps_b, pm_a, ps_a))
        else:
            fid_theirs = frechet_distance(pm_b, ps_b, pm_a, ps_a)
        theirs_stats_s = time.perf_counter() - t0
        feat_rel = max(float(np.abs(o - t).max() / max(np.abs(t).max(), 1e-12))
                       for o, t in zip(feats["ours"], feats["theirs"]))
        fid_rel = rel(fid_ours, fid_theirs)
        ips_ours, ips_theirs = total / median(times["ours"]), total / median(times["pytorch_fid"])
        r: dict[str, Any] = {
            "tf32": mode, "times_s": times, "images_per_s": {"ours": ips_ours, "pytorch_fid": ips_theirs},
            "build_s": {"ours": build_ours, "pytorch_fid": build_theirs},
            "stats_and_frechet_s": {"ours": ours_stats_s, "pytorch_fid": theirs_stats_s},
            "fid": {"ours": fid_ours, "pytorch_fid": fid_theirs}, "fid_relative_difference": fid_rel,
            "feature_max_relative_difference": feat_rel, "sqrtm": args.sqrtm,
        }
        print(f"[{label}] features of {total:,} images: ours {ips_ours:,.0f} img/s, pytorch-fid {ips_theirs:,.0f} img/s "
              f"({ips_ours / ips_theirs:.2f}x); FID ours {fid_ours:.6g}, pytorch-fid {fid_theirs:.6g}, rel. {fid_rel:.2g}; "
              f"features max rel. {feat_rel:.2g}; stats + Frechet ours {ours_stats_s:.2f} s, theirs {theirs_stats_s:.2f} s")
        parity_ok = fid_rel <= PARITY_RTOL
        note = (f"FID ours {fid_ours:.6g} vs pytorch-fid {fid_theirs:.6g} ({fid_rel:.1g} rel.; features {feat_rel:.1g}); "
                f"theirs decodes PNGs in {args.workers} loader workers, batch {args.pfid_batch_size}; ours batch "
                f"{args.batch_size}; random Inception weights")
        rows.append(row(f"FID Inception features, {total:,} {args.size}x{args.size} images, {label}, {gpu}: ours vs "
                        f"pytorch-fid's get_activations", ours=ips_ours, reference=ips_theirs, unit="img/s",
                        higher_is_better=True, target=f"measured; FID to {PARITY_RTOL:g} rel.", met=parity_ok,
                        runs=times, note=note))
        if args.cli:
            cli_wall, cli_fid, tail = run_cli((work / "png" / "a", work / "png" / "b"), args.device, args.workers,
                                              args.pfid_batch_size, mode, torch_home)
            ours_total = median(times["ours"]) + ours_stats_s
            r["cli"] = {"wall_s": cli_wall, "fid": cli_fid, "stdout_tail": tail,
                        "fid_relative_difference": rel(fid_ours, cli_fid) if cli_fid is not None else None}
            print(f"[{label}] `python -m pytorch_fid A B --device {args.device}`: {cli_wall:.1f} s, FID {cli_fid}; "
                  f"ours features + stats + Frechet {ours_total:.1f} s (network built once: {build_ours:.1f} s)")
            rows.append(row(f"FID end to end, {args.n:,} + {args.n:,} {args.size}x{args.size} images, {label}, {gpu}: "
                            f"ours (features, stats, Frechet) vs `python -m pytorch_fid A B`", ours=ours_total,
                            reference=cli_wall, unit="s", target="measured", met=True,
                            runs={"ours": times["ours"], "pytorch_fid": [cli_wall]},
                            note=(f"the CLI's time includes its start-up and network build and scipy sqrtm; ours "
                                  f"builds its network once ({build_ours:.1f} s, not counted); CLI FID {cli_fid}")))
        results[mode] = r
        del ext, theirs_model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    set_tf32(True)  # PyTorch's defaults back (cudnn true, matmul false)
    torch.backends.cuda.matmul.allow_tf32 = False
    command = "python benchmarks/gpu_fid.py" + (f" --n {args.n}" if args.n != 2000 else "") + (
        f" --size {args.size}" if args.size != 64 else "") + (f" --device {args.device}" if args.device != "cuda" else "")
    save(args.name, command, rows, {"results": results, "settings": {**vars(args), "png_writing_s": png_s,
                                                                      "torch": torch.__version__,
                                                                      "cuda": torch.version.cuda}})
    shutil.rmtree(work / "png", ignore_errors=True)


if __name__ == "__main__":
    main()
