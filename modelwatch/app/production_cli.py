"""`modelwatch server start|deploy|status|worker`: the commands of server mode."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from modelwatch.app import production
from modelwatch.errors import ConfigError
from modelwatch.settings import load_settings, redact_url

SERVER_DIR = ".modelwatch-server"


def dispatch(args: argparse.Namespace, params: Path) -> int:
    folder = (args.dir or params.parent / SERVER_DIR).resolve()
    if args.server_command == "start":
        cfg = production.ServerConfig(
            folder=folder,
            pg_url=production.pg_url_from_env(),
            prefix=args.db_prefix,
            host=args.host,
            prefect_port=args.prefect_port,
            mlflow_port=args.mlflow_port,
            pool=args.pool,
            workers=args.workers,
        )
        return production.start(cfg)
    if args.server_command == "worker":
        cfg = production.ServerConfig(folder=folder, pool=args.pool)
        return production.worker(cfg, folder / production.ENV_FILE)
    _require_server()
    if args.server_command == "deploy":
        return deploy(params, args.pool)
    return status_all()


def _require_server() -> None:
    """Raises ConfigError unless PREFECT_API_URL names a Prefect server."""
    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigError(
            "PREFECT_API_URL is not set: source the env file `modelwatch server start` wrote "
            f"(`set -a; . {SERVER_DIR}/env; set +a`) or point it at your Prefect server"
        )


def deploy(params: Path, pool: str) -> int:
    """Creates the project's ledger database (PostgreSQL) if missing, then its deployments."""
    from flows.deploy import deploy_project

    paths = load_settings(params).paths
    if paths.mode != "server":
        raise ConfigError(
            f"{params}: the stores are embedded (SQLite in {paths.home}): a worker on another "
            "machine could not reach them; set MODELWATCH_TRACKING_URI and MODELWATCH_LEDGER_URL "
            "(the env file of `modelwatch server start`) or params `stores:`"
        )
    if paths.ledger_url.startswith("postgresql") and production.ensure_database(paths.ledger_url):
        _out(f"created ledger database {redact_url(paths.ledger_url)}")
    for name in deploy_project(params, pool):
        _out(f"deployment {name} in work pool {pool!r}")
    return 0


def deployed_params(client: object) -> list[Path]:
    """The params files of every project with deployments on the Prefect server, by name."""
    found = {
        d.parameters["params_path"]
        for d in client.read_deployments()
        if "params_path" in (d.parameters or {}) and d.work_pool_name
    }
    return sorted(Path(p) for p in found)


def status_all() -> int:
    """Prints the servers' addresses, then the status of each project deployed on them."""
    from prefect import get_client

    from modelwatch.app import status

    with get_client(sync_client=True) as client:
        projects = deployed_params(client)
    _out(f"Prefect server: {redact_url(os.environ['PREFECT_API_URL'])}")
    _out(f"projects deployed: {len(projects)}")
    for params in projects:
        _out("")
        _out(f"== {params}")
        _out(status.status(params))
    return 0


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
