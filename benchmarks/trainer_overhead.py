"""Our trainer against a bare hand-written PyTorch loop on the same model (issue 7).

Target: the overhead of ``rae_bench.train.train`` is at most 5 %.

Both sides train the same model object type (built by ``build_model`` under the
same seed), with the same optimizer (``model.optimizers``), on the same uint8
batches in the same order (``epoch_order``), converted per batch with
``to_float``, in the same memory layout (channels-last for images unless the
run config says ``training.channels_last: false``), for the same number of steps. The trainer runs with its normal
settings: per-step CSV log, checkpoints every ``checkpoint_every`` steps of
config/config.yaml, the final model.pt/config.json, and the progress bar ON
(stderr is not a tty here, so tqdm redraws every 30 s, as under Snakemake).
The bare loop is ``loss.backward(); opt.step()`` and nothing else. The data
split is loaded once before timing (both sides read the same in-memory tensor);
each timed call includes building the model and optimizer. The two runs must
end with bit-identical weights, which proves they did the same work.

    python benchmarks/trainer_overhead.py [--model vae] [--n-train 10000] [--epochs 2] [--repeats 3]
"""
from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from _common import ROOT, interleaved, median, row, save, scratch

from rae_bench.config.files import DEFAULT_CONFIG
from rae_bench.config.resolve import resolve_run
from rae_bench.config.validate import load_config
from rae_bench.data import DataSource, to_float
from rae_bench.models import build_model
from rae_bench.runs import training_data
from rae_bench.train import epoch_order, train, uses_channels_last


def bare_loop(run: dict[str, Any], data: torch.Tensor) -> dict[str, torch.Tensor]:
    """The minimal loop a user would write by hand; returns the final weights."""
    torch.manual_seed(int(run["seed"]))  # as the trainer does before building the model
    model = build_model(run["model"], data.shape[1:], run["latent_dim"], run["arch"], run["params"])
    # the memory layout the trainer picks (channels-last for images by default): the same model, not a slower one
    channels_last = uses_channels_last(run["training"], data.shape[1:])
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = model.optimizers(run["training"].get("optim", {}))["model"]
    model.train()
    batch, seed = int(run["training"]["batch_size"]), int(run["seed"])
    steps_per_epoch = len(data) // batch
    for epoch in range(int(run["training"]["epochs"])):
        order = epoch_order(len(data), seed, epoch)
        for pos in range(steps_per_epoch):
            x = to_float(data[order[pos * batch:(pos + 1) * batch]])
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            loss = model.loss(x)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if hasattr(model, "after_update"):
                model.after_update()  # the model's own post-step bookkeeping (VAE: gamma floor, KL warm-up)
    return model.state_dict()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="mnist")
    ap.add_argument("--model", default="vae", help="a run name of config/config.yaml")
    ap.add_argument("--arch", default=None, help="net preset (default: the config's, 'small')")
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    cfg = load_config([DEFAULT_CONFIG])
    run = resolve_run(cfg, args.dataset, args.model, 0)
    run["n_train"] = args.n_train
    run["training"]["epochs"] = args.epochs
    run["training"]["lr_schedule"] = {"type": "none"}  # the bare loop has none either
    if args.arch:
        run["arch"] = args.arch
    every = int(cfg.get("checkpoint_every", 500))
    source = DataSource.from_config(str((ROOT / cfg["data_root"]).resolve()), str(ROOT / cfg["cache_dir"]))
    data = training_data(run, source)  # loads and memoises the split: both sides then use the same tensor
    steps = args.epochs * (len(data) // int(run["training"]["batch_size"]))
    print(f"{args.dataset}/{args.model} arch={run['arch']}: {len(data)} images, {steps} steps, "
          f"batch {run['training']['batch_size']}, {args.threads} threads, checkpoint every {every}")

    work = Path(tempfile.mkdtemp(prefix="trainer_overhead_", dir=scratch()))
    finals: dict[str, dict[str, torch.Tensor]] = {}

    def ours() -> None:
        out = work / "ours"
        shutil.rmtree(out, ignore_errors=True)
        train(run, out, source, device="cpu", threads=args.threads, progress=True, checkpoint_every=every)
        finals["ours"] = torch.load(out / "model.pt", weights_only=True)["state"]

    def bare() -> None:
        finals["bare"] = bare_loop(run, data)

    try:
        times = interleaved({"ours": ours, "bare": bare}, repeats=args.repeats)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    same = finals["ours"].keys() == finals["bare"].keys() and all(
        torch.equal(finals["ours"][k], finals["bare"][k]) for k in finals["ours"])
    if not same:
        raise SystemExit("the trainer and the bare loop ended with different weights: not the same work")
    t_ours, t_bare = median(times["ours"]), median(times["bare"])
    overhead = t_ours / t_bare - 1
    print(f"ours {t_ours:.2f} s, bare {t_bare:.2f} s: overhead {100 * overhead:+.1f} % (weights identical)")
    r = row(f"trainer vs bare loop, {args.dataset} {args.model} {run['arch']} net, {steps} steps",
            ours=t_ours, reference=t_bare, unit="s", target="overhead <= 5 %", met=overhead <= 0.05,
            runs=times, note=f"overhead {100 * overhead:+.1f} %, progress bar on, CSV log, "
                             f"checkpoint every {every}; weights bit-identical")
    save("trainer_overhead", "python benchmarks/trainer_overhead.py", [r],
         {"settings": {**vars(args), "steps": steps, "checkpoint_every": every, "overhead": overhead}})


if __name__ == "__main__":
    main()
