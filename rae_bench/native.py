"""Process-wide settings of the native libraries under torch: thread pools and the C allocator.

Both are set once, at the start of a command (``rae_bench.cli.main``), before any work; neither changes a
number, only how fast the same arithmetic runs.
"""
from __future__ import annotations

import ctypes
import os
import sys

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

# glibc mallopt() parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's largest accepted mmap threshold on 64-bit (HEAP_MAX_SIZE / 2 = 4 * 1024 * 1024 * sizeof(long))
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
TRIM_THRESHOLD_NEVER = 2**31 - 1  # mallopt takes an int: the largest one, so the heap is never trimmed
# the same setting as glibc tunables, for a process started without rae_bench (benchmarks' references)
GLIBC_TUNABLES_EQUIVALENT = (f"glibc.malloc.mmap_threshold={MMAP_THRESHOLD_MAX}"
                             f":glibc.malloc.trim_threshold={TRIM_THRESHOLD_NEVER}")
# Opt-out for a user who wants glibc's defaults (e.g. to measure them): RAE_BENCH_MALLOC=default
MALLOC_VARIABLE = "RAE_BENCH_MALLOC"


def limit_native_threads(threads: int | None) -> None:
    """``--threads N`` caps the native thread pools too (OpenMP, the BLAS under numpy, scipy and
    scikit-learn), as Snakemake does for its jobs: a command run by hand then uses the same BLAS threads,
    hence the same summation order (the GMM fit, PRD's k-means), as the workflow's job. Set before numpy
    and torch load, which read these once; values already in the environment are kept."""
    if threads and threads > 0:
        for name in THREAD_VARIABLES:
            os.environ.setdefault(name, str(threads))


def keep_freed_memory() -> bool:
    """Let glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    With its defaults, a tensor of a few MB (a batch's activations) is served by a fresh ``mmap`` or
    from heap top that ``free`` trims again, so every training step page-faults its activations back in:
    a small-net MNIST train job spent 5-6 s of 27 s in the kernel (2.7 M minor page faults). Serving
    blocks up to 32 MB from the heap and never trimming it cuts that to 0.5 s (145 k faults) and the
    job's wall time by about 20 %, with the same weights bit for bit; peak memory grows by about 6 %
    (measured in benchmarks/README.md, "The C allocator"). Equivalent to ``GLIBC_TUNABLES`` set to
    ``GLIBC_TUNABLES_EQUIVALENT`` before the process starts, but needs no re-exec.

    Returns whether the setting was applied: only with glibc (Linux), unless RAE_BENCH_MALLOC=default.
    """
    if os.environ.get(MALLOC_VARIABLE, "").lower() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and other C libraries: nothing to tune
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # an explicit mmap threshold also switches off glibc's dynamic one, which would lower the trim
    # threshold again after the first large free
    ok = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1
    ok = mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD_NEVER) == 1 and ok
    return ok
