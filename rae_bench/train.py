"""The trainer: epochs over an in-memory tensor, whatever the model is.

It calls ``model.optimizers`` once, ``model.train_step`` per batch and
``model.on_epoch_end`` after each epoch's last batch (VAE-IOP's critic epochs), logs
every loss to CSV, checkpoints atomically (model, optimizers, schedulers, RNG
state, position in the epoch) and resumes from the last checkpoint, so a
killed job continues exactly where it stopped: on CPU the resumed run's
weights equal those of an uninterrupted one bit for bit.

Files in the run folder:
  checkpoint.pt            while training (not a workflow output: survives a failed job)
  train_log.partial.csv    the log while training
  model.pt, train_log.csv, config.json   written at the end
  snapshots/step{N:09d}.pt model files of the steps ``training.snapshots`` names (rae_bench.snapshots)
  tb/                      TensorBoard events, with ``tensorboard=True`` (rae_bench.watch)
"""
from __future__ import annotations

import contextlib
import copy
import csv
import functools
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from tqdm import tqdm

from .atomic import atomic_path, stale_temporaries, torch_save, write_json
from .checks import check_lr_schedule
from .config.resolve import TRAINING_DEFAULTS, config_hash
from .data import DataSource, to_float
from .errors import CheckpointError, ConfigError, TrainingDiverged, output_error
from .lock import run_folder_lock
from .models import GenerativeAE, build_model
from .runs import MODEL_FORMAT, pick_device, training_data
from .snapshots import SNAPSHOT_DIR, snapshot_path, snapshot_steps
from .watch import TensorBoardLog, clear as clear_events, require_tensorboard

CHECKPOINT_FORMAT = "rae_bench.checkpoint/1"


def piecewise_factor(milestones: Sequence[int], factors: Sequence[float]) -> Callable[[int], float]:
    """lr multiplier after ``epoch`` epochs: the product of the factors whose milestone has been reached.

    Epochs count from 0, as the authors' loops do: WAE's MNIST schedule (tolstikhin/wae wae.py L542-546,
    ``if epoch == 30: decay /= 2``, ``if epoch == 50: decay /= 5``) is milestones [30, 50], factors
    [0.5, 0.2]: epochs 0-29 at lr, 30-49 at lr / 2, 50 on at lr / 10.
    """
    pairs = list(zip(milestones, factors))
    return lambda epoch: math.prod(f for m, f in pairs if epoch >= m)


def make_schedulers(optimizers: Mapping[str, torch.optim.Optimizer], spec: Mapping[str, Any]) -> dict[str, Any]:
    check_lr_schedule(spec)
    kind = spec.get("type", "none")
    if kind == "none":
        return {}
    if kind == "step":
        return {k: torch.optim.lr_scheduler.StepLR(o, step_size=int(spec["step_epochs"]), gamma=float(spec["gamma"]))
                for k, o in optimizers.items()}
    if kind == "piecewise":
        factor = piecewise_factor([int(m) for m in spec["milestones"]], [float(f) for f in spec["factors"]])
        return {k: torch.optim.lr_scheduler.LambdaLR(o, factor) for k, o in optimizers.items()}
    if kind == "exponential":
        return {k: torch.optim.lr_scheduler.ExponentialLR(o, gamma=float(spec["gamma"])) for k, o in optimizers.items()}
    return {k: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=int(spec["epochs"])) for k, o in optimizers.items()}


PRECISIONS = ("fp32", "bf16")


def uses_channels_last(cfg: Mapping[str, Any], data_shape: Sequence[int]) -> bool:
    """Channels-last (NHWC) for image models unless ``training.channels_last: false``.

    Same fp32 arithmetic as the default NCHW layout (losses agree to float rounding), but oneDNN's
    convolutions run faster on it on CPU; vectors have no channel dimension to move.
    """
    return len(data_shape) == 3 and bool(cfg.get("channels_last", TRAINING_DEFAULTS["channels_last"]))


