"""Models from outside the repository: the ``rae_bench.models`` entry-point group.

A real package is written to a temporary folder, installed with pip (no network: no dependencies, no
build isolation) into a target folder, and used from the CLI in a subprocess with that folder on
PYTHONPATH, as a user's ``pip install`` would make it visible.
"""
from __future__ import annotations

import csv
import importlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from rae_bench.errors import ConfigError
from rae_bench.models import MODELS, PLUGINS
from rae_bench.models.plugins import load_plugins

REPO = Path(__file__).resolve().parents[2]

PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "raeplug"
version = "0.1.0"

[project.entry-points."rae_bench.models"]
l1ae = "raeplug.l1:L1AE"
"""

MODULE = '''\
"""An auto-encoder with an L1 reconstruction loss: a model outside the rae_bench repository."""
from rae_bench.models import GenerativeAE


class L1AE(GenerativeAE):
    defaults = {"weight": 1.0}

    def loss(self, x):
        rec = self.params["weight"] * (self.decode(self.encode(x)) - x).abs().flatten(1).sum(1).mean()
        return {"loss": rec, "rec": rec}
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    pkg = root / "raeplug"
    (pkg / "raeplug").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(PYPROJECT)
    (pkg / "raeplug" / "__init__.py").write_text("")
    (pkg / "raeplug" / "l1.py").write_text(MODULE)
    site = root / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--disable-pip-version-check", "--target", str(site), str(pkg)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (site / "raeplug" / "l1.py").exists()
    return site


def cli(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "RAE_BENCH_SETTINGS"}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "rae_bench", *args], capture_output=True, text=True,
                          env=env, timeout=300)


def tiny_config(tmp_path: Path, model: str) -> Path:
    cfg = {
        "arch": "tiny", "seeds": [0], "cache_dir": str(tmp_path / "cache"),
        "training": {"epochs": 1, "batch_size": 50},
        "datasets": {"synth": {"source": "synthetic", "latent_dim": 3,
                               "options": {"n": 3, "d": 10, "n_train": 200, "n_test": 50}}},
        "models": {"l1": {"model": model, "params": {"weight": 2.0}}},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_installed_plugin_is_listed_validated_and_trains(plugin_site, tmp_path):
    listed = cli(plugin_site, "models")
    assert listed.returncode == 0, listed.stderr
    assert "l1ae\tplugin raeplug.l1:L1AE (raeplug)" in listed.stdout.splitlines()
    assert "rae_l2\tbuilt-in" in listed.stdout.splitlines()

    out = tmp_path / "run"
    done = cli(plugin_site, "train", "--config", str(tiny_config(tmp_path, "l1ae")), "--dataset", "synth",
               "--model", "l1", "--out", str(out), "--device", "cpu", "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stderr[-2000:]
    rows = list(csv.DictReader(open(out / "train_log.csv")))
    assert len(rows) == 4 and {"loss", "rec"} <= set(rows[0])  # 200 items / batches of 50, one epoch
    assert (out / "model.pt").exists()

    # an unknown name is one line that lists the plugin beside the built-ins
    bad = cli(plugin_site, "train", "--config", str(tiny_config(tmp_path, "l2ae")), "--dataset", "synth",
              "--model", "l1", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 2
    line = bad.stderr.strip()
    assert "\n" not in line and "unknown model 'l2ae'" in line and "l1ae" in line and "rae_l2" in line, line


def installed(root: Path, package: str, entry: str, module: str | None = None) -> Path:
    """What pip leaves in a target folder for a package with one entry point: its dist-info (and module)."""
    info = root / f"{package}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[rae_bench.models]\n{entry}\n")
    if module is not None:
        (root / f"{package}.py").write_text(textwrap.dedent(module))
    return root


@pytest.mark.parametrize("package, entry, module, expected", [
    ("plug_missing", "ghost = plug_missing_mod:Ghost", None,
     "cannot be imported (ModuleNotFoundError: No module named 'plug_missing_mod'); fix the package or "
     "uninstall it (pip uninstall plug_missing)"),
    ("plug_notmodel", "notmodel = plug_notmodel:NotAModel", "class NotAModel:\n    pass\n",
     "not a subclass of rae_bench.models.GenerativeAE; point the entry point at such a class "
     "(or pip uninstall plug_notmodel)"),
    ("plug_clash", "ae = plug_clash:Clash",
     "from rae_bench.models import GenerativeAE\nclass Clash(GenerativeAE):\n    pass\n",
     "takes the name of the built-in model 'ae'; rename the entry point in the "
     "[project.entry-points.\"rae_bench.models\"] table of plug_clash's pyproject.toml"),
])
def test_broken_plugin_is_one_line_naming_package_and_fix(tmp_path, monkeypatch, package, entry, module, expected):
    before = dict(MODELS)
    monkeypatch.syspath_prepend(str(installed(tmp_path, package, entry, module)))
    importlib.invalidate_caches()
    with pytest.raises(ConfigError) as err:
        load_plugins()
    message = str(err.value)
    assert "\n" not in message and f"of package '{package}'" in message and expected in message, message
    assert MODELS == before and not PLUGINS
