"""Operating modelwatch as a person would, after a short replay run by `modelwatch demo` in its own
process: `modelwatch serve` fires the monitor deployment on its cron schedule and processes the
waiting batch; then `modelwatch ui` starts both UIs and headless Chromium (DevTools protocol)
looks at them. Screenshots are kept as test output in test-output/ui/ (what each one shows:
tests/ui/ui_check.py)."""

from __future__ import annotations

import shutil
import signal
import socket
import struct
import subprocess
import time

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

OUT = ROOT / "test-output" / "ui"
EVERY_MINUTE = "* * * * *"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    from tests.ui import ui_check

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
    """`modelwatch serve` with a batch waiting in incoming/batches (and the previous batch's
    labels in incoming/labels), until the scheduler's first
    monitor run has completed (at most 4 minutes), then SIGTERM."""
    from tests.ui import ui_check

    params, home = project
    waiting = sorted((home / "demo" / "batches").glob("batch-*.csv"))[4]
    shutil.copy(waiting, home / "incoming" / "batches" / waiting.name)
    labels = home / "demo" / "labels" / "batch-004-2011-02-19.csv"  # week 4's labels came late
    shutil.copy(labels, home / "incoming" / "labels" / labels.name)
    port = ui_check.free_port()
    api = f"http://127.0.0.1:{port}/api"
    log = (home.parent / "serve.log").open("w")
    proc = subprocess.Popen(
        ui_check.cli(params, "serve", "--prefect-port", port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ui_check._clean_env(),
    )
    found = {"waiting": waiting, "run": None, "deployments": []}
    creds = ui_check.project_credentials(params)  # written by the replay's first command
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                monitor = {"flows": {"name": {"any_": ["monitor-incoming"]}}}
                runs = ui_check.prefect_get(api, "/flow_runs/filter", monitor, creds)
            except OSError:  # the server is still starting
                runs = []
            done = [r for r in runs if r["state_type"] == "COMPLETED"]
            if done:
                found["run"] = done[0]
                found["deployments"] = ui_check.prefect_get(api, "/deployments/filter", {}, creds)
                break
            time.sleep(2)
        if found["run"] is not None:
            found |= _custom_retrain_runs(api, found["deployments"], creds)
            found["status"] = subprocess.run(
                ui_check.cli(params, "status"),
                capture_output=True,
                text=True,
                env=ui_check._clean_env() | {"PREFECT_API_URL": api},
                timeout=120,
            )
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


FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def _custom_retrain_runs(api: str, deployments: list[dict], creds) -> dict:
    """What the Prefect UI's "Custom run" of retrain does: POST create_flow_run with parameters;
    first from a page of another site (no auth string, its Origin: refused), then logged in
    once without the required reason (refused), once with one (run by the served process)."""
    import json
    import urllib.error
    import urllib.request

    from tests.ui import ui_check

    retrain = next(d for d in deployments if d["name"] == "retrain")
    path = f"/deployments/{retrain['id']}/create_flow_run"
    page = urllib.request.Request(
        api + path,
        data=json.dumps({"parameters": {"reason": "evil page", "force": True}}).encode(),
        headers={"Content-Type": "text/plain", "Origin": "http://evil.example"},
    )
    try:
        urllib.request.urlopen(page, timeout=30)
        cross_site = (200, "created", None)
    except urllib.error.HTTPError as exc:
        allowed = exc.headers.get("access-control-allow-origin")
        cross_site = (exc.code, exc.read().decode(), allowed)
    try:
        ui_check.prefect_get(api, path, {"parameters": {"force": True}}, creds)
        refused = None
    except urllib.error.HTTPError as exc:
        refused = (exc.code, exc.read().decode())
    created = ui_check.prefect_get(
        api, path, {"parameters": {"reason": "ui test: custom run", "force": True}}, creds
    )
    deadline = time.monotonic() + 180  # its own time: the runner polls, then it trains
    run = ui_check.prefect_get(api, f"/flow_runs/{created['id']}", None, creds)
    while time.monotonic() < deadline and run["state_type"] not in FINAL:
        time.sleep(2)
        run = ui_check.prefect_get(api, f"/flow_runs/{created['id']}", None, creds)
    retrain_runs = ui_check.prefect_get(
        api, "/flow_runs/filter", {"deployments": {"id": {"any_": [retrain["id"]]}}}, creds
    )
    return {"cross_site": cross_site, "refused": refused, "custom": run, "retrains": retrain_runs}


def test_serve_fires_the_monitor_deployment_on_its_cron_schedule(project, served):
    params, home = project
    run = served["run"]
    assert run is not None, f"no completed scheduled monitor run:\n{served['log'][-3000:]}"
    monitor = next(d for d in served["deployments"] if d["name"] == "monitor")
    assert run["deployment_id"] == monitor["id"]
    assert run["auto_scheduled"] is True  # created by the scheduler, not by hand
    assert run["expected_start_time"].split(":")[2].startswith("00")  # on the minute
    minute = run["expected_start_time"][:16]  # 2026-11-23T18:41, UTC
    assert run["name"] == f"monitor-incoming-{minute}Z"  # named after the tick it serves
    (schedule,) = monitor["schedules"]
    assert schedule["schedule"]["cron"] == EVERY_MINUTE
    assert schedule["schedule"]["timezone"] == "Europe/Berlin"
    name = served["waiting"].name
    assert not (home / "incoming" / "batches" / name).exists()
    assert (home / "incoming" / "processed" / name).exists()
    assert served["exit"] == 0  # SIGTERM stops the server and the runner cleanly


def test_served_batch_was_monitored_and_recorded_in_mlflow(project, served):
    from mlflow import MlflowClient

    from modelwatch.settings import load_settings
    from modelwatch.stores import history

    params, _ = project
    paths = load_settings(params).paths
    client = MlflowClient(tracking_uri=paths.tracking_uri)
    experiment = client.get_experiment_by_name("bike-demand-monitoring")
    run = history.find_by_batch_id(client, experiment.experiment_id, served["waiting"].stem)
    assert run is not None and run.status == "accepted" and run.index == 5


def test_served_deployments_are_retrain_and_rollback_by_hand_with_a_reason(served):
    by_name = {d["name"]: d for d in served["deployments"]}
    assert sorted(by_name) == ["collect", "monitor", "retrain", "rollback"]
    assert by_name["collect"]["schedules"]  # the prediction log, hourly (serving.window)
    for name in ("retrain", "rollback"):
        assert by_name[name]["schedules"] == []
        assert by_name[name]["parameter_openapi_schema"]["required"] == ["reason"]


def test_a_page_of_another_site_cannot_start_a_retrain(served):
    """The issue's attack: a cross-origin POST that created a retrain run (201) is refused, no
    CORS header lets the page read the answer, and the only retrain run is the logged-in one."""
    code, body, allowed = served["cross_site"]
    assert code in (401, 403), body
    assert allowed in (None, ""), allowed
    assert [r["parameters"]["reason"] for r in served["retrains"]] == ["ui test: custom run"]


def test_custom_retrain_run_needs_a_reason_and_runs_in_the_served_process(served):
    code, body = served["refused"]
    assert code in (409, 422), body
    assert "reason" in body
    run = served["custom"]
    assert run["state_type"] == "COMPLETED", run["state"]
    assert run["parameters"]["reason"] == "ui test: custom run"
    assert {"bike-demand", "retrain", "manual"} <= set(run["tags"])


def test_status_tells_the_champion_last_batch_decision_and_next_scheduled_run(served):
    from datetime import UTC, datetime, timedelta

    proc = served["status"]
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(": ", 1) for line in proc.stdout.strip().splitlines()[1:])
    assert proc.stdout.startswith("model bike-demand (regression), home ")
    assert lines["champion"].startswith("v") and " since 20" in lines["champion"]
    waiting = served["waiting"].stem
    assert lines["last batch"].startswith(f"{waiting} (step 5, accepted), drift share 0.")
    assert " on batch-004-2011-02-19 (scored by v" in lines["last realized mae"]
    assert lines["last decision"]
    assert lines["ledger"] == "sqlite, 5 batch(es)"  # and nothing unfinished or open
    assert not [k for k in lines if k.startswith(("unfinished", "open retrain", "open promotion"))]
    when, _, rest = lines["next scheduled run"].partition(" ")
    assert rest.endswith(", monitor-incoming/monitor)")
    next_run = datetime.fromisoformat(when)
    assert (
        datetime.now(UTC) - timedelta(minutes=1)
        < next_run
        < datetime.now(UTC) + timedelta(minutes=3)
    )
    assert next_run.second == 0  # every minute, on the minute


