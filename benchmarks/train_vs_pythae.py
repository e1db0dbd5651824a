"""Training throughput: our trainer against pythae's (issue 7), on identical nets.

Target: images per second of the training loop at least 1.2x pythae's.

Both sides train the same nets, built by ``rae_bench.nets`` (the ``paper``
MNIST encoder/decoder by default; pythae gets them wrapped as its
BaseEncoder/BaseDecoder), on the same MNIST images, with Adam at the same
learning rate, the same batch size, epochs and ``torch.set_num_threads``:

* VAE (Bernoulli likelihood): ours ``vae`` vs pythae ``VAE`` (reconstruction_loss="bce");
* RAE-L2: ours ``rae_l2`` vs pythae ``RAE_L2`` (its CoupledOptimizerTrainer: one
  Adam for the encoder, one with weight decay for the decoder; ours: one Adam
  with the decoder weight decay in a parameter group), same beta and lambda.

Each side runs with its normal settings and no eval set: ours writes its CSV log,
checkpoints every ``checkpoint_every`` steps of config/config.yaml and saves
model.pt; pythae (through ``TrainingPipeline``, as its README shows) keeps a
deep copy of the best model each epoch, prints its progress bar and saves
final_model/. Each run is a fresh subprocess (pythae's in its own venv,
``benchmarks/.venv-pythae``, made on first use with --system-site-packages so
that both use the same torch build). Measured per run:

* loop: wall time of the training loop (ours: the trainer's ``train_seconds``,
  from the first step to the last step's checkpoint; pythae: a callback, from
  the first epoch's begin to the last epoch's end), reported as images/s;
* end-to-end: the subprocess's wall time, interpreter start-up, imports, data
  loading and the final save included.

    python benchmarks/train_vs_pythae.py                                 # paper nets, 300 images
    python benchmarks/train_vs_pythae.py --arch small --n-train 10000    # the quick config's nets
    python benchmarks/train_vs_pythae.py --precision bf16                # ours in bf16 autocast (explicit option)

Ours trains in its defaults: fp32, image models in channels-last memory layout
(same numbers as NCHW to float rounding). ``--precision bf16`` sets our
``training.precision: bf16`` (lower precision: a separate result file, its rows
say so); pythae's side is always fp32 NCHW, what its users get.

pythae runs a sanity-check forward pass on the first batch before its loop
(in its start-up, not in its loop time); our loop's first step pays that
warm-up itself, which matters only when a run has few steps.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import HERE, ROOT, median, row, save, scratch
from rae_bench.native import GLIBC_TUNABLES_EQUIVALENT

VENV = HERE / ".venv-pythae"
PYTHAE_PIN = "pythae==0.1.2"
MODELS = {"vae": "VAE", "rae_l2": "RAE_L2"}


def venv_python() -> Path:
    """The venv's python, creating the venv and installing pythae on first use."""
    py = VENV / "bin" / "python"
    if not py.exists():
        # --system-site-packages: pythae's pins (torch>=1.10, pydantic>=2, numpy>=1.19) accept ours, so the
        # venv reuses our torch and rae_bench instead of a second torch install
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(VENV)], check=True)
    if subprocess.run([str(py), "-c", "import pythae"], capture_output=True).returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", PYTHAE_PIN], check=True)
    return py


def run_spec(args: argparse.Namespace, model: str) -> dict[str, Any]:
    """Our resolved run config (config/config.yaml) with the benchmark's sizes; pythae's side reads it too."""
    from rae_bench.config.files import DEFAULT_CONFIG
    from rae_bench.config.resolve import resolve_run
    from rae_bench.config.validate import load_config

    cfg = load_config([DEFAULT_CONFIG])
    run = resolve_run(cfg, "mnist", model, 0)
    run["arch"] = args.arch
    run["n_train"] = args.n_train
    run["training"].update(epochs=args.epochs, batch_size=args.batch_size, lr_schedule={"type": "none"})
    if args.precision != "fp32":  # ours only: pythae's side stays fp32 and NCHW, what its users get
        run["training"]["precision"] = args.precision
    return {"run": run, "threads": args.threads, "checkpoint_every": int(cfg.get("checkpoint_every", 500)),
            "data_root": str((ROOT / cfg["data_root"]).resolve()), "cache_dir": str(ROOT / cfg["cache_dir"])}


# --------------------------------------------------------------------------- workers (run in subprocesses)


def _data(spec: dict[str, Any]):
    from rae_bench.data import DataSource
    from rae_bench.runs import training_data

    return training_data(spec["run"], DataSource.from_config(spec["data_root"], spec["cache_dir"]))


