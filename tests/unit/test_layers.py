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


def imports(path: Path, root: Path) -> list[tuple[int, str]]:
    """Returns (line, dotted module) of every import in a file, at any level (inside functions
    too); `from modelwatch import drift` counts as modelwatch.drift, a relative import is made
    absolute."""
    found = []
    package = ["modelwatch", *path.relative_to(root).parts[:-1]]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package[: len(package) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            if base == "modelwatch":
                found += [(node.lineno, f"modelwatch.{alias.name}") for alias in node.names]
    return found


def violations(package: Path) -> list[str]:
    capabilities = {p.name for p in package.iterdir() if (p / "__init__.py").exists()}
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        layer = rel.parts[0] if len(rel.parts) > 1 else ""  # "" for the base modules
        for line, module in imports(path, package):
            parts = module.split(".")
            allowed = RESTRICTED.get(parts[0])
            if allowed is not None and layer not in allowed:
                out.append(f"modelwatch/{rel}:{line} imports {module}")
            elif not layer and parts[0] == "modelwatch" and len(parts) > 1:
                if parts[1] in capabilities:  # the base sits under every capability package
                    out.append(f"modelwatch/{rel}:{line} imports {module} (base module)")
    return out


def test_the_rule_check_can_fail(tmp_path):
    """The check itself: a core module importing prefect, mlflow or a task is caught."""
    pkg = tmp_path / "modelwatch"
    (pkg / "drift").mkdir(parents=True)
    (pkg / "stores").mkdir()
    (pkg / "drift" / "bad.py").write_text(
        "import numpy\n\ndef f():\n    from prefect import task\n    import mlflow.sklearn\n"
    )
    (pkg / "io.py").write_text("from tasks.drift import compute_drift\n")
    (pkg / "drift" / "__init__.py").write_text("")
    (pkg / "stores" / "__init__.py").write_text("")
    (pkg / "settings.py").write_text("def f():\n    from modelwatch.drift import stattests\n")
    (pkg / "errors.py").write_text("from .stores import ok\n")
    (pkg / "stores" / "ok.py").write_text("import mlflow\nfrom dvc.repo import Repo\n")
    assert violations(pkg) == [
        "modelwatch/drift/bad.py:4 imports prefect",
        "modelwatch/drift/bad.py:5 imports mlflow.sklearn",
        "modelwatch/errors.py:1 imports modelwatch.stores (base module)",
        "modelwatch/io.py:1 imports tasks.drift",
        "modelwatch/settings.py:2 imports modelwatch.drift (base module)",
    ]


@pytest.mark.parametrize(
    "module",
    [
        "modelwatch.drift.report",
        "modelwatch.decide.policy",
        "modelwatch.performance.metrics",
        "modelwatch.performance.report",
        "modelwatch.training.fit",
        "modelwatch.alerts.incidents",
        "modelwatch.settings",
        "modelwatch.scale.drift",
        "modelwatch.scale.validation",
        "modelwatch.explain",
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


# tasks/ modules that hold helpers for tasks, not tasks: the only ones another task may import
TASK_HELPERS = {"tasks.progress", "tasks.results", "tasks.runtime"}


def task_violations(root: Path) -> list[str]:
    """A task never imports another task module; a flow never calls a store adapter (a module
    of modelwatch.stores) outside a task: it may name one (a type, a function passed on), not
    call into it."""
    out = []
    for path in sorted((root / "tasks").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
                if node.module == "tasks":
                    modules = [f"tasks.{a.name}" for a in node.names]
                for module in modules:
                    if module.startswith("tasks.") and module not in TASK_HELPERS:
                        out.append(f"tasks/{path.name}:{node.lineno} imports {module}")
    for path in sorted((root / "flows").glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        adapters = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "modelwatch.stores":
                adapters |= {a.asname or a.name for a in node.names}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in adapters
            ):
                call = f"{node.func.value.id}.{node.func.attr}"
                out.append(f"flows/{path.name}:{node.lineno} calls the adapter {call}")
    return out


@pytest.mark.parametrize(
    "check",
    [lambda: violations(PACKAGE), lambda: task_violations(ROOT)],
    ids=["package-imports", "tasks-and-flows"],
)
def test_the_tree_keeps_the_layer_rules(check):
    """The package's import rules; no task importing a task; flows reach stores via tasks."""
    found = check()
    assert not found, "rules broken:\n" + "\n".join(found)


def test_the_task_rule_check_can_fail(tmp_path):
    (tmp_path / "tasks").mkdir()
    (tmp_path / "flows").mkdir()
    (tmp_path / "tasks" / "a.py").write_text(
        "from tasks.b import x\nfrom tasks import runtime, c\nfrom tasks.progress import p\n"
    )
    (tmp_path / "flows" / "f.py").write_text(
        "from modelwatch.stores import gate, registry\n\n"
        "def flow():\n    registry.get_alias(1)\n    use(gate.threshold_gate)\n"
    )
    assert task_violations(tmp_path) == [
        "tasks/a.py:1 imports tasks.b",
        "tasks/a.py:2 imports tasks.c",
        "flows/f.py:4 calls the adapter registry.get_alias",
    ]
