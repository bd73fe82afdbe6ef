"""Server mode: a Prefect server and an MLflow tracking server on PostgreSQL, a process work pool
with its workers, and each project's deployments in that pool (`modelwatch server ...`).

`modelwatch server start` runs in the foreground like `modelwatch ui` and stops everything it
started on Ctrl-C or SIGTERM. Once every server answers it writes `<dir>/env` (mode 600): the
client environment that points modelwatch at these servers (PREFECT_API_URL,
MODELWATCH_TRACKING_URI, MODELWATCH_LEDGER_URL, the credentials and the client retries). A shell
that sources it, a worker on another machine, or `modelwatch server deploy` uses the servers
without any change to params.yaml."""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from modelwatch.app import credentials, servers
from modelwatch.errors import ConfigError, StoreUnavailable
from modelwatch.settings import LEDGER_URL_ENV, TRACKING_URI_ENV, redact_url

log = logging.getLogger(__name__)

PG_URL_ENV = "MODELWATCH_PG_URL"
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432"
ENV_FILE = "env"
READY = "modelwatch server: ready"  # the line `server start` prints once everything answers

# Clients retry transient server errors (connection refused, 429, 5xx) with exponential backoff:
# MLflow 1+2+4+8 s (its default, 7 tries at factor 2, waits over 4 minutes before failing a
# batch), Prefect 5 tries with jitter. Operators override them in the environment.
CLIENT_RETRIES = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "4",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
    "PREFECT_CLIENT_MAX_RETRIES": "5",
    "PREFECT_CLIENT_RETRY_JITTER_FACTOR": "0.2",
}


@dataclass(frozen=True)
class ServerConfig:
    """Where the servers run and which databases they use (one PostgreSQL for all)."""

    folder: Path  # credentials, env file, logs, MLflow auth db and artifacts
    pg_url: str = DEFAULT_PG_URL  # a PostgreSQL server, without a database
    prefix: str = "modelwatch"  # database names: <prefix>_prefect, _mlflow, _ledger_<project>
    host: str = "127.0.0.1"  # the address the servers listen on (0.0.0.0: every interface)
    prefect_port: int = 4200
    mlflow_port: int = 5000
    pool: str = "modelwatch"
    workers: int = 1

    def database(self, name: str, driver: str) -> str:
        """The URL of database <prefix>_<name> with a SQLAlchemy driver (psycopg, asyncpg)."""
        import sqlalchemy as sa

        url = sa.engine.make_url(self.pg_url)
        url = url.set(drivername=f"postgresql+{driver}", database=f"{self.prefix}_{name}")
        return url.render_as_string(hide_password=False)

    @property
    def public_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host


def pg_url_from_env() -> str:
    return os.environ.get(PG_URL_ENV) or DEFAULT_PG_URL


def ensure_database(url: str) -> bool:
    """Creates the database of a PostgreSQL URL unless it exists; returns True if created.

    Raises:
        StoreUnavailable: the PostgreSQL server does not answer.
    """
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    admin = sa.create_engine(
        target.set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    try:
        with admin.connect() as conn:
            found = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).first()
            if found is None:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
            return found is None
    except sa.exc.OperationalError as exc:
        raise StoreUnavailable(
            f"PostgreSQL at {redact_url(str(target.set(database=None)))} did not answer "
            f"({PG_URL_ENV}): {str(exc).splitlines()[0]}"
        ) from None
    finally:
        admin.dispose()


def drop_databases(pg_url: str, prefix: str) -> list[str]:
    """Drops every database named <prefix>_* (closing their connections); returns their names.
    For throw-away deployments (tests, benchmarks): a production prefix is never dropped here."""
    import sqlalchemy as sa

    url = sa.engine.make_url(pg_url).set(drivername="postgresql+psycopg", database="postgres")
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            pattern = prefix.replace("_", r"\_") + r"\_%"
            names = list(
                conn.execute(
                    sa.text("SELECT datname FROM pg_database WHERE datname LIKE :p"),
                    {"p": pattern},
                ).scalars()
            )
            for name in names:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        return names
    finally:
        engine.dispose()


