"""The servers modelwatch starts are not open to the browser: `modelwatch ui` on a fresh project
refuses requests without the project's credentials and requests a page of another site sends
(Prefect: auth string, CSRF token, CORS for its own UI; MLflow: basic auth, Host check, CORS),
while the CLI, a flow through Prefect's client, MLflow's client and a person in headless Chromium
with the credentials get through. So does the temporary Prefect server of a run."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, write_params

pytestmark = pytest.mark.slow

EVIL = "http://evil.example"

# Run in its own process, as `modelwatch` would: the project's environment first, then a flow.
# With PREFECT_API_URL unset the flow runs on a temporary server, which it probes during the run.
FLOW_SCRIPT = """
import json, sys, urllib.error, urllib.request
from pathlib import Path
from modelwatch.app.cli import configure_environment

configure_environment(Path(sys.argv[1]))

import psutil
from prefect import flow
from prefect.runtime import flow_run


def status(url, data=None, headers=None):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def temporary_server_api():
    for proc in psutil.Process().children(recursive=True):
        cmd = proc.cmdline()
        if "prefect.server.api.server:create_app" in cmd:
            return f"http://127.0.0.1:{cmd[cmd.index('--port') + 1]}/api"
    return None


@flow(name="access-probe")
def probe():
    api = temporary_server_api()
    found = {"flow_run_id": str(flow_run.id), "temporary_server": api}
    if api:
        page = {"Origin": "http://evil.example", "Content-Type": "text/plain"}
        found |= {
            "health": status(f"{api}/health"),
            "read": status(f"{api}/admin/version"),
            "cross_site_post": status(f"{api}/flow_runs/filter", b"{}", page),
        }
    return found