def worker_ours(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    from rae_bench.data import DataSource
    from rae_bench.native import keep_freed_memory
    from rae_bench.train import train

    keep_freed_memory()  # what `rae-bench train` (rae_bench.cli.main) does first

    res = train(spec["run"], out, DataSource.from_config(spec["data_root"], spec["cache_dir"]), device="cpu",
                threads=spec["threads"], progress=True, checkpoint_every=spec["checkpoint_every"])
    return {"loop_s": res["train_seconds"], "images": res["steps"] * spec["run"]["training"]["batch_size"]}


def worker_pythae(spec: dict[str, Any], out: Path) -> dict[str, Any]:
    import torch
    from pythae.models import RAE_L2, VAE, RAE_L2_Config, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig, CoupledOptimizerTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback

    from rae_bench.data import to_float
    from rae_bench.nets import build_decoder, build_encoder

    torch.set_num_threads(spec["threads"])
    run = spec["run"]
    shape, m, arch = (1, 28, 28), int(run["latent_dim"]), run["arch"]
    is_vae = run["model"] == "vae"

    class Encoder(BaseEncoder):
        """Our encoder net; for the VAE its 2m outputs split into mean and log-variance as ours does."""

        def __init__(self) -> None:
            super().__init__()
            self.net = build_encoder(shape, (2 if is_vae else 1) * m, arch)

        def forward(self, x: torch.Tensor) -> ModelOutput:
            h = self.net(x)
            if not is_vae:
                return ModelOutput(embedding=h)
            mu, logvar = h.chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=logvar.clamp(-30.0, 20.0))

    class Decoder(BaseDecoder):
        """Our decoder net; pythae wants pixels, ours applies the same sigmoid to the logits."""

        def __init__(self) -> None:
            super().__init__()
            self.net = build_decoder(shape, m, arch)

        def forward(self, z: torch.Tensor) -> ModelOutput:
            return ModelOutput(reconstruction=torch.sigmoid(self.net(z)))

    class LoopClock(TrainingCallback):
        """Times pythae's training loop: first epoch's begin to last epoch's end."""

        def __init__(self) -> None:
            self.t0: float | None = None
            self.t1 = 0.0

        def on_train_step_begin(self, training_config: Any, **kwargs: Any) -> None:
            if self.t0 is None:
                self.t0 = time.perf_counter()

        def on_epoch_end(self, training_config: Any, **kwargs: Any) -> None:
            self.t1 = time.perf_counter()

    tr = run["training"]
    optim = {"betas": tuple(tr["optim"].get("betas", (0.9, 0.999)))}
    common = dict(output_dir=str(out), num_epochs=int(tr["epochs"]), learning_rate=float(tr["optim"]["lr"]),
                  per_device_train_batch_size=int(tr["batch_size"]), no_cuda=True, seed=int(run["seed"]))
    torch.manual_seed(int(run["seed"]))
    if is_vae:
        model = VAE(VAEConfig(input_dim=shape, latent_dim=m, reconstruction_loss="bce"), Encoder(), Decoder())
        config = BaseTrainerConfig(**common, optimizer_params=optim)
    else:
        p = run["params"]
        # ours adds lambda * ||theta_D||^2 as Adam's coupled weight decay 2 * lambda: give pythae the same
        model = RAE_L2(RAE_L2_Config(input_dim=shape, latent_dim=m, embedding_weight=float(p["beta"]),
                                     reg_weight=2 * float(p["decoder_weight_decay"])), Encoder(), Decoder())
        config = CoupledOptimizerTrainerConfig(**common, encoder_optimizer_params=dict(optim),
                                               decoder_optimizer_params=dict(optim))
    data = to_float(_data(spec))  # pythae takes float images in [0, 1]
    clock = LoopClock()
    TrainingPipeline(model=model, training_config=config)(train_data=data, callbacks=[clock])
    assert clock.t0 is not None
    return {"loop_s": clock.t1 - clock.t0, "images": int(tr["epochs"]) * len(data)}


