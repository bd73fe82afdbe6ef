"""The credentials of the servers modelwatch starts, generated once into the project home.

`<home>/credentials.json` (mode 600, owner only) holds the Prefect server's auth string, the MLflow
basic-auth login and the Flask secret of MLflow's auth app. Every CLI process reads it (or creates
it, the first time) and puts the client side in its environment (`client_env`), so the CLI, the
flows, `modelwatch serve` and the temporary Prefect server of a run all use the same credentials.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from modelwatch.errors import ConfigError

FILE = "credentials.json"
SHOWN = "credentials.shown"  # exists once `modelwatch ui` has printed the credentials
USERNAME = "modelwatch"


@dataclass(frozen=True)
class Credentials:
    prefect_auth_string: str  # "user:password", what the Prefect UI's login asks for
    mlflow_username: str
    mlflow_password: str
    mlflow_secret_key: str  # Flask secret of MLflow's basic-auth app (CSRF of its forms)


def credentials_path(home: Path) -> Path:
    return home / FILE


def generate() -> Credentials:
    """Returns new random credentials (secrets.token_urlsafe)."""
    return Credentials(
        prefect_auth_string=f"{USERNAME}:{secrets.token_urlsafe(24)}",
        mlflow_username=USERNAME,
        mlflow_password=secrets.token_urlsafe(24),
        mlflow_secret_key=secrets.token_urlsafe(32),
    )


def load_or_create(home: Path) -> tuple[Credentials, bool]:
    """Returns the project's credentials and whether this call created them.

    The file is written to a temporary file created with mode 600 (O_EXCL) in the same folder and
    then hard-linked to its name, which fails if it exists: no moment where it is readable by
    others or half written, and two processes starting at once end up with the same credentials.

    Raises:
        ConfigError: the file exists but is readable by others, not ours, or not valid.
    """
    path = credentials_path(home)
    if path.exists():
        return load(path), False
    home.mkdir(parents=True, exist_ok=True)
    creds = generate()
    fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=home)  # mode 600, O_EXCL
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(asdict(creds), out, indent=2)
            out.write("\n")
        os.link(tmp, path)
    except FileExistsError:  # another process created it first: use theirs
        return load(path), False
    finally:
        os.unlink(tmp)
    (home / SHOWN).unlink(missing_ok=True)  # new credentials: the next `modelwatch ui` shows them
    return creds, True


def load(path: Path) -> Credentials:
    """Reads a credentials file.

    Raises:
        ConfigError: group or others may read or write it, another user owns it, or its content
            is not the four fields of `Credentials`.
    """
    info = path.stat()
    if info.st_uid != os.getuid():
        raise ConfigError(f"{path}: owned by uid {info.st_uid}, not by this user: not used")
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path}: mode {stat.filemode(info.st_mode)} lets other users read the server "
            f"credentials: `chmod 600 {path}` (or delete it to generate new ones)"
        )
    try:
        return Credentials(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{path}: not a modelwatch credentials file ({exc}); delete it to generate new ones"
        ) from None


def client_env(creds: Credentials) -> dict[str, str]:
    """The environment of a modelwatch process: the Prefect client's auth string, the same for a
    temporary Prefect server it starts, and the MLflow client's login."""
    return {
        "PREFECT_API_AUTH_STRING": creds.prefect_auth_string,
        "PREFECT_SERVER_API_AUTH_STRING": creds.prefect_auth_string,
        "MLFLOW_TRACKING_USERNAME": creds.mlflow_username,
        "MLFLOW_TRACKING_PASSWORD": creds.mlflow_password,
    }


def first_showing(home: Path) -> bool:
    """True exactly once per project home: the first `modelwatch ui` prints the credentials."""
    try:
        os.close(os.open(home / SHOWN, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        return False
    return True


def announcement(creds: Credentials, home: Path) -> str:
    """What `modelwatch ui` prints about logging in: the credentials themselves the first time,
    afterwards only where they are."""
    path = credentials_path(home)
    if first_showing(home):
        return (
            f"Log in with these credentials (shown once; kept in {path}, mode 600):\n"
            f"  Prefect UI password: {creds.prefect_auth_string}\n"
            f"  MLflow UI user:      {creds.mlflow_username}  password: {creds.mlflow_password}\n"
        )
    return (
        f"Log in with the credentials in {path}: the Prefect UI asks for prefect_auth_string, "
        "the MLflow UI for mlflow_username and mlflow_password\n"
    )