@pytest.fixture(scope="module")
def session(project, served, tmp_path_factory):
    """`modelwatch ui` (what `make ui` runs) with an empty HOME, the UI checks, then Ctrl-C."""
    from tests.ui import ui_check

    params, _ = project
    home = tmp_path_factory.mktemp("user-home")
    return ui_check.check_project(params, OUT, env={"HOME": str(home)}), home


@pytest.fixture(scope="module")
def checks(session):
    return {c.screenshot.name: c for c in session[0].checks}


@pytest.mark.parametrize(
    "shot",
    [
        "prefect_login.png",
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


def test_make_ui_prints_both_addresses_keeps_state_in_the_project_and_stops_on_ctrl_c(
    project, session
):
    """It printed both addresses and, on this first start of `modelwatch ui` in the project, the
    credentials; wrote nothing outside the project home (HOME stays empty), and Ctrl-C (SIGINT)
    stopped both servers: exit 0, nobody listens on either port."""
    from tests.ui import ui_check

    ui, home = session
    assert ui.exit_code == 0, ui.output[-2000:]
    assert f"Prefect UI: http://127.0.0.1:{ui.prefect_port}" in ui.output
    assert f"MLflow UI:  http://127.0.0.1:{ui.mlflow_port}" in ui.output
    creds = ui_check.project_credentials(project[0])
    assert f"Prefect UI password: {creds.prefect_auth_string}" in ui.output
    assert f"password: {creds.mlflow_password}" in ui.output
    for port in (ui.prefect_port, ui.mlflow_port):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    assert sorted(p.name for p in home.rglob("*")) == []
