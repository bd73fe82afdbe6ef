"""Large Parquet batches on a real Dask LocalCluster (2 worker processes) with real Great
Expectations: the Dask path gives the in-memory path's statistics and failures."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from modelwatch.drift import compute_drift
from modelwatch.errors import ConfigError, SchemaError
from modelwatch.scale import drift as scale_drift
from modelwatch.scale import scoring as scale_scoring
from modelwatch.scale import validation as scale_validation
from modelwatch.scale.cluster import dask_client
from modelwatch.scale.parquet import open_parquet
from modelwatch.settings import (
    SCHEDULER_ENV,
    ColumnRule,
    DataSettings,
    DriftSettings,
    ScaleSettings,
    ValidationSettings,
    load_settings,
    scheduler_address,
)
from modelwatch.stores import validation
from modelwatch.training.scoring import score_frame
from tests.conftest import write_params

NUMERIC = ["a", "b", "c"]
DATA = DataSettings(id="id", target="y", features=[*NUMERIC, "k", "s"], categorical=["k", "s"])
RULES = ValidationSettings(
    max_rows=100_000,
    range_margin=0.5,
    rules={"a": ColumnRule(min=-6.0, max=6.0), "c": ColumnRule(max_missing_share=0.02)},
)
# auto on a 4,000-row reference: Wasserstein / Jensen-Shannon with the bootstrap null; the
# p-value settings: KS / chi2 / z with Benjamini-Hochberg
DISTANCES = DriftSettings()
P_VALUES = DriftSettings(auto_max_rows=10_000)
FILE_ROWS = 1_500


def frame(rng: np.random.Generator, rows: int, shift: float, first_id: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + rows),
            "a": rng.normal(shift, 1, rows),
            "b": rng.exponential(1 + shift, rows),
            "c": rng.integers(0, 50, rows).astype(float),
            "k": rng.choice([0, 1], rows, p=[0.5 - shift / 4, 0.5 + shift / 4]),
            "s": rng.choice(["x", "y", "z"], rows),
        }
    )


def write_folder(batch: pd.DataFrame, folder: Path, rows: int = FILE_ROWS) -> Path:
    """Writes consecutive slices of the batch as part-*.parquet files (row groups of 500)."""
    folder.mkdir(parents=True)
    for k, start in enumerate(range(0, len(batch), rows)):
        part = batch.iloc[start : start + rows]
        part.to_parquet(folder / f"part-{k:03d}.parquet", index=False, row_group_size=500)
    return folder


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of two worker processes, as scale.* starts it by default."""
    from distributed import LocalCluster

    from modelwatch.scale.cluster import local_cluster_options

    with LocalCluster(**local_cluster_options(ScaleSettings())) as running:
        yield running


@pytest.fixture(scope="module")
def client(cluster):
    """A client reached through scale.scheduler: the path of any configured scheduler."""
    with dask_client(ScaleSettings(scheduler=cluster.scheduler_address)) as connected:
        yield connected


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(7)
    reference = frame(rng, 4_000, 0.0, 0)
    batch = frame(rng, 4_500, 0.3, 100_000)
    batch.loc[batch.index[:40], "c"] = np.nan  # missing values the drift tests drop
    return reference, batch


def assert_same_drift(got, want) -> None:
    assert [f.column for f in got.features] == [f.column for f in want.features]
    for g, w in zip(
        (*got.features, got.prediction), (*want.features, want.prediction), strict=True
    ):
        if w is None:
            assert g is None
            continue
        for field in dataclasses.fields(w):
            a, b = getattr(g, field.name), getattr(w, field.name)
            if isinstance(b, float) and not math.isnan(b):
                assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (w.column, field.name)
            else:
                assert a == b, (w.column, field.name)
    assert (got.n_drifted, got.dataset_drift, got.dataset_rule) == (
        want.n_drifted,
        want.dataset_drift,
        want.dataset_rule,
    )
    assert got.drift_share == pytest.approx(want.drift_share, rel=1e-12)


@pytest.mark.parametrize("settings", [DISTANCES, P_VALUES], ids=["distances", "p-values"])
def test_drift_equals_the_in_memory_path(client, frames, tmp_path, settings):
    """Reference: modelwatch.drift.compute_drift on the same frames in memory, field by field
    to 1e-9 (statistics, p-values, BH-adjusted p-values, bootstrap-null thresholds)."""
    reference, batch = frames
    parquet = open_parquet(str(write_folder(batch, tmp_path / "batch")), partition_rows=1_000)
    assert len(parquet.files) == 3 and len(parquet.pieces) == 6

    got = scale_drift.compute_drift(reference, parquet, DATA, settings, client)
    want = compute_drift(reference, batch, DATA, settings)

    assert_same_drift(got, want)
    assert got.n_drifted >= 2  # shifted columns: a, b and k drift, c and s do not


