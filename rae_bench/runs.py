"""Runs on disk and where they run: the device, a run's training data, a trained model read back.

Shared by training, evaluation, snapshot selection, sample export and scoring, and the CLI, so that
none of them imports another for these.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from .config.validate import check_run
from .data import DataSource, data_shape, load
from .errors import CheckpointError, ConfigError, DataError
from .models import GenerativeAE, build_model

MODEL_FORMAT = "rae_bench.model/1"


def pick_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{name}' requested but CUDA is not available; use device: auto or cpu")
    return torch.device(name)


def training_data(run: Mapping[str, Any], source: DataSource) -> torch.Tensor:
    """The run's training split (first ``n_train`` items), checked against the expected shape."""
    data = load(run["source"], "train", source, run.get("options"))
    n_train = run.get("n_train")
    if n_train is not None:
        if n_train > len(data):
            raise DataError(f"n_train={n_train} for dataset '{run['dataset']}' but its train split has "
                            f"{len(data)} items; lower datasets.{run['dataset']}.n_train")
        data = data[:n_train]
    if len(data) == 0:
        raise DataError(f"the train split of dataset '{run['dataset']}' is empty; check the data files under the data root")
    expected = data_shape(run["source"], run.get("options"))
    if tuple(data.shape[1:]) != tuple(expected):
        raise DataError(f"dataset '{run['dataset']}' has items of shape {tuple(data.shape[1:])}, expected {expected}; "
                        f"check the files under the data root")
    return data


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> tuple[GenerativeAE, dict[str, Any]]:
    """A trained model in eval mode and its stored record (``run``, ``result``).

    Image models come in channels-last layout whatever they trained in: oneDNN's (transposed)
    convolutions then run about 2x faster on the CPU (decoding 2,000 CelebA codes: 5.3 s -> 2.4 s), with
    the same fp32 arithmetic (after 8-bit quantisation, 1 pixel in 10^5 moves by one level).
    """
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"model file {p} not found; train it first (snakemake {p} or rae-bench train)")
    try:
        blob = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"model file {p} is unreadable ({type(exc).__name__}); delete it and train again") from None
    if not isinstance(blob, dict) or blob.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{p} is not a rae_bench model file (the model.pt of rae-bench train); "
                              f"pass a run's model.pt, or delete this file and train again")
    check_model_record(blob, p)
    run = blob["run"]
    model = build_model(run["model"], blob["data_shape"], run["latent_dim"], run["arch"], run["params"])
    try:
        model.load_state_dict(blob["state"])
    except RuntimeError:
        raise CheckpointError(f"{p} does not match model '{run['model']}' with its stored config; delete it and train again") from None
    layout = torch.channels_last if model.is_image else torch.preserve_format
    return model.to(device, memory_format=layout).eval(), blob


def check_model_record(blob: Mapping[str, Any], path: Path) -> None:
    """A model file's stored run config is well-formed and within the size limits (checked on the meta
    device, before anything is allocated), and its data shape is the one its dataset gives."""
    fix = "delete it and train again"
    try:
        shape = check_run(blob.get("run"), f"model file {path} holds an unusable run config", fix)
    except ConfigError as exc:
        raise CheckpointError(str(exc)) from None
    stored = blob.get("data_shape")
    if not isinstance(stored, (list, tuple)) or tuple(stored) != shape:
        raise CheckpointError(f"model file {path} claims data of shape {str(stored)[:60]}, but its dataset gives "
                              f"{shape}; {fix}")
    if not isinstance(blob.get("state"), Mapping) or not isinstance(blob.get("result"), Mapping):
        raise CheckpointError(f"model file {path} lacks its weights or training record; {fix}")
