"""Start the Prefect UI and the MLflow UI on the project's own stores, each behind the project's
credentials (modelwatch/app/credentials.py); stop both on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from modelwatch.app.credentials import Credentials, announcement, credentials_path, load_or_create
from modelwatch.errors import ConfigError
from modelwatch.settings import Paths, load_settings, redact_url

log = logging.getLogger(__name__)

AUTH_CONFIG = "mlflow-auth.ini"  # MLflow's basic-auth app: MLFLOW_AUTH_CONFIG_PATH
AUTH_DB = "mlflow-auth.db"  # its users (one: the admin of the credentials file)


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


def origins(port: int) -> str:
    """The browser origins of a UI served on a loopback port: the only ones allowed to call its
    API from a page (CORS), under either name of the address."""
    return f"http://127.0.0.1:{port},http://localhost:{port}"


def _server_env(prefect_home: Path, prefect_port: int, creds: Credentials) -> dict[str, str]:
    """The environment of the servers: Prefect's with its auth string, CSRF tokens and CORS for
    its own UI only (Prefect has no Host check: the auth string is what a page at another
    address, or rebound to 127.0.0.1, cannot send)."""
    env = dict(
        os.environ,
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_API_PORT=str(prefect_port),
        PREFECT_SERVER_API_HOST="127.0.0.1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_SERVER_API_AUTH_STRING=creds.prefect_auth_string,
        PREFECT_SERVER_CSRF_PROTECTION_ENABLED="true",
        PREFECT_SERVER_CORS_ALLOWED_ORIGINS=origins(prefect_port),
        MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false",
        MLFLOW_ALLOW_PICKLE_DESERIALIZATION="false",
    )
    env.pop("PREFECT_API_URL", None)
    return env


def _prefect_server(env: dict[str, str], port: int) -> tuple[subprocess.Popen, str]:
    """Starts `prefect server start` on 127.0.0.1:port; returns the process and its health URL."""
    prefect = str(Path(sys.executable).parent / "prefect")
    cmd = [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    return subprocess.Popen(cmd, env=env), f"http://127.0.0.1:{port}/api/health"


def _mlflow_server(
    paths: Paths, env: dict[str, str], port: int, creds: Credentials
) -> tuple[subprocess.Popen, str]:
    """Starts `mlflow server` with its basic-auth app on 127.0.0.1:port on the project's own
    stores; returns the process and its health URL."""
    return mlflow_server(
        paths.home, paths.tracking_uri, paths.artifact_root, env, "127.0.0.1", port, creds
    )


def mlflow_server(
    home: Path,
    backend_uri: str,
    artifacts: Path,
    env: dict[str, str],
    host: str,
    port: int,
    creds: Credentials,
    stdout: object = None,
) -> tuple[subprocess.Popen, str]:
    """Starts `mlflow server` with its basic-auth app (users in home/mlflow-auth.db) on
    host:port, proxying artifacts stored under `artifacts` (Host header and CORS limited to that
    address and the loopback names); returns the process and its health URL."""
    auth_db = f"sqlite:///{home / AUTH_DB}"
    config = home / AUTH_CONFIG
    config.write_text(  # no secret in it: the admin password comes from the environment
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = {auth_db}\n"
        f"admin_username = {creds.mlflow_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    if (home / AUTH_DB).exists():
        _sync_mlflow_admin(auth_db, creds)
    else:  # owner only, like the credentials (SQLite takes an empty file as a new database)
        os.close(os.open(home / AUTH_DB, os.O_CREAT | os.O_WRONLY, 0o600))
    env = env | {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": creds.mlflow_password,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": creds.mlflow_secret_key,
    }
    names = dict.fromkeys([host, "127.0.0.1", "localhost"])  # in order, once each
    hosts = ",".join(f"{name}:{port}" for name in names)
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--app-name",
        "basic-auth",
        "--backend-store-uri",
        backend_uri,
        "--serve-artifacts",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
        "--allowed-hosts",
        hosts,
        "--cors-allowed-origins",
        ",".join(f"http://{name}:{port}" for name in names),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stdout)
    return proc, f"http://{_loopback(host)}:{port}/health"


def _loopback(host: str) -> str:
    """The address a local client reaches a server bound to host at (0.0.0.0: 127.0.0.1)."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def _sync_mlflow_admin(auth_db: str, creds: Credentials) -> None:
    """Gives the admin user of an existing auth database the password of the credentials file
    (MLflow reads the configured password only when it creates the user, so a credentials file
    made anew would otherwise lock the operator out)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(auth_db)
    user, password = creds.mlflow_username, creds.mlflow_password
    if store.has_user(user) and not store.authenticate_user(user, password, use_primary=True):
        store.update_user(user, password=password, is_admin=True)
        log.warning("MLflow user %s: password set to the one in the credentials file", user)


def run_deployments(params: Path, home: Path, prefect_port: int) -> int:
    """`modelwatch serve`: starts the project's Prefect server (unless PREFECT_API_URL points at
    one), then serves the monitor, retrain and rollback deployments until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)
    paths = load_settings(params).paths
    proc = None
    try:
        if not os.environ.get("PREFECT_API_URL"):
            creds, _ = load_or_create(home)
            env = _server_env(paths.prefect_home, prefect_port, creds)
            proc, health = _prefect_server(env, prefect_port)
            if not wait_healthy(health, proc, timeout=180):
                sys.stderr.write(f"modelwatch: error: Prefect server did not start ({health})\n")
                return 1
            os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{prefect_port}/api"
            sys.stdout.write(
                f"Prefect UI: http://127.0.0.1:{prefect_port} (stores under {home}; log in with "
                f"prefect_auth_string from {credentials_path(home)})\n"
            )
            sys.stdout.flush()
        from flows.serve import serve_deployments

        serve_deployments(params)
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if proc is not None:
            _stop([proc])


def serve(params: Path, home: Path, prefect_port: int, mlflow_port: int) -> int:
    """Runs both servers until interrupted (Ctrl-C or SIGTERM); returns the exit code."""
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGINT, _interrupt)  # also when started in the background (SIGINT ignored)
    paths = load_settings(params).paths
    if paths.mode == "server":
        raise ConfigError(
            f"{params}: server mode (tracking {redact_url(paths.tracking_uri)}): the UIs are "
            "those of the servers (`modelwatch server start` prints their addresses)"
        )
    creds, _ = load_or_create(home)
    env = _server_env(paths.prefect_home, prefect_port, creds)
    procs: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        procs["Prefect"] = _prefect_server(env, prefect_port)
        procs["MLflow"] = _mlflow_server(paths, env, mlflow_port, creds)
        for name, (proc, url) in procs.items():
            if not wait_healthy(url, proc, timeout=180):
                sys.stderr.write(f"modelwatch: error: {name} server did not start ({url})\n")
                return 1
        sys.stdout.write(
            f"Prefect UI: http://127.0.0.1:{prefect_port}\n"
            f"MLflow UI:  http://127.0.0.1:{mlflow_port}\n"
            + announcement(creds, home)
            + f"(stores under {home}; Ctrl-C stops both)\n"
        )
        sys.stdout.flush()
        while all(p.poll() is None for p, _ in procs.values()):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        _stop([proc for proc, _ in procs.values()])


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process still running, then waits (20 s each) and kills the rest."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
