"""Orchestration overhead per batch: embedded mode beside server mode, same batches, one run.

Usage: .venv/bin/python benchmarks/bench_server.py [--batches 3]

Starts `modelwatch server start` (Prefect and MLflow on the PostgreSQL of MODELWATCH_PG_URL,
default postgresql://postgres@127.0.0.1:5432, in databases made for the run and dropped after
it), then monitors the same bike batches three ways, each in its own project folder:

- embedded, `modelwatch run BATCH`: SQLite stores and the temporary Prefect server each command
  starts;
- server, `modelwatch run BATCH`: the same command with the servers' env file (no temporary
  server; MLflow server, ledger and Prefect server on PostgreSQL);
- server, work pool: the batch dropped in incoming/batches and a run of the project's
  monitor-incoming deployment created through the API, as the scheduler does; a worker runs it.

For each batch it prints the wall time (command start to exit, or run created to run ended) and
the monitor-batch flow's own time (first to last line of its log, or the run's start and end
times in the API); the overhead is the difference: process start and imports, the temporary
server, the worker's polling and the flow-run process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from modelwatch.app import prefect_rest, production  # noqa: E402
from modelwatch.settings import load_settings  # noqa: E402
from tests.conftest import demo_plan, write_params  # noqa: E402

# a flow or task run's log line: "19:12:03.466 | INFO    | Flow run 'monitor-...' - ..."
LOG_TIME = re.compile(r"^(\d\d:\d\d:\d\d\.\d{3}) \| \w+ +\| (?:Flow|Task) run '", re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_servers(folder: Path, prefix: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))}
    cmd = [str(BIN / "modelwatch"), "--params", str(ROOT / "params.yaml"), "server", "start",
           "--dir", str(folder), "--db-prefix", prefix, "--prefect-port", str(free_port()),
           "--mlflow-port", str(free_port())]  # fmt: skip
    log = open(folder / "start.log", "wb")  # noqa: SIM115
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=log, start_new_session=True)


def wait_ready(proc: subprocess.Popen, folder: Path) -> dict[str, str]:
    """Waits for `server start`'s ready line; returns the client environment it wrote."""
    while production.READY not in (folder / "start.log").read_text():
        if proc.poll() is not None:
            raise SystemExit((folder / "start.log").read_text()[-3000:])
        time.sleep(1)
    return production.read_env_file(folder / production.ENV_FILE)


def modelwatch(params: Path, env: dict[str, str], *args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run([str(BIN / "modelwatch"), "--params", str(params), *args], env=env,
                         capture_output=True, text=True)  # fmt: skip
    wall = time.perf_counter() - t0
    if out.returncode != 0:
        raise SystemExit(f"modelwatch {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return wall, out.stdout + out.stderr


def flow_seconds(log: str) -> float:
    """First to last log line of a flow or task run in a command's output (same day): the
    flow's own time, without the temporary server's start and stop."""
    stamps = [datetime.strptime(t, "%H:%M:%S.%f") for t in LOG_TIME.findall(log)]
    return (stamps[-1] - stamps[0]).total_seconds()


def pool_batch(api: str, auth: str, deployment_id: str) -> tuple[float, float]:
    t0 = time.perf_counter()
    run = prefect_rest.call(api, f"/deployments/{deployment_id}/create_flow_run", {}, auth)
    while True:
        found = prefect_rest.call(api, f"/flow_runs/{run['id']}", auth_string=auth)
        if found["state"]["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(0.5)
    wall = time.perf_counter() - t0
    if found["state"]["type"] != "COMPLETED":
        raise SystemExit(f"pool run ended {found['state']}")
    start, end = (datetime.fromisoformat(found[k]) for k in ("start_time", "end_time"))
    return wall, (end - start).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=3)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-server-"))
    prefix = f"mwbench_{uuid.uuid4().hex[:6]}"
    (tmp / "server").mkdir()
    proc = start_servers(tmp / "server", prefix)
    rows: list[tuple[str, int, float, float]] = []
    try:
        server_env = wait_ready(proc, tmp / "server")
        base_env = {
            k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_"))
        }
        base_env.pop("MODELWATCH_HOME", None)
        envs = {"embedded": base_env, "server": base_env | server_env}
        plan = None
        modes = {"embedded, modelwatch run": "bike-embedded", "server, modelwatch run": "bike-cli",
                 "server, work pool": "bike-pool"}  # fmt: skip
        for mode, model in modes.items():  # one model each: server mode shares the registry
            env = envs["embedded" if mode.startswith("embedded") else "server"]
            params = write_params(
                "params.yaml",
                tmp / model,
                demo={"max_batches": args.batches},
                project={"model_name": model},
                tracking={"experiment": model},
            )
            plan = plan or demo_plan(load_settings(params), tmp / "plan")
            if mode.startswith("server"):  # the project's ledger database and deployments
                modelwatch(params, env, "server", "deploy")
            modelwatch(params, env, "bootstrap", str(plan.reference))
            paths = load_settings(params).paths
            api, auth = server_env["PREFECT_API_URL"], server_env["PREFECT_API_AUTH_STRING"]
            if mode == "server, work pool":
                dep = prefect_rest.call(
                    api, f"/deployments/name/monitor-incoming/{model}", auth_string=auth
                )
            for batch in plan.batches[: args.batches]:
                if mode == "server, work pool":
                    shutil.copy(batch.inputs, paths.incoming_batches)
                    wall, inside = pool_batch(api, auth, dep["id"])
                else:
                    wall, log = modelwatch(params, env, "run", str(batch.inputs))
                    inside = flow_seconds(log)
                rows.append((mode, batch.index, wall, inside))
                print(f"{mode:<28} batch {batch.index}: wall {wall:6.2f} s, flow {inside:6.2f} s",
                      flush=True)  # fmt: skip
    finally:
        production.terminate(proc, 120)
        production.drop_databases(production.pg_url_from_env(), prefix)
        shutil.rmtree(tmp, ignore_errors=True)
    print("\n| mode | batches | wall s/batch (median) | flow s/batch | overhead s/batch |")
    print("|---|---|---|---|---|")
    for mode in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == mode]
        wall = statistics.median(r[2] for r in mine)
        inside = statistics.median(r[3] for r in mine)
        over = statistics.median(r[2] - r[3] for r in mine)
        print(f"| {mode} | {len(mine)} | {wall:.2f} | {inside:.2f} | {over:.2f} |")


if __name__ == "__main__":
    main()