def test_ks_on_the_dask_path_matches_scipy(client, frames, tmp_path):
    """Reference: scipy.stats.ks_2samp (two-sided) on the non-missing values of column c."""
    reference, batch = frames
    parquet = open_parquet(str(write_folder(batch, tmp_path / "batch")))
    got = scale_drift.compute_drift(reference, parquet, DATA, P_VALUES, client)
    want = scipy.stats.ks_2samp(reference["c"].dropna(), batch["c"].dropna())
    c = next(f for f in got.features if f.column == "c")
    assert c.test == "ks" and c.cur_rows == len(batch) - 40
    assert c.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert c.statistic == pytest.approx(want.statistic, rel=1e-9)


def test_a_single_file_and_a_folder_give_the_same_results(client, frames, tmp_path):
    """One file of many row groups (read in pieces of whole row groups) and a folder of files:
    the same drift report and the same validation result."""
    reference, batch = frames
    single = tmp_path / "batch.parquet"
    batch.to_parquet(single, index=False, row_group_size=700)
    one = open_parquet(str(single), partition_rows=1_400)
    folder = open_parquet(str(write_folder(batch, tmp_path / "folder")))
    assert len(one.files) == 1 and len(one.pieces) == 4 and one.n_rows == len(batch)

    drift_one = scale_drift.compute_drift(reference, one, DATA, DISTANCES, client)
    drift_folder = scale_drift.compute_drift(reference, folder, DATA, DISTANCES, client)
    assert_same_drift(drift_one, drift_folder)
    checks = [
        scale_validation.validate_parquet(p, reference, DATA, RULES, client) for p in (one, folder)
    ]
    assert [c.success for c in checks] == [True, True]
    assert checks[0].evaluated == checks[1].evaluated > 20


def plant_failures(batch: pd.DataFrame) -> pd.DataFrame:
    """Problems in several pieces: out of range, missing, unknown category, a repeated id."""
    bad = batch.copy()
    bad.loc[[10, 3_100], "a"] = 50.0  # rule a in [-6, 6]: files 0 and 2
    bad.loc[[2_000], "b"] = np.nan  # max_missing_share 0: file 1
    bad.loc[[4_400], "s"] = "w"  # not in the reference's categories: file 2
    bad.loc[[4_000], "id"] = bad.loc[5, "id"]  # a duplicate id across files 0 and 2
    return bad


def test_validation_finds_the_in_memory_failures(client, frames, tmp_path):
    """Reference: stores.validation.validate_frame (GX on the whole frame in memory): the same
    expectations fail with the same counts, examples and messages; the Dask path adds where."""
    reference, batch = frames
    bad = plant_failures(batch)
    parquet = open_parquet(str(write_folder(bad, tmp_path / "bad")), partition_rows=1_000)

    got = scale_validation.validate_parquet(parquet, reference, DATA, RULES, client)
    want = validation.validate_frame(bad, reference, DATA, RULES, "bad")

    assert not got.success and not want.success
    assert (got.n_rows, got.evaluated, got.failed) == (want.n_rows, want.evaluated, want.failed)
    strip = [
        dataclasses.replace(f, message=f.message.split(" [in ")[0], where="") for f in got.failures
    ]
    assert strip == list(want.failures)
    where = {f.column: f.where for f in got.failures}
    assert where["a"] == "part-000.parquet rows 0-999, part-002.parquet rows 3000-3999"
    assert where["b"] == "part-001.parquet rows 1500-2499"
    assert where["s"] == "part-002.parquet rows 4000-4499"
    assert "[in part-001.parquet rows 1500-2499]" in got.summary()


def test_the_row_count_is_judged_on_the_whole_batch(client, frames, tmp_path):
    """Each piece is below validation.max_rows, the batch is not: rejected, as in memory."""
    reference, batch = frames
    settings = RULES.model_copy(update={"max_rows": 4_000})
    parquet = open_parquet(str(write_folder(batch, tmp_path / "big")))
    got = scale_validation.validate_parquet(parquet, reference, DATA, settings, client)
    want = validation.validate_frame(batch, reference, DATA, settings, "big")
    assert [f.message for f in got.failures] == [f.message for f in want.failures]
    assert got.failures[0].message == "4500 rows, expected 1 to 4000 rows"


def test_a_missing_column_and_a_wrong_type_are_named(client, frames, tmp_path):
    """A Parquet batch without column b and with column a as text: the in-memory verdict."""
    reference, batch = frames
    bad = batch.drop(columns=["b"]).assign(a=batch["a"].round(2).astype(str))
    parquet = open_parquet(str(write_folder(bad, tmp_path / "schema")))
    got = scale_validation.validate_parquet(parquet, reference, DATA, RULES, client)
    want = validation.validate_frame(bad, reference, DATA, RULES, "schema")
    assert [(f.expectation, f.column) for f in got.failures] == [
        (f.expectation, f.column) for f in want.failures
    ]
    messages = [f.message for f in got.failures]
    assert "column 'b' is missing" in messages
    assert any(m.startswith("column 'a' has dtype str, expected numeric") for m in messages)


