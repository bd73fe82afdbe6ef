"""monitor-large-batch end to end: a Parquet batch through the real flow on its DaskTaskRunner
(local cluster), a bad one rejected with its report kept and the batch left in place."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from modelwatch import io
from modelwatch.drift import compute_drift
from modelwatch.settings import load_settings
from modelwatch.stores import registry
from modelwatch.stores.project import load_reference, open_project
from tests.conftest import cli_env, demo_plan, run_modelwatch, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster():
    """One Dask cluster for the module, reached by its address (scale.scheduler) as a
    team's shared scheduler would be: each flow run (and the killed CLI) connects to it
    instead of starting its own local cluster. test_scale covers the local one."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as running:
        yield running.scheduler_address


@pytest.fixture(scope="module")
def project(tmp_path_factory, cluster):
    """A bootstrapped bike project (champion v1) and its first demo batch."""
    from flows.bootstrap import bootstrap

    folder = tmp_path_factory.mktemp("large")
    params = write_params("params.yaml", folder, scale={"scheduler": cluster})
    loaded = load_settings(params)
    plan = demo_plan(loaded, folder / "demo")
    bootstrap(reference_path=plan.reference, params_path=params)
    batch = io.read_csv_file(plan.batches[0].inputs)
    return {"params": params, "loaded": loaded, "batch": batch}


def write_parts(frame: pd.DataFrame, folder: Path, parts: int = 2) -> Path:
    folder.mkdir()
    size = -(-len(frame) // parts)
    for k in range(parts):
        frame.iloc[k * size : (k + 1) * size].to_parquet(folder / f"part-{k}.parquet", index=False)
    return folder


def test_a_parquet_batch_is_validated_scored_and_drift_checked(project, tmp_path):
    """Reference: compute_drift in memory on the same batch (the CSV path's statistics)."""
    from flows.large_batch import run_large_batch

    batch = project["batch"]
    folder = write_parts(batch, tmp_path / "week-1")
    state = run_large_batch(str(folder), project["params"])

    assert state.is_completed(), state.message
    result = state.result()
    assert result.validation.success and result.validation.n_rows == len(batch)
    proj = open_project(project["params"])
    want = compute_drift(load_reference(proj), batch, proj.settings.data, proj.settings.drift)
    for got, expected in zip(result.drift.features, want.features, strict=True):
        assert (got.column, got.test, got.drifted) == (
            expected.column,
            expected.test,
            expected.drifted,
        )
        assert got.statistic == pytest.approx(expected.statistic, rel=1e-9)
    assert result.drift.prediction is not None and result.drift.prediction.status == "ok"
    scored = pd.concat(pd.read_parquet(f) for f in sorted(Path(result.predictions).iterdir()))
    assert scored[proj.settings.data.id].tolist() == batch[proj.settings.data.id].tolist()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda b, d: write_parts(b.drop(columns=["hum"]), d), "column 'hum' is missing"),
        (
            lambda b, d: write_parts(b.assign(hum=b["hum"] * 100), d),
            "column 'hum': ",
        ),
    ],
    ids=["missing-column", "out-of-range"],
)
def test_a_bad_parquet_batch_is_rejected_and_left_in_place(project, tmp_path, make, fragment):
    from flows.large_batch import run_large_batch

    loaded = project["loaded"]
    proj = open_project(project["params"])
    before = registry.aliases(proj.client, proj.model_name)
    folder = make(project["batch"], tmp_path / "bad-week")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}

    state = run_large_batch(str(folder), project["params"])

    assert state.is_failed() and state.name == "Rejected"
    assert fragment in state.message
    report = loaded.paths.quarantine / "bad-week" / "report.md"
    assert fragment in report.read_text()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # input untouched
    assert registry.aliases(proj.client, proj.model_name) == before


def test_an_unreadable_parquet_file_is_rejected_with_its_name(project, tmp_path):
    from flows.large_batch import run_large_batch

    broken = tmp_path / "week-9.parquet"
    broken.write_text("instant,hum\n1,0.5\n")
    state = run_large_batch(str(broken), project["params"])
    assert state.is_failed() and state.name == "Rejected"
    assert "not a readable Parquet file" in state.message
    kept = project["loaded"].paths.quarantine / "week-9.parquet"
    assert (kept / "week-9.parquet").read_bytes() == broken.read_bytes()
    assert broken.exists()


def _large_runs(proj, name: str) -> list:
    from modelwatch import names
    from modelwatch.stores import tracking

    query = f"tags.`{names.BATCH_KIND}` = 'large' and tags.`{names.BATCH_ID}` = '{name}'"
    return tracking.find_runs(proj.client, proj.experiments.monitoring, query)


def test_a_large_batch_is_logged_once_and_a_rerun_is_not_repeated(project, tmp_path):
    """The MLflow run holds the flow's drift report (reference: the result the flow returned);
    the same files again end Completed without a second run; a changed file is a new batch."""
    from flows.large_batch import run_large_batch
    from modelwatch import names

    folder = write_parts(project["batch"], tmp_path / "week-2")
    state = run_large_batch(str(folder), project["params"])
    assert state.is_completed(), state.message
    report = state.result().drift
    proj = open_project(project["params"])
    (run,) = _large_runs(proj, "week-2")
    assert run.info.status == "FINISHED"
    assert run.data.tags[names.VALIDATION_STATUS] == names.ACCEPTED
    assert run.data.tags[names.BATCH_SOURCE] == str(folder)
    assert run.data.metrics[names.DRIFT_SHARE] == pytest.approx(report.drift_share, abs=1e-12)
    assert run.data.metrics[names.ROWS] == len(project["batch"])
    first = report.features[0]
    logged = run.data.metrics[names.drift("statistic", first.column)]
    assert logged == pytest.approx(first.statistic, rel=1e-12)

    again = run_large_batch(str(folder), project["params"])
    assert again.is_completed() and "done before" in again.message
    assert run.info.run_id in again.message
    assert len(_large_runs(proj, "week-2")) == 1

    part = pd.read_parquet(folder / "part-1.parquet")
    part.iloc[:-1].to_parquet(folder / "part-1.parquet", index=False)  # a row less
    changed = run_large_batch(str(folder), project["params"])
    assert changed.is_completed() and "done before" not in (changed.message or "")
    assert len(_large_runs(proj, "week-2")) == 2


def test_killed_while_logging_then_rerun_logs_exactly_once(project, tmp_path):
    """`modelwatch run` SIGKILLed (its whole process group; the shared cluster lives on) inside the
    MLflow run, after the drift report was logged: the rerun marks the unfinished run KILLED
    and does the batch again, so exactly one FINISHED run remains."""
    folder = write_parts(project["batch"], tmp_path / "week-3")
    point = "modelwatch.stores.tracking:log_json:after:2"  # validation.json, drift_report.json
    code, out = run_modelwatch(project["params"], ["run", folder], cli_env(), kill=point)
    assert code in (-9, 137), out[-3000:]
    assert f"fault injection: SIGKILL at {point}" in out
    proj = open_project(project["params"])
    (left,) = _large_runs(proj, "week-3")
    assert left.info.status == "RUNNING"

    from flows.large_batch import run_large_batch

    state = run_large_batch(str(folder), project["params"])
    assert state.is_completed(), state.message
    runs = {r.info.run_id: r.info.status for r in _large_runs(proj, "week-3")}
    assert sorted(runs.values()) == ["FINISHED", "KILLED"]
    assert runs[left.info.run_id] == "KILLED"