print("RESULT " + json.dumps(probe()))
"""


def _answer(
    url: str, method: str = "GET", data: bytes | None = None, headers: dict | None = None
) -> tuple[int, dict, str]:
    """Status, headers (lower-case names) and body of one request, HTTP errors included."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return (
                resp.status,
                {k.lower(): v for k, v in resp.headers.items()},
                resp.read().decode(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode()


def _basic(login: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(login.encode()).decode()}


def _run_flow(params: Path, env: dict[str, str], cwd: Path) -> dict:
    script = cwd / "probe_flow.py"
    script.write_text(FLOW_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(params)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(lines[-1].removeprefix("RESULT "))


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """`modelwatch ui` on a fresh project (empty stores), until the module's tests are done."""
    from modelwatch.app.servers import wait_healthy
    from tests.ui import ui_check

    folder = tmp_path_factory.mktemp("access")
    params = write_params("params.yaml", folder)
    prefect_port, mlflow_port = ui_check.free_ports(2)
    log = tempfile.NamedTemporaryFile("w", prefix="modelwatch-ui-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        ui_check.cli(params, "ui", "--prefect-port", prefect_port, "--mlflow-port", mlflow_port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=ui_check._clean_env(),
    )
    prefect, mlflow = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    try:
        healthy = wait_healthy(f"{prefect}/api/health", proc) and wait_healthy(
            f"{mlflow}/health", proc
        )
        assert healthy, Path(log.name).read_text()[-3000:]
        yield {
            "params": params,
            "folder": folder,
            "prefect": prefect,
            "prefect_port": prefect_port,
            "mlflow": mlflow,
            "creds": ui_check.project_credentials(params),
        }
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        Path(log.name).unlink()


@pytest.fixture(scope="module")
def client_run(servers):
    """A flow run by Prefect's client in a modelwatch process pointed at the server
    (PREFECT_API_URL): the auth string from the credentials file, CSRF tokens fetched."""
    from tests.ui import ui_check

    env = ui_check._clean_env() | {"PREFECT_API_URL": f"{servers['prefect']}/api"}
    return _run_flow(servers["params"], env, servers["folder"])


def test_credentials_and_mlflow_users_are_owner_only(servers):
    home = Path(servers["params"]).parent / "home"
    assert (home / "credentials.json").stat().st_mode & 0o777 == 0o600
    assert (home / "mlflow-auth.db").stat().st_mode & 0o777 == 0o600  # password hashes
    assert "password" not in (home / "mlflow-auth.ini").read_text()  # it comes from the env


def test_prefect_refuses_requests_without_the_auth_string(servers):
    api = f"{servers['prefect']}/api"
    assert _answer(f"{api}/admin/version")[0] == 401
    assert _answer(f"{api}/admin/version", headers=_basic("modelwatch:guess"))[0] == 401
    code, _, body = _answer(
        f"{api}/flows/filter", "POST", b"{}", {"Content-Type": "application/json"}
    )
    assert code in (401, 403), body
    assert _answer(f"{api}/health")[0] == 200  # probes need no login
    auth = _basic(servers["creds"].prefect_auth_string)
    assert _answer(f"{api}/admin/version", headers=auth)[:3:2] == (200, '"3.8.8"')


def test_prefect_refuses_a_cross_origin_post_and_lets_no_other_site_read_it(servers):
    api, port = f"{servers['prefect']}/api", servers["prefect_port"]
    code, headers, body = _answer(
        f"{api}/flow_runs/filter", "POST", b"{}", {"Origin": EVIL, "Content-Type": "text/plain"}
    )
    assert code in (401, 403), body
    assert "access-control-allow-origin" not in headers
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    code, headers, _ = _answer(
        f"{api}/flow_runs/filter", "OPTIONS", None, {"Origin": EVIL} | preflight
    )
    assert code == 400 and "access-control-allow-origin" not in headers
    own = f"http://localhost:{port}"  # its own UI, opened under the other name of the address
    code, headers, _ = _answer(
        f"{api}/flow_runs/filter", "OPTIONS", None, {"Origin": own} | preflight
    )
    assert code == 200 and headers["access-control-allow-origin"] == own


def test_prefect_client_and_cli_with_the_project_credentials_work(servers, client_run):
    from tests.ui import ui_check

    assert client_run["temporary_server"] is None  # it ran on the `modelwatch ui` server
    api = f"{servers['prefect']}/api"
    run = ui_check.prefect_get(
        api, f"/flow_runs/{client_run['flow_run_id']}", None, servers["creds"]
    )
    assert run["state_type"] == "COMPLETED"
    status = subprocess.run(
        ui_check.cli(servers["params"], "status"),
        capture_output=True,
        text=True,
        env=ui_check._clean_env() | {"PREFECT_API_URL": api},
        timeout=120,
    )
    assert status.returncode == 0, status.stderr
    assert "next scheduled run: none scheduled" in status.stdout  # read with auth and CSRF


def test_mlflow_refuses_requests_without_the_login(servers):
    base, creds = servers["mlflow"], servers["creds"]
    artifact = f"{base}/api/2.0/mlflow-artifacts/artifacts/0/probe/model.txt"
    code, headers, _ = _answer(f"{base}/api/2.0/mlflow/experiments/search?max_results=1")
    assert code == 401 and headers["www-authenticate"].startswith("Basic")
    assert _answer(artifact)[0] == 401
    assert _answer(artifact, "PUT", b"overwritten")[0] == 401
    wrong = _basic(f"{creds.mlflow_username}:not-the-password")
    assert _answer(artifact, "PUT", b"overwritten", wrong)[0] == 401
    assert not (Path(servers["params"]).parent / "home" / "mlartifacts" / "0").exists()
    assert _answer(f"{base}/health")[0] == 200


def test_mlflow_refuses_other_sites_and_other_host_names(servers):
    base, creds = servers["mlflow"], servers["creds"]
    login = _basic(f"{creds.mlflow_username}:{creds.mlflow_password}")
    artifact = f"{base}/api/2.0/mlflow-artifacts/artifacts/0/probe/model.txt"
    # a page of another site whose browser has the login cached still cannot write
    code, _, body = _answer(artifact, "PUT", b"overwritten", login | {"Origin": EVIL})
    assert (code, body) == (403, "Cross-origin request blocked")
    # DNS rebinding: a name of the attacker's that resolves to 127.0.0.1
    port = base.rsplit(":", 1)[1]
    code, _, body = _answer(
        f"{base}/api/2.0/mlflow/experiments/search?max_results=1",
        headers=login | {"Host": f"evil.example:{port}"},
    )
    assert code == 403 and "Invalid Host header" in body


def test_mlflow_client_with_the_project_login_works(servers, monkeypatch, tmp_path):
    from mlflow import MlflowClient

    creds = servers["creds"]
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", creds.mlflow_username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", creds.mlflow_password)
    client = MlflowClient(tracking_uri=servers["mlflow"])
    run = client.create_run(client.create_experiment("access-check"))
    (tmp_path / "note.txt").write_text("logged in")
    client.log_artifact(run.info.run_id, str(tmp_path / "note.txt"))
    assert [f.path for f in client.list_artifacts(run.info.run_id)] == ["note.txt"]
    out = client.download_artifacts(run.info.run_id, "note.txt", str(tmp_path / "back"))
    assert Path(out).read_text() == "logged in"


def test_both_uis_open_for_the_operator_with_the_credentials(servers, client_run, tmp_path):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    from tests.ui import ui_check
    from tests.ui.browser import Browser, BrowserError

    creds, mlflow = servers["creds"], servers["mlflow"]
    with Browser() as browser:  # without the credentials
        browser.open(f"{servers['prefect']}/runs")
        assert browser.wait_for(("Login",)) and "/login" in browser.page.url
        assert browser.submit_password("modelwatch:wrong")
        with pytest.raises(PlaywrightTimeout):  # a right one leads to /runs within a second
            browser.page.wait_for_url(lambda url: "/login" not in url, timeout=8000)
        assert "Flow runs" not in browser.text()
        with pytest.raises(BrowserError, match="ERR_INVALID_AUTH_CREDENTIALS"):
            browser.open(f"{mlflow}/")
    login = {"username": creds.mlflow_username, "password": creds.mlflow_password}
    with Browser(http_credentials=login | {"origin": mlflow}) as browser:
        check = ui_check.log_in_to_prefect(browser, servers["prefect"], creds, tmp_path)
        assert check.ok, check.line()
        assert browser.wait_for(("access-probe",))  # the flow of the client run
        browser.open(f"{mlflow}/#/experiments")
        assert browser.wait_for(("Experiments", creds.mlflow_username))


def test_the_temporary_server_of_a_run_wants_the_auth_string_too(tmp_path):
    """Without PREFECT_API_URL a modelwatch process runs its flows on a temporary server on a
    loopback port: during the run it answers no request without the auth string, and no
    cross-site POST, while the run's own client gets through."""
    from tests.ui import ui_check

    params = write_params("params.yaml", tmp_path / "project")
    found = _run_flow(params, ui_check._clean_env(), tmp_path)
    assert found["temporary_server"] is not None
    assert (found["health"], found["read"], found["cross_site_post"]) == (200, 401, 403)


def test_mlflow_admin_gets_the_password_of_new_credentials(tmp_path):
    """MLflow sets the admin password only when it creates the user: after the credentials file
    was made anew, the start before `mlflow server` gives the admin the new password."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    from modelwatch.app import credentials, servers

    db = f"sqlite:///{tmp_path / 'mlflow-auth.db'}"
    store = SqlAlchemyStore()
    store.init_db(db)
    store.create_user("modelwatch", "the-old-password-of-a-lost-file", is_admin=True)
    new, _ = credentials.load_or_create(tmp_path)
    servers._sync_mlflow_admin(db, new)
    assert store.authenticate_user("modelwatch", new.mlflow_password)
    assert not store.authenticate_user("modelwatch", "the-old-password-of-a-lost-file")
    assert store.get_user("modelwatch").is_admin
