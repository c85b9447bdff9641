"""Imports flow down the layers of ARCHITECTURE.md, never back up (checked on the source, not at run time).

Every module under finetune/ belongs to exactly one layer; a module may import its own layer and the layers beneath
it (the transitive closure of BELOW), nothing else of finetune. Relative imports are resolved, and `from pkg import
name` counts as an import of the submodule `pkg.name` where one exists.

Lazy imports (inside a function) are held to the same layer rules: a deferred import is still a dependency, and
deferring one must never be a way round the table. For cycles the rule differs:
- module-level imports (the ones run at import time, TYPE_CHECKING blocks excepted) must have no cycle at all;
- a cycle that only closes through a lazy import does not break at import time, but it still ties two modules
  together (the training <-> trainjob debt was one), so those are refused too, except for the few listed in
  KNOWN_LAZY_CYCLES with the reason each is tolerated.
Imports under `if TYPE_CHECKING:` never run: they follow the layer rules but are no edge of either cycle check.
Implicit imports of parent packages (`import a.b.c` runs a/__init__ and a/b/__init__) are not edges: a package
__init__ re-exporting its submodules is normal and is not a cycle with them.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "finetune"

# Layers, roughly lowest first (BELOW gives the order). Paths are relative to finetune/; a trailing "/" takes the
# whole package; the most specific entry wins.
LAYERS: dict[str, list[str]] = {
    # The version and the product's exception/diagnostic types: imported by everything, import nothing above them.
    "foundation": ["__init__.py", "errors.py"],
    "catalog": ["catalog/"],  # SKUs, model defaults, component schemas, naming rules (data files + loaders)
    "data": ["data/"],  # dataset sources, sampling, checks, hashing, JSONL output; knows nothing of the spec
    "spec": ["spec/",
             "schema.py",  # the published JSON Schema, generated from the spec's pydantic models
             "lockfile.py"],  # <spec>.lock.yaml beside the spec: the pins of its floating references
    "graph": ["graph.py"],
    "plan": ["plan/"],
    "render": ["render/",
               "console.py"],  # terminal output (styling, JSON); used by the CLI only
    "state": ["state.py"],  # the local state folder: apply's journal and per-target lock
    # the spec's data: section as a data-layer request, and where it is prepared; validate's offline checks of the
    # data and model files a spec refers to
    "dataprep": ["dataprep.py", "deepcheck.py"],
    "backend seam": ["backends/__init__.py", "backends/base.py",  # the Backend protocol the engine knows
                     "backends/shared_reads.py"],  # reads a folder of specs shares
    "backends": ["backends/azureml/", "backends/local/",
                 "backends/lossplot.py",  # loss-curve renderings (text, PNG) both targets' `status` draws
                 "invoke.py",  # smoke-test request and response shapes, shared by both backends
                 "workspace.py"],  # which Azure ML workspace a spec targets (no SDK)
    "apply": ["apply.py"],
    "testing": ["testing/"],  # the Azure ML emulator: self-contained, opened by session for emulated workspaces
    "session": ["session.py"],  # opening a spec's target: backend (or emulator), journal, lock
    "workflow": ["workflow.py",  # the use cases behind the CLI, target-neutral
                 "runs.py",  # `finetune runs` / `finetune ui`: a spec's training runs, compared
                 "export.py"],  # the graph as `az ml` CLI YAML files
    "cli": ["cli.py", "__main__.py",
            "many.py",  # a folder of specs: runs the CLI's commands for each, concurrently
            "installed.py"],  # where this finetune came from, as a pip requirement for CI
}

# layer -> the layers directly beneath it (it may import those and, transitively, everything beneath them).
BELOW: dict[str, list[str]] = {
    "foundation": [],
    "catalog": ["foundation"],
    "data": ["foundation"],
    "spec": ["catalog"],
    "graph": ["spec"],
    "plan": ["graph"],
    "render": ["plan"],
    "state": ["foundation"],
    "dataprep": ["spec", "data", "state"],
    "backend seam": ["plan"],
    "backends": ["backend seam", "dataprep"],
    "apply": ["backend seam", "state"],  # the seam only: never a concrete backend
    "testing": ["catalog"],  # the emulator serves the catalog's vmSizes list
    "session": ["backends", "dataprep", "testing"],
    "workflow": ["apply", "session"],
    "cli": ["workflow", "render"],
}

# What a layer must not know about beyond the table (third-party packages; prefix match; any import, lazy too).
HEAVY = ["azure", "mlflow", "datasets", "torch", "transformers", "peft"]
FORBIDDEN_PACKAGES: dict[str, list[str]] = {
    "foundation": HEAVY,
    "catalog": HEAVY,
    "spec": HEAVY,
    "graph": HEAVY,
    "plan": HEAVY,
    "render": HEAVY,
    "state": HEAVY,
    "apply": HEAVY,
    "data": ["azure", "mlflow", "torch", "transformers", "peft"],
}

# Real violations found in modules this test does not own, each with why it is tolerated for now. The tests fail
# on any violation not listed here, and on a listed one that no longer occurs (so the list only shrinks).
# Entries: (importing module, imported module).
KNOWN_VIOLATIONS: dict[tuple[str, str], str] = {}

# Cycles that close only through a lazy import, as the sorted tuple of the modules on the cycle, with a reason.
KNOWN_LAZY_CYCLES: dict[tuple[str, ...], str] = {}


@dataclass(frozen=True)
class Import:
    target: str  # a finetune module (a file), or a third-party module name
    lazy: bool  # not run at import time: inside a function, or under `if TYPE_CHECKING:`
    line: int
    type_only: bool = False  # under `if TYPE_CHECKING:`: never runs


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str) -> str:
    """A finetune module name as the file that defines it (a name inside a module means the module)."""
    known = modules()
    while name not in known and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


@cache
def imports_of(module: str) -> tuple[Import, ...]:
    path = modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []

    def add(name: str, lazy: bool, type_only: bool, line: int) -> None:
        target = _resolve(name) if name.split(".")[0] == "finetune" else name
        found.append(Import(target, lazy or type_only, line, type_only))

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    add(alias.name, lazy, type_only, child.lineno)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[:len(base) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                for alias in child.names:
                    # `from pkg import submodule` imports the submodule; `from mod import name` imports mod.
                    full = f"{source}.{alias.name}"
                    add(full if full in modules() else source, lazy, type_only, child.lineno)
            visit(child, lazy or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)),
                  type_only or (isinstance(child, ast.If) and _is_type_checking(child)))

    visit(ast.parse(path.read_text(encoding="utf-8")), False, False)
    return tuple(found)


def layer_of(module: str) -> str | None:
    rel = modules()[module].relative_to(PACKAGE).as_posix()
    matches = [(len(entry), layer) for layer, entries in LAYERS.items() for entry in entries
               if rel == entry or (entry.endswith("/") and rel.startswith(entry))]
    return max(matches)[1] if matches else None  # the most specific entry wins (backends/base.py over backends/)


@cache
def allowed_from(layer: str) -> frozenset[str]:
    allowed = {layer}
    for lower in BELOW[layer]:
        allowed |= allowed_from(lower)
    return frozenset(allowed)


def internal_edges(include_lazy: bool) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in modules()}
    for module in modules():
        for imp in imports_of(module):
            if imp.target in modules() and imp.target != module and not imp.type_only and (
                    include_lazy or not imp.lazy):
                graph[module].add(imp.target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), each as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def cycle_path(graph: dict[str, set[str]], members: list[str]) -> str:
    """One concrete loop through the component, for the failure message (dbt style: a -> b -> a)."""
    start, inside = members[0], set(members)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & inside):
            if nxt == start:
                return " -> ".join(paths[node] + [start])
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    return " <-> ".join(members)


# --- the tests ---

def test_every_module_belongs_to_a_layer():
    unassigned = [modules()[m].relative_to(PACKAGE.parent).as_posix() for m in modules() if layer_of(m) is None]
    assert not unassigned, ("modules in no layer of tests/test_layering.py LAYERS (add each where ARCHITECTURE.md's "
                            "table puts it):\n" + "\n".join(unassigned))


def test_layer_table_is_consistent():
    assert set(BELOW) == set(LAYERS), "every layer needs a BELOW entry, and only layers may have one"
    for layer, lower in BELOW.items():
        assert set(lower) <= set(LAYERS), f"{layer}: unknown layers beneath it: {set(lower) - set(LAYERS)}"
    # Downward only: no layer is beneath itself.
    up = {layer: set(lower) for layer, lower in BELOW.items()}
    assert not find_cycles(up), f"the layer order has a cycle: {find_cycles(up)}"
    for layer, entries in LAYERS.items():
        for entry in entries:
            assert (PACKAGE / entry).exists(), f"LAYERS[{layer!r}] names {entry}, which does not exist"


def test_imports_flow_downward():
    violations, seen = [], set()
    for module in modules():
        layer = layer_of(module)
        if layer is None:
            continue  # reported by test_every_module_belongs_to_a_layer
        for imp in imports_of(module):
            if imp.target not in modules():
                continue
            target_layer = layer_of(imp.target)
            if target_layer is None or target_layer in allowed_from(layer):
                continue
            key = (module, imp.target)
            seen.add(key)
            if key not in KNOWN_VIOLATIONS:
                kind = "lazily imports" if imp.lazy else "imports"
                violations.append(f"{modules()[module].relative_to(PACKAGE.parent)}:{imp.line} ({layer}) {kind} "
                                  f"{imp.target} ({target_layer})")
    assert not violations, "imports that go up or across the layers:\n" + "\n".join(sorted(set(violations)))
    stale = sorted(set(KNOWN_VIOLATIONS) - seen)
    assert not stale, f"KNOWN_VIOLATIONS entries that no longer occur (remove them): {stale}"


@pytest.mark.parametrize("layer", sorted(FORBIDDEN_PACKAGES))
def test_layer_does_not_know_forbidden_packages(layer):
    violations = []
    for module in modules():
        if layer_of(module) != layer:
            continue
        for imp in imports_of(module):
            if any(imp.target == bad or imp.target.startswith(bad + ".") for bad in FORBIDDEN_PACKAGES[layer]):
                violations.append(f"{modules()[module].relative_to(PACKAGE.parent)}:{imp.line} imports {imp.target}")
    assert not violations, "\n".join(violations)


def test_cli_startup_imports_no_heavy_package():
    """What `import finetune.cli` runs (module-level imports, followed through finetune) imports nothing heavy."""
    reached, todo, heavy = set(), ["finetune.cli"], []
    while todo:
        module = todo.pop()
        if module in reached:
            continue
        reached.add(module)
        parent = module.rpartition(".")[0]
        while parent:  # importing a.b.c runs a/__init__ and a/b/__init__ first
            todo.append(parent)
            parent = parent.rpartition(".")[0]
        for imp in imports_of(module):
            if imp.lazy:
                continue
            if imp.target in modules():
                todo.append(imp.target)
            elif any(imp.target == bad or imp.target.startswith(bad + ".") for bad in HEAVY):
                heavy.append(f"{module}:{imp.line} imports {imp.target}")
    assert not heavy, "\n".join(heavy)


def test_no_module_level_import_cycles():
    graph = internal_edges(include_lazy=False)
    cycles = [f"{cycle_path(graph, members)} (all of: {', '.join(members)})" for members in find_cycles(graph)]
    assert not cycles, "module-level import cycles:\n" + "\n".join(cycles)


def test_no_new_cycles_through_lazy_imports():
    graph = internal_edges(include_lazy=True)
    found = {tuple(members): members for members in find_cycles(graph)}
    new = [f"{cycle_path(graph, members)} (all of: {', '.join(members)})"
           for key, members in found.items() if key not in KNOWN_LAZY_CYCLES]
    assert not new, ("import cycles closed by a lazy import (move the shared piece to a module both can import, or "
                     "list it in KNOWN_LAZY_CYCLES with a reason):\n" + "\n".join(new))
    stale = sorted(set(KNOWN_LAZY_CYCLES) - set(found))
    assert not stale, f"KNOWN_LAZY_CYCLES entries that no longer occur (remove them): {stale}"


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """Point the checks at a throw-away finetune/ made of the given {relative path: source}."""
    def make(files: dict[str, str]) -> None:
        fake = tmp_path / "finetune"
        for rel, source in {"__init__.py": "", **files}.items():
            (fake / rel).parent.mkdir(parents=True, exist_ok=True)
            (fake / rel).write_text(source, encoding="utf-8")
        monkeypatch.setitem(globals(), "PACKAGE", fake)
        modules.cache_clear()
        imports_of.cache_clear()

    yield make
    monkeypatch.undo()
    modules.cache_clear()
    imports_of.cache_clear()


def test_an_unassigned_module_is_reported(fake_package):
    """The guard itself: a module added under finetune/ without a layer makes the suite fail."""
    fake_package({"errors.py": "", "newthing.py": "from finetune.errors import FinetuneError\n"})
    assert layer_of("finetune.errors") == "foundation" and layer_of("finetune.newthing") is None
    with pytest.raises(AssertionError, match="finetune/newthing.py"):
        test_every_module_belongs_to_a_layer()


def test_an_upward_relative_import_is_reported(fake_package):
    fake_package({"errors.py": "from . import graph\n", "graph.py": ""})
    with pytest.raises(AssertionError, match=r"finetune/errors.py:1 \(foundation\) imports finetune.graph \(graph\)"):
        test_imports_flow_downward()


def test_cycles_are_reported(fake_package):
    """The training <-> trainjob shape: one side imports the other at module level, the other imports it back
    inside a function. Not a module-level cycle, but a lazy one; a TYPE_CHECKING import closes neither."""
    fake_package({"backends/__init__.py": "", "backends/local/__init__.py": "",
                  "backends/local/trainjob.py": "def run():\n    from finetune.backends.local.training import train\n",
                  "backends/local/training.py": "from finetune.backends.local.trainjob import paths\n",
                  "backends/local/a.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import b\n",
                  "backends/local/b.py": "from finetune.backends.local import a\n"})
    test_no_module_level_import_cycles()
    loop = "training -> finetune.backends.local.trainjob -> finetune.backends.local.training"
    with pytest.raises(AssertionError, match=loop):
        test_no_new_cycles_through_lazy_imports()
    assert find_cycles(internal_edges(include_lazy=True)) == [
        ["finetune.backends.local.training", "finetune.backends.local.trainjob"]]


def test_relative_imports_are_resolved():
    """`from ..http import X` in finetune/testing/emulator/routes/ is an import of finetune.testing.emulator.http."""
    targets = {imp.target for imp in imports_of("finetune.testing.emulator.routes.jobs")}
    assert "finetune.testing.emulator.http" in targets
    # and `from finetune import catalog` is the catalog package, not finetune/__init__
    assert "finetune.catalog" in {imp.target for imp in imports_of("finetune.graph")}