def autocast_context(cfg: Mapping[str, Any], device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """``training.precision``: fp32 (default) or bf16 autocast, an explicit lower-precision option.

    Under bf16 autocast the convolutions and matmuls of the step (forward and loss, and their backward,
    which follows the dtypes the forward chose) run in bfloat16; parameters, gradients and the optimizer
    state stay float32.
    """
    precision = str(cfg.get("precision", TRAINING_DEFAULTS["precision"]))
    if precision not in PRECISIONS:
        raise ConfigError(f"training.precision '{precision}' is not supported; valid: {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


# At most this many training batches re-estimate BatchNorm statistics. On the quick MNIST AE, 10 to 100
# batches of 100 give test errors within 0.3 % of each other; 25 cost a quarter of the forward passes of 100.
BN_RECALIBRATION_BATCHES = 25


@torch.no_grad()
def recalibrate_batchnorm(model: GenerativeAE, data: torch.Tensor, batch: int, device: torch.device,
                          channels_last: bool, max_batches: int = BN_RECALIBRATION_BATCHES) -> int:
    """Re-estimate every BatchNorm's running statistics for the final weights; returns the batches used.

    During training the running statistics are an exponential average over batches seen with *earlier*
    weights, so in eval mode a model can behave quite unlike its last training steps (InjFlow's decoder:
    batch variance 0.7x its running variance). Here the statistics are reset and re-estimated as a
    cumulative average (``momentum=None``) over up to ``max_batches`` training batches, each pushed
    through the encoder and the decoder in training mode. The decoder gets ``model.training_codes``, the
    codes training fed it: for VAEs a draw z ~ q(z|x), whose spread the posterior means lack (decoding
    the means left the decoder's BN variances too small, issue 23 item 7); for deterministic encoders
    the codes themselves. The batches are the first of a fixed order and the draws come from a generator
    seeded by the data size, so the result is deterministic; no parameter changes and the global RNG
    is left as it was.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
             and m.track_running_stats]
    if not norms:
        return 0
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    n = len(data)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    draws = torch.Generator().manual_seed(n + 1)
    used = 0
    rng = _rng_state()  # CPU and every CUDA device: dropout in training mode must not move training's streams
    try:
        model.train()
        for start in range(0, min(n, max_batches * batch), batch):
            idx = order[start:start + batch]
            if len(idx) < 2:
                break
            x = to_float(data[idx]).to(device)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            model.decode(model.training_codes(x, draws))
            used += 1
    finally:
        _set_rng_state(rng)
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return used


def _draw(data: torch.Tensor, device: torch.device, channels_last: bool, k: int) -> torch.Tensor:
    """``k`` training items (all if fewer) without replacement, from the global RNG (checkpointed)."""
    idx = torch.randperm(len(data))[:k]
    x = to_float(data[idx]).to(device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def epoch_order(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The batch order of one epoch depends on (seed, epoch) only, so a resumed run sees the same batches."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))


class TrainingPasses:
    """The training data in the trainer's batches, for ``model.on_epoch_end``: each ``iter()`` is a fresh
    pass in a new order drawn from the global torch RNG (checkpointed, so a resumed run draws the same)."""

    def __init__(self, data: torch.Tensor, batch: int, steps: int, device: torch.device, channels_last: bool) -> None:
        self.data, self.batch, self.steps, self.device, self.channels_last = data, batch, steps, device, channels_last

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(len(self.data))
        for b in range(self.steps):
            x = to_float(self.data[order[b * self.batch:(b + 1) * self.batch]]).to(self.device, non_blocking=True)
            yield x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


class _Log:
    """CSV log that can be truncated back to a checkpoint's step on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None

    def truncate(self, step: int) -> None:
        if not self.path.exists():
            return
        try:
            with open(self.path, newline="") as f:
                reader = csv.DictReader(f)
                rows = [r for r in reader if int(r["step"]) <= step]
                fields = list(reader.fieldnames or [])
        except (KeyError, TypeError, ValueError, UnicodeDecodeError, csv.Error) as exc:
            raise CheckpointError(f"training log {self.path} is corrupt ({type(exc).__name__}); delete it and "
                                  f"{self.path.parent / 'checkpoint.pt'} to start the run afresh") from None
        with atomic_path(self.path) as tmp:  # rewritten in one piece: a kill here keeps the whole log
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        self.fields = fields or None

    def append(self, row: Mapping[str, Any]) -> None:
        new = self.fields is None and not self.path.exists()
        if self.fields is None:
            if self.path.exists():
                with open(self.path, newline="") as f:
                    self.fields = next(csv.reader(f), None) or list(row)
            else:
                self.fields = list(row)
        extra = [k for k in row if k not in self.fields]
        if extra and not new:  # a term first logged later (on_epoch_end's): widen the header once
            self._widen(extra)
        try:
            with open(self.path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore")
                if new:
                    writer.writeheader()
                writer.writerow(row)
        except OSError as exc:  # full disk mid-training: name the file (a failed write() does not)
            raise output_error(self.path, exc) from None


    def _widen(self, extra: list[str]) -> None:
        assert self.fields is not None
        fields = [*self.fields, *extra]
        with open(self.path, newline="") as f:
            rows = list(csv.DictReader(f))
        with atomic_path(self.path) as tmp:  # rewritten in one piece, as in truncate
            with open(tmp, "w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)
        self.fields = fields


def _rng_state() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated file, foreign pickle (refused by weights_only), ...
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}); delete it to start the run afresh") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{path} is not a rae_bench training checkpoint; delete it to start the run afresh")
    missing = [k for k in CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks '{missing[0]}'; delete it to start the run afresh")
    return ckpt


CHECKPOINT_KEYS = ("config_hash", "step", "elapsed", "model", "optimizers", "schedulers", "rng")


def resume_from(ckpt: Mapping[str, Any], path: Path, model: torch.nn.Module, optimizers: Mapping[str, Any],
                schedulers: Mapping[str, Any]) -> tuple[int, float]:
    """Restore model, optimizers, schedulers and RNG from a checkpoint of this run; (step, elapsed)."""
    try:
        model.load_state_dict(ckpt["model"])
        for k, o in optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in schedulers.items():
            s.load_state_dict(ckpt["schedulers"][k])
        _set_rng_state(ckpt["rng"])
        return int(ckpt["step"]), float(ckpt["elapsed"])
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError) as exc:
        raise CheckpointError(f"checkpoint {path} does not fit this run ({type(exc).__name__}); delete it to start "
                              f"the run afresh") from None


def _one_trainer_per_folder(fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """Hold the run folder's lock (rae_bench.lock) while ``train`` runs: a second trainer refuses at once."""
    @functools.wraps(fn)
    def locked(run: Mapping[str, Any], out_dir: str | os.PathLike[str], *args: Any, **kwargs: Any) -> dict[str, Any]:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        with run_folder_lock(out_dir):
            return fn(run, out_dir, *args, **kwargs)
    return locked


@dataclass
class RunState:
    """One training run between its phases: what ``prepare_run`` built and where ``resume_or_start`` put it.

    ``step``, ``elapsed`` and ``pretrained`` change as the run goes; the rest is fixed once prepared.
    """

    run: Mapping[str, Any]
    out: Path
    cfg: Mapping[str, Any]  # run["training"]
    seed: int
    digest: str  # config_hash(run): which checkpoints and snapshots belong to this run
    device: torch.device
    data: torch.Tensor
    model: GenerativeAE
    channels_last: bool
    precision: contextlib.AbstractContextManager[Any]
    optimizers: dict[str, torch.optim.Optimizer]
    schedulers: dict[str, Any]
    batch: int
    steps_per_epoch: int
    total: int
    checkpoint_every: int
    ckpt_path: Path
    log: _Log
    snapshots: set[int] = field(default_factory=set)
    step: int = 0
    elapsed: float = 0.0
    resumed: bool = False
    pretrained: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.data)


def prepare_run(run: Mapping[str, Any], out: Path, source: DataSource, *, device: str = "auto",
                threads: int | None = None, checkpoint_every: int = 500) -> RunState:
    """Device, data, model (seeded: its initial weights are the run seed's first draws), optimizers, schedulers."""
    out.mkdir(parents=True, exist_ok=True)
    if threads:
        torch.set_num_threads(int(threads))
    dev = pick_device(device)
    cfg = run["training"]
    seed = int(run["seed"])
    digest = config_hash(run)

    data = training_data(run, source)
    torch.manual_seed(seed)
    model = build_model(run["model"], data.shape[1:], run["latent_dim"], run["arch"], run["params"]).to(dev)
    channels_last = uses_channels_last(cfg, data.shape[1:])
    if channels_last:  # before the optimizers exist, so their state takes the parameters' layout
        model = model.to(memory_format=torch.channels_last)
    precision = autocast_context(cfg, dev)
    optimizers = model.optimizers(cfg.get("optim", {}))
    schedulers = make_schedulers(optimizers, {**cfg.get("lr_schedule", {"type": "none"}), "epochs": cfg["epochs"]})

    batch = int(cfg["batch_size"])
    n = len(data)
    steps_per_epoch = n // batch if n >= batch else 1
    return RunState(run=run, out=out, cfg=cfg, seed=seed, digest=digest, device=dev, data=data, model=model,
                    channels_last=channels_last, precision=precision, optimizers=optimizers, schedulers=schedulers,
                    batch=batch, steps_per_epoch=steps_per_epoch, total=steps_per_epoch * int(cfg["epochs"]),
                    checkpoint_every=int(checkpoint_every), ckpt_path=out / "checkpoint.pt",
                    log=_Log(out / "train_log.partial.csv"))


def resume_or_start(state: RunState) -> None:
    """Continue from this run's checkpoint (model, optimizers, schedulers, RNG, log), or clear the folder."""
    out, ckpt_path = state.out, state.ckpt_path
    for tmp in stale_temporaries(ckpt_path):  # a kill during a checkpoint write leaves its temporary file
        tmp.unlink(missing_ok=True)
    if ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["config_hash"] != state.digest:
            print(f"note: {ckpt_path} belongs to another config; starting afresh")
            ckpt_path.unlink()
        else:
            state.step, state.elapsed = resume_from(ckpt, ckpt_path, state.model, state.optimizers, state.schedulers)
            state.resumed, state.pretrained = True, dict(ckpt.get("pretrain") or {})
            print(f"resuming {out} from step {state.step}/{state.total}")
    if state.step == 0:
        state.log.path.unlink(missing_ok=True)
        clear_events(out)
        shutil.rmtree(out / SNAPSHOT_DIR, ignore_errors=True)  # another config's, or a finished run's
    else:
        state.log.truncate(state.step)
    state.snapshots = set(snapshot_steps(state.cfg.get("snapshots"), state.total))


def save_model_file(state: RunState, path: Path, weights: torch.nn.Module, result: Mapping[str, Any]) -> None:
    """A model file (rae_bench.runs.load_model reads it): model.pt, and each snapshot."""
    torch_save({"format": MODEL_FORMAT, "run": dict(state.run), "config_hash": state.digest,
                "data_shape": list(state.data.shape[1:]), "state": weights.state_dict(), "result": dict(result)}, path)


def save_snapshot(state: RunState) -> None:
    """The weights of this step as a model file, BatchNorm re-estimated on a copy: training goes on as if
    no snapshot were taken (same weights; recalibrate_batchnorm leaves the RNG streams as they were)."""
    frozen = copy.deepcopy(state.model)
    with state.precision:
        used = recalibrate_batchnorm(frozen, state.data, state.batch, state.device, state.channels_last)
    save_model_file(state, snapshot_path(state.out, state.step), frozen,
                    {"steps": state.step, "train_seconds": round(state.elapsed, 3), "n_train": state.n,
                     "bn_recalibration_batches": used})


def save_checkpoint(state: RunState) -> None:
    torch_save({"format": CHECKPOINT_FORMAT, "config_hash": state.digest, "step": state.step,
                "elapsed": state.elapsed, "model": state.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in state.optimizers.items()},
                "schedulers": {k: s.state_dict() for k, s in state.schedulers.items()},
                "rng": _rng_state(), "pretrain": state.pretrained}, state.ckpt_path)


