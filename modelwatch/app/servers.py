"""Start the Prefect UI and the MLflow UI on the project's own stores; stop both on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from modelwatch.settings import load_settings

log = logging.getLogger(__name__)


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 180) -> bool:
    """Returns True once url answers 200, False if proc exits or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(1)
    return False


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _server_env(prefect_home: Path, prefect_port: int) -> dict[str, str]:
    env = dict(
        os.environ,
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_API_PORT=str(prefect_port),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def _prefect_server(env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    """Starts `prefect server start` on 127.0.0.1:port; returns the process and its health URL."""
    prefect = str(Path(sys.executable).parent / "prefect")
    cmd = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env), f"http://127.0.0.1:{port}/api/health"


def run_deployments(params: Path, home: Path, prefect_port: int) -> int:
    """`modelwatch serve`: starts the project's Prefect server (unless PREFECT_API_URL points at
    one), then serves the monitor, retrain and rollback deployments until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    paths = load_settings(params).paths
    proc = None
    try:
        if not os.environ.get("PREFECT_API_URL"):
            proc, health = _prefect_server(
                _server_env(paths.prefect_home, prefect_port), prefect_port
            )
            if not wait_healthy(health, proc, timeout=180):
                sys.stderr.write(f"modelwatch: error: Prefect server did not start ({health})\n")
                return 1
            os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
            sys.stdout.write(f"Prefect UI: http://127.0.0.1:{prefect_port} (stores under {home})\n")
            sys.stdout.flush()
        from flows.serve import serve_deployments

        serve_deployments(params)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def serve(params: Path, home: Path, prefect_port: int, mlflow_port: int) -> int:
    """Runs both servers until interrupted (Ctrl-C or SIGTERM); returns the exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    paths = load_settings(params).paths
    bindir = Path(sys.executable).parent
    env = _server_env(paths.prefect_home, prefect_port)
    procs = {
        "Prefect": _prefect_server(env, prefect_port),
        "MLflow": (
            subprocess.Popen(
                [
                    str(bindir / "mlflow"),
                    "server",
                    "--backend-store-uri",
                    paths.tracking_uri,
                    "--artifacts-destination",
                    str(paths.artifact_root),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(mlflow_port),
                    "--workers",
                    "1",
                ],
                env=env,
            ),
            f"http://127.0.0.1:{mlflow_port}/health",
        ),
    }
    try:
        for name, (proc, url) in procs.items():
            if not wait_healthy(url, proc, timeout=180):
                sys.stderr.write(f"modelwatch: error: {name} server did not start ({url})\n")
                return 1
        sys.stdout.write(
            f"Prefect UI: http://127.0.0.1:{prefect_port}\n"
            f"MLflow UI:  http://127.0.0.1:{mlflow_port}\n"
            f"(stores under {home}; Ctrl-C stops both)\n"
        )
        sys.stdout.flush()
        while all(p.poll() is None for p, _ in procs.values()):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for proc, _ in procs.values():
            if proc.poll() is None:
                proc.terminate()
        for proc, _ in procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
