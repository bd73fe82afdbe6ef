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
from tests.conftest import demo_plan, write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """A bootstrapped bike project (champion v1) and its first demo batch."""
    from flows.bootstrap import bootstrap

    folder = tmp_path_factory.mktemp("large")
    params = write_params("params.yaml", folder, scale={"workers": 2})
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
