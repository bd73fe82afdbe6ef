"""build_window: newest batches are the holdout, older ones train, reference fills in."""

import numpy as np
import pandas as pd
import pytest

from modelwatch.errors import InsufficientDataError
from modelwatch.settings import TrainingSettings
from modelwatch.training.windows import LabelledBatch, build_window

COLUMNS = ["instant", "temp", "cnt"]


def frame(rng: np.random.Generator, first_id: int, rows: int, extra: bool = False) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "instant": np.arange(first_id, first_id + rows),
            "temp": rng.uniform(0, 1, rows),
            "cnt": rng.integers(0, 500, rows),
        }
    )
    if extra:  # batches carry more columns than the reference (e.g. the logged prediction)
        out.insert(1, "prediction", rng.uniform(0, 500, rows))
    return out


@pytest.fixture
def data():
    """A 10-row reference (ids 0..9) and labelled batches 1..7 of 3+i rows (ids i*100...)."""
    rng = np.random.default_rng(7)
    reference = frame(rng, 0, 10)
    batches = [
        LabelledBatch(f"b{i}", i, frame(rng, i * 100, 3 + i, extra=True)) for i in range(1, 8)
    ]
    return reference, batches


def cat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([f[COLUMNS] for f in frames], ignore_index=True)


def test_holdout_is_newest_and_window_is_the_batches_before(data):
    reference, batches = data
    order = np.random.default_rng(3).permutation(len(batches))
    shuffled = [batches[i] for i in order]  # input order must not matter
    settings = TrainingSettings(window_batches=3, holdout_batches=1)
    window = build_window(reference, shuffled, settings)
    assert window.holdout_batches == ("b7",)
    assert window.train_batches == ("b4", "b5", "b6")
    assert window.through_index == 6
    pd.testing.assert_frame_equal(window.holdout, cat([batches[6].frame]))
    pd.testing.assert_frame_equal(window.train, cat([b.frame for b in batches[3:6]]))
    assert set(window.train["instant"]).isdisjoint(window.holdout["instant"])
    assert window.describe() == "train on 24 rows (b4, b5, b6); compare on 10 rows (b7)"


def test_two_holdout_batches(data):
    reference, batches = data
    window = build_window(reference, batches, TrainingSettings(window_batches=2, holdout_batches=2))
    assert (window.train_batches, window.holdout_batches, window.through_index) == (
        ("b4", "b5"),
        ("b6", "b7"),
        5,
    )
    pd.testing.assert_frame_equal(window.holdout, cat([batches[5].frame, batches[6].frame]))
    assert len(window.train) == 7 + 8


def test_window_exactly_filled_leaves_reference_out(data):
    reference, batches = data
    window = build_window(
        reference, batches[:4], TrainingSettings(window_batches=3, holdout_batches=1)
    )
    assert (window.train_batches, window.holdout_batches) == (("b1", "b2", "b3"), ("b4",))
    assert not set(window.train["instant"]) & set(reference["instant"])


def test_reference_fills_in_when_too_few_batches(data):
    reference, batches = data
    window = build_window(
        reference, batches[:3], TrainingSettings(window_batches=6, holdout_batches=1)
    )
    assert window.train_batches == ("reference", "b1", "b2")
    assert window.holdout_batches == ("b3",)
    assert window.through_index == 2
    want = cat([reference, batches[0].frame, batches[1].frame])
    pd.testing.assert_frame_equal(window.train, want)
    assert list(window.train.columns) == COLUMNS  # batch-only columns are dropped


def test_single_labelled_batch_trains_on_reference_only(data):
    reference, batches = data
    window = build_window(reference, batches[:1], TrainingSettings(window_batches=6))
    assert (window.train_batches, window.holdout_batches, window.through_index) == (
        ("reference",),
        ("b1",),
        0,
    )
    pd.testing.assert_frame_equal(window.train, cat([reference]))


@pytest.mark.parametrize("n_batches, holdout", [(0, 1), (1, 2), (2, 3)])
def test_too_few_labelled_batches(data, n_batches, holdout):
    reference, batches = data
    with pytest.raises(
        InsufficientDataError,
        match=rf"^{n_batches} labelled batch\(es\) so far; comparing models "
        rf"needs {holdout} that no model was trained on "
        r"\(training\.holdout_batches\)$",
    ):
        build_window(reference, batches[:n_batches], TrainingSettings(holdout_batches=holdout))
    assert len(reference) == 10  # inputs untouched


