"""The import rules of the layout (README, Architecture): flows -> tasks -> modelwatch, the pure
core free of the orchestrator and the stores. Every module under modelwatch/ is parsed with `ast`,
imports inside functions included; a broken rule names the file, the line and the module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "modelwatch"

# top-level module -> the packages of modelwatch/ allowed to import it
RESTRICTED = {
    "prefect": ("app",),
    "flows": ("app",),
    "tasks": ("app",),
    "tests": (),
    "mlflow": ("stores", "app"),
    "great_expectations": ("stores",),
    "dvc": ("stores",),
}


def imports(path: Path) -> list[tuple[int, str]]:
    """Returns (line, top-level module) of every absolute import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def violations(package: Path) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        layer = rel.parts[0] if len(rel.parts) > 1 else ""  # "" for the base modules
        for line, module in imports(path):
            allowed = RESTRICTED.get(module)
            if allowed is not None and layer not in allowed:
                out.append(f"modelwatch/{rel}:{line} imports {module}")
    return out


def test_no_module_breaks_the_import_rules():
    assert violations(PACKAGE) == []


def test_the_rule_check_can_fail(tmp_path):
    """The check itself: a core module importing prefect, mlflow or a task is caught."""
    pkg = tmp_path / "modelwatch"
    (pkg / "drift").mkdir(parents=True)
    (pkg / "stores").mkdir()
    (pkg / "drift" / "bad.py").write_text(
        "import numpy\n\ndef f():\n    from prefect import task\n    import mlflow.sklearn\n"
    )
    (pkg / "io.py").write_text("from tasks.drift import compute_drift\n")
    (pkg / "stores" / "ok.py").write_text("import mlflow\nfrom dvc.repo import Repo\n")
    assert violations(pkg) == [
        "modelwatch/drift/bad.py:4 imports prefect",
        "modelwatch/drift/bad.py:5 imports mlflow",
        "modelwatch/io.py:1 imports tasks",
    ]


@pytest.mark.parametrize(
    "module",
    [
        "modelwatch.drift.report",
        "modelwatch.decide.policy",
        "modelwatch.performance.metrics",
        "modelwatch.training",
        "modelwatch.alerts",
        "modelwatch.settings",
    ],
)
def test_importing_the_core_loads_neither_prefect_nor_mlflow(module):
    code = (
        f"import sys, {module}; print(sorted(m for m in ('prefect', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert out.strip() == "[]", f"{module} pulls in {out.strip()}"
