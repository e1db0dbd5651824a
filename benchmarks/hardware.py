"""How much of the machine training uses (issue 7).

CPU: achieved GFLOP/s of training the ``paper`` MNIST net (one ``train_step``:
forward, backward and the Adam update, batch 100, in the trainer's default
channels-last layout) against the float32 matmul
peak measured on the same machine in the same run (``torch.mm`` of two
``--mm-size`` square matrices, same thread count). FLOPs of one step are
counted by ``torch.utils.flop_counter.FlopCounterMode`` (convolutions and
matmuls, forward and backward; elementwise, BatchNorm and optimizer work count
as zero, so the fraction is of useful dense-math work). Training steps and
matmuls are timed alternately (``interleaved``). A ``torch.profiler`` trace of
a few steps splits the time into convolution/matmul, BatchNorm, elementwise and
other ops, and the optimizer step, and gives the convolutions' own GFLOP/s:
what is not convolution is memory-bound work that the matmul peak says nothing
about.

GPU (when CUDA is available, or ``--devices cuda``): the same for the paper nets
on MNIST (1x28x28) and CelebA (3x64x64): images per second, achieved GFLOP/s
against a ``torch.mm`` peak (float32 as PyTorch runs it by default, i.e. no
TF32, and TF32 for comparison: cuDNN's convolutions use TF32 by default, so the
achieved rate can pass the float32 peak), and the share of time the GPU is
busy: kernel time per step (union of the profiled kernels' intervals, copies
apart) over the step's wall time measured without the profiler. The batch is
converted to float on the host and copied each step, as the trainer does.

    python benchmarks/hardware.py [--model vae] [--steps 3] [--repeats 3]
    python benchmarks/hardware.py --devices cuda --cuda-steps 20 --name hardware_gpu   # GPU only
"""
from __future__ import annotations

import argparse
import contextlib
import time
from collections import defaultdict
from typing import Any, Callable

import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from _common import interleaved, median, row, save

from rae_bench.data import to_float
from rae_bench.models import build_model
from rae_bench.train import uses_channels_last

SHAPES = {"mnist": (1, 28, 28), "celeba": (3, 64, 64)}
LATENT = {"mnist": 16, "celeba": 64}


def make_step(model_name: str, dataset: str, batch: int, device: torch.device,
              arch: str = "paper") -> tuple[Callable[[], Any], float]:
    """A closure running one training step on a fixed uint8 batch, and the FLOPs of that step."""
    torch.manual_seed(0)
    model = build_model(model_name, SHAPES[dataset], LATENT[dataset], arch, {}).to(device).train()
    fmt = torch.channels_last if uses_channels_last({}, SHAPES[dataset]) else torch.contiguous_format
    model = model.to(memory_format=fmt)  # the trainer's default layout
    opts = model.optimizers({"lr": 1e-3})
    x8 = torch.randint(0, 256, (batch, *SHAPES[dataset]), dtype=torch.uint8)

    def step() -> Any:
        x = to_float(x8).to(device).contiguous(memory_format=fmt)
        return model.train_step(x, opts)  # float() of the losses syncs the device

    for _ in range(3 if device.type == "cuda" else 1):
        step()  # warm-up: allocator, oneDNN/cuDNN algorithm choice and kernel loading, Adam state
    with FlopCounterMode(display=False) as counter:
        step()
    return step, float(counter.get_total_flops())


@contextlib.contextmanager
def matmul_tf32(enabled: bool | None):
    """``torch.backends.cuda.matmul.allow_tf32`` set for the block (None: left as it is)."""
    before = torch.backends.cuda.matmul.allow_tf32
    if enabled is not None:
        torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before


def mm_peak(n: int, device: torch.device, reps: int, tf32: bool | None = None) -> Callable[[], None]:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    c = torch.empty(n, n, device=device)
    with matmul_tf32(tf32):
        torch.mm(a, b, out=c)
    if device.type == "cuda":
        torch.cuda.synchronize()

    def run() -> None:
        with matmul_tf32(tf32):
            for _ in range(reps):
                torch.mm(a, b, out=c)
            if device.type == "cuda":
                torch.cuda.synchronize()
    return run


CATEGORIES = (
    ("conv/matmul", ("conv", "mm", "addmm", "bmm", "linear")),
    ("batchnorm", ("batch_norm",)),
    ("elementwise", ("relu", "threshold", "add", "mul", "div", "sub", "sigmoid", "exp", "pow", "sqrt", "clamp",
                     "copy_", "fill_", "zero_", "lerp", "addcmul", "addcdiv", "neg", "binary_cross_entropy",
                     "sum", "mean", "cat", "pad", "constant_pad", "where", "randn", "normal", "uniform",
                     "foreach")),
)


