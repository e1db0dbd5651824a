"""Peak memory of the k-NN metrics (rae_bench.metrics.knn.prdc) on N + N 2048-d float32 features, on CPU.

Each N runs in a fresh process (``ru_maxrss`` is a process-lifetime peak): random float32 features of
both sets (Inception's pool3 size), then ``prdc(real, fake, k=5)``. The peak grows linearly in N (the two
feature sets, 2 x N x 2048 x 4 bytes, beside a fixed strip of ``BLOCK_ELEMENTS`` float64 distances), so
several smaller N and a least-squares line extrapolate to N = 50,000 where a full run would take too
long on a shared CPU (the distance work grows as N^2). Writes ``benchmarks/results/knn_memory.json``.

    nice -n 10 python benchmarks/knn_memory.py --n 5000 10000 20000 --extrapolate 50000
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np

from _common import row, save

DIM = 2048


def child(n: int) -> None:
    from rae_bench.metrics.knn import prdc

    rng = np.random.default_rng(0)
    real = rng.standard_normal((n, DIM), dtype=np.float32)
    fake = rng.standard_normal((n, DIM), dtype=np.float32) + np.float32(0.1)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    t0 = time.perf_counter()
    out = prdc(real, fake, k=5)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"n": n, "peak_rss_bytes": peak, "rss_with_features_bytes": base, "seconds": round(seconds, 1),
                      **{k: v for k, v in out.items()}}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, nargs="+", default=[50000], help="points per set, one process each")
    ap.add_argument("--extrapolate", type=int, help="also fit peak RSS linearly in N and report it at this N")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return child(args.child)
    rows = []
    for n in args.n:
        done = subprocess.run([sys.executable, __file__, "--child", str(n)], check=True, capture_output=True, text=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"N = {n:,} + {n:,}: peak RSS {rows[-1]['peak_rss_bytes'] / 2**30:.2f} GiB, {rows[-1]['seconds']} s")
    extra: dict = {"dim": DIM, "runs": rows}
    peak, n = rows[-1]["peak_rss_bytes"] / 2**30, rows[-1]["n"]
    note = f"N = {n:,} + {n:,}, measured"
    if args.extrapolate and len(rows) >= 2:
        slope, icpt = np.polyfit([r["n"] for r in rows], [r["peak_rss_bytes"] for r in rows], 1)
        at = slope * args.extrapolate + icpt
        extra["extrapolated"] = {"n": args.extrapolate, "peak_rss_bytes": float(at)}
        peak, note = at / 2**30, f"N = {args.extrapolate:,} + {args.extrapolate:,}, linear fit over N = {rows[0]['n']:,}..{n:,}"
        print(f"N = {args.extrapolate:,} + {args.extrapolate:,} (linear fit): peak RSS {at / 2**30:.2f} GiB")
    limit = 4.0  # issue 25: 50,000 + 50,000 Inception features in under 4 GiB
    save("knn_memory", "nice -n 10 python benchmarks/knn_memory.py " + " ".join(sys.argv[1:]),
         [row("k-NN precision/recall, density/coverage: peak RSS", ours=round(peak, 3), reference=limit, unit="GiB",
              target=f"< {limit:g} GiB", met=peak < limit, note=note)], extra)


if __name__ == "__main__":
    main()
