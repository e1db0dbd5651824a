"""The OpenVINO Inception forward under other CPU-plugin settings (issue 13, item 2).

The default runner (`rae_bench.metrics.inception_backends.openvino_runner`)
compiles the converted FID Inception with a dynamic batch, the LATENCY hint
and one synchronous infer request. This times the same converted model (random
weights, seed 0; converted once into the backend cache) on ``--n`` inputs of
299 x 299 under each setting in ``--variants``:

* ``dynamic:B:LATENCY`` -- the default runner's setting, batches of B;
* ``static:B:LATENCY`` -- the model reshaped to a fixed batch of B;
* ``static:B:THROUGHPUT`` -- the THROUGHPUT hint, with as many asynchronous infer
  requests as the plugin asks for (``OPTIMAL_NUMBER_OF_INFER_REQUESTS``; the
  plugin splits the threads into streams).

All in f32 (the precision hint checked), median of ``--repeats``, seconds per
1,000 images, and the largest difference from the first variant's features.
Prints; writes no result file (a setting that won would have become the
runner's, and its row fid_backends.py's).

    python benchmarks/studies/openvino_settings.py [--n 100] [--repeats 2]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

# A finished study: the helpers it shares with the standing benchmarks (_common.py, hardware.py) sit one
# folder up, in benchmarks/. Only that folder is added; rae_bench itself comes from the install.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import median, timed  # noqa: E402

from rae_bench.metrics import InceptionExtractor, random_fid_inception_state  # noqa: E402
from rae_bench.metrics import inception_backends as ib  # noqa: E402

DEFAULT_VARIANTS = ("dynamic:50:LATENCY,static:50:LATENCY,dynamic:10:LATENCY,static:10:LATENCY,"
                    "static:25:THROUGHPUT,static:10:THROUGHPUT")


def converted_model(tmp_weights: str):
    """The OpenVINO model the default runner uses for the seed-0 random weights (converting it if needed)."""
    import openvino as ov

    ext = InceptionExtractor(tmp_weights, backend="openvino")  # fills the cache
    return ov.Core().read_model(str(ib.openvino_folder(ib.Body(ext.model.blocks).eval()) / "model.xml"))


def runner(model, kind: str, batch: int, hint: str) -> Callable[[np.ndarray], np.ndarray]:
    import openvino as ov

    model = model.clone()
    if kind == "static":
        model.reshape([batch, 3, ib.SIZE, ib.SIZE])
    compiled = ib.compile_openvino_f32(model, hint)  # the runner's compile, torch's thread count
    if hint == "LATENCY":
        request = compiled.create_infer_request()

        def run_sync(x: np.ndarray) -> np.ndarray:
            return np.concatenate([np.array(next(iter(request.infer([x[i:i + batch]]).values())))
                                   for i in range(0, len(x), batch)])
        return run_sync
    queue = ov.AsyncInferQueue(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    parts: dict[int, np.ndarray] = {}
    queue.set_callback(lambda req, key: parts.__setitem__(key, np.array(req.get_output_tensor(0).data)))

    def run_async(x: np.ndarray) -> np.ndarray:
        parts.clear()
        for key, i in enumerate(range(0, len(x), batch)):
            queue.start_async([x[i:i + batch]], key)
        queue.wait_all()
        return np.concatenate([parts[k] for k in sorted(parts)])
    return run_async


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100, help="inputs per timed run (a multiple of every batch)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=DEFAULT_VARIANTS)
    args = ap.parse_args()
    if not ib.available("openvino"):
        raise SystemExit("OpenVINO is not installed: pip install 'rae-bench[fast]'")
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "random_inception.pth"
        torch.save(random_fid_inception_state(0), weights)
        model = converted_model(str(weights))
    x = np.random.default_rng(0).uniform(-1, 1, (args.n, 3, ib.SIZE, ib.SIZE)).astype(np.float32)
    first: np.ndarray | None = None
    print("| setting | requests | s / 1,000 images (runs) | max abs diff vs first |")
    print("| --- | --- | --- | --- |")
    for variant in args.variants.split(","):
        kind, batch, hint = variant.split(":")
        run = runner(model, kind, int(batch), hint)
        out = run(x)  # warm-up
        first = out if first is None else first
        runs = [timed(lambda: run(x))[0] * 1000 / args.n for _ in range(args.repeats)]
        reqs = "1 (sync)" if hint == "LATENCY" else "plugin's optimum"
        print(f"| {variant} | {reqs} | {median(runs):.1f} ({', '.join(f'{r:.1f}' for r in runs)}) | "
              f"{float(np.abs(out - first).max()):.1e} |", flush=True)


if __name__ == "__main__":
    main()
