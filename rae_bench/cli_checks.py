"""Up-front checks of ``rae-bench`` arguments: one ``error:`` line (exit 2) before any work starts.

The checks go by argument name, so a new subcommand that reuses a name (``--n``, ``--seed``,
``--model-path``, ...) is checked without further code. Argparse's own errors (a missing argument, an
``int`` that is not one) become one line too (:class:`OneLineParser`). Every JSON argument is parsed and
checked here once (:func:`check_json_args`), so the commands get objects of the right shape.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import re
from pathlib import Path
from typing import Any, NoReturn

from .errors import ConfigError
from .checks import MAX_SEED, NAME_PATTERN, check_name, schema_problem, short

MAX_COUNT = 2**31 - 1
# name -> (smallest, largest) allowed value; None: the argument was not given
COUNTS: dict[str, tuple[int, int]] = {
    "n": (1, MAX_COUNT), "n_samples": (2, MAX_COUNT), "threads": (1, 4096), "checkpoint_every": (1, MAX_COUNT),
    "batch_size": (1, MAX_COUNT), "seed": (0, MAX_SEED), "knn_k": (1, MAX_COUNT), "fid_infinity_points": (2, 1000),
    "fid_bootstrap": (0, 100_000),
}
SMALLEST_PER_COMMAND = {("reference-stats", "n"): 2}  # a covariance needs two feature vectors
# inputs that must exist: name -> (what it is, how to make it)
INPUT_FILES: dict[str, tuple[str, str]] = {
    "model_path": ("model file", "train it first (snakemake {p} or rae-bench train)"),
    "sampler_path": ("sampler state", "fit it first (snakemake {p} or rae-bench fit-sampler)"),
    "reference": ("reference statistics file", "compute it first (snakemake {p} or rae-bench reference-stats)"),
    "classifier": ("classifier file", "train it first (rae-bench train-classifier)"),
    "inception_weights": ("Inception weights file", "pass the path of pt_inception-2015-12-05-6726825d.pth"),
    "config": ("config file", "pass an existing file (e.g. config/config.yaml)"),
    "claims": ("claims file", "pass an existing file (e.g. config/claims.yaml)"),
}
INPUT_EITHER = {"a": "input A", "b": "input B"}  # a file or a folder
DIR_OUTPUTS = {("train", "out"), ("evaluate", "out_dir"), ("sample", "out")}  # folders (sample: or .npz)
FILE_OUTPUTS = ("out", "csv", "tex", "agreement", "json", "html")
NAMES = {"dataset": "dataset", "model": "model", "sampler": "sampler", "name": "table or figure"}
DEVICE = re.compile(r"^(auto|cpu|cuda(:[0-9]+)?)$")


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one ``error:`` line (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message.splitlines()[0] if message else 'bad arguments'}; see {self.prog} --help\n")


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_args(args: argparse.Namespace) -> None:
    """Counts, ranges, names, the device, existing inputs and writable-looking outputs of one command."""
    command = getattr(args, "command", "")
    values = vars(args)
    for name, (low, high) in COUNTS.items():
        value = values.get(name)
        if value is None:
            continue
        low = SMALLEST_PER_COMMAND.get((command, name), low)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ConfigError(f"{flag(name)} {short(value)} is out of range; pass an integer from {low} to {high}")
    for name, kind in NAMES.items():
        value = values.get(name)
        if isinstance(value, str) and not (command == "train" and name == "model" and values.get("run_config")):
            check_name(kind, value, f"pass a name of letters, digits, '_' and '-' ({NAME_PATTERN})")
    device = values.get("device")
    if device is not None and not DEVICE.match(str(device)):
        raise ConfigError(f"--device {short(device)} is not a device; use auto, cpu, cuda or cuda:N")
    for name, (what, fix) in INPUT_FILES.items():
        if name == "sampler_path" and command == "evaluate" and values.get("sampler"):
            continue  # evaluate --sampler fits the sampler and writes this file
        for value in _as_list(values.get(name)):
            _existing(flag(name), what, value, fix, folder_ok=False)
    for name, what in INPUT_EITHER.items():
        for value in _as_list(values.get(name)):
            _existing(what, "input", value, "pass an existing file or folder", folder_ok=True)
    for name in FILE_OUTPUTS + ("out_dir",):
        value = values.get(name)
        if value is None:
            continue
        _output(flag(name), str(value), folder=(command, name) in DIR_OUTPUTS)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _existing(label: str, what: str, value: Any, fix: str, folder_ok: bool) -> None:
    text = str(value)
    path = Path(text)
    if not text.strip() or "\0" in text:
        raise ConfigError(f"{label} is empty or not a path ({short(text)}); pass the {what}'s path")
    if not path.exists():
        raise ConfigError(f"{label}: {what} {text[:200]} not found; {fix.format(p=text)}")
    if path.is_dir() and not folder_ok:
        raise ConfigError(f"{label}: {text[:200]} is a folder, not a {what}; pass the file itself")


def _output(label: str, text: str, folder: bool) -> None:
    if not text.strip() or "\0" in text:
        raise ConfigError(f"{label} is empty or not a path ({short(text)}); pass an output path")
    path = Path(text)
    if folder and path.exists() and not path.is_dir() and path.suffix != ".npz":
        raise ConfigError(f"{label} {text[:200]} is a file, not a folder; pass a folder (it is created if missing)")
    if not folder and path.is_dir():
        raise ConfigError(f"{label} {text[:200]} is a folder; pass a file path inside it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{label} {text[:200]}: {parent} is a file, not a folder; "
                                  f"choose another output path")
            break


_NAME = {"type": "string", "pattern": NAME_PATTERN}
_NAMES = {"type": "array", "items": _NAME}
JSON_SCHEMAS: dict[str, dict[str, Any]] = {
    "dataset-spec": {"type": "object", "required": ["dataset", "source"],
                     "properties": {"dataset": _NAME, "source": {"type": "string"}, "options": {"type": "object"}}},
    # what report.specs makes: the parts the table and figure commands index
    "report-spec": {
        "type": "object", "required": ["kind", "datasets", "seeds"],
        "properties": {
            "kind": {"enum": ["rows", "sweep"]}, "datasets": {**_NAMES, "minItems": 1}, "models": _NAMES,
            "seeds": {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": MAX_SEED}},
            "sampler": _NAME, "model": _NAME, "mask_model": _NAME, "metrics": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": {"type": "object", "required": ["label"], "properties": {
                "label": {"type": "string"}, "model": _NAME, "sampler": _NAME, "paper": {"type": "string"},
                "selection": {"enum": ["final", "best_checkpoint"]}},
                "dependentRequired": {"model": ["sampler"], "sampler": ["model"]}}},
            "latent_dims": {"type": "object", "additionalProperties": {"type": "array", "items": {
                "type": "integer", "minimum": 1, "maximum": 16384}}},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "paper_models": {"type": "object", "additionalProperties": {"type": "string"}},
            "paper_columns": {"type": "object", "additionalProperties": {"type": "string"}},
            "extractors": {"type": "object", "additionalProperties": {"type": "string"}},
            "n_samples": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 2}},
            "true_n": {"type": "object", "additionalProperties": {"type": ["integer", "null"]}},
        },
        "allOf": [{"if": {"properties": {"kind": {"const": "rows"}}}, "then": {"required": ["rows"]}},
                  {"if": {"properties": {"kind": {"const": "sweep"}}}, "then": {"required": ["models", "latent_dims"]}}],
    },
}
# rae-bench claims --spec (report.specs.claims_spec): the table and sweep specs the claims read
JSON_SCHEMAS["claims-spec"] = {
    "type": "object", "required": ["kind", "tables", "sweeps"],
    "properties": {"kind": {"const": "claims"}, "claims": {"type": "array", "items": {"type": "object"}},
                   "tables": {"type": "object", "additionalProperties": JSON_SCHEMAS["report-spec"]},
                   "sweeps": {"type": "object", "additionalProperties": JSON_SCHEMAS["report-spec"]}},
}


# every JSON argument (argparse dest -> the kind of object it holds); --spec's kind depends on the command
JSON_ARGS = {"settings": "settings", "run_config": "run-config", "dataset_spec": "dataset-spec", "spec": None,
             "params": "sampler-params", "sampler_params": "sampler-params"}
SPEC_KINDS = {"train-classifier": "classifier-spec", "table": "report-spec", "figure": "report-spec",
              "claims": "claims-spec"}
# the workflow passed --settings through this variable until issue 24; ignoring it silently would run a job
# on config/config.yaml's data root and device instead of the user's, so it stops the job with one line
OLD_SETTINGS_VARIABLE = "RAE_BENCH_SETTINGS"


def check_json_args(args: argparse.Namespace) -> None:
    """Every JSON argument of the command parsed and checked (:func:`checked_json`), in place: the one check
    a job makes of what the workflow hands it (the whole config was checked when the Snakefile was read)."""
    command = getattr(args, "command", "")
    values = vars(args)
    if "settings" in values and os.environ.get(OLD_SETTINGS_VARIABLE) is not None:
        raise ConfigError(f"${OLD_SETTINGS_VARIABLE} is no longer read (the workflow passes --settings JSON); "
                          f"unset it and pass --settings or --config FILE instead")
    for dest, kind in JSON_ARGS.items():
        if values.get(dest) is not None:
            values[dest] = checked_json(values[dest], kind or SPEC_KINDS.get(command, "object"), flag(dest))


def checked_json(text: str | Any, kind: str, origin: str) -> dict[str, Any]:
    """A JSON argument (or an object already built, such as a run resolved by hand) parsed, an object, and of
    the shape ``kind`` needs; ``origin`` (the flag) opens the one error line."""
    value = _parsed(text, origin) if isinstance(text, str) else text
    if not isinstance(value, dict):
        raise ConfigError(f"{origin} must be a JSON object ({{...}}), got {short(value)}; pass a JSON object")
    if kind == "settings":  # a part of the config: the keys of config/config.yaml
        from .config.files import config_schema  # here: 20 ms of every `rae-bench --help` (yaml) (-X importtime)

        problem = schema_problem(config_schema(), value)
        if problem:
            raise ConfigError(f"{origin}: {problem}; pass settings as the workflow does (keys of config/config.yaml)")
    elif kind == "run-config":  # schema, sizes, and the model builds (on the meta device)
        from .config.validate import check_run  # here: 1.4 s of every `rae-bench --help` (torch) (-X importtime)

        check_run(value, origin, "pass a run config as rae_bench.config.resolve.resolve_run makes it (what the workflow passes)")
    elif kind in JSON_SCHEMAS or kind == "classifier-spec":
        problem = schema_problem(_classifier_spec_schema() if kind == "classifier-spec" else JSON_SCHEMAS[kind], value)
        if problem:
            raise ConfigError(f"{origin}: {problem}; pass it as the workflow does")
    if kind == "claims-spec" and "claims" in value:  # the workflow passes the claims inside the spec
        from .report.claims import check_claims  # here: 1.6 s of every `rae-bench --help` (numpy, pandas)

        value["claims"] = check_claims(value, origin)
    return value  # sampler-params (and "object"): the sampler checks its own params when it is built


@functools.lru_cache(maxsize=1)
def _classifier_spec_schema() -> dict[str, Any]:
    """rae-bench train-classifier --spec (config.resolve.classifier_spec): the dataset's source and options, and the
    keys of features.classifier as the config schema types them."""
    from .config.files import config_schema  # here: 20 ms of every `rae-bench --help` (yaml) (-X importtime)

    training = config_schema()["definitions"]["classifier"]["properties"]
    return {"type": "object", "required": ["source"],
            "properties": {"source": {"type": "string"}, "options": {"type": "object"}, **training}}


def _parsed(text: str, origin: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{origin} is not valid JSON ({exc.msg} at char {exc.pos}): {text[:60]!r}; "
                          f"pass a JSON object, quoted for the shell") from None
