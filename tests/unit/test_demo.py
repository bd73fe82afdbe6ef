"""prepare_demo on the bundled bike-sharing hour.csv, cut as the shipped params.yaml says."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from modelwatch.errors import ConfigError
from modelwatch.settings import load_settings
from modelwatch.streams.demo import DemoPlan, prepare_demo

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "data" / "demo" / "bike_sharing" / "hour.csv"
FIRST_BATCH = pd.Timestamp("2011-01-29")  # demo.reference_end, a Saturday (batch_freq W-SAT)
WEEK = pd.Timedelta(days=7)


@pytest.fixture(scope="module")
def settings():
    return load_settings(ROOT / "params.yaml").settings


@pytest.fixture(scope="module")
def source() -> pd.DataFrame:
    frame = pd.read_csv(SOURCE)
    frame["day"] = pd.to_datetime(frame["dteday"])
    return frame


@pytest.fixture(scope="module")
def plan(settings, tmp_path_factory) -> DemoPlan:
    out = tmp_path_factory.mktemp("demo")
    return prepare_demo(SOURCE, settings.data, settings.demo, out)


def labelled(plan: DemoPlan):
    return [b for b in plan.batches if b.labels is not None]


def inputs_columns(settings) -> list[str]:
    return [settings.data.id, settings.data.timestamp, *settings.data.features]


def test_shipped_demo_section_matches_these_tests(settings):
    demo = settings.demo
    assert (demo.reference_end, demo.batch_freq, demo.max_batches, demo.label_delay_batches) == (
        "2011-01-29",
        "W-SAT",
        52,
        1,
    )
    assert (demo.bad_batch_after, demo.bad_batch_column, demo.bad_batch_factor) == (
        20,
        "hum",
        100.0,
    )


def test_reference_is_every_row_before_reference_end(plan, settings, source):
    reference = pd.read_csv(plan.reference)
    assert list(reference.columns) == [*inputs_columns(settings), "cnt"]
    assert (pd.to_datetime(reference["dteday"]) < FIRST_BATCH).all()
    want = source[source["day"] < FIRST_BATCH]
    assert reference["instant"].tolist() == want["instant"].tolist()
    assert reference["cnt"].tolist() == want["cnt"].tolist()


def test_weekly_batches_in_order_without_overlap_or_loss(plan, settings, source):
    batches = labelled(plan)
    assert [b.index for b in batches] == list(range(1, 53))
    seen: list[int] = []
    for b in batches:
        start = FIRST_BATCH + (b.index - 1) * WEEK
        assert b.batch_id == f"batch-{b.index:03d}-{start:%Y-%m-%d}"
        frame = pd.read_csv(b.inputs)
        days = pd.to_datetime(frame["dteday"])
        assert days.min() >= start and days.max() < start + WEEK, b.batch_id
        assert frame["instant"].is_monotonic_increasing
        seen.extend(frame["instant"])
    reference = pd.read_csv(plan.reference)
    end = FIRST_BATCH + 52 * WEEK
    want = source.loc[source["day"] < end, "instant"].tolist()
    assert len(seen) == len(set(seen))  # no overlap
    assert len(reference) + len(seen) == len(want)  # no lost rows
    assert reference["instant"].tolist() + seen == want  # and in time order


def test_batch_files_have_no_target_and_label_files_have_id_and_target(plan, settings, source):
    truth = source.set_index("instant")["cnt"]
    for b in labelled(plan):
        inputs = pd.read_csv(b.inputs)
        labels = pd.read_csv(b.labels)
        assert list(inputs.columns) == inputs_columns(settings)
        assert list(labels.columns) == ["instant", "cnt"]
        assert labels["instant"].tolist() == inputs["instant"].tolist()
        assert labels["cnt"].tolist() == truth.loc[labels["instant"]].tolist()
        assert b.inputs.parent.name == "batches" and b.labels.parent.name == "labels"


def test_sensor_fault_batch_has_hum_times_100(plan, settings):
    faulty = [b for b in plan.batches if b.labels is None]
    assert [(b.index, b.batch_id) for b in faulty] == [(20, "batch-020-2011-06-11-sensor-fault")]
    position = plan.batches.index(faulty[0])
    assert plan.batches[position - 1].batch_id == "batch-020-2011-06-11"  # right after it
    original = pd.read_csv(plan.batches[position - 1].inputs)
    bad = pd.read_csv(faulty[0].inputs)
    assert list(bad.columns) == inputs_columns(settings)
    np.testing.assert_allclose(bad["hum"], original["hum"] * 100.0, rtol=1e-12)
    assert bad["hum"].max() > 1 >= original["hum"].max()
    pd.testing.assert_frame_equal(bad.drop(columns="hum"), original.drop(columns="hum"))


@pytest.mark.parametrize(
    "delay, index, due",
    [
        (1, 1, []),
        (1, 2, [1]),
        (1, 21, list(range(1, 21))),  # the sensor-fault copy has no labels and is never due
        (1, 52, list(range(1, 52))),
        (0, 3, [1, 2, 3]),
        (3, 3, []),
        (3, 10, list(range(1, 8))),
    ],
)
def test_labels_due_respects_the_delay(plan, delay, index, due):
    shifted = DemoPlan(plan.reference, plan.batches, delay)
    got = shifted.labels_due(index)
    assert [b.index for b in got] == due
    assert all(b.labels is not None for b in got)


def test_plan_uses_configured_delay(plan):
    assert plan.label_delay == 1
    assert [b.batch_id for b in plan.labels_due(3)] == [
        "batch-001-2011-01-29",
        "batch-002-2011-02-05",
    ]


@pytest.mark.parametrize(
    "changes, message",
    [
        (
            {"reference_end": "2013-01-01"},
            r"^demo: the reference rule leaves 17379 reference rows and 0 production rows; "
            r"both must be non-empty$",
        ),
        (
            {"reference_end": "2010-06-01"},
            r"^demo: the reference rule leaves 0 reference rows and 17379 production rows; "
            r"both must be non-empty$",
        ),
        ({"batch_freq": "fortnightly"}, r"^demo\.batch_freq: .* \(got 'fortnightly'\)$"),
        ({"bad_batch_column": "cnt"}, r"^demo\.bad_batch_column: 'cnt' is not a batch column$"),
    ],
)
def test_bad_demo_config(settings, tmp_path, changes, message):
    demo = settings.demo.model_copy(update=changes)
    before = SOURCE.stat().st_size
    with pytest.raises(ConfigError, match=message):
        prepare_demo(SOURCE, settings.data, demo, tmp_path / "out")
    assert SOURCE.stat().st_size == before


def test_bad_reference_end_writes_nothing(settings, tmp_path):
    demo = settings.demo.model_copy(update={"reference_end": "2013-01-01"})
    with pytest.raises(ConfigError, match="0 production rows"):
        prepare_demo(SOURCE, settings.data, demo, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_source_without_a_configured_column(settings, tmp_path, source):
    path = tmp_path / "hour.csv"
    source.drop(columns=["hum", "day"]).head(50).to_csv(path, index=False)
    message = f"{path}: columns ['hum'] named in params.yaml are not in the file"
    with pytest.raises(ConfigError, match=f"^{re.escape(message)}$"):
        prepare_demo(path, settings.data, settings.demo, tmp_path / "out")
