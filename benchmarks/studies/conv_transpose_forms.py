"""The decoders' transposed convolutions in equivalent forms (issue 13, items 1 and 3).

``--layers paper`` (default): the two big layers of the ``paper`` MNIST decoder
(ConvT 1024 -> 512 at 8 -> 16 and 512 -> 256 at 16 -> 32, 4x4, stride 2,
padding 1, batch 100), most of a VAE training step on the CPU. ``--layers
output``: the stride-1 output layers of the ``small`` nets the default DAG
trains (16 -> 1 at 32, 4x4, padding 1, MNIST; 8 -> 3 at 64, 5x5, padding 2,
CelebA), slow per FLOP because of their few output channels. This times
forward and backward (input and weight gradients) of each layer as

* ``conv_transpose2d``: torch's own op (oneDNN), what ``nn.ConvTranspose2d`` runs;
* stride 2: ``subpixel``, four 2x2 stride-1 convolutions, one per output phase,
  interleaved (the same sums, grouped by output parity), and ``gemm_fold``, one
  matrix product ``x (N*H*W, Cin) @ w (Cin, Cout*16)`` and ``F.fold`` (col2im) of
  the columns, which is how a transposed convolution is defined;
* stride 1: ``conv2d_flipped``, a plain convolution with the kernel flipped and
  its channel axes swapped, padding k - 1 - p;

in NCHW and channels-last, alternating, median of ``--repeats``, and checks that
each form's output and gradients equal torch's to float rounding (largest
difference relative to the largest value, over output, input and weight gradients). It also prints
the float32 ``torch.mm`` rate of the same thread count, the ceiling for any of
these forms. Prints a table; writes no result file (a form that won would have
become the decoder's implementation, and its row the training benchmark's).

    python benchmarks/studies/conv_transpose_forms.py [--repeats 3] [--threads 2]
    python benchmarks/studies/conv_transpose_forms.py --layers output --threads 1   # as a DAG job runs
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

# A finished study: the helpers it shares with the standing benchmarks (_common.py, hardware.py) sit one
# folder up, in benchmarks/. Only that folder is added; rae_bench itself comes from the install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import interleaved, median, timed  # noqa: E402
from hardware import mm_peak  # noqa: E402

# (in channels, out channels, input side, kernel, stride, padding) per layer set
LAYERS = {"paper": ((1024, 512, 8, 4, 2, 1), (512, 256, 16, 4, 2, 1)),
          "output": ((16, 1, 32, 4, 1, 1), (8, 3, 64, 5, 1, 2))}


def out_side(side: int, k: int, stride: int, pad: int) -> int:
    """Output side of a transposed convolution (no output padding)."""
    return (side - 1) * stride - 2 * pad + k


def conv_transpose(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    return F.conv_transpose2d(x, w, stride=stride, padding=pad)


def conv2d_flipped(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    assert stride == 1
    return F.conv2d(x, w.flip(2, 3).transpose(0, 1), padding=w.shape[-1] - 1 - pad)


def subpixel(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    """(4x4, stride 2, padding 1 only.) Output row 2q + a takes input rows q - 1, q (a = 0; taps 3, 1) or q, q + 1 (a = 1; taps 2, 0)."""
    n, _, h, wd = x.shape
    xp = F.pad(x, (1, 1, 1, 1))
    taps = ((3, 1), (2, 0))
    phases = []
    for a in (0, 1):
        row = []
        for b in (0, 1):
            k = w[:, :, list(taps[a])][:, :, :, list(taps[b])].transpose(0, 1)  # Cout, Cin, 2, 2
            row.append(F.conv2d(xp[:, :, a:a + h + 1, b:b + wd + 1], k))      # N, Cout, H, W
        phases.append(torch.stack(row, -1))                                    # N, Cout, H, W, 2
    y = torch.stack(phases, -3)                                                # N, Cout, H, 2, W, 2
    return y.reshape(n, y.shape[1], 2 * h, 2 * wd)


def gemm_fold(x: torch.Tensor, w: torch.Tensor, stride: int, pad: int) -> torch.Tensor:
    n, cin, h, wd = x.shape
    k = w.shape[-1]
    cols = x.permute(0, 2, 3, 1).reshape(n * h * wd, cin) @ w.reshape(cin, -1)  # N*H*W, Cout*k*k
    cols = cols.reshape(n, h * wd, -1).transpose(1, 2)
    side = out_side(h, k, stride, pad)
    return F.fold(cols, (side, side), k, padding=pad, stride=stride)


Form = Callable[[torch.Tensor, torch.Tensor, int, int], torch.Tensor]
FORMS: dict[int, dict[str, Form]] = {  # by stride; torch's op first (the reference)
    2: {"conv_transpose2d": conv_transpose, "subpixel": subpixel, "gemm_fold": gemm_fold},
    1: {"conv_transpose2d": conv_transpose, "conv2d_flipped": conv2d_flipped, "gemm_fold": gemm_fold}}


def fwd_bwd(form: Form, x: torch.Tensor, w: torch.Tensor, stride: int, pad: int,
            sink: dict) -> Callable[[], None]:
    def run() -> None:
        xx, ww = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
        t = time.perf_counter()
        y = form(xx, ww, stride, pad)
        sink["forward"].append(time.perf_counter() - t)
        y.backward(torch.ones_like(y))
        sink["out"] = (y.detach(), xx.grad, ww.grad)
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--layers", choices=tuple(LAYERS), default="paper")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mm = mm_peak(4096, torch.device("cpu"), reps=1)
    mm_s = min(timed(mm)[0] for _ in range(3))
    print(f"float32 torch.mm 4096^2 at {args.threads} threads: {2 * 4096 ** 3 / mm_s / 1e9:.0f} GFLOP/s")
    print("| layer | layout | form | forward ms | forward + backward ms | GFLOP/s fwd+bwd | vs torch | max rel. diff vs torch |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for cin, cout, side, k, stride, pad in LAYERS[args.layers]:
        gflop = 3 * 2 * args.batch_size * side * side * cin * cout * k * k / 1e9  # fwd + 2 bwd products
        forms = FORMS[stride]
        torch.manual_seed(0)
        w = torch.randn(cin, cout, k, k) * 0.02
        for layout in (torch.contiguous_format, torch.channels_last):
            x = torch.randn(args.batch_size, cin, side, side).contiguous(memory_format=layout)
            sinks = {name: {"forward": []} for name in forms}
            fns = {name: fwd_bwd(form, x, w, stride, pad, sinks[name]) for name, form in forms.items()}
            for fn in fns.values():
                fn()  # warm-up: oneDNN primitive creation
            for s in sinks.values():
                s["forward"].clear()
            times = interleaved(fns, repeats=args.repeats, log=lambda _: None)
            ref = sinks["conv_transpose2d"]["out"]
            for name in forms:
                diff = max(float((a - b).abs().max() / b.abs().max()) for a, b in zip(sinks[name]["out"], ref))
                total = median(times[name])
                print(f"| {cin} -> {cout} at {side} -> {out_side(side, k, stride, pad)}, {k}x{k} stride {stride} | "
                      f"{'NCHW' if layout is torch.contiguous_format else 'channels-last'} | {name} | "
                      f"{1000 * median(sinks[name]['forward']):.0f} | {1000 * total:.0f} | {gflop / total:.0f} | "
                      f"{median(times['conv_transpose2d']) / total:.2f}x | "
                      f"{diff:.1e} |")


if __name__ == "__main__":
    main()