def run_worker(side: str, spec: dict[str, Any], py: Path, out: Path, env_extra: dict[str, str] | None = None
               ) -> dict[str, Any]:
    """One training run in a fresh process; returns its timings."""
    spec_file = out.with_suffix(".json")
    spec_file.write_text(json.dumps(spec))
    env = {**os.environ, **(env_extra or {})}  # rae_bench from the install (the pythae venv sees it too)
    t0 = time.perf_counter()
    proc = subprocess.run([str(py), str(Path(__file__).resolve()), "--worker", side, "--spec", str(spec_file),
                           "--out", str(out)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{side} worker failed:\n{proc.stderr[-3000:]}")
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**res, "end_to_end_s": wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="paper")
    ap.add_argument("--models", default="vae,rae_l2")
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="our training.precision (bf16: autocast, an explicit lower-precision option); pythae stays fp32")
    ap.add_argument("--pythae-malloc", choices=("default", "same"), default="default",
                    help="same: pythae's process gets our allocator setting too (GLIBC_TUNABLES), to compare the "
                         "training code alone; default: glibc's defaults, what pythae's users get")
    ap.add_argument("--name", default=None,
                    help="result file name (default: train_vs_pythae[_<arch>][_bf16])")
    ap.add_argument("--worker", choices=("ours", "pythae"), help=argparse.SUPPRESS)
    ap.add_argument("--spec", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.worker:
        spec = json.loads(Path(args.spec).read_text())
        fn = worker_ours if args.worker == "ours" else worker_pythae
        print(json.dumps(fn(spec, Path(args.out))))
        return

    py = venv_python()
    version = subprocess.run([str(py), "-c", "from importlib.metadata import version; print(version('pythae'))"],
                             capture_output=True, text=True).stdout.strip()
    rows, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="train_vs_pythae_", dir=scratch()) as tmp:
        for model in args.models.split(","):
            spec = run_spec(args, model)
            runs: dict[str, list[dict[str, Any]]] = {"ours": [], "pythae": []}
            for r in range(args.repeats):  # interleaved: ours, pythae, ours, ...
                for side, exe in (("ours", Path(sys.executable)), ("pythae", py)):
                    same = side == "pythae" and args.pythae_malloc == "same"  # ours' allocator setting, via glibc
                    env_extra = {"GLIBC_TUNABLES": GLIBC_TUNABLES_EQUIVALENT} if same else None
                    res = run_worker(side, spec, exe, Path(tmp) / f"{model}_{side}_{r}", env_extra)
                    runs[side].append(res)
                    print(f"  run {r + 1}/{args.repeats} {model} {side}: loop {res['loop_s']:.2f} s "
                          f"({res['images'] / res['loop_s']:.1f} img/s), end-to-end {res['end_to_end_s']:.2f} s",
                          flush=True)
            ips = {s: [x["images"] / x["loop_s"] for x in v] for s, v in runs.items()}
            e2e = {s: [x["end_to_end_s"] for x in v] for s, v in runs.items()}
            ours, ref = median(ips["ours"]), median(ips["pythae"])
            e_ours, e_ref = median(e2e["ours"]), median(e2e["pythae"])
            print(f"{model}: ours {ours:.1f} img/s, pythae {ref:.1f} img/s, ratio {ours / ref:.3f}; "
                  f"end-to-end {e_ours:.1f} s vs {e_ref:.1f} s")
            n_img = runs["ours"][0]["images"]
            mode = ("bf16 autocast: lower precision, explicit option, not the default" if args.precision == "bf16"
                    else "ours fp32 channels-last (the default), pythae fp32 NCHW")
            mode += ("; pythae with our allocator setting (GLIBC_TUNABLES)" if args.pythae_malloc == "same"
                     else "; ours keeps freed memory (the CLI's default), pythae glibc's defaults")
            label = ("" if args.precision == "fp32" else f", ours {args.precision}") + (
                ", pythae with our allocator setting" if args.pythae_malloc == "same" else "")
            rows.append(row(f"training throughput vs pythae {version}, MNIST {model} ({args.arch} nets{label})",
                            ours=ours, reference=ref, unit="img/s", target=">= 1.2x", met=ours / ref >= 1.2,
                            higher_is_better=True, runs=ips,
                            note=f"{mode}; {n_img} images, batch {args.batch_size}, {args.threads} threads; loop only; "
                                 f"end-to-end {e_ours:.1f} s vs {e_ref:.1f} s"))
            raw[model] = {"runs": runs, "end_to_end_median_s": {"ours": e_ours, "pythae": e_ref}}
    suffix = (("" if args.arch == "paper" else f"_{args.arch}") + ("" if args.precision == "fp32" else f"_{args.precision}")
              + ("" if args.pythae_malloc == "default" else "_same_malloc"))
    name = args.name or f"train_vs_pythae{suffix}"
    command = ("python benchmarks/train_vs_pythae.py" + ("" if args.arch == "paper" else
                                                         f" --arch {args.arch} --n-train {args.n_train}")
               + ("" if args.precision == "fp32" else f" --precision {args.precision}")
               + ("" if args.models == "vae,rae_l2" else f" --models {args.models}")
               + ("" if args.pythae_malloc == "default" else " --pythae-malloc same")
               + (f" --name {args.name}" if args.name else ""))
    save(name, command, rows,
         {"settings": {k: v for k, v in vars(args).items() if k not in ("worker", "spec", "out")},
          "pythae_version": version, "raw": raw})


if __name__ == "__main__":
    main()
