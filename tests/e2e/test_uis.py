"""Operating modelwatch as a person would, after a short replay run by `modelwatch demo` in its own
process: `modelwatch serve` fires the monitor deployment on its cron schedule and processes the
waiting batch; then `modelwatch ui` starts both UIs and headless Chromium (DevTools protocol)
looks at them. Screenshots are kept as test output in test-output/ui/ (what each one shows:
modelwatch/ui_check.py)."""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

OUT = ROOT / "test-output" / "ui"
EVERY_MINUTE = "* * * * *"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from modelwatch import ui_check

    folder = tmp_path_factory.mktemp("ui")
    params = ui_check.replay(
        ROOT / "params.yaml",
        folder,
        batches=4,
        source_root=ROOT,
        overrides={"schedule": {"cron": EVERY_MINUTE}},
    )
    return params, folder / "home"


@pytest.fixture(scope="module")
def served(project):
    """`modelwatch serve` with a batch waiting in incoming/batches, until the scheduler's first
    monitor run has completed (at most 4 minutes), then SIGTERM."""
    from modelwatch import ui_check

    params, home = project
    waiting = sorted((home / "demo" / "batches").glob("batch-*.csv"))[4]
    shutil.copy(waiting, home / "incoming" / "batches" / waiting.name)
    port = ui_check.free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "modelwatch"),
            "--params",
            str(params),
            "serve",
            "--prefect-port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ui_check._clean_env(),
    )
    found = {"waiting": waiting, "run": None, "deployments": []}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                runs = ui_check._get(
                    f"{api}/flow_runs/filter",
                    {"flows": {"name": {"any_": ["monitor-incoming"]}}},
                )
            except OSError:  # the server is still starting
                runs = []
            done = [r for r in runs if r["state_type"] == "COMPLETED"]
            if done:
                found["run"] = done[0]
                found["deployments"] = ui_check._get(f"{api}/deployments/filter", {})
                break
            time.sleep(2)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            found["exit"] = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            found["exit"] = "killed"
        log.close()
    found["log"] = (home.parent / "serve.log").read_text()
    return found


def test_serve_fires_the_monitor_deployment_on_its_cron_schedule(project, served):
    params, home = project
    run = served["run"]
    assert run is not None, f"no completed scheduled monitor run:\n{served['log'][-3000:]}"
    monitor = next(d for d in served["deployments"] if d["name"] == "monitor")
    assert run["deployment_id"] == monitor["id"]
    assert run["auto_scheduled"] is True  # created by the scheduler, not by hand
    assert run["expected_start_time"].split(":")[2].startswith("00")  # on the minute
    (schedule,) = monitor["schedules"]
    assert schedule["schedule"]["cron"] == EVERY_MINUTE
    assert schedule["schedule"]["timezone"] == "Europe/Berlin"
    name = served["waiting"].name
    assert not (home / "incoming" / "batches" / name).exists()
    assert (home / "incoming" / "processed" / name).exists()
    assert served["exit"] == 0  # SIGTERM stops the server and the runner cleanly


def test_served_batch_was_monitored_and_recorded_in_mlflow(project, served):
    from mlflow import MlflowClient

    from modelwatch import history
    from modelwatch.settings import load_settings

    params, _ = project
    paths = load_settings(params).paths
    client = MlflowClient(tracking_uri=paths.tracking_uri)
    experiment = client.get_experiment_by_name("bike-demand-monitoring")
    run = history.find_by_batch_id(client, experiment.experiment_id, served["waiting"].stem)
    assert run is not None and run.status == "accepted" and run.index == 5


def test_served_deployments_are_retrain_and_rollback_by_hand_with_a_reason(served):
    by_name = {d["name"]: d for d in served["deployments"]}
    assert sorted(by_name) == ["monitor", "retrain", "rollback"]
    for name in ("retrain", "rollback"):
        assert by_name[name]["schedules"] == []
        assert by_name[name]["parameter_openapi_schema"]["required"] == ["reason"]


@pytest.fixture(scope="module")
def checks(project, served):
    from modelwatch import ui_check

    params, _ = project
    return {c.screenshot.name: c for c in ui_check.check_project(params, OUT)}


@pytest.mark.parametrize(
    "shot",
    [
        "prefect_runs.png",
        "prefect_run_artifacts.png",
        "prefect_summary.png",
        "prefect_deployments.png",
        "mlflow_metrics.png",
        "mlflow_model.png",
        "mlflow_model_version.png",
    ],
)
def test_ui_page_shows_what_a_person_looks_for(checks, shot):
    check = checks[shot]
    assert check.ok, check.line()
    png = check.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1400, 1000)
    assert len(png) > 30_000, f"{check.screenshot} looks blank ({len(png)} bytes)"
