"""Look at both UIs as a person would, in headless Chromium, and keep screenshots.

`check_project` starts `modelwatch ui` on a project's stores (its own Prefect server and MLflow
server, on free local ports), logs in with the project's credentials (the Prefect UI's login
page; the MLflow UI's HTTP basic auth), opens the pages a person would open after a replay, checks
what that person looks for, takes a screenshot of each, and stops both servers:

  prefect_login.png          Prefect: the login page (auth string), before anything is shown
  prefect_runs.png           Prefect: the monitor-batch flow runs are listed, with their tags
  prefect_run_artifacts.png  Prefect: the newest monitor run's Artifacts tab (summary, drift table)
  prefect_summary.png        Prefect: that run's markdown summary (validation, drift, decision)
  mlflow_metrics.png         MLflow: the monitoring metrics over time (line charts by batch)
  mlflow_model.png           MLflow: the registered model with its `champion` alias
  mlflow_model_version.png   MLflow: the champion version with its comparison summary

Used by tests/e2e/test_uis.py (CI) and scripts/check_uis.py (`make ui-check`).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import yaml

from modelwatch.app import credentials, prefect_rest
from modelwatch.app.credentials import Credentials
from modelwatch.app.servers import wait_healthy
from modelwatch.settings import load_settings
from tests.ui.browser import Browser


@dataclass(frozen=True)
class Check:
    title: str
    ok: bool
    url: str
    screenshot: Path
    detail: str = ""

    def line(self) -> str:
        mark = "ok  " if self.ok else "FAIL"
        extra = f" ({self.detail})" if self.detail else ""
        return f"{mark} {self.title}: {self.url} -> {self.screenshot}{extra}"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list[int]:
    """n distinct free ports (all bound at once, so no two are the same)."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def project_credentials(params: Path) -> Credentials:
    """The credentials of the project's servers (written by its first modelwatch command)."""
    return credentials.load(credentials.credentials_path(load_settings(params).paths.home))


def prefect_get(api: str, path: str, payload: dict | None, creds: Credentials) -> dict | list:
    """GET (payload None) or POST to the Prefect API at api, logged in with the auth string."""
    return prefect_rest.call(api, path, payload, auth_string=creds.prefect_auth_string)


