"""Look at both UIs as a person would: headless Chromium on the Prefect UI and the MLflow UI.

Starts `modelwatch ui` on the project's stores (after a short replay into a temporary home with
--fresh), opens the pages in Debian's chromium (--headless --no-sandbox --disable-gpu
--disable-background-networking), checks what a person would look for, and keeps screenshots:

  prefect_runs.png       the monitor-batch flow runs are listed
  prefect_artifacts.png  their markdown summaries and drift tables (monitor-*, drift-*)
  mlflow_metrics.png     the monitoring experiment's metrics over time (chart view)
  mlflow_model.png       the registered model with its `champion` alias

    .venv/bin/python scripts/check_uis.py --fresh 4          # replay 4 batches first (~1.5 min)
    .venv/bin/python scripts/check_uis.py --params params.yaml   # after `make demo`
Exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import yaml

from modelwatch.ui import wait_healthy

ROOT = Path(__file__).resolve().parent.parent
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SIZE = "--window-size=1400,1000"  # without it, lists that render on scroll stay empty


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        sys.exit("chromium is not installed (make ui-check installs Debian's chromium package)")
    return found


def page_text(url: str, needle: str, budget_ms: int = 20000, tries: int = 4) -> str:
    """Returns the rendered DOM of a page once it contains `needle` (or the last attempt)."""
    html = ""
    for attempt in range(tries):
        proc = subprocess.run(
            [
                chromium(),
                *FLAGS,
                SIZE,
                f"--virtual-time-budget={budget_ms * (attempt + 1)}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        html = proc.stdout
        if needle in html:
            break
    return html


def screenshot(url: str, out: Path, budget_ms: int = 30000) -> Path:
    subprocess.run(
        [
            chromium(),
            *FLAGS,
            SIZE,
            f"--virtual-time-budget={budget_ms}",
            f"--screenshot={out}",
            url,
        ],
        capture_output=True,
        timeout=180,
        check=False,
    )
    return out


def fresh_project(batches: int, folder: Path) -> Path:
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["demo"]["source"] = str(ROOT / raw["demo"]["source"])
    raw["project"]["home"] = str(folder / "home")
    params = folder / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    modelwatch = Path(sys.executable).parent / "modelwatch"
    subprocess.run(
        [str(modelwatch), "--params", str(params), "demo", "--max-batches", str(batches)],
        check=True,
        capture_output=True,
    )
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument(
        "--fresh",
        type=int,
        default=None,
        metavar="N",
        help="replay N batches into a temporary home first",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "test-output" / "ui")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="modelwatch-ui-"))
    params = fresh_project(args.fresh, tmp) if args.fresh else args.params.resolve()
    loaded = yaml.safe_load(params.read_text())
    model, experiment = loaded["project"]["model_name"], loaded["tracking"]["experiment"]
    prefect_port, mlflow_port = free_port(), free_port()
    modelwatch = Path(sys.executable).parent / "modelwatch"
    ui = subprocess.Popen(
        [
            str(modelwatch),
            "--params",
            str(params),
            "ui",
            "--prefect-port",
            str(prefect_port),
            "--mlflow-port",
            str(mlflow_port),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
    )
    prefect, mlflow = f"http://127.0.0.1:{prefect_port}", f"http://127.0.0.1:{mlflow_port}"
    results: list[tuple[str, bool, str]] = []
    try:
        if not (wait_healthy(f"{prefect}/api/health", ui) and wait_healthy(f"{mlflow}/health", ui)):
            sys.stderr.write("the UIs did not start\n")
            return 1
        exp_id = _experiment_id(mlflow, f"{experiment}-monitoring")
        checks = [
            (
                "Prefect lists the monitor-batch flow runs",
                f"{prefect}/runs",
                "monitor-batch-0",
                "prefect_runs.png",
            ),
            (
                "Prefect shows their artifacts",
                f"{prefect}/artifacts",
                "monitor-batch-0",
                "prefect_artifacts.png",
            ),
            (
                "MLflow charts the monitoring metrics over time",
                f"{mlflow}/#/experiments/{exp_id}/runs?compareRunsMode=CHART",
                "drift_share",
                "mlflow_metrics.png",
            ),
            (
                "MLflow shows the registered model with its champion alias",
                f"{mlflow}/#/models/{model}",
                "champion",
                "mlflow_model.png",
            ),
        ]
        for title, url, needle, png in checks:
            html = page_text(url, needle)
            shot = screenshot(url, args.out / png)
            ok = needle in html and shot.exists()
            results.append((title, ok, f"{url} -> {shot}"))
    finally:
        ui.send_signal(signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            ui.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    for title, ok, where in results:
        sys.stdout.write(f"{'ok  ' if ok else 'FAIL'} {title}: {where}\n")
    return 0 if results and all(ok for _, ok, _ in results) else 1


def _experiment_id(mlflow: str, name: str) -> str:
    import json

    url = f"{mlflow}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())["experiment"]["experiment_id"]


if __name__ == "__main__":
    raise SystemExit(main())