def _planted_options(kind: str, labelled_through: int, since_drop: int):
    """The usual 6-batch window and the policy's shorter one on a planted stream (change at
    batch 15), both with the newest labelled batch as holdout."""
    from modelwatch.settings import DataSettings
    from modelwatch.streams import planted

    stream = planted.make_stream(kind, "regression", batches=20, batch_rows=300, seed=3)
    labelled = [
        LabelledBatch(str(i), i, frame)
        for i, frame in enumerate(stream.batches, start=1)
        if i <= labelled_through
    ]
    usual = TrainingSettings(window_batches=6, holdout_batches=1, model="hist_gradient_boosting")
    shorter = usual.model_copy(update={"window_batches": since_drop})
    data = DataSettings(
        id="row_id",
        target="target",
        timestamp="day",
        features=[*planted.NUMERIC, *planted.CATEGORICAL],
        categorical=planted.CATEGORICAL,
    )
    options = [build_window(stream.reference, labelled, s) for s in (usual, shorter)]
    return options, data, usual


def test_after_a_concept_change_the_window_since_the_drop_is_chosen():
    """Reference: sklearn.metrics.mean_absolute_error of the same pipeline on the holdout."""
    from sklearn.metrics import mean_absolute_error

    from modelwatch.training.fit import build_pipeline, choose_window, split_xy

    # labels through batch 17: the change began at 15, so 15 and 16 train, 17 is the holdout
    options, data, training = _planted_options("abrupt", 17, 2)
    chosen, scored = choose_window(options, data, training, "regression", "mae")
    assert chosen is options[1] and chosen.train_batches == ("15", "16")
    assert [n for n, _ in scored] == [6, 2] and scored[1][1] < 0.8 * scored[0][1]
    x, y = split_xy(options[1].train, data)
    model = build_pipeline(data, training, "regression").fit(x, y)
    hold = options[1].holdout
    expected = mean_absolute_error(hold["target"], model.predict(hold[data.features]))
    assert scored[1][1] == pytest.approx(expected, rel=1e-12)


def test_on_a_stationary_stream_the_longer_window_is_kept():
    from modelwatch.training.fit import choose_window

    options, data, training = _planted_options("stationary", 17, 2)
    chosen, scored = choose_window(options, data, training, "regression", "mae")
    assert chosen is options[0] and scored[0][1] <= scored[1][1]


def test_windows_with_different_holdouts_are_refused():
    from modelwatch.training.fit import choose_window

    options, data, training = _planted_options("stationary", 17, 2)
    other, _, _ = _planted_options("stationary", 16, 2)
    with pytest.raises(ValueError, match="different holdouts"):
        choose_window([options[0], other[0]], data, training, "regression", "mae")


def test_window_options_usual_long_and_since_drop(data):
    """window_options: training's own window first, then long_window_batches, then the
    policy's since-drop window; all share the holdout (batch 7)."""
    from modelwatch.training.windows import window_options

    reference, batches = data
    settings = TrainingSettings(window_batches=3, long_window_batches=5, holdout_batches=1)
    options = window_options(reference, batches, settings, since_drop=2)
    assert [o.train_batches for o in options] == [
        ("b4", "b5", "b6"),
        ("b2", "b3", "b4", "b5", "b6"),
        ("b5", "b6"),
    ]
    assert {o.holdout_batches for o in options} == {("b7",)}
    assert [len(o.train) for o in options] == [7 + 8 + 9, 5 + 6 + 7 + 8 + 9, 8 + 9]


def test_window_options_drop_duplicates_and_unset_long(data):
    from modelwatch.training.windows import window_options

    reference, batches = data
    # only 2 labelled batches before the holdout: the long window is the same (reference + both)
    few = batches[:3]
    settings = TrainingSettings(window_batches=4, long_window_batches=8, holdout_batches=1)
    options = window_options(reference, few, settings)
    assert [o.train_batches for o in options] == [("reference", "b1", "b2")]
    # no long window set, a since-drop proposal not shorter than the usual: one option
    plain = TrainingSettings(window_batches=3, holdout_batches=1)
    assert len(window_options(reference, batches, plain, since_drop=3)) == 1


def test_long_window_must_exceed_the_usual_one():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=r"long_window_batches \(6\) must exceed"):
        TrainingSettings(window_batches=6, long_window_batches=6)