def pretrain_once(state: RunState) -> None:
    """A model's pre-training (WAE's encoder) runs once, on a fresh run, and is checkpointed at step 0."""
    state.model.train()
    if state.resumed:
        return
    with state.precision:
        state.pretrained = state.model.pretrain(
            functools.partial(_draw, state.data, state.device, state.channels_last), state.cfg.get("optim", {}))
    if state.pretrained:
        save_checkpoint(state)  # step 0 with the pre-trained weights: a resumed run starts after it


def train_step(state: RunState, passes: TrainingPasses) -> tuple[int, dict[str, float]]:
    """One batch of step ``state.step`` (and the epoch's end after its last one); (epoch, finite losses)."""
    epoch, pos = divmod(state.step, state.steps_per_epoch)
    order = epoch_order(state.n, state.seed, epoch)
    idx = order[pos * state.batch:(pos + 1) * state.batch]
    x = to_float(state.data[idx]).to(state.device, non_blocking=True)
    if state.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with state.precision:
        losses = state.model.train_step(x, state.optimizers)
        if pos == state.steps_per_epoch - 1:  # the epoch's last batch: the model's between-epochs work, once
            losses.update(state.model.on_epoch_end(passes, state.optimizers))
    bad = [k for k, v in losses.items() if not math.isfinite(v)]
    if bad:
        run = state.run
        raise TrainingDiverged(f"loss '{bad[0]}' became {losses[bad[0]]} at step {state.step + 1} (epoch {epoch + 1}) of "
                               f"{run['dataset']}/{run['run']}; lower training.optim.lr or check the data")
    return epoch, losses