def client_env(cfg: ServerConfig, creds: credentials.Credentials) -> dict[str, str]:
    """The environment of every client of these servers: CLI, workers and their flow runs."""
    return {
        "PREFECT_API_URL": f"http://{cfg.public_host}:{cfg.prefect_port}/api",
        "PREFECT_API_AUTH_STRING": creds.prefect_auth_string,
        TRACKING_URI_ENV: f"http://{cfg.public_host}:{cfg.mlflow_port}",
        "MLFLOW_TRACKING_USERNAME": creds.mlflow_username,
        "MLFLOW_TRACKING_PASSWORD": creds.mlflow_password,
        LEDGER_URL_ENV: cfg.database("ledger_{project}", "psycopg"),
        **CLIENT_RETRIES,
    }


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """Writes `export NAME=value` lines, readable by the owner only (it holds credentials)."""
    text = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def read_env_file(path: Path) -> dict[str, str]:
    """The variables of an env file written by write_env_file.

    Raises:
        ConfigError: the file is missing (the servers were never started with this folder).
    """
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found; `modelwatch server start` writes it once the servers run"
        ) from None
    env = {}
    for line in lines:
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0] if value else ""
    return env


def worker_env(cfg: ServerConfig, creds: credentials.Credentials) -> dict[str, str]:
    """The environment of a worker and of the flow runs it starts (they inherit it)."""
    env = dict(os.environ) | client_env(cfg, creds)
    env |= {
        "PREFECT_HOME": str(cfg.folder / "worker"),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "modelwatch",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    }
    env.setdefault("PREFECT_WORKER_QUERY_SECONDS", "5")
    env.pop("PREFECT_SERVER_API_AUTH_STRING", None)
    return env


def _prefect_env(cfg: ServerConfig, creds: credentials.Credentials) -> dict[str, str]:
    port = cfg.prefect_port
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    return env | {
        "PREFECT_HOME": str(cfg.folder / "prefect"),
        "PREFECT_API_DATABASE_CONNECTION_URL": cfg.database("prefect", "asyncpg"),
        "PREFECT_SERVER_API_HOST": cfg.host,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_AUTH_STRING": creds.prefect_auth_string,
        "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": ",".join(
            f"http://{h}:{port}" for h in dict.fromkeys([cfg.public_host, "127.0.0.1", "localhost"])
        ),
        # the UI's requests go to the address the browser used, not to 127.0.0.1
        "PREFECT_UI_API_URL": f"http://{cfg.public_host}:{port}/api",
    }


