"""Server mode's pieces that need no server: database URLs, the client environment, its file."""

import stat
from pathlib import Path

from modelwatch.app import production
from modelwatch.app.credentials import generate
from modelwatch.settings import LEDGER_URL_ENV, TRACKING_URI_ENV


def cfg(tmp_path: Path, **kw) -> production.ServerConfig:
    return production.ServerConfig(
        folder=tmp_path, pg_url="postgresql://pg:pw@db.internal:5433", prefix="mw", **kw
    )


def test_database_urls_keep_the_server_and_credentials_and_set_driver_and_name(tmp_path):
    c = cfg(tmp_path)
    assert (
        c.database("prefect", "asyncpg") == "postgresql+asyncpg://pg:pw@db.internal:5433/mw_prefect"
    )
    assert (
        c.database("mlflow", "psycopg") == "postgresql+psycopg://pg:pw@db.internal:5433/mw_mlflow"
    )


def test_client_env_points_every_client_at_the_servers_with_a_ledger_per_project(tmp_path):
    creds = generate()
    env = production.client_env(cfg(tmp_path, host="0.0.0.0", prefect_port=4300), creds)
    assert env["PREFECT_API_URL"] == "http://127.0.0.1:4300/api"  # 0.0.0.0 is not an address
    assert env[TRACKING_URI_ENV] == "http://127.0.0.1:5000"
    assert env[LEDGER_URL_ENV].endswith("@db.internal:5433/mw_ledger_{project}")
    assert env["PREFECT_API_AUTH_STRING"] == creds.prefect_auth_string
    assert env["MLFLOW_TRACKING_PASSWORD"] == creds.mlflow_password
    assert env["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "4"


def test_env_file_round_trips_and_only_its_owner_may_read_it(tmp_path):
    env = {"A": "plain", "B": "with space and 'quote'", "C": "postgresql://u:p@h/x_{project}"}
    path = tmp_path / "env"
    production.write_env_file(path, env)
    assert production.read_env_file(path) == env
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("export A=plain\n")