def mlflow_get(url: str, creds: Credentials, payload: dict | None = None) -> dict:
    """GET (payload None) or POST to the MLflow REST API, logged in as the project's user."""
    data = None if payload is None else json.dumps(payload).encode()
    login = f"{creds.mlflow_username}:{creds.mlflow_password}"
    headers = {
        "Content-Type": "application/json",
        "Authorization": "Basic " + base64.b64encode(login.encode()).decode(),
    }
    req = urllib.request.Request(url, data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def replay(
    params_template: Path,
    folder: Path,
    batches: int,
    source_root: Path,
    overrides: dict[str, dict] | None = None,
) -> Path:
    """Writes a params file whose stores live under folder/home (sections updated by
    `overrides`) and replays the first `batches` demo batches into it with `modelwatch demo` (a
    separate process, as a user would run it); returns the new params file."""
    raw = yaml.safe_load(params_template.read_text())
    for section, values in (overrides or {}).items():
        raw[section] = {**(raw.get(section) or {}), **values}
    raw["demo"]["source"] = str(source_root / raw["demo"]["source"])
    raw["project"]["home"] = str(folder / "home")
    folder.mkdir(parents=True, exist_ok=True)
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = subprocess.run(
        cli(params, "demo", "--max-batches", batches),
        capture_output=True,
        text=True,
        env=_clean_env(),
    )
    if done.returncode != 0:
        raise RuntimeError(f"the replay failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return params


def cli(params: Path, *args: object) -> list[str]:
    """The command line of `modelwatch --params <params> <args>` from this environment."""
    return [str(Path(sys.executable).parent / "modelwatch"), "--params", str(params)] + [
        str(a) for a in args
    ]


SERVER_ENV = (
    "PREFECT_API_URL",
    "PREFECT_API_AUTH_STRING",
    "PREFECT_SERVER_API_AUTH_STRING",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
)


def _clean_env() -> dict[str, str]:
    """The environment without a Prefect API address or credentials: the project's own stores
    and its own credentials file are used."""
    return {k: v for k, v in os.environ.items() if k not in SERVER_ENV}


@dataclass(frozen=True)
class UiSession:
    """What `modelwatch ui` did around the checks: its output, and its exit code after Ctrl-C."""

    checks: list[Check]
    output: str
    exit_code: int | str
    prefect_port: int
    mlflow_port: int


def check_project(params: Path, out: Path, env: dict[str, str] | None = None) -> UiSession:
    """Starts `modelwatch ui` on the project's stores (environment updated by `env`), runs every
    check, then stops it with Ctrl-C (SIGINT) as a person would."""
    loaded = yaml.safe_load(params.read_text())
    model, experiment = loaded["project"]["model_name"], loaded["tracking"]["experiment"]
    prefect_port, mlflow_port = free_ports(2)
    log = tempfile.NamedTemporaryFile("w", prefix="modelwatch-ui-", suffix=".log", delete=False)
    ui = subprocess.Popen(
        cli(params, "ui", "--prefect-port", prefect_port, "--mlflow-port", mlflow_port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_clean_env() | (env or {}),
    )
    prefect, mlflow = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    try:
        if not (wait_healthy(f"{prefect}/api/health", ui) and wait_healthy(f"{mlflow}/health", ui)):
            raise RuntimeError("`modelwatch ui` did not start both servers")
        out.mkdir(parents=True, exist_ok=True)
        creds = project_credentials(params)
        login = {"username": creds.mlflow_username, "password": creds.mlflow_password}
        with Browser(http_credentials=login | {"origin": mlflow}) as browser:
            checks = [log_in_to_prefect(browser, prefect, creds, out)]
            checks += _prefect_checks(browser, prefect, model, creds, out)
            checks += _mlflow_checks(browser, mlflow, model, f"{experiment}-monitoring", creds, out)
    finally:
        ui.send_signal(signal.SIGINT)
        try:
            code: int | str = ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ui.kill()
            code = "killed after 60 s"
        log.close()
    output = Path(log.name).read_text()
    Path(log.name).unlink()
    return UiSession(checks, output, code, prefect_port, mlflow_port)


def log_in_to_prefect(browser: Browser, base: str, creds: Credentials, out: Path) -> Check:
    """Opening the Prefect UI leads to its login page; the auth string entered there leads back
    to the page asked for. The browser keeps the login (the UI stores it) for later pages."""
    url = f"{base}/runs"
    browser.open(url)
    asked = browser.wait_for(("Login",)) and "/login" in browser.page.url
    shot = browser.screenshot(out / "prefect_login.png")
    ok = asked and browser.submit_password(creds.prefect_auth_string)
    ok = ok and browser.wait_for(("Flow runs",)) and "/login" not in browser.page.url
    return Check(
        "Prefect asks for the auth string, then shows the runs",
        ok,
        url,
        shot,
        f"login page {'shown' if asked else 'NOT shown'}; then {browser.page.url}",
    )


def _prefect_checks(
    browser: Browser, base: str, model: str, creds: Credentials, out: Path
) -> list[Check]:
    from tasks.artifacts import artifact_key

    runs = prefect_get(
        f"{base}/api",
        "/flow_runs/filter",
        {"flows": {"name": {"any_": ["monitor-batch"]}}, "sort": "START_TIME_DESC"},
        creds,
    )
    accepted = [r for r in runs if "accepted" in r["tags"]]  # rejected runs have no drift table
    if not accepted:
        return [Check("Prefect has accepted monitor-batch runs", False, base, out, "none found")]
    newest = accepted[0]
    names = [r["name"] for r in runs[:3]]
    checks = []

    url = f"{base}/runs"
    browser.open(url)
    ok = browser.wait_for((*names, "accepted", model))
    checks.append(
        Check(
            "Prefect lists the monitor-batch flow runs with their tags",
            ok,
            url,
            browser.screenshot(out / "prefect_runs.png"),
            ", ".join(names),
        )
    )

    key = artifact_key(Path(newest["parameters"]["batch_path"]).stem)
    summary, table = f"monitor-{key}", f"drift-{key}"
    url = f"{base}/runs/flow-run/{newest['id']}"
    browser.open(url)
    ok = browser.wait_for(("Artifacts",)) and browser.click("Artifacts")
    ok = ok and browser.wait_for((summary, table))
    checks.append(
        Check(
            f"Prefect shows the artifacts of {newest['name']}",
            ok,
            url + " (Artifacts tab)",
            browser.screenshot(out / "prefect_run_artifacts.png"),
            f"{summary}, {table}",
        )
    )

    clicked = ok and browser.click(summary, selector="*")
    ok = clicked
    ok = ok and browser.wait_for(("Validation", "Drift", "Decision", "MLflow run"))
    checks.append(
        Check(
            f"Prefect renders the summary of {newest['name']}",
            ok,
            url + f" -> {summary}",
            browser.screenshot(out / "prefect_summary.png"),
            "validation, drift, decision, MLflow link",
        )
    )

    deployments = prefect_get(f"{base}/api", "/deployments/filter", {}, creds)
    if deployments:  # after `modelwatch serve`
        names = sorted(d["name"] for d in deployments)
        url = f"{base}/deployments"
        browser.open(url)
        ok = browser.wait_for(tuple(names))
        checks.append(
            Check(
                "Prefect lists the served deployments",
                ok,
                url,
                browser.screenshot(out / "prefect_deployments.png"),
                ", ".join(names),
            )
        )
    return checks


def _close_assistant(browser: Browser, base: str) -> None:
    """MLflow 3 opens its GenAI assistant panel on first load; a returning user has it closed
    (the UI keeps that choice in localStorage), and the pages are easier to read without it."""
    browser.open(f"{base}/")
    browser.evaluate(
        "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
        "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false')"
    )
    browser.open(f"{base}/")  # loaded again: the UI reads the choice at start


def _mlflow_checks(
    browser: Browser, base: str, model: str, experiment: str, creds: Credentials, out: Path
) -> list[Check]:
    exp_id = mlflow_get(
        f"{base}/api/2.0/mlflow/experiments/get-by-name?experiment_name={quote(experiment)}", creds
    )["experiment"]["experiment_id"]
    found = mlflow_get(
        f"{base}/api/2.0/mlflow/runs/search",
        creds,
        {"experiment_ids": [exp_id], "filter": "tags.`modelwatch.timeline` = 'true'"},
    ).get("runs", [])
    checks = []
    _close_assistant(browser, base)
    if found:
        run_id = found[0]["info"]["run_id"]
        url = f"{base}/#/experiments/{exp_id}/runs/{run_id}/model-metrics"
        browser.open(url)
        ok = browser.wait_for(
            ("drift_share", "champion_version"), selector="path.js-line", settle=3
        )
        lines = browser.count("path.js-line")
        detail = f"{lines} line traces"
    else:
        url, ok, detail = f"{base}/#/experiments/{exp_id}", False, "no timeline run"
        browser.open(url)
    checks.append(
        Check(
            "MLflow charts the monitoring metrics over time",
            ok,
            url,
            browser.screenshot(out / "mlflow_metrics.png"),
            detail,
        )
    )

    registered = mlflow_get(
        f"{base}/api/2.0/mlflow/registered-models/get?name={quote(model)}", creds
    )
    aliases = {a["alias"]: a["version"] for a in registered["registered_model"].get("aliases", [])}
    champion = aliases.get("champion")
    url = f"{base}/#/models/{quote(model)}"
    browser.open(url)
    ok = champion is not None and browser.wait_for((model, "champion", f"Version {champion}"))
    checks.append(
        Check(
            "MLflow shows the registered model with its champion alias",
            ok,
            url,
            browser.screenshot(out / "mlflow_model.png"),
            f"champion = version {champion}",
        )
    )

    if champion is None:
        return checks
    version = mlflow_get(
        f"{base}/api/2.0/mlflow/model-versions/get?name={quote(model)}&version={champion}", creds
    ).get("model_version", {})
    first_line = (version.get("description") or "").strip().splitlines()[:1]
    words = first_line[0].replace("*", "").strip()[:40] if first_line else "<no description>"
    url = f"{base}/#/models/{quote(model)}/versions/{champion}"
    browser.open(url)
    ok = browser.wait_for(("champion", words))
    checks.append(
        Check(
            f"MLflow shows champion version {champion} with its comparison summary",
            ok,
            url,
            browser.screenshot(out / "mlflow_model_version.png"),
            words,
        )
    )
    return checks