def _log(cfg: ServerConfig, name: str) -> object:
    return open(cfg.folder / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (closed with the child)


def start(cfg: ServerConfig) -> int:
    """`modelwatch server start`: creates the databases, starts Prefect and MLflow, the work pool
    and cfg.workers workers, writes the env file, then waits until interrupted (Ctrl-C, SIGTERM)
    or until one of them exits, and stops the rest. Returns the exit code."""
    signal.signal(signal.SIGTERM, servers._interrupt)
    signal.signal(signal.SIGINT, servers._interrupt)
    for sub in ("logs", "prefect", "worker", "artifacts"):
        (cfg.folder / sub).mkdir(parents=True, exist_ok=True)
    creds, _ = credentials.load_or_create(cfg.folder)
    for name in ("prefect", "mlflow"):
        if ensure_database(cfg.database(name, "psycopg")):
            log.info("created database %s_%s", cfg.prefix, name)
    procs: dict[str, subprocess.Popen] = {}
    try:
        prefect = str(Path(sys.executable).parent / "prefect")
        cmd = [prefect, "server", "start", "--host", cfg.host, "--port", str(cfg.prefect_port)]
        out = _log(cfg, "prefect")
        procs["Prefect"] = subprocess.Popen(
            cmd, env=_prefect_env(cfg, creds), stdout=out, stderr=out
        )
        mlflow_env = dict(os.environ) | {
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
        }
        procs["MLflow"], mlflow_health = servers.mlflow_server(
            cfg.folder,
            cfg.database("mlflow", "psycopg"),
            cfg.folder / "artifacts",
            mlflow_env,
            cfg.host,
            cfg.mlflow_port,
            creds,
            stdout=_log(cfg, "mlflow"),
        )
        health = {
            "Prefect": f"http://{cfg.public_host}:{cfg.prefect_port}/api/health",
            "MLflow": mlflow_health,
        }
        for name, url in health.items():
            if not servers.wait_healthy(url, procs[name], timeout=240):
                sys.stderr.write(
                    f"modelwatch: error: {name} server did not start ({url}); see "
                    f"{cfg.folder / 'logs'}\n"
                )
                return 1
        env = worker_env(cfg, creds)
        ensure_work_pool(cfg.pool, env)
        for i in range(cfg.workers):
            procs[f"worker-{i + 1}"] = start_worker(cfg, env, f"{cfg.pool}-worker-{i + 1}")
        write_env_file(cfg.folder / ENV_FILE, client_env(cfg, creds))
        _announce(cfg, creds)
        while all(p.poll() is None for p in procs.values()):
            time.sleep(1)
        gone = [name for name, p in procs.items() if p.poll() is not None]
        sys.stderr.write(f"modelwatch: error: {', '.join(gone)} exited; stopping the rest\n")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        (cfg.folder / ENV_FILE).unlink(missing_ok=True)
        stop(list(procs.values()))


def _announce(cfg: ServerConfig, creds: credentials.Credentials) -> None:
    env = cfg.folder / ENV_FILE
    sys.stdout.write(
        f"Prefect UI: http://{cfg.public_host}:{cfg.prefect_port} (db {cfg.prefix}_prefect)\n"
        f"MLflow UI:  http://{cfg.public_host}:{cfg.mlflow_port} (db {cfg.prefix}_mlflow, "
        f"artifacts {cfg.folder / 'artifacts'})\n"
        f"work pool {cfg.pool!r}: {cfg.workers} worker(s); logs in {cfg.folder / 'logs'}\n"
        + credentials.announcement(creds, cfg.folder)
        + f"Clients: `set -a; . {env}; set +a`, then `modelwatch --params P server deploy`\n"
        f"{READY}\n"
    )
    sys.stdout.flush()


def ensure_work_pool(pool: str, env: dict[str, str]) -> None:
    """Creates the process work pool unless it exists."""
    prefect = str(Path(sys.executable).parent / "prefect")
    found = subprocess.run(
        [prefect, "work-pool", "inspect", pool], env=env, capture_output=True, text=True
    )
    if found.returncode != 0:
        subprocess.run(
            [prefect, "work-pool", "create", pool, "--type", "process"],
            env=env,
            check=True,
            capture_output=True,
        )


def start_worker(cfg: ServerConfig, env: dict[str, str], name: str) -> subprocess.Popen:
    """Starts `prefect worker start` on the pool; its flow runs inherit env."""
    prefect = str(Path(sys.executable).parent / "prefect")
    cmd = [prefect, "worker", "start", "--pool", cfg.pool, "--type", "process", "--name", name]
    out = _log(cfg, name)
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=out, cwd=cfg.folder / "worker")


def stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to each process and its children (MLflow's uvicorn, a worker's flow runs), then
    waits 20 s and kills what is left."""
    import psutil

    found: list[psutil.Process] = []
    for proc in procs:
        try:
            parent = psutil.Process(proc.pid)
            found += [parent, *parent.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for p in found:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(found, timeout=20)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    for proc in procs:
        proc.wait()


def terminate(proc: subprocess.Popen, timeout: float) -> None:
    """Stops a `modelwatch server start` started in its own session: SIGTERM (it stops its
    servers and workers itself), then SIGKILL to its process group after `timeout` seconds."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def worker(cfg: ServerConfig, env_file: Path) -> int:
    """`modelwatch server worker`: one more worker on this machine (or another one that sees the
    project folders), with the client environment of an env file; runs until interrupted."""
    signal.signal(signal.SIGTERM, servers._interrupt)
    env = dict(os.environ) | read_env_file(env_file)
    env |= {
        "PREFECT_LOGGING_EXTRA_LOGGERS": "modelwatch",
        "MLFLOW_ALLOW_PICKLE_DESERIALIZATION": "false",
    }
    prefect = str(Path(sys.executable).parent / "prefect")
    proc = subprocess.Popen([prefect, "worker", "start", "--pool", cfg.pool, "--type", "process"],
                            env=env)  # fmt: skip
    try:
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop([proc])