def run_epochs(state: RunState, *, progress: bool = True, interrupt_at: int | None = None,
               tensorboard: bool = False) -> None:
    """Steps from ``state.step`` to the end: log every loss, step the schedulers after each epoch, take the
    snapshots and checkpoints; ``interrupt_at`` raises KeyboardInterrupt after that step (tests' crash)."""
    passes = TrainingPasses(state.data, state.batch, state.steps_per_epoch, state.device, state.channels_last)
    state.model.train()  # pretrain_once set it too; the loop sets its own mode rather than rely on that phase
    bar = tqdm(total=state.total, initial=state.step, desc=f"{state.run['dataset']}/{state.run['run']}",
               disable=not progress, mininterval=1.0 if os.isatty(2) else 30.0, dynamic_ncols=True)
    start = time.perf_counter() - state.elapsed
    tb = TensorBoardLog(state.out, state.seed, resume_step=state.step) if tensorboard else None
    if tb is not None and state.step == 0:
        tb.samples(0, state.model)
    while state.step < state.total:
        epoch, losses = train_step(state, passes)
        state.step += 1
        step = state.step
        lrs = {f"lr_{k}": o.param_groups[0]["lr"] for k, o in state.optimizers.items()}
        state.log.append({"step": step, "epoch": epoch + 1, **losses, **lrs})
        if tb is not None:
            tb.scalars(step, losses, lrs)
        bar.update(1)
        if step % 50 == 0:
            bar.set_postfix(loss=f"{losses.get('loss', next(iter(losses.values()))):.4g}")
        if step % state.steps_per_epoch == 0:
            for s in state.schedulers.values():
                s.step()
        state.elapsed = time.perf_counter() - start
        if step in state.snapshots:  # before the checkpoint: a resume after it never lacks this snapshot
            save_snapshot(state)
        if step % state.checkpoint_every == 0 or step == state.total:
            if tb is not None:  # grid, then every event so far on disk before the checkpoint that resumes after them
                tb.checkpoint(step, state.model)
            save_checkpoint(state)
        if interrupt_at is not None and step >= interrupt_at and step < state.total:
            bar.close()
            if tb is not None:
                tb.close()
            raise KeyboardInterrupt(f"interrupted at step {step}")
    bar.close()
    if tb is not None:
        tb.close()


