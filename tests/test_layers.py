"""The package's floors hold: the import-linter contracts of pyproject.toml, and no import cycle between the
top-level units of rae_bench (``config``, ``data``, ``models``, ``train``, ...), function-level imports counted."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    """This checkout's package first on the path, whichever copy is installed."""
    path = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {**os.environ, "PYTHONPATH": path}


def test_lint_imports_keeps_every_contract():
    beside_python = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    exe = shutil.which("lint-imports", path=beside_python)
    assert exe, "lint-imports not found; install the test extra: pip install '.[test]'"
    done = subprocess.run([exe, "--no-cache"], cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout, done.stdout[-4000:]


def _unit(module: str) -> str:
    return ".".join(module.split(".")[:2])


def unit_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected groups of more than one top-level unit (Tarjan's algorithm on the unit graph)."""
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if _unit(module) != _unit(imported):
                edges.setdefault(_unit(module), set()).add(_unit(imported))
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted({_unit(m) for m in graph.modules}):
        if v not in index:
            visit(v)
    return groups


def test_no_import_cycle_between_top_level_units():
    # grimp reads every import statement, those inside functions too (the next test shows it)
    assert unit_cycles(grimp.build_graph("rae_bench", cache_dir=None)) == []


def test_function_level_imports_count(tmp_path, monkeypatch):
    """A package whose only cycle runs through an import inside a function is caught."""
    (tmp_path / "knot").mkdir()
    (tmp_path / "knot" / "__init__.py").write_text("")
    (tmp_path / "knot" / "a.py").write_text("from knot import b\n")
    (tmp_path / "knot" / "b.py").write_text("def f():\n    from knot import a\n\n    return a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert unit_cycles(grimp.build_graph("knot", cache_dir=None)) == [["knot.a", "knot.b"]]