def test_unreadable_and_inconsistent_parquet_inputs_say_which_file(frames, tmp_path):
    """Not Parquet, files whose types differ, an empty folder, nothing there: a SchemaError
    naming the file (and column), and the input left as it was."""
    _, batch = frames
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"id,a\n1,2\n")
    with pytest.raises(SchemaError, match=r"broken\.parquet: not a readable Parquet file"):
        open_parquet(str(broken))
    assert broken.read_bytes() == b"id,a\n1,2\n"

    folder = write_folder(batch, tmp_path / "mixed")
    batch.iloc[:10].assign(c=lambda f: f["c"].astype(str)).to_parquet(
        folder / "part-009.parquet", index=False
    )
    with pytest.raises(
        SchemaError,
        match=r"part-009\.parquet: column 'c' has type (large_)?string, but double in .*part-000",
    ):
        open_parquet(str(folder))
    assert len(list(folder.iterdir())) == 4

    (tmp_path / "empty").mkdir()
    with pytest.raises(SchemaError, match="no Parquet files in the folder"):
        open_parquet(str(tmp_path / "empty"))
    with pytest.raises(SchemaError, match="nowhere.parquet: not found"):
        open_parquet(str(tmp_path / "nowhere.parquet"))


def test_a_column_missing_from_the_batch_is_named_on_read(frames, tmp_path):
    _, batch = frames
    parquet = open_parquet(str(write_folder(batch, tmp_path / "b")))
    with pytest.raises(SchemaError, match=r"no column 'zz' \(columns: id, a, b, c, k, s\)"):
        parquet.read_column("zz")


def test_scoring_per_partition_equals_scoring_in_memory(client, frames, tmp_path):
    """Reference: score_frame on the whole frame (a scikit-learn linear model, not under test)."""
    from sklearn.linear_model import LinearRegression

    reference, batch = frames
    model = LinearRegression().fit(reference[NUMERIC[:2]], reference["c"])
    data = DATA.model_copy(update={"features": NUMERIC[:2], "categorical": []})
    parquet = open_parquet(str(write_folder(batch, tmp_path / "batch")), partition_rows=1_000)
    scored = scale_scoring.score_parquet(
        parquet, model, data, "regression", tmp_path / "predictions", client
    )
    want = score_frame(model, batch, data, "regression")
    assert len(scored.files) == len(parquet.pieces) == 6
    got = pd.concat([pd.read_parquet(f) for f in scored.files], ignore_index=True)
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)


def test_the_scheduler_comes_from_params_or_the_environment(tmp_path, monkeypatch):
    params = write_params("params.yaml", tmp_path, scale={"scheduler": "tcp://10.1.2.3:8786"})
    scale = load_settings(params).settings.scale
    assert scheduler_address(scale) == "tcp://10.1.2.3:8786"
    monkeypatch.setenv(SCHEDULER_ENV, "tls://dask.internal:8786")
    assert scheduler_address(scale) == "tls://dask.internal:8786"
    monkeypatch.setenv(SCHEDULER_ENV, "dask.internal:8786")
    with pytest.raises(ConfigError, match=f"{SCHEDULER_ENV}: 'dask.internal:8786' is not a Dask"):
        scheduler_address(scale)

    bad = write_params("params.yaml", tmp_path / "bad", scale={"scheduler": "localhost:8786"})
    with pytest.raises(ConfigError, match=r"scale\.scheduler: String should match pattern"):
        load_settings(bad)
    typo = write_params("params.yaml", tmp_path / "typo", scale={"worker": 3})
    with pytest.raises(ConfigError, match=r"scale\.worker: unknown key"):
        load_settings(typo)


def test_modelwatch_run_sends_parquet_to_the_dask_path(tmp_path):
    """URLs, folders and Parquet files go to monitor-large-batch; CSV (or any other file)
    stays on monitor-batch; a path that is not there is an argument error."""
    from modelwatch.app.cli import _is_large, build_parser

    parser = build_parser()
    (tmp_path / "week.csv").write_text("id\n1\n")
    (tmp_path / "week.parquet").write_bytes(b"")
    (tmp_path / "folder").mkdir()
    cases = {"s3://bucket/2026-11/": True, "week.parquet": True, "folder": True, "week.csv": False}
    for given, large in cases.items():
        value = given if "://" in given else str(tmp_path / given)
        assert _is_large(parser.parse_args(["run", value]).batch) is large, given
    with pytest.raises(SystemExit):
        parser.parse_args(["run", str(tmp_path / "nowhere.parquet")])