def finish_run(state: RunState) -> dict[str, Any]:
    """model.pt (BatchNorm re-estimated for the final weights), train_log.csv and config.json; the result."""
    out = state.out
    # the saved model's BatchNorm statistics belong to its final weights (eval mode = what was trained)
    with state.precision:
        bn_batches = recalibrate_batchnorm(state.model, state.data, state.batch, state.device, state.channels_last)

    result = {"steps": state.step, "train_seconds": round(state.elapsed, 3), "n_train": state.n,
              "images_per_second": round(state.step * state.batch / max(state.elapsed, 1e-9), 1),
              "bn_recalibration_batches": bn_batches, **state.pretrained}
    save_model_file(state, out / "model.pt", state.model, result)
    with atomic_path(out / "train_log.csv") as tmp:  # a kill here must not leave half a log
        shutil.copyfile(state.log.path, tmp)
    write_json(out / "config.json", {"run": dict(state.run), "config_hash": state.digest, "result": result})
    state.ckpt_path.unlink(missing_ok=True)
    state.log.path.unlink(missing_ok=True)
    return result


@_one_trainer_per_folder
def train(run: Mapping[str, Any], out_dir: str | os.PathLike[str], source: DataSource, *,
          device: str = "auto", threads: int | None = None, progress: bool = True,
          checkpoint_every: int = 500, interrupt_at: int | None = None, tensorboard: bool = False) -> dict[str, Any]:
    """Train ``run`` (a resolved run config) into ``out_dir``; resume if a matching checkpoint is there.

    ``interrupt_at`` stops the process-local loop after that many steps (tests use it
    to simulate a crash between checkpoints). ``tensorboard`` also writes every loss and, at the start
    and at each checkpoint, a sample grid to ``out_dir/tb/`` (the trained weights are the same).
    """
    if tensorboard:
        require_tensorboard()  # before any work: a missing package is one line at once
    state = prepare_run(run, Path(out_dir), source, device=device, threads=threads, checkpoint_every=checkpoint_every)
    resume_or_start(state)
    pretrain_once(state)
    run_epochs(state, progress=progress, interrupt_at=interrupt_at, tensorboard=tensorboard)
    return finish_run(state)
