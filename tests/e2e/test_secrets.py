"""Secrets stay out of every store: a webhook URL with a token, given as ${ENV} in params,
through the real CLI (bootstrap, an accepted batch, a rejected one that alerts)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from modelwatch.settings import load_settings
from tests.conftest import demo_plan, write_params
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-s3cr3t-T0KEN-4f9a"


def _cli(params: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.app.cli", "--params", str(params), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _files_holding(folder: Path, needle: bytes) -> list[str]:
    return [
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and not p.is_symlink() and needle in p.read_bytes()
    ]


def test_a_webhook_token_is_in_no_store_and_no_log(tmp_path, receiver):  # noqa: F811
    hook = f"{receiver.base}/hook/{TOKEN}"
    params = write_params(
        "params.yaml",
        tmp_path,
        alerts={"webhooks": [{"name": "ops", "url": "${MW_OPS_HOOK}", "min_severity": "info"}]},
    )
    assert TOKEN not in params.read_text()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MODELWATCH"))}
    env |= {"MW_OPS_HOOK": hook, "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1"}
    env.pop("PREFECT_HOME", None)
    os.environ["MW_OPS_HOOK"] = hook
    try:
        settings = load_settings(params)
    finally:
        del os.environ["MW_OPS_HOOK"]
    plan = demo_plan(settings, tmp_path / "stream")
    outputs = [_cli(params, "bootstrap", str(plan.reference), env=env)]
    good = plan.batches[0].inputs
    outputs.append(_cli(params, "run", str(good), env=env))
    bad = tmp_path / "stream" / "bad-week.csv"
    frame = pd.read_csv(good)
    frame.loc[0, "temp"] = 7.5
    frame.to_csv(bad, index=False)
    outputs.append(_cli(params, "run", str(bad), env=env))
    assert [p.returncode for p in outputs] == [0, 0, 2], [p.stderr[-2000:] for p in outputs]
    assert receiver.bodies(f"/hook/{TOKEN}")  # the alert went out through the secret URL

    for proc in outputs:
        assert TOKEN not in proc.stdout and TOKEN not in proc.stderr
    home = settings.paths.home
    stores = {p.name for p in home.rglob("*.db")}
    assert {"mlflow.db", "prefect.db", "ledger.db"} <= stores, stores
    assert _files_holding(tmp_path, TOKEN.encode()) == []
    repo = settings.paths.data_repo
    history = subprocess.run(
        ["git", "-C", str(repo), "log", "-p", "--all"], capture_output=True, text=True, check=True
    ).stdout
    assert "alerts" not in yaml.safe_load((repo / "params.yaml").read_text())
    assert TOKEN not in history and receiver.base not in history
