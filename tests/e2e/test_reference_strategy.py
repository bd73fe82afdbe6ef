"""Drift against the previous batch instead of the champion's training data (reference.strategy)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import scipy.stats

from modelwatch.stores import history
from modelwatch.stores.project import open_project
from tests.conftest import write_params

pytestmark = pytest.mark.slow


def test_previous_batch_strategy_compares_consecutive_weeks(tmp_path):
    """Reference: scipy.stats.ks_2samp on the temp column of weeks 1 and 2."""
    from flows.replay import replay

    params = write_params(
        "params.yaml",
        tmp_path,
        demo={"max_batches": 2, "bad_batch_after": None},
        reference={"strategy": "previous_batch"},
        drift={"numeric_test": "ks"},
    )
    replay(params_path=params)
    proj = open_project(params)
    first, second = history.batch_runs(proj.client, proj.experiments.monitoring)
    assert first.tags["drift_reference"] == "champion training data (no batch yet)"
    assert second.tags["drift_reference"] == f"previous_batch: {first.batch_id}"
    batches = proj.paths.data_repo / "data/batches"
    week1 = pd.read_csv(batches / f"{first.batch_id}.csv")
    week2 = pd.read_csv(batches / f"{second.batch_id}.csv")
    report = json.loads(
        Path(proj.client.download_artifacts(second.run_id, "drift_report.json")).read_text()
    )
    temp = next(f for f in report["features"] if f["column"] == "temp")
    want = scipy.stats.ks_2samp(week1["temp"], week2["temp"])
    assert temp["p_value"] == pytest.approx(want.pvalue, rel=1e-9)
