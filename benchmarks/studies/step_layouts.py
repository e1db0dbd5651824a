"""One training step in each memory layout and precision (how the trainer's defaults were chosen).

Times ``model.train_step`` on a fixed batch of 100 MNIST-shaped images for NCHW
fp32, channels-last fp32 (the trainer's default for images), bf16 autocast and
bf16 + channels-last (and, with ``--compile``, fp32 channels-last
under torch.compile); alternating, median of ``--repeats``. Prints ms per step;
writes no result file (the comparisons of the table are the other scripts).

    flock -x /tmp/rae_bench_cpu.lock python benchmarks/studies/step_layouts.py --arch small --steps 20
    flock -x /tmp/rae_bench_cpu.lock python benchmarks/studies/step_layouts.py --arch paper --steps 2
    python benchmarks/studies/step_layouts.py --arch paper --steps 2 --compile
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch

# A finished study: the helpers it shares with the standing benchmarks (_common.py, hardware.py) sit one
# folder up, in benchmarks/. Only that folder is added; rae_bench itself comes from the install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import interleaved, median  # noqa: E402

from rae_bench.data import to_float  # noqa: E402
from rae_bench.models import build_model  # noqa: E402

MODES = {"fp32 NCHW": (False, False, False), "fp32 channels-last": (True, False, False),
         "bf16": (False, True, False), "bf16 channels-last": (True, True, False)}
# with --compile: encoder and decoder under torch.compile (inductor; fuses BatchNorm + ReLU forward and backward)
COMPILED = {"fp32 channels-last compiled": (True, False, True)}


def make_step(args: argparse.Namespace, channels_last: bool, bf16: bool, compiled: bool) -> Callable[[], Any]:
    shape = tuple(int(v) for v in args.shape.split("x"))
    torch.manual_seed(0)
    model = build_model(args.model, shape, args.latent_dim, args.arch, {}).train()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    if compiled:
        model.encoder, model.decoder = torch.compile(model.encoder), torch.compile(model.decoder)
    opts = model.optimizers({"lr": 1e-3})
    x8 = torch.randint(0, 256, (args.batch_size, *shape), dtype=torch.uint8)

    def steps() -> None:
        for _ in range(args.steps):
            x = to_float(x8).contiguous(memory_format=fmt)
            with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
                model.train_step(x, opts)
    start = time.perf_counter()
    for _ in range(2):  # warm-up: oneDNN primitive choice, Adam state (and the compile)
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
            model.train_step(to_float(x8).contiguous(memory_format=fmt), opts)
    if compiled:
        print(f"compile + 2 warm-up steps: {time.perf_counter() - start:.1f} s")
    return steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vae")
    ap.add_argument("--arch", default="small")
    ap.add_argument("--shape", default="1x28x28")
    ap.add_argument("--latent-dim", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time fp32 channels-last under torch.compile")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    modes = {**MODES, **(COMPILED if args.compile else {})}
    fns = {name: make_step(args, *flags) for name, flags in modes.items()}
    times = interleaved(fns, repeats=args.repeats, log=lambda _: None)
    for name, t in times.items():
        print(f"{args.arch} {args.shape} {args.model} {name}: {1000 * median(t) / args.steps:.1f} ms/step")


if __name__ == "__main__":
    main()