def category(name: str) -> str:
    n = name.lower()
    for cat, keys in CATEGORIES:
        if any(k in n for k in keys):
            return cat
    return "other"


def union_us(intervals: list[tuple[float, float]]) -> float:
    """Total length of the union of (start, end) intervals."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(intervals):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def breakdown(step: Callable[[], Any], steps: int, cuda: bool) -> dict[str, Any]:
    """Self time per op category (CPU or CUDA kernels), the optimizer's share, and on CUDA the kernel time
    (union of the kernels' intervals; memory copies and sets counted apart)."""
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    t0 = time.perf_counter()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        if cuda:
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    events = prof.key_averages()
    per_cat: dict[str, float] = defaultdict(float)
    total = 0.0
    opt_us = 0.0
    for ev in events:
        if ev.key.startswith("Optimizer.step"):
            opt_us = max(opt_us, ev.cpu_time_total)
        if not ev.key.startswith("aten::"):
            continue  # record_function ranges and the like: their ops are counted on their own
        t = ev.self_device_time_total if cuda else ev.self_cpu_time_total
        per_cat[category(ev.key[6:])] += t
        total += t
    top = sorted(((ev.self_device_time_total if cuda else ev.self_cpu_time_total, ev.key) for ev in events
                  if ev.key.startswith("aten::")), reverse=True)[:8]
    out: dict[str, Any] = {
        "profiled_wall_s": wall,
        "op_time_s": total / 1e6,
        "share": {k: v / total for k, v in sorted(per_cat.items(), key=lambda kv: -kv[1])} if total else {},
        "optimizer_share_of_wall": opt_us / 1e6 / wall,
        "top_ops": [{"op": k, "s": t / 1e6} for t, k in top],
    }
    if cuda:
        kernels, copies = [], []
        for ev in prof.events():
            if ev.device_type != DeviceType.CUDA:
                continue
            span = (ev.time_range.start, ev.time_range.end)
            (copies if ev.name.lower().startswith(("memcpy", "memset")) else kernels).append(span)
        out["kernel_s"] = union_us(kernels) / 1e6
        out["copy_s"] = union_us(copies) / 1e6
        out["kernels"] = len(kernels)
        out["gpu_busy_share_profiled"] = out["kernel_s"] / wall  # the profiler slows the host side: a lower bound
    return out


def measure(device: torch.device, dataset: str, args: argparse.Namespace) -> dict[str, Any]:
    cuda = device.type == "cuda"
    n_steps = args.cuda_steps if cuda else args.steps
    mm_reps = args.cuda_mm_reps if cuda else args.mm_reps
    step, flops = make_step(args.model, dataset, args.batch_size, device, args.arch)
    peaks = {"matmul": mm_peak(args.mm_size, device, mm_reps, False if cuda else None)}
    if cuda:
        peaks["matmul_tf32"] = mm_peak(args.mm_size, device, mm_reps, True)
    mm_flops = 2 * args.mm_size ** 3 * mm_reps

    def steps() -> None:
        for _ in range(n_steps):
            step()
        if cuda:
            torch.cuda.synchronize()

    times = interleaved({"train": steps, **peaks}, repeats=args.repeats)
    t_step = median(times["train"]) / n_steps
    achieved = flops / t_step / 1e9
    peak_gflops = mm_flops / median(times["matmul"]) / 1e9
    prof = breakdown(step, args.profile_steps, cuda)
    conv_s = prof["op_time_s"] * prof["share"].get("conv/matmul", 0.0) / args.profile_steps
    out = {"device": str(device), "dataset": dataset, "arch": args.arch, "flops_per_step": flops, "step_s": t_step,
           "steps_per_run": n_steps, "profile_steps": args.profile_steps, "images_per_s": args.batch_size / t_step, "achieved_gflops": achieved,
           "peak_gflops": peak_gflops, "fraction": achieved / peak_gflops,
           "conv_gflops": flops / conv_s / 1e9 if conv_s else None, "runs": times, "profile": prof}
    if cuda:
        out["peak_tf32_gflops"] = mm_flops / median(times["matmul_tf32"]) / 1e9
        out["gpu_busy_share"] = prof["kernel_s"] / args.profile_steps / t_step  # kernel time / unprofiled step
        out["torch_flags"] = {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                              "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                              "cudnn_benchmark": torch.backends.cudnn.benchmark}
    return out


def describe(r: dict[str, Any]) -> str:
    shares = ", ".join(f"{k} {100 * v:.0f} %" for k, v in r["profile"]["share"].items())
    conv = f"; convs alone run at {r['conv_gflops']:.0f} GFLOP/s" if r["conv_gflops"] else ""
    busy = ""
    if "gpu_busy_share" in r:
        kernel_ms = 1e3 * r["profile"]["kernel_s"] / r["profile_steps"]
        busy = (f"; GPU busy {100 * r['gpu_busy_share']:.0f} % of the step ({kernel_ms:.1f} ms of kernels in a "
                f"{1e3 * r['step_s']:.1f} ms step); TF32 matmul peak {r['peak_tf32_gflops']:.0f} GFLOP/s")
    return (f"{r['images_per_s']:.1f} img/s, {r['flops_per_step'] / 1e9:.0f} GFLOP/step; op time: {shares}; "
            f"Adam step {100 * r['profile']['optimizer_share_of_wall']:.0f} % of wall{conv}{busy}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="vae")
    ap.add_argument("--arch", default="paper", help="net preset (paper; small/tiny only to check the script)")
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--steps", type=int, default=2, help="training steps per timed run on the CPU")
    ap.add_argument("--cuda-steps", type=int, default=20, help="training steps per timed run on CUDA")
    ap.add_argument("--profile-steps", type=int, default=2)
    ap.add_argument("--mm-size", type=int, default=4096)
    ap.add_argument("--mm-reps", type=int, default=4, help="matmuls per timed peak run on the CPU")
    ap.add_argument("--cuda-mm-reps", type=int, default=50, help="matmuls per timed peak run on CUDA")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--devices", default="auto",
                    help="comma-separated: cpu, cuda; auto = cpu, and cuda when available (the default)")
    ap.add_argument("--datasets", default="mnist,celeba", help="datasets measured on CUDA (the CPU row is MNIST)")
    ap.add_argument("--name", default="hardware", help="result file benchmarks/results/<name>.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    devices = (["cpu"] + (["cuda"] if torch.cuda.is_available() else [])) if args.devices == "auto" \
        else [d.strip() for d in args.devices.split(",") if d.strip()]
    if "cuda" in devices and not torch.cuda.is_available():
        raise SystemExit("error: --devices cuda but torch.cuda.is_available() is false")

    results: dict[str, Any] = {}
    rows = []
    if "cpu" in devices:
        r = results["cpu"] = measure(torch.device("cpu"), "mnist", args)
        print(f"CPU: {r['achieved_gflops']:.1f} GFLOP/s of {r['peak_gflops']:.1f} (matmul peak): "
              f"{100 * r['fraction']:.0f} %; {describe(r)}")
        rows.append(row(f"training GFLOP/s vs float32 matmul peak, {args.arch} MNIST {args.model} net, CPU "
                        f"{args.threads} threads", ours=r["achieved_gflops"], reference=r["peak_gflops"],
                        unit="GFLOP/s", ratio=r["fraction"], target="report fraction", met=True,
                        runs=r["runs"], note=describe(r)))
    if "cuda" in devices:
        # one host thread feeds the GPU; the peak is the device's own float32 (no TF32) torch.mm
        gpu = torch.cuda.get_device_name(0)
        for ds in [d.strip() for d in args.datasets.split(",") if d.strip()]:
            g = results[f"cuda_{ds}"] = measure(torch.device("cuda"), ds, args)
            print(f"CUDA {ds}: {g['achieved_gflops']:.0f} of {g['peak_gflops']:.0f} GFLOP/s; {describe(g)}")
            rows.append(row(f"training GFLOP/s vs float32 matmul peak, {args.arch} {ds} {args.model} net, {gpu}",
                            ours=g["achieved_gflops"], reference=g["peak_gflops"], unit="GFLOP/s",
                            ratio=g["fraction"], target="report fraction", met=True, runs=g["runs"],
                            note=describe(g)))
            rows.append(row(f"training throughput, {args.arch} {ds} {args.model} net, batch {args.batch_size}, {gpu} "
                            f"(reference = images/s if the GPU were busy all the step)",
                            ours=g["images_per_s"], reference=g["images_per_s"] / max(g["gpu_busy_share"], 1e-9),
                            unit="img/s", ratio=g["gpu_busy_share"], target="report busy share", met=True,
                            runs=g["runs"], note=describe(g)))
    command = "python benchmarks/hardware.py" + ("" if args.devices == "auto" else f" --devices {args.devices}") \
        + ("" if args.name == "hardware" else f" --name {args.name}")
    save(args.name, command, rows, {"settings": vars(args), "results": results})


if __name__ == "__main__":
    main()
