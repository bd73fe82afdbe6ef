"""The `modelwatch` command as a user runs it: a subprocess, its exit code and what it prints."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [
    "demo",
    "run",
    "collect",
    "bootstrap",
    "adopt",
    "check-params",
    "retrain",
    "rollback",
    "history",
    "decision",
    "approvals",
    "approve",
    "reject",
    "table",
    "status",
    "doctor",
    "serve",
    "serve-model",
    "ui",
    "server",
]


def modelwatch(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MODELWATCH_HOME"}
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.app.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_help_lists_the_commands():
    proc = modelwatch("--help")
    assert proc.returncode == 0
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: modelwatch [-h] [--params PARAMS]")
    assert "{" + ",".join(COMMANDS) + "}" in proc.stdout
    for command in COMMANDS:
        assert f"\n    {command} " in proc.stdout, command
    assert 'modelwatch retrain --reason "new pricing policy"' in proc.stdout


def test_collect_names_a_bad_now_without_touching_anything():
    proc = modelwatch("collect", "--now", "yesterday")
    assert proc.returncode == 2 and proc.stdout == ""
    assert last_line(proc.stderr) == (
        "modelwatch collect: error: argument --now: expected an ISO 8601 time such as "
        "2026-11-20T12:00, got 'yesterday'"
    )


def test_missing_params_file_names_it():
    assert not (ROOT / "missing.yaml").exists()
    proc = modelwatch("--params", "missing.yaml", "demo")
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert last_line(proc.stderr) == (
        "modelwatch: error: argument --params: missing.yaml: no such file"
    )
    assert [line for line in proc.stderr.splitlines() if "missing.yaml" in line] == [
        last_line(proc.stderr)
    ]
    assert "Traceback" not in proc.stderr


def test_unknown_params_key_is_one_line_without_traceback(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["drift"]["bogus"] = 3
    raw["project"]["home"] = str(tmp_path / "home")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    before = params.read_bytes()
    proc = modelwatch("--params", str(params), "table")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == f"modelwatch: error: {params}: drift.bogus: unknown key (got 3)\n"
    assert params.read_bytes() == before
    assert not (tmp_path / "home").exists()  # nothing was created for a bad config


def test_default_params_file_missing_in_cwd(tmp_path):
    proc = modelwatch("table", cwd=tmp_path)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == f"modelwatch: error: {tmp_path / 'params.yaml'}: file not found\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "args, line",
    [
        (
            ["run", "nonexistent.csv"],
            "modelwatch run: error: argument batch: nonexistent.csv: no such file",
        ),
        (
            ["retrain", "--reason", "  "],
            "modelwatch retrain: error: argument --reason: the reason must not be blank",
        ),
        (["retrain"], "modelwatch retrain: error: the following arguments are required: --reason"),
        (
            ["demo", "--max-batches", "0"],
            "modelwatch demo: error: argument --max-batches: expected a positive integer, got '0'",
        ),
        (
            ["serve-model", "--port", "70000"],
            "modelwatch serve-model: error: argument --port: expected a port number 1-65535, "
            "got '70000'",
        ),
        (
            ["promote"],
            "modelwatch: error: argument command: invalid choice: 'promote' "
            "(choose from 'demo', 'run', 'collect', 'bootstrap', 'adopt', 'check-params', "
            "'retrain', 'rollback', 'history', 'decision', 'approvals', 'approve', 'reject', "
            "'table', 'status', 'doctor', 'serve', 'serve-model', 'ui', 'server')",
        ),
    ],
)
def test_argument_errors_name_the_argument(args, line):
    proc = modelwatch(*args)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert last_line(proc.stderr) == line
    assert "Traceback" not in proc.stderr


def test_importing_the_cli_imports_no_heavy_library():
    code = (
        "import sys, modelwatch.app.cli; "
        "print(sorted(m for m in ('prefect', 'mlflow', 'sklearn', 'great_expectations', "
        "'dvc', 'pandas') if m in sys.modules))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (proc.returncode, proc.stdout.strip(), proc.stderr) == (0, "[]", "")


def test_force_retrain_without_reason_is_an_argument_error(tmp_path):
    batch = tmp_path / "b.csv"
    batch.write_text("instant\n1\n")
    proc = modelwatch("run", str(batch), "--force-retrain")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1] == (
        "modelwatch: error: run --force-retrain needs --reason (why the model must be retrained)"
    )


def test_check_params_reports_what_would_reject_good_batches(tmp_path):
    """A reference with a constant column, 5 % missing humidity and an unparsable date, checked
    with the shipped bike params (max_missing_share 0): one line each, exit 1; the clean
    reference: exit 0."""
    import pandas as pd

    reference = pd.read_csv(ROOT / "tests" / "data" / "bike_ok.csv")
    clean = tmp_path / "clean.csv"
    reference.assign(cnt=range(len(reference))).to_csv(clean, index=False)
    proc = modelwatch("check-params", str(clean))
    assert (proc.returncode, proc.stdout) == (
        0,
        "params.yaml with clean.csv (60 rows): nothing found\n",
    )
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    del raw["validation"]["rules"]["windspeed"]  # its range is then inferred from the reference
    raw["project"]["home"] = str(tmp_path / "home")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    bad = reference.assign(cnt=range(len(reference)), windspeed=0.0)
    bad.loc[:2, "hum"] = None
    bad["dteday"] = bad["dteday"].astype(str)
    bad.loc[5, "dteday"] = "soon"
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    proc = modelwatch("--params", str(params), "check-params", str(path))
    assert proc.returncode == 1, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "params.yaml with bad.csv (60 rows): 3 finding(s)"
    assert any(line.startswith("- column 'hum': 5.0% missing in the reference") for line in lines)
    assert any(
        line.startswith("- column 'windspeed' is constant in the reference (0.0)") for line in lines
    )
    assert "- column 'dteday': 1 value(s) are not dates (e.g. 'soon')" in lines


def test_credentials_file_others_can_read_is_refused_in_one_line(tmp_path):
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["project"]["home"] = str(tmp_path / "home")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    path = tmp_path / "home" / "credentials.json"
    path.parent.mkdir()
    path.write_text('{"copied": "from a shared folder"}')
    path.chmod(0o644)
    proc = modelwatch("--params", str(params), "status")
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"modelwatch: error: {path}: mode -rw-r--r-- lets other users read the server "
        f"credentials: `chmod 600 {path}` (or delete it to generate new ones)\n"
    )
    assert path.read_text() == '{"copied": "from a shared folder"}'  # left as it was


def test_a_prefect_server_that_does_not_answer_fails_in_one_line_and_moves_nothing(tmp_path):
    """Server mode with the Prefect API down (PREFECT_API_URL on a port where nothing
    listens): one line naming the server, exit 1, no traceback, the batch where it was and no
    ledger claim."""
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["project"]["home"] = str(tmp_path / "home")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    batch = tmp_path / "batch.csv"
    batch.write_bytes((ROOT / "tests" / "data" / "bike_ok.csv").read_bytes())
    env = {k: v for k, v in os.environ.items() if k != "MODELWATCH_HOME"}
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    proc = subprocess.run(
        [sys.executable, "-m", "modelwatch.app.cli", "--params", str(params), "run", str(batch)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith(f"modelwatch: error: Prefect server http://127.0.0.1:{port}/api did not")
    assert "every input stays where it is" in line
    assert batch.read_bytes() == (ROOT / "tests" / "data" / "bike_ok.csv").read_bytes()
    ledger = tmp_path / "home" / "ledger.db"
    if ledger.exists():
        import sqlalchemy as sa

        with sa.create_engine(f"sqlite:///{ledger}").connect() as conn:
            tables = sa.inspect(conn).get_table_names()
            if "batches" in tables:
                assert conn.execute(sa.text("select count(*) from batches")).scalar() == 0
