"""Shared fixtures: a throw-away project (params file + MODELWATCH_HOME) per test or module."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


def write_params(base: str, folder: Path, home: Path | None = None, **overrides: dict) -> Path:
    """Copies a shipped params file into folder with absolute data paths and section overrides;
    the stores go to `home` (default: folder/home)."""
    raw = yaml.safe_load((ROOT / base).read_text())
    if raw.get("demo"):
        raw["demo"]["source"] = str(ROOT / raw["demo"]["source"])
    for section, values in overrides.items():
        raw[section] = {**(raw.get(section) or {}), **values}
    raw["project"]["home"] = str(home or folder / "home")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / Path(base).name
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def demo_plan(loaded, folder: Path):
    """The demo stream of a loaded params file (its demo section), cut into folder."""
    from modelwatch.streams import demo

    s = loaded.settings
    return demo.prepare_demo(loaded.paths.resolve(s.demo.source), s.data, s.demo, folder)


@pytest.fixture(autouse=True)
def _no_outside_home(monkeypatch):
    """Tests put every store in tmp folders named by their params files, never the user's home."""
    monkeypatch.delenv("MODELWATCH_HOME", raising=False)


ROOT = Path(__file__).resolve().parents[1]


def cli_env() -> dict[str, str]:
    """The environment of a `modelwatch` subprocess: this one without pytest's variables, on
    this session's Prefect test server."""
    from prefect.settings import PREFECT_API_URL

    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return env | {
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }


def run_modelwatch(
    params: Path, args: list, env: dict[str, str], kill: str | None = None
) -> tuple[int, str]:
    """Runs `modelwatch --params params *args` in its own session; kill: a fault point
    (tests/faults/killpoints.py) that SIGKILLs its whole process group. Returns (exit code,
    stdout + stderr)."""
    env = dict(env)
    if kill:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)])
        env["MODELWATCH_TEST_KILL"] = kill
    cmd = [Path(sys.executable).parent / "modelwatch", "--params", params, *args]
    proc = subprocess.run(
        [str(a) for a in cmd],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,
    )
    return proc.returncode, proc.stdout + proc.stderr
