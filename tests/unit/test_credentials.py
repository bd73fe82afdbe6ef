"""The server credentials file: created once, owner-only, the same for every process."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelwatch.app import credentials
from modelwatch.errors import ConfigError


def test_first_call_creates_an_owner_only_file_with_random_secrets(tmp_path):
    home = tmp_path / "home"
    old = os.umask(0)  # even with a umask that lets everyone read new files
    try:
        creds, created = credentials.load_or_create(home)
    finally:
        os.umask(old)
    path = home / "credentials.json"
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {
        "prefect_auth_string": creds.prefect_auth_string,
        "mlflow_username": "modelwatch",
        "mlflow_password": creds.mlflow_password,
        "mlflow_secret_key": creds.mlflow_secret_key,
    }
    user, _, secret = creds.prefect_auth_string.partition(":")
    assert user == "modelwatch" and len(secret) >= 32
    assert len(creds.mlflow_password) >= 32 and creds.mlflow_password != secret
    assert sorted(p.name for p in home.iterdir()) == ["credentials.json"]  # no temporary left


def test_later_calls_read_the_same_credentials(tmp_path):
    first, _ = credentials.load_or_create(tmp_path)
    again, created = credentials.load_or_create(tmp_path)
    assert again == first and not created
    assert credentials.load_or_create(tmp_path / "other")[0] != first  # another project


def test_processes_starting_at_once_end_up_with_one_set_of_credentials(tmp_path):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: credentials.load_or_create(tmp_path), range(16)))
    assert len({creds for creds, _ in results}) == 1
    assert sum(created for _, created in results) == 1


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_a_file_others_can_read_is_refused_and_left_alone(tmp_path, mode):
    credentials.load_or_create(tmp_path)
    path = tmp_path / "credentials.json"
    before = path.read_text()
    path.chmod(mode)
    with pytest.raises(ConfigError, match=r"lets other users read .* `chmod 600 .*credentials"):
        credentials.load_or_create(tmp_path)
    assert path.read_text() == before


def test_a_file_that_is_not_credentials_is_refused(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text('{"password": "x"}')
    path.chmod(0o600)
    with pytest.raises(ConfigError, match="not a modelwatch credentials file"):
        credentials.load_or_create(tmp_path)


def test_client_env_gives_prefect_client_and_server_the_same_auth_string(tmp_path):
    creds, _ = credentials.load_or_create(tmp_path)
    assert credentials.client_env(creds) == {
        "PREFECT_API_AUTH_STRING": creds.prefect_auth_string,
        "PREFECT_SERVER_API_AUTH_STRING": creds.prefect_auth_string,
        "MLFLOW_TRACKING_USERNAME": "modelwatch",
        "MLFLOW_TRACKING_PASSWORD": creds.mlflow_password,
    }


def test_credentials_are_shown_once_then_only_where_they_are(tmp_path):
    creds, _ = credentials.load_or_create(tmp_path)
    first = credentials.announcement(creds, tmp_path)
    second = credentials.announcement(creds, tmp_path)
    assert creds.prefect_auth_string in first and creds.mlflow_password in first
    assert creds.mlflow_password not in second
    assert creds.prefect_auth_string.split(":")[1] not in second
    assert str(tmp_path / "credentials.json") in second


def test_new_credentials_are_shown_again(tmp_path):
    old, _ = credentials.load_or_create(tmp_path)
    credentials.announcement(old, tmp_path)
    (tmp_path / "credentials.json").unlink()  # the operator threw them away
    new, created = credentials.load_or_create(tmp_path)
    assert created and new != old
    assert new.mlflow_password in credentials.announcement(new, tmp_path)
