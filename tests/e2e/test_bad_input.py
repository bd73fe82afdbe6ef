"""Every kind of bad batch through the real monitor-batch flow: message, quarantine, no harm."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from modelwatch.settings import load_settings
from modelwatch.stores import history, registry
from modelwatch.stores.project import open_project
from tests.conftest import demo_plan, write_params

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A bootstrapped bike project (champion v1) that no test may change."""
    from flows.bootstrap import bootstrap

    folder = tmp_path_factory.mktemp("bad-input")
    params = write_params("params.yaml", folder)
    loaded = load_settings(params)
    plan = demo_plan(loaded, folder / "demo")
    bootstrap(reference_path=plan.reference, params_path=params)
    proj = open_project(params)
    client, exps = proj.client, proj.experiments
    return {"params": params, "loaded": loaded, "client": client, "exps": exps, "folder": folder}


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("bike_missing_column.csv", "column 'hum' is missing"),
        ("bike_extra_column.csv", "column 'foo' is not in the expected schema"),
        ("bike_wrong_dtype.csv", "column 'temp' has dtype str, expected numeric"),
        ("bike_empty.csv", "file is empty (0 bytes)"),
        ("bike_header_only.csv", "no rows"),
        ("bike_unparsable.csv", "not a readable CSV file"),
        ("bike_out_of_range.csv", "column 'hum': 60 values outside [0, 1]"),
        ("bike_no_id_column.csv", "column 'instant' is missing"),
        ("bike_missing_id.csv", "column 'instant': 2 missing values"),
        ("bike_duplicate_ids.csv", "column 'instant': 5 duplicate ids"),
        ("bike_text_id.csv", "column 'instant' has dtype str, expected numeric"),
        (
            "bike_bad_timestamp.csv",
            "column 'dteday': 1 value not a date or time (e.g. 'not-a-date')",
        ),
        ("bike_long_cell.csv", "column 'dteday': 1 value longer than 1000 characters"),
        (
            "bike_far_timestamp.csv",
            "column 'dteday': 1 timestamp(s) more than 366D outside the known span",
        ),
    ],
)
def test_bad_batch_rejected_quarantined_champion_untouched(project, tmp_path, name, fragment):
    from flows.monitor import monitor_batch

    client, loaded = project["client"], project["loaded"]
    model = loaded.settings.project.model_name
    before = registry.aliases(client, model)
    batch = tmp_path / name
    shutil.copyfile(DATA / name, batch)
    state = monitor_batch(batch_path=batch, params_path=project["params"], return_state=True)
    kept = loaded.paths.quarantine / batch.stem

    assert state.is_failed() and state.name == "Rejected"
    assert fragment in state.message and f"kept in {kept}" in state.message
    assert "rejected" not in state.message.lower()  # said once, by the state's name
    assert (kept / name).read_bytes() == (DATA / name).read_bytes()
    assert fragment in (kept / "report.md").read_text()
    assert batch.exists()  # the user's file is left in place
    assert registry.aliases(client, model) == before == {"champion": "1", "challenger": "1"}
    runs = [
        r
        for r in history.batch_runs(client, project["exps"].monitoring)
        if r.batch_id == batch.stem
    ]
    assert [r.status for r in runs] == [history.REJECTED]
    assert not (loaded.paths.data_repo / "data/batches" / name).exists()


def test_good_batch_passes_the_same_flow(project, tmp_path):
    """Control for the cases above: the valid file is accepted and versioned."""
    from flows.monitor import monitor_batch

    batch = tmp_path / "bike_ok.csv"
    shutil.copyfile(DATA / "bike_ok.csv", batch)
    state = monitor_batch(batch_path=batch, params_path=project["params"], return_state=True)
    assert state.is_completed()
    stored = project["loaded"].paths.data_repo / "data/batches/bike_ok.csv"
    assert stored.read_bytes() == batch.read_bytes()


def test_the_cli_exits_2_on_a_rejected_batch_with_one_line(project, tmp_path):
    """Exit codes (README, Command line): 0 accepted or skipped, 2 rejected, 1 a crash."""
    name = "bike_out_of_range.csv"
    batch = tmp_path / "cli" / name
    batch.parent.mkdir()
    frame = pd.read_csv(DATA / name)
    frame.loc[0, "temp"] += 0.01  # not the content the test above already sent
    frame.to_csv(batch, index=False)
    cli = Path(sys.executable).parent / "modelwatch"
    proc = subprocess.run(
        [str(cli), "--params", str(project["params"]), "run", str(batch)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    kept = project["loaded"].paths.quarantine / batch.stem
    assert proc.stdout.strip().splitlines()[-1] == (
        f"{name}: Rejected: column 'hum': 60 values outside [0, 1] (e.g. 81.0, 80.0, 75.0); "
        f"kept in {kept}"
    )
