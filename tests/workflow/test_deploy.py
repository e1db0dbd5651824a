"""Deployment: the conda environment Snakemake would create, the pins, snakefmt, and config/README.md.

This machine has no conda, so ``snakemake --software-deployment-method conda`` (even ``-n``) stops at
``conda info``; the test asks Snakemake's own API which env file each rule resolves to and what it
would copy into ``.snakemake/conda/``, then resolves its pip entry from there as conda's pip does.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]

# the env file (and its content) that Snakemake resolves for each rule, through its API; conda is not called
PROBE = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import (ConfigSettings, DeploymentMethod, DeploymentSettings, OutputSettings,
                                      ResourceSettings)

snakefile, workdir, configfile = map(Path, sys.argv[1:4])
with SnakemakeApi(OutputSettings(quiet={"all"})) as api:
    wf = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=snakefile, workdir=workdir,
                      config_settings=ConfigSettings(configfiles=[configfile]),
                      deployment_settings=DeploymentSettings(deployment_method={DeploymentMethod.CONDA}))._workflow
    envs = {}
    for rule in wf.rules:
        spec = rule.expand_conda_env({})
        if spec is not None:
            env = spec.get_conda_env(wf, envs_dir=str(workdir / ".snakemake" / "conda"))  # Snakemake's default
            # Snakemake copies the file to <envs_dir>/<hash>.yaml and runs conda env create --file on that copy
            # (its hash needs conda's platform name, hence no hash here)
            envs[rule.name] = {"file": env.file.get_path_or_uri(secret_free=True), "content": env.content.decode(),
                               "envs_dir": env._envs_dir}
    print(json.dumps(envs))
"""


def pyproject_pins() -> list[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return sorted(project["dependencies"] + project["optional-dependencies"]["test"])


def pip_entries(env_text: str) -> list[str]:
    deps = yaml.safe_load(env_text)["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


def test_environment_yml_pins_equal_pyproject():
    pip = pip_entries((REPO / "environment.yml").read_text())
    assert sorted(p for p in pip if not p.startswith("-e")) == pyproject_pins()
    assert "-e ." in pip


def test_conda_env_of_every_rule_installs_this_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RAE_BENCH_SETTINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", PROBE, str(REPO / "Snakefile"), str(tmp_path),
                           str(REPO / "tests" / "configs" / "tiny.yaml")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    envs = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(envs) == {"train", "evaluate", "evaluate_best_checkpoint", "feature_classifier", "reference_stats",
                         "table", "figure", "claims"}
    assert len({e["file"] for e in envs.values()}) == 1
    spec = next(iter(envs.values()))
    assert Path(spec["file"]).is_absolute() and Path(spec["file"]).exists()
    pip = pip_entries(spec["content"])
    editable = [p for p in pip if p.startswith("-e ")]
    assert len(editable) == 1, pip
    # conda runs pip in the folder of the env file it is given: Snakemake's copy in .snakemake/conda/
    pip_cwd = Path(spec["envs_dir"])
    assert pip_cwd == tmp_path / ".snakemake" / "conda"
    path = Path(shlex.split(editable[0])[1])
    assert path.is_absolute() and (pip_cwd / path).resolve() == REPO.resolve()
    assert (path / "pyproject.toml").exists()
    assert sorted(p for p in pip if p not in editable) == pyproject_pins()
    # apart from that one entry, it is environment.yml as it stands
    ours = (REPO / "environment.yml").read_text().splitlines()
    theirs = spec["content"].splitlines()
    assert [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b] == [ours.index("      - -e .")]
    assert len(ours) == len(theirs)


def test_workflow_files_are_snakefmt_formatted():
    files = ["Snakefile", *sorted(str(p.relative_to(REPO)) for p in (REPO / "workflow" / "rules").glob("*.smk"))]
    done = subprocess.run([sys.executable, "-m", "snakefmt", "--check", *files], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (f"run `snakefmt {' '.join(files)}` (pip install -e '.[test]' installs it):\n"
                                  + done.stdout[-2000:] + done.stderr[-2000:])


def schema_keys(node: object) -> set[str]:
    """Every property name anywhere in the config schema (top level, nested, definitions)."""
    keys: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "properties" and isinstance(value, dict):
                keys |= set(value)
            keys |= schema_keys(value)
    elif isinstance(node, list):
        for value in node:
            keys |= schema_keys(value)
    return keys


def test_config_readme_describes_every_schema_key():
    schema = yaml.safe_load((REPO / "rae_bench" / "config" / "config.schema.yaml").read_text())
    readme = (REPO / "config" / "README.md").read_text()
    mentioned = set(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", readme))
    missing = sorted(schema_keys(schema) - mentioned)
    assert not missing, f"config/README.md does not describe: {', '.join(missing)}"
