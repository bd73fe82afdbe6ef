"""Server mode end to end: `modelwatch server start` (Prefect and MLflow on PostgreSQL, a process
work pool and a worker), both shipped projects deployed on it, bootstrap and monitor runs created
through the Prefect API as the scheduler creates them, then the registry, the ledgers and both
servers' APIs checked. PostgreSQL: the machine's (127.0.0.1:5432, user postgres) or
MODELWATCH_TEST_PG_URL; the databases are made for this module and dropped after it."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from modelwatch.app import prefect_rest, production
from modelwatch.io import file_md5
from modelwatch.settings import load_settings
from tests.conftest import ROOT, demo_plan, write_params

pytestmark = pytest.mark.slow

PG = os.environ.get("MODELWATCH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432")
PROJECTS = {"bike-demand": "params.yaml", "bank-subscription": "params.bank.yaml"}
BIN = Path(sys.executable).parent
FAST = {
    "drift": {"html_report": False, "bootstrap": {"samples": 0}},
    "performance": {"bootstrap": {"samples": 0}},
    "multivariate": {"methods": []},
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    import sqlalchemy as sa

    url = sa.engine.make_url(PG).set(drivername="postgresql+psycopg", database="postgres")
    engine = sa.create_engine(url, connect_args={"connect_timeout": 5})
    try:
        with engine.connect():
            return None
    except sa.exc.OperationalError as exc:
        return str(exc).splitlines()[0]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`modelwatch server start` in its own process group, until the module ends."""
    why = _pg_reachable()
    if why is not None:
        pytest.skip(f"no PostgreSQL at {PG} (set MODELWATCH_TEST_PG_URL): {why}")
    folder = tmp_path_factory.mktemp("server")
    prefix = f"mwtest_{uuid.uuid4().hex[:8]}"
    prefect_port, mlflow_port = _free_port(), _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    env |= {
        production.PG_URL_ENV: PG,
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    cmd = [
        str(BIN / "modelwatch"),
        "--params",
        str(ROOT / "params.yaml"),
        "server",
        "start",
        "--dir",
        str(folder),
        "--db-prefix",
        prefix,
        "--prefect-port",
        str(prefect_port),
        "--mlflow-port",
        str(mlflow_port),
    ]
    log = open(folder / "start.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while production.READY not in (folder / "start.log").read_text():
            assert proc.poll() is None, (folder / "start.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "servers did not start in 300 s"
            time.sleep(1)
        yield {
            "folder": folder,
            "env": production.read_env_file(folder / production.ENV_FILE),
            "prefix": prefix,
            "mlflow_port": mlflow_port,
            "prefect_port": prefect_port,
        }
    finally:
        production.terminate(proc, 60)
        log.close()
        dropped = production.drop_databases(PG, prefix)
        assert f"{prefix}_ledger_bike_demand" in dropped and f"{prefix}_mlflow" in dropped


@pytest.fixture(scope="module")
def deployed(server, tmp_path_factory):
    """Both projects in temporary folders, deployed in the server's work pool; bootstrapped,
    then two batches each monitored through the pool (one monitor-incoming run per project,
    both at once). The bike batches first meet an MLflow tracking server that does not answer
    (in a run outside the pool). The costly statistics are off: this module tests the
    deployment, the other e2e modules the statistics."""
    env = dict(os.environ) | server["env"]
    projects, deploys = {}, {}
    for model, base in PROJECTS.items():  # both deploys at once: each imports every flow
        folder = tmp_path_factory.mktemp(model)
        params = write_params(base, folder, demo={"max_batches": 4}, **FAST)
        cmd = [str(BIN / "modelwatch"), "--params", str(params), "server", "deploy"]
        deploys[model] = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        projects[model] = {
            "params": params,
            "plan": demo_plan(load_settings(params), folder / "plan"),
        }
    for model, proc in deploys.items():
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
        projects[model]["deploy"] = out
    with pytest.MonkeyPatch.context() as mp:
        for name, value in server["env"].items():
            mp.setenv(name, value)
        projects = {m: p | {"loaded": load_settings(p["params"])} for m, p in projects.items()}
        api = server["env"]["PREFECT_API_URL"]
        runs = {
            m: _run_deployment(api, f"bootstrap/{m}", {"reference_path": str(p["plan"].reference)})
            for m, p in projects.items()
        }
        states = {m: _wait(api, r) for m, r in runs.items()}
        assert states == {m: "COMPLETED" for m in PROJECTS}, states
        for p in projects.values():
            for batch in p["plan"].batches[:2]:
                shutil.copy(batch.inputs, p["loaded"].paths.incoming_batches)
        projects["bike-demand"]["down"] = _monitor_while_mlflow_down(
            mp, projects["bike-demand"]["loaded"].paths.params_file
        )
        runs = {m: _run_deployment(api, f"monitor-incoming/{m}") for m in PROJECTS}
        monitored = {m: _wait(api, r) for m, r in runs.items()}
        yield {"projects": projects, "monitored": monitored, "api": api, "env": server["env"]}


def _monitor_while_mlflow_down(mp: pytest.MonkeyPatch, params: Path) -> dict:
    """Runs monitor-incoming in this process with the tracking URI on a port where no server
    listens (what clients see of a stopped MLflow server: connection refused); returns the
    state, the waiting files and the ledger's view right after."""
    from flows.incoming import monitor_incoming
    from modelwatch.stores.ledger import open_ledger

    with mp.context() as down:
        down.setenv("MODELWATCH_TRACKING_URI", f"http://127.0.0.1:{_free_port()}")
        down.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        down.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        loaded = load_settings(params)
        files = sorted(loaded.paths.incoming_batches.glob("*.csv"))
        state = monitor_incoming(params_path=params, return_state=True)
        led = open_ledger(loaded.paths.ledger_url)
        return {
            "state": state,
            "waiting": sorted(loaded.paths.incoming_batches.glob("*.csv")),
            "files": files,
            "batches": led.count_batches("bike-demand"),
            "record": led.get_batch("bike-demand", file_md5(files[0])),
        }


def _run_deployment(api: str, name: str, parameters: dict | None = None) -> str:
    """Creates a flow run of a deployment through the REST API; returns its id."""
    deployment = prefect_rest.call(api, f"/deployments/name/{name}")
    run = prefect_rest.call(
        api, f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters or {}}
    )
    return run["id"]


def _wait(api: str, run_id: str, timeout: float = 400) -> str:
    """Waits for a flow run to end; returns its state type."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = prefect_rest.call(api, f"/flow_runs/{run_id}")["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state["type"] if state["type"] == "COMPLETED" else f"{state['type']}: {state}"
        time.sleep(2)
    return "TIMEOUT"


def _mlflow(env: dict, path: str, auth: bool = True) -> tuple[int, bytes]:
    headers = {}
    if auth:
        login = f"{env['MLFLOW_TRACKING_USERNAME']}:{env['MLFLOW_TRACKING_PASSWORD']}"
        headers["Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    request = urllib.request.Request(env["MODELWATCH_TRACKING_URI"] + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


def test_every_run_through_the_pool_completes(deployed):
    assert deployed["monitored"] == {m: "COMPLETED" for m in PROJECTS}


def test_each_project_has_its_own_registered_model_experiments_and_ledger(deployed):
    from mlflow import MlflowClient

    from modelwatch.stores import history, registry
    from modelwatch.stores.ledger import open_ledger

    env = deployed["env"]
    uri = env["MODELWATCH_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    ledgers = set()
    for model, p in deployed["projects"].items():
        paths = load_settings(p["params"]).paths
        ledgers.add(paths.ledger_url)
        assert paths.mode == "server" and paths.ledger_url.startswith("postgresql+psycopg://")
        assert registry.aliases(client, model)["champion"] == "1"
        experiment = p["loaded"].settings.tracking.experiment
        exp = client.get_experiment_by_name(f"{experiment}-monitoring")
        assert exp.artifact_location.startswith("mlflow-artifacts:/")  # proxied by the server
        runs = history.batch_runs(client, exp.experiment_id)
        assert [r.batch_id for r in runs] == [b.batch_id for b in p["plan"].batches[:2]]
        assert [r.status for r in runs] == [history.ACCEPTED] * 2
        led = open_ledger(paths.ledger_url)
        assert led.count_batches(model) == 2 and led.unfinished(model) == []
        assert led.count_batches("bike-demand" if model != "bike-demand" else "x") == 0
    assert len(ledgers) == 2  # one database per project


def test_a_batch_fails_cleanly_while_mlflow_is_down_and_runs_once_it_is_back(deployed):
    down = deployed["projects"]["bike-demand"]["down"]
    state = down["state"]
    assert state.is_failed()
    assert "stay in" in state.message, state.message
    assert "did not answer after 1 retries" in state.message, state.message
    assert "Connection refused" in state.message, state.message
    assert down["waiting"] == down["files"]  # input kept where the next run finds it
    assert len(down["files"]) == 2
    assert down["batches"] == 0 and down["record"] is None  # never claimed: ledger unchanged
    for file in down["files"]:  # the next run through the pool (server up) took them
        assert (file.parent.parent / "processed" / file.name).exists()


def test_deployments_have_per_project_names_and_concurrency_limits(deployed):
    found = prefect_rest.call(deployed["api"], "/deployments/filter", {})
    got = {(d["name"], d["global_concurrency_limit"]["limit"], d["work_pool_name"]) for d in found}
    flows = ("monitor-incoming", "bootstrap", "retrain", "rollback")
    assert len(found) == len(flows) * len(PROJECTS)
    assert got == {(m, 1, "modelwatch") for m in PROJECTS}
    for p in deployed["projects"].values():
        assert all(f"deployment {f}/" in p["deploy"] for f in flows)


def test_both_uis_and_apis_answer_with_credentials_only(deployed):
    env = deployed["env"]
    api = env["PREFECT_API_URL"]
    assert prefect_rest.call(api, "/health") is True
    with pytest.raises(urllib.error.HTTPError) as refused:
        prefect_rest.call(api, "/deployments/filter", {}, auth_string="modelwatch:wrong")
    assert refused.value.code == 401
    with urllib.request.urlopen(api.removesuffix("/api") + "/", timeout=30) as resp:
        assert resp.status == 200 and b"<html" in resp.read().lower()
    status, body = _mlflow(env, "/api/2.0/mlflow/registered-models/search")
    assert status == 200
    names = {m["name"] for m in json.loads(body)["registered_models"]}
    assert names == set(PROJECTS)
    assert _mlflow(env, "/api/2.0/mlflow/registered-models/search", auth=False)[0] == 401
    status, body = _mlflow(env, "/")
    assert status == 200 and b"<html" in body.lower()


def test_server_status_lists_both_projects_and_their_stores(deployed):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= deployed["env"]
    out = subprocess.run(
        [str(BIN / "modelwatch"), "--params", str(ROOT / "params.yaml"), "server", "status"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "projects deployed: 2" in out.stdout
    for model, p in deployed["projects"].items():
        assert f"model {model} " in out.stdout
        ledger = load_settings(p["params"]).paths.ledger_url
        assert f"  ledger:   {ledger}" in out.stdout
        assert "next scheduled run: 20" in out.stdout
    assert out.stdout.count("mode: server") == 2
    assert out.stdout.count(f"  tracking: {env['MODELWATCH_TRACKING_URI']}") == 2


# The servers go away in the middle of a batch. These run last in this module (file order): they
# add batches 3 and 4 of bike-demand, after the checks above counted batches 1 and 2.


def _kill_tree(pid: int) -> None:
    """SIGKILLs a process and every process it started (a server and its web workers)."""
    import psutil

    root = psutil.Process(pid)
    for proc in [*root.children(recursive=True), root]:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


def _batch_runs(env: dict, params: Path) -> list:
    """(batch id, status) of each monitoring run of the project, oldest first."""
    from mlflow import MlflowClient

    from modelwatch.stores import history

    uri = env["MODELWATCH_TRACKING_URI"]
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    experiment = load_settings(params).settings.tracking.experiment
    exp = client.get_experiment_by_name(f"{experiment}-monitoring")
    return [(r.batch_id, r.status) for r in history.batch_runs(client, exp.experiment_id)]


def test_mlflow_killed_after_the_claim_releases_the_batch_and_the_pool_runs_it_once(
    server, deployed, monkeypatch
):
    """A second MLflow server on the same database and artifacts serves this run until the batch
    is claimed in the ledger, then it is SIGKILLed: the run fails cleanly (the batch stays in
    incoming/, its claim released), and the next run through the pool monitors it once."""
    from flows.incoming import monitor_incoming
    from modelwatch.app import credentials, servers
    from modelwatch.stores.ledger import Ledger, open_ledger

    for name, value in server["env"].items():
        monkeypatch.setenv(name, value)
    p = deployed["projects"]["bike-demand"]
    batch = p["plan"].batches[2]
    incoming = p["loaded"].paths.incoming_batches
    shutil.copy(batch.inputs, incoming)
    cfg = production.ServerConfig(folder=server["folder"], pg_url=PG, prefix=server["prefix"])
    creds, _ = credentials.load_or_create(server["folder"])
    home = server["folder"] / "second-mlflow"
    home.mkdir()
    port = _free_port()
    log = open(home / "mlflow.log", "wb")  # noqa: SIM115
    proc, health = servers.mlflow_server(
        home,
        cfg.database("mlflow", "psycopg"),
        server["folder"] / "artifacts",
        dict(os.environ) | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        "127.0.0.1",
        port,
        creds,
        stdout=log,
    )
    try:
        assert servers.wait_healthy(health, proc, timeout=240), (home / "mlflow.log").read_text()
        claim = Ledger.claim_batch

        def claim_then_kill(self, *args, **kwargs):  # the real claim, then the server dies
            out = claim(self, *args, **kwargs)
            _kill_tree(proc.pid)
            return out

        monkeypatch.setattr(Ledger, "claim_batch", claim_then_kill)
        monkeypatch.setenv("MODELWATCH_TRACKING_URI", f"http://127.0.0.1:{port}")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
        state = monitor_incoming(params_path=p["params"], return_state=True)
    finally:
        _kill_tree(proc.pid) if proc.poll() is None else None
        log.close()
    monkeypatch.undo()
    for name, value in server["env"].items():
        monkeypatch.setenv(name, value)
    assert state.is_failed(), state
    assert "stay in" in state.message and "did not answer" in state.message, state.message
    assert (incoming / batch.inputs.name).exists()  # input kept where the next run finds it
    led = open_ledger(p["loaded"].paths.ledger_url)
    record = led.get_batch("bike-demand", file_md5(incoming / batch.inputs.name))
    assert record is not None and not record.done and record.owner is None, record
    assert led.unfinished("bike-demand") == [record]
    run = _run_deployment(deployed["api"], "monitor-incoming/bike-demand")
    assert _wait(deployed["api"], run) == "COMPLETED"
    assert not (incoming / batch.inputs.name).exists()
    assert led.count_batches("bike-demand") == 3 and led.unfinished("bike-demand") == []
    runs = _batch_runs(server["env"], p["params"])
    ids = [b.batch_id for b in p["plan"].batches[:3]]
    assert [r for r in runs if r[1] == "accepted"] == [(i, "accepted") for i in ids], runs


def test_prefect_killed_during_a_run_leaves_the_ledger_consistent_and_the_batch_runs_once(
    server, deployed
):
    """`modelwatch run` talks to a second Prefect API on the same database, SIGKILLed right after
    the batch is claimed in the ledger: the command fails with the server named and no traceback;
    the claim is taken over by the next run through the pool (its owner is gone), which monitors
    the batch once."""
    from modelwatch.app import credentials
    from modelwatch.stores.ledger import open_ledger
    from tests.conftest import run_modelwatch

    p = deployed["projects"]["bike-demand"]
    batch = p["plan"].batches[3]
    cfg = production.ServerConfig(
        folder=server["folder"], pg_url=PG, prefix=server["prefix"], prefect_port=_free_port()
    )
    creds, _ = credentials.load_or_create(server["folder"])
    env = production._prefect_env(cfg, creds) | {"PREFECT_HOME": str(server["folder"] / "p2")}
    log = open(server["folder"] / "second-prefect.log", "wb")  # noqa: SIM115
    prefect = [str(BIN / "prefect"), "server", "start", "--no-services", "--no-ui"]
    proc = subprocess.Popen(
        [*prefect, "--host", "127.0.0.1", "--port", str(cfg.prefect_port)],
        env=env,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    api = f"http://127.0.0.1:{cfg.prefect_port}/api"
    try:
        from modelwatch.app import servers

        assert servers.wait_healthy(f"{api}/health", proc, timeout=240)
        cli = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PREFECT_"))}
        cli |= server["env"] | {
            "PREFECT_API_URL": api,
            "NO_PROXY": "127.0.0.1",
            "MODELWATCH_TEST_KILL_PID": f"-{proc.pid}",  # its process group
            "PREFECT_CLIENT_MAX_RETRIES": "1",  # the same path as 5 retries, minutes sooner
        }
        code, out = run_modelwatch(
            p["params"],
            ["run", batch.inputs],
            cli,
            kill="modelwatch.stores.ledger:Ledger.claim_batch:after",
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
        log.close()
    assert "fault injection: SIGKILL of pid" in out, out[-3000:]
    assert code == 1, out[-3000:]
    last = out.rstrip().splitlines()[-1]  # Prefect logs its own failures above; then one line
    assert last.startswith(f"modelwatch: error: Prefect server {api} stopped answering"), last
    led = open_ledger(p["loaded"].paths.ledger_url)
    record = led.get_batch("bike-demand", file_md5(batch.inputs))
    assert record is not None and not record.done and record.owner is None, record
    incoming = p["loaded"].paths.incoming_batches
    shutil.copy(batch.inputs, incoming)  # the same batch again, now through the pool
    run = _run_deployment(deployed["api"], "monitor-incoming/bike-demand")
    assert _wait(deployed["api"], run) == "COMPLETED"
    assert led.count_batches("bike-demand") == 4 and led.unfinished("bike-demand") == []
    runs = _batch_runs(server["env"], p["params"])
    ids = [b.batch_id for b in p["plan"].batches[:4]]
    assert [r for r in runs if r[1] == "accepted"] == [(i, "accepted") for i in ids], runs
