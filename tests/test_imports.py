"""The import graph: agents, envs, policies and studies are the library and runners the thin top layer over
it. No library module, benchmark script or docs/studies script imports runners, each library module imports
on its own without pulling runners in, and no module of the project imports itself back through others."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ("agents", "envs", "policies", "studies")
PROJECT = (*LIBRARY, "runners")
# Scripts that are not packages but must use only the library.
SCRIPTS = sorted([*ROOT.glob("benchmarks/*.py"), *ROOT.glob("docs/studies/*/*.py")])


def module_files(packages: tuple[str, ...]) -> dict[str, Path]:
    """Every module of ``packages`` by dotted name (a package by its own name)."""
    modules = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def imported_names(path: Path) -> set[str]:
    """Every absolute import in a file, at the top or inside a function: ``from a.b import c`` gives
    ``a.b`` and ``a.b.c`` (c may be a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_library_module_or_script_imports_runners() -> None:
    files = [*module_files(LIBRARY).values(), *SCRIPTS]
    assert len(SCRIPTS) >= 6 and any(path.parts[-2] == "studies" for path in files)  # the globs found them
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported_names(path) if name.split(".")[0] == "runners"
        )
        for path in files
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_project_has_no_import_circle() -> None:
    modules = module_files(PROJECT)

    def owner(name: str) -> str | None:
        """The project module an imported name lives in (``studies.plan.TrialSpec`` -> ``studies.plan``)."""
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {
        name: {dep for dep in map(owner, imported_names(path)) if dep and dep != name}
        for name, path in modules.items()
    }
    circles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = "open"
        for dep in sorted(graph[name]):
            if state.get(dep) == "open":
                circles.append([*path[path.index(dep) :], dep])
            elif dep not in state:
                visit(dep, [*path, dep])
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert circles == []
    # The layers: runners over studies over agents over policies and envs, nothing upwards.
    layers = {"runners": 3, "studies": 2, "agents": 1, "policies": 0, "envs": 0}
    upward = sorted(
        (name, dep) for name, deps in graph.items() for dep in deps
        if layers[dep.split(".")[0]] > layers[name.split(".")[0]]
    )  # fmt: skip
    assert upward == []


@pytest.mark.slow
def test_each_library_module_imports_alone_without_runners() -> None:
    """In a fresh interpreter, each module imported with no project module loaded before it: it imports
    (no circle that only one import order hides) and leaves no runners module loaded."""
    names = sorted(module_files(LIBRARY))
    script = f"""
import importlib, json, sys
project = {PROJECT!r}
found = {{}}
for name in {names!r}:
    for loaded in [m for m in sys.modules if m.split(".")[0] in project]:
        del sys.modules[loaded]
    importlib.import_module(name)
    found[name] = sorted(m for m in sys.modules if m.split(".")[0] == "runners")
print(json.dumps(found))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found) == set(names) and {name: runners for name, runners in found.items() if runners} == {}
