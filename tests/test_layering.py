"""Imports flow down the layers of ARCHITECTURE.md, never back up (checked on the source, not at run time)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "finetune"

# layer -> modules it must never import (prefix match)
FORBIDDEN = {
    "spec": ["azure", "mlflow", "datasets", "torch", "finetune.graph", "finetune.plan", "finetune.apply",
             "finetune.backends", "finetune.render", "finetune.cli", "finetune.data", "finetune.workflow"],
    "catalog": ["azure", "mlflow", "datasets", "finetune.spec", "finetune.graph", "finetune.plan", "finetune.backends",
                "finetune.cli"],
    "graph.py": ["azure", "mlflow", "datasets", "finetune.plan", "finetune.apply", "finetune.backends",
                 "finetune.render", "finetune.cli", "finetune.workflow"],
    "plan": ["azure", "mlflow", "datasets", "finetune.render", "finetune.apply", "finetune.backends", "finetune.cli",
             "finetune.workflow"],
    "render": ["azure", "mlflow", "datasets", "finetune.apply", "finetune.backends", "finetune.cli",
               "finetune.workflow"],
    "apply.py": ["azure", "mlflow", "datasets", "finetune.backends.azureml", "finetune.backends.local",
                 "finetune.cli", "finetune.workflow"],
    "data": ["azure", "mlflow", "finetune.spec", "finetune.graph", "finetune.plan", "finetune.backends",
             "finetune.cli", "finetune.testing"],
    "backends": ["finetune.cli", "finetune.workflow", "finetune.testing"],
}


def imported_modules(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def files_of(layer: str) -> list[Path]:
    target = PACKAGE / layer
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_flow_downward(layer):
    violations = []
    for path in files_of(layer):
        for module in imported_modules(path):
            if any(module == bad or module.startswith(bad + ".") for bad in FORBIDDEN[layer]):
                violations.append(f"{path.relative_to(PACKAGE.parent)} imports {module}")
    assert not violations, "\n".join(violations)
