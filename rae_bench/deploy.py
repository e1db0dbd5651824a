"""The conda environment of the workflow's jobs (``snakemake --software-deployment-method conda``).

environment.yml installs this repository with a pip entry ``-e .``; conda runs pip in the env file's
folder, so that works for ``conda env create -f environment.yml``. Snakemake, though, copies an env
file into ``.snakemake/conda/`` before creating it, where ``.`` is no longer this repository. The
workflow therefore hands Snakemake a copy of environment.yml whose ``-e .`` names this checkout's
absolute path: same pins, and a checkout that moves gets its own environment (the path is part of
the file Snakemake hashes).
"""
from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

ENV_FILE = "environment.yml"
EDITABLE = "- -e ."  # the pip entry that installs the repository


def workflow_env_text(repo: str | os.PathLike[str]) -> str:
    """environment.yml of ``repo`` with its ``-e .`` pip entry replaced by ``-e <absolute repo path>``."""
    root = Path(repo).resolve()
    lines = (root / ENV_FILE).read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if line.strip() == EDITABLE]
    if len(hits) != 1:
        raise ValueError(f"{root / ENV_FILE} must hold the pip entry '{EDITABLE}' exactly once, found {len(hits)}")
    i = hits[0]
    indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
    # a JSON string is a YAML string: a path with spaces, ':' or '#' stays one pip requirement line
    lines[i] = f"{indent}- {json.dumps(f'-e {shlex.quote(str(root))}')}"
    return "\n".join(lines) + "\n"


def workflow_env_file(repo: str | os.PathLike[str], folder: str | os.PathLike[str]) -> str:
    """Write :func:`workflow_env_text` to ``folder/environment.yaml`` (only when it changed); its absolute path."""
    target = Path(folder).resolve() / "environment.yaml"
    text = workflow_env_text(repo)
    if not target.exists() or target.read_text() != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)  # parallel parses (cluster jobs) never see half a file
    return str(target)
