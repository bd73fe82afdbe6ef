"""Metrics of modelwatch.performance against scikit-learn, overall and per segment."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from modelwatch import performance
from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.settings import BootstrapSettings, DataSettings, PerformanceSettings

REGRESSION_DATA = DataSettings(
    id="row",
    target="y",
    prediction="prediction",
    features=["x", "region"],
    categorical=["region"],
    segments=["region"],
)
BANK_DATA = DataSettings(
    id="row",
    target="Class",
    prediction="prediction",
    features=["V1", "V2"],
    categorical=["V2"],
    positive_label=2,
    segments=["V2"],
)


def regression_frame(seed: int, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.gamma(4.0, 50.0, n)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "x": rng.normal(size=n),
            "region": rng.choice(["north", "south", "east"], n, p=[0.5, 0.4, 0.1]),
            "y": y,
            "prediction": y + rng.normal(0, 20, n),
        }
    )


def test_regression_metrics_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error, root_mean_squared_error,
    mean_absolute_percentage_error, r2_score."""
    rng = np.random.default_rng(1)
    y = rng.gamma(3.0, 40.0, 300)
    pred = y + rng.normal(5, 25, 300)
    got = performance.compute_metrics(y, pred, "regression")
    assert got == pytest.approx(
        {
            "mae": skm.mean_absolute_error(y, pred),
            "rmse": skm.root_mean_squared_error(y, pred),
            "mape": skm.mean_absolute_percentage_error(y, pred),
            "r2": skm.r2_score(y, pred),
        },
        rel=1e-12,
    )


def test_regression_constant_target_omits_r2():
    """Reference: sklearn.metrics.mean_absolute_error (r2 of a constant target is undefined)."""
    y, pred = np.full(5, 10.0), np.array([9.0, 10.0, 11.0, 12.0, 10.0])
    got = performance.compute_metrics(y, pred, "regression")
    assert "r2" not in got
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


def test_regression_zero_target_omits_mape():
    """Reference: sklearn.metrics.root_mean_squared_error (mape divides by the target)."""
    y, pred = np.array([0.0, 2.0, 4.0, 8.0]), np.array([1.0, 2.0, 3.0, 9.0])
    got = performance.compute_metrics(y, pred, "regression")
    assert set(got) == {"mae", "rmse", "r2"}
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))


def test_binary_labels_1_2_with_positive_label_2_match_sklearn():
    """Reference: sklearn.metrics.accuracy_score, precision_score, recall_score, f1_score
    (pos_label=2, average="binary"), roc_auc_score, average_precision_score, log_loss."""
    rng = np.random.default_rng(2)
    y = rng.choice([1, 2], 400, p=[0.8, 0.2])
    score = np.clip((y == 2) * 0.35 + rng.uniform(0, 0.65, 400), 0, 1)
    pred = np.where(score > 0.5, 2, 1)
    got = performance.compute_metrics(y, pred, "classification", y_score=score, positive_label=2)
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, pos_label=2),
            "recall": skm.recall_score(y, pred, pos_label=2),
            "f1": skm.f1_score(y, pred, pos_label=2),
            "roc_auc": skm.roc_auc_score(y == 2, score),
            "pr_auc": skm.average_precision_score(y == 2, score),
            "log_loss": skm.log_loss(y, y_proba=np.column_stack([1 - score, score])),
        },
        rel=1e-12,
    )
    # the positive class matters: with pos_label 1 the scores differ
    assert got["recall"] != pytest.approx(skm.recall_score(y, pred, pos_label=1))


@pytest.mark.parametrize(
    "y_true, y_pred, positive_label",
    [
        (
            np.array([1.0, 2.0, 2.0, 1.0, 2.0]),
            np.array([1, 2, 1, 1, 2]),
            "2",
        ),  # float labels from CSV
        (np.array(["1", "2", "2", "1", "2"]), np.array([1, 2, 1, 1, 2]), 2),  # str vs int
        (np.array([1, 2, 2, 1, 2]), np.array([1, 2, 1, 1, 2]), " 2 "),
    ],
)
def test_positive_label_compares_by_value(y_true, y_pred, positive_label):
    """Reference: sklearn.metrics.recall_score(pos_label=2) on int labels."""
    got = performance.compute_metrics(
        y_true, y_pred, "classification", positive_label=positive_label
    )
    want = np.array([1, 2, 2, 1, 2]), np.array([1, 2, 1, 1, 2])
    assert got["recall"] == pytest.approx(skm.recall_score(*want, pos_label=2)) == 2 / 3
    assert got["precision"] == pytest.approx(skm.precision_score(*want, pos_label=2)) == 1.0


def test_multiclass_uses_macro_average():
    """Reference: sklearn.metrics.precision_score, recall_score, f1_score (average="macro")."""
    rng = np.random.default_rng(3)
    y = rng.choice(["a", "b", "c"], 250)
    pred = np.where(rng.uniform(size=250) < 0.7, y, rng.choice(["a", "b", "c"], 250))
    got = performance.compute_metrics(
        y, pred, "classification", y_score=rng.uniform(size=250), positive_label="a"
    )
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
            "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
            "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
        },
        rel=1e-12,
    )


def test_roc_auc_omitted_when_one_class_present():
    """Reference: sklearn.metrics.accuracy_score (roc_auc needs both classes in y_true)."""
    y, pred = np.array([1, 1, 1, 1]), np.array([1, 2, 1, 1])
    got = performance.compute_metrics(
        y, pred, "classification", y_score=[0.1, 0.9, 0.2, 0.3], positive_label=2
    )
    assert "roc_auc" not in got
    assert got["accuracy"] == skm.accuracy_score(y, pred) == 0.75
    assert got["precision"] == skm.precision_score(y, pred, pos_label=2, zero_division=0) == 0.0


def test_binary_without_positive_label_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.positive_label is required .*labels seen: 1, 2"):
        performance.compute_metrics([1, 2, 1], [1, 2, 2], "classification")


def test_positive_label_not_among_labels_is_a_config_error():
    with pytest.raises(ConfigError, match=r"positive_label 'yes' is not one of .*\(1, 2\)"):
        performance.compute_metrics([1, 2, 1], [1, 2, 2], "classification", positive_label="yes")


@pytest.mark.parametrize("y_true, y_pred", [([], []), ([5.0], [4.0])])
def test_fewer_than_two_rows_is_insufficient(y_true, y_pred):
    with pytest.raises(InsufficientDataError, match=rf"{len(y_true)} labelled row\(s\)"):
        performance.compute_metrics(y_true, y_pred, "regression")


def test_two_rows_is_enough():
    """Reference: sklearn.metrics.mean_absolute_error on two rows."""
    got = performance.compute_metrics([1.0, 3.0], [2.0, 3.0], "regression")
    assert got["mae"] == skm.mean_absolute_error([1.0, 3.0], [2.0, 3.0]) == 0.5


def test_missing_prediction_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"y_pred: 1 missing value\(s\) of 3"):
        performance.compute_metrics([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "regression")


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown task 'ranking'"):
        performance.compute_metrics([1, 2], [1, 2], "ranking")


def test_evaluate_frame_overall_and_segments_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error per segment value."""
    frame = regression_frame(4)
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=30)
    )
    assert report.n_rows == 200 and report.n_missing_target == 0
    assert report.metrics["mae"] == pytest.approx(
        skm.mean_absolute_error(frame.y, frame.prediction)
    )
    by_value = {s.value: s for s in report.segments}
    assert sorted(by_value) == ["east", "north", "south"]
    for value, seg in by_value.items():
        rows = frame[frame.region == value]
        assert seg.column == "region" and seg.n_rows == len(rows)
        if len(rows) >= 30:
            assert seg.metrics["mae"] == pytest.approx(
                skm.mean_absolute_error(rows.y, rows.prediction)
            )
        else:
            assert seg.metrics == {}
    assert sum(s.n_rows for s in report.segments) == 200


def test_small_segments_are_listed_without_metrics():
    """Reference: sklearn.metrics.mean_absolute_error on the large segment."""
    frame = pd.DataFrame(
        {
            "x": range(6),
            "region": ["a"] * 5 + ["b"],
            "y": [1.0, 2, 3, 4, 5, 6],
            "prediction": [1.5, 2, 3, 4, 6, 9],
        }
    )
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=1)
    )
    (a, b) = report.segments
    assert (a.value, a.n_rows, b.value, b.n_rows) == ("a", 5, "b", 1)
    assert a.metrics["mae"] == pytest.approx(
        skm.mean_absolute_error([1, 2, 3, 4, 5], [1.5, 2, 3, 4, 6])
    )
    assert b.metrics == {}  # one row is below the two rows any metric needs


def test_evaluate_frame_drops_and_counts_missing_target():
    """Reference: sklearn.metrics.root_mean_squared_error on the labelled rows only."""
    frame = regression_frame(5, n=50)
    frame.loc[[3, 10, 11], "y"] = np.nan
    before = frame.copy()
    report = performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
    labelled = frame.dropna(subset=["y"])
    assert (report.n_rows, report.n_missing_target) == (47, 3)
    assert report.metrics["rmse"] == pytest.approx(
        skm.root_mean_squared_error(labelled.y, labelled.prediction)
    )
    assert "(3 rows without a target left out)" in report.summary()
    pd.testing.assert_frame_equal(frame, before)  # the input is not mutated


def test_evaluate_frame_bank_style_classification_with_scores():
    """Reference: sklearn.metrics.f1_score(pos_label=2), roc_auc_score; Class 1/2 as read from
    CSV with missing labels (float column)."""
    rng = np.random.default_rng(6)
    n = 120
    y = rng.choice([1, 2], n, p=[0.7, 0.3]).astype(float)
    proba = np.clip((y == 2) * 0.4 + rng.uniform(0, 0.6, n), 0, 1)
    frame = pd.DataFrame(
        {
            "V1": rng.integers(18, 90, n),
            "V2": rng.choice(["job", "none"], n),
            "Class": y,
            "prediction": np.where(proba > 0.5, 2, 1),
            "p2": proba,
        }
    )
    frame.loc[0, "Class"] = np.nan
    report = performance.evaluate_frame(
        frame,
        BANK_DATA,
        "classification",
        PerformanceSettings(min_segment_rows=10),
        score_column="p2",
    )
    rows = frame.iloc[1:]
    assert report.n_missing_target == 1
    assert report.metrics["f1"] == pytest.approx(
        skm.f1_score(rows.Class.astype(int), rows.prediction, pos_label=2)
    )
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(rows.Class == 2, rows.p2))
    assert {s.value for s in report.segments} == {"job", "none"}


@pytest.mark.parametrize(
    "drop, message",
    [
        ("prediction", r"columns \['prediction'\] are missing"),
        ("region", r"columns \['region'\] are missing"),
    ],
)
def test_evaluate_frame_missing_column(drop, message):
    frame = regression_frame(7, n=10).drop(columns=[drop])
    with pytest.raises(SchemaError, match=message):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())
    assert drop not in frame.columns and len(frame) == 10


def test_evaluate_frame_missing_prediction_is_named():
    frame = regression_frame(8, n=10)
    frame.loc[2, "prediction"] = np.nan
    with pytest.raises(SchemaError, match=r"column 'prediction': 1 missing value\(s\) in 10"):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_evaluate_frame_with_one_labelled_row_is_insufficient():
    frame = regression_frame(9, n=4)
    frame.loc[1:, "y"] = np.nan
    with pytest.raises(InsufficientDataError, match=r"1 of 4 rows have a target 'y'"):
        performance.evaluate_frame(frame, REGRESSION_DATA, "regression", PerformanceSettings())


def test_report_round_trips_through_json_and_summarises():
    """Reference: sklearn.metrics.r2_score (value carried through to_dict/from_dict)."""
    frame = regression_frame(10)
    report = performance.evaluate_frame(
        frame, REGRESSION_DATA, "regression", PerformanceSettings(min_segment_rows=30)
    )
    again = performance.PerformanceReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert again.metrics["r2"] == pytest.approx(skm.r2_score(frame.y, frame.prediction))
    summary = performance.PerformanceReport(
        "regression", 168, {"mae": 41.23, "rmse": 60.31, "r2": 0.7104}
    ).summary()
    assert summary == "mae 41.2, rmse 60.3, r2 0.71 on 168 rows"


@pytest.mark.parametrize(
    "metric, baseline, current, want",
    [
        ("mae", 80.0, 100.0, 0.25),  # lower is better: grew by a quarter
        ("mae", 80.0, 60.0, -0.25),  # improved
        ("r2", 0.8, 0.6, 0.25),  # higher is better: fell by a quarter
        ("r2", -0.5, -1.0, 1.0),  # negative baseline: relative to |baseline|
        ("mae", 0.0, 3.0, 3.0),  # zero baseline: absolute difference
    ],
)
def test_worsening(metric, baseline, current, want):
    assert performance.worsening(metric, baseline, current, "regression") == pytest.approx(want)


def test_worsening_rejects_metric_of_other_task():
    with pytest.raises(ConfigError, match=r"'f1' is not a regression metric"):
        performance.worsening("f1", 0.5, 0.4, "regression")


def test_metric_directions_cover_the_settings_validator():
    assert performance.METRIC_DIRECTIONS["regression"] == {
        "mae": "min",
        "rmse": "min",
        "mape": "min",
        "r2": "max",
    }
    directions = performance.METRIC_DIRECTIONS["classification"]
    assert {k for k, v in directions.items() if v == "min"} == {"log_loss"}
    assert set(directions) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "pr_auc",
        "log_loss",
    }


# --- probabilistic metrics: binary and multiclass ---------------------------------------------


def multiclass_sample(seed: int, n: int, labels=(2, 3, 10), alpha=(3.0, 1.5, 0.6)):
    """Returns labels drawn from Dirichlet class probabilities, argmax predictions, the
    probabilities (columns in `labels` order) and the labels."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(alpha, n)
    drawn = (rng.uniform(size=(n, 1)) > proba.cumsum(axis=1)).sum(axis=1)
    labels = np.asarray(labels)
    return labels[drawn], labels[proba.argmax(axis=1)], proba, labels


def test_multiclass_probabilistic_metrics_match_sklearn():
    """Reference: sklearn.metrics.roc_auc_score(multi_class="ovr", average="macro"), the macro
    mean of average_precision_score one-vs-rest, log_loss(labels=classes), and precision_score
    (average="macro"). Labels 2, 3, 10 sort differently as text ("10" < "2"), so the score
    columns must be matched by label, not by position."""
    y, pred, proba, classes = multiclass_sample(11, 600)
    got = performance.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    want_pr = np.mean(
        [skm.average_precision_score(y == c, proba[:, j]) for j, c in enumerate(classes)]
    )
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, average="macro", zero_division=0),
            "recall": skm.recall_score(y, pred, average="macro", zero_division=0),
            "f1": skm.f1_score(y, pred, average="macro", zero_division=0),
            "roc_auc": skm.roc_auc_score(y, proba, multi_class="ovr", average="macro"),
            "pr_auc": want_pr,
            "log_loss": skm.log_loss(y, y_proba=proba, labels=classes),
        },
        rel=1e-12,
    )
    # the columns count: the same probabilities under shuffled class names score differently
    shuffled = performance.compute_metrics(
        y, pred, "classification", y_score=proba, classes=[3, 10, 2]
    )
    assert shuffled["log_loss"] != pytest.approx(got["log_loss"])


def test_multiclass_with_a_class_absent_omits_curves_but_keeps_log_loss():
    """Reference: sklearn.metrics.log_loss(labels=classes); roc_auc one-vs-rest is undefined for
    a class that never occurs in y_true. Only two labels occur, yet three classes make it a
    multiclass task: macro averages, no positive_label needed (sklearn precision_score macro)."""
    y, pred, proba, classes = multiclass_sample(12, 300)
    keep = y != 10
    y, pred, proba = y[keep], pred[keep], proba[keep]
    got = performance.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    assert "roc_auc" not in got and "pr_auc" not in got
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=proba, labels=classes))
    assert got["precision"] == pytest.approx(
        skm.precision_score(y, pred, average="macro", zero_division=0)
    )


def test_label_without_score_column_leaves_scored_metrics_out(caplog):
    """Reference: sklearn.metrics.accuracy_score (still computed without usable scores)."""
    y, pred, proba, classes = multiclass_sample(13, 100)
    y = y.astype(object)
    y[:3] = 99  # a label the model never had a column for
    got = performance.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    assert set(got) == {"accuracy", "precision", "recall", "f1"}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y.astype(int), pred))
    assert "labels ['99'] have no score column" in caplog.text


def test_two_dimensional_scores_must_be_probabilities():
    y, pred, proba, classes = multiclass_sample(14, 20)
    proba[4] *= 0.5
    with pytest.raises(
        SchemaError, match=r"y_score: 1 row\(s\) are not class probabilities.*row 4"
    ):
        performance.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    with pytest.raises(ValueError, match=r"y_score has 3 columns: classes must name each"):
        performance.compute_metrics(y, pred, "classification", y_score=proba)


def test_binary_two_column_scores_pick_the_positive_column():
    """Reference: sklearn.metrics.roc_auc_score and log_loss on the column of label 2."""
    rng = np.random.default_rng(15)
    y = rng.choice([1, 2], 200)
    p2 = np.clip((y == 2) * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    pred = np.where(p2 > 0.5, 2, 1)
    two = np.column_stack([1 - p2, p2])
    got = performance.compute_metrics(
        y, pred, "classification", y_score=two, classes=[1, 2], positive_label=2
    )
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, p2), rel=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=two), rel=1e-12)


def test_decision_function_scores_have_roc_auc_but_no_log_loss():
    """Reference: sklearn.metrics.roc_auc_score (log_loss is undefined outside [0, 1])."""
    y = np.array([0, 1, 0, 1, 1, 0])
    margin = np.array([-2.0, 1.5, 0.3, 2.2, -0.1, -1.0])
    got = performance.compute_metrics(
        y, (margin > 0).astype(int), "classification", y_score=margin, positive_label=1
    )
    assert "log_loss" not in got
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, margin))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, margin))


# --- bootstrap intervals ----------------------------------------------------------------------


def binary_sample(seed: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.choice([1, 2], n, p=[0.75, 0.25])
    # rounded scores: ties must be handled as sklearn does
    score = np.round(np.clip((y == 2) * 0.3 + rng.uniform(0, 0.7, n), 0, 1), 2)
    return y, np.where(score > 0.5, 2, 1), score


@pytest.mark.parametrize("case", ["regression", "binary", "multiclass"])
def test_each_resample_matches_sklearn_on_the_same_rows(case):
    """Reference: performance.compute_metrics (sklearn.metrics mean_absolute_error, ...,
    roc_auc_score, average_precision_score, log_loss) on the rows of one resample."""
    settings = BootstrapSettings(samples=6, seed=3)
    if case == "regression":
        frame = regression_frame(16, n=150)
        y, pred, kwargs = frame.y.to_numpy(), frame.prediction.to_numpy(), {}
    elif case == "binary":
        y, pred, score = binary_sample(17, 150)
        kwargs = {"y_score": score, "positive_label": 2}
    else:
        # label 10 on one row only: resamples without it have no roc_auc and macro-average
        # over two labels
        y, pred, proba, classes = multiclass_sample(18, 150)
        y[np.flatnonzero(y == 10)[1:]] = 2
        pred = np.where(pred == 10, 3, pred)
        pred[y == 10] = 10
        kwargs = {"y_score": proba, "classes": classes}
    task = "regression" if case == "regression" else "classification"
    indices = performance.bootstrap_indices(len(y), settings)
    assert indices.shape == (6, len(y))
    got = performance.resampled_metrics(y, pred, task, indices, **kwargs)
    for k, rows in enumerate(indices):
        sub = {key: (v[rows] if key == "y_score" else v) for key, v in kwargs.items()}
        want = performance.compute_metrics(y[rows], pred[rows], task, **sub)
        defined = {m: v[k] for m, v in got.items() if np.isfinite(v[k])}
        assert defined == pytest.approx(want, rel=1e-9)
    assert len(set(got["mae" if case == "regression" else "accuracy"])) > 1  # resamples differ
    if case == "multiclass":
        assert np.isnan(got["roc_auc"]).any() and not np.isnan(got["roc_auc"]).all()


def test_bootstrap_indices_are_the_seeded_generator_draws():
    """Reference: numpy.random.default_rng(seed).integers(0, n, (samples, n)) in one draw, also
    when the bootstrap works through the resamples in chunks (12,000 rows)."""
    settings = BootstrapSettings(samples=200, seed=7)
    got = performance.bootstrap_indices(12_000, settings)
    want = np.random.default_rng(7).integers(0, 12_000, size=(200, 12_000))
    np.testing.assert_array_equal(got, want)


def test_intervals_are_percentiles_of_the_defined_resamples():
    """Reference: numpy.percentile of sklearn.metrics.roc_auc_score / accuracy_score over the
    resamples of bootstrap_indices; with two positives in 14 rows many resamples have none, and
    those are skipped for roc_auc (undefined) but not for accuracy."""
    settings = BootstrapSettings(samples=40, confidence=0.9, seed=5)
    y = np.array([1] * 12 + [2] * 2)
    score = np.linspace(0.05, 0.95, 14)
    pred = np.where(score > 0.5, 2, 1)
    got = performance.bootstrap_intervals(
        y, pred, "classification", y_score=score, positive_label=2, settings=settings
    )
    aucs, accs = [], []
    for rows in performance.bootstrap_indices(14, settings):
        accs.append(skm.accuracy_score(y[rows], pred[rows]))
        if len(set(y[rows])) == 2:
            aucs.append(skm.roc_auc_score(y[rows] == 2, score[rows]))
    assert 0 < len(aucs) < 40  # some resamples were skipped
    assert got["roc_auc"] == pytest.approx(tuple(np.percentile(aucs, [5, 95])), rel=1e-12)
    assert got["accuracy"] == pytest.approx(tuple(np.percentile(accs, [5, 95])), rel=1e-12)


def test_interval_contains_the_estimate_and_narrows_with_more_rows():
    """Reference: sklearn.metrics.mean_absolute_error and roc_auc_score (point estimates)."""
    settings = BootstrapSettings(samples=200, seed=0)
    widths = {}
    for n in (200, 3000):
        frame = regression_frame(19, n=n)
        ci = performance.bootstrap_intervals(
            frame.y, frame.prediction, "regression", settings=settings
        )
        assert ci["mae"][0] < skm.mean_absolute_error(frame.y, frame.prediction) < ci["mae"][1]
        y, pred, score = binary_sample(20, n)
        cb = performance.bootstrap_intervals(
            y, pred, "classification", y_score=score, positive_label=2, settings=settings
        )
        assert cb["roc_auc"][0] < skm.roc_auc_score(y == 2, score) < cb["roc_auc"][1]
        widths[n] = (ci["mae"][1] - ci["mae"][0], cb["roc_auc"][1] - cb["roc_auc"][0])
    # the width shrinks like 1 / sqrt(n): 15 times the rows, about a quarter of the width
    assert widths[3000][0] < 0.5 * widths[200][0]
    assert widths[3000][1] < 0.5 * widths[200][1]


def test_bootstrap_off_and_undefined_metrics():
    """Reference: sklearn.metrics.mean_absolute_error (mape and r2 are undefined here)."""
    y, pred = np.array([0.0, 5, 5, 5, 5, 5]), np.array([1.0, 4, 6, 5, 5, 7])
    off = performance.bootstrap_intervals(
        y, pred, "regression", settings=BootstrapSettings(samples=0)
    )
    assert off == {}
    ci = performance.bootstrap_intervals(y, pred, "regression", settings=BootstrapSettings())
    assert set(ci) == {"mae", "rmse", "r2"}  # mape: the target has a zero on all rows
    assert ci["mae"][0] <= skm.mean_absolute_error(y, pred) <= ci["mae"][1]


# --- constant-model baseline ------------------------------------------------------------------


def test_baseline_regression_is_a_mean_dummy():
    """Reference: sklearn.dummy.DummyRegressor(strategy="mean") fitted on the reference target,
    scored with sklearn.metrics.mean_absolute_error and r2_score."""
    reference, current = regression_frame(21, n=300), regression_frame(22, n=80)
    got = performance.baseline_metrics(reference.y, current.y, "regression")
    dummy = DummyRegressor(strategy="mean").fit(np.zeros((300, 1)), reference.y)
    constant = dummy.predict(np.zeros((80, 1)))
    assert constant[0] == pytest.approx(reference.y.mean())
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(current.y, constant))
    assert got["r2"] == pytest.approx(skm.r2_score(current.y, constant))
    assert got["r2"] < 0  # the reference mean is not this batch's mean


def test_baseline_classification_is_a_prior_dummy():
    """Reference: sklearn.dummy.DummyClassifier(strategy="prior"): predicts the majority class
    and scores with the class shares; sklearn.metrics.log_loss, roc_auc_score on its output."""
    reference = np.array([1] * 70 + [2] * 30, dtype=float)  # read from CSV as floats
    y = np.array([1] * 10 + [2] * 10)
    got = performance.baseline_metrics(reference, y, "classification", positive_label=2)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((100, 1)), reference.astype(int))
    proba = dummy.predict_proba(np.zeros((20, 1)))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, dummy.predict(np.zeros((20, 1)))))
    assert got["accuracy"] == 0.5 and got["recall"] == 0.0
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, proba[:, 1])) == 0.5
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=proba))


def test_baseline_needs_a_reference_target():
    with pytest.raises(InsufficientDataError, match=r"reference target has no values"):
        performance.baseline_metrics(pd.Series([np.nan, np.nan]), [1.0, 2.0], "regression")


# --- the report with intervals and baseline ---------------------------------------------------


def test_evaluate_frame_with_intervals_and_baseline_round_trips():
    """Reference: sklearn.metrics.mean_absolute_error (point estimate inside its interval) and
    DummyRegressor(strategy="mean") on the reference target."""
    frame, reference = regression_frame(23), regression_frame(24, n=400)
    report = performance.evaluate_frame(
        frame,
        REGRESSION_DATA,
        "regression",
        PerformanceSettings(bootstrap=BootstrapSettings(samples=100, seed=1)),
        reference_target=reference.y,
    )
    assert set(report.intervals) == set(report.metrics) == {"mae", "rmse", "mape", "r2"}
    low, high = report.intervals["mae"]
    assert low < skm.mean_absolute_error(frame.y, frame.prediction) < high
    constant = np.full(len(frame), reference.y.mean())
    assert report.baseline["mae"] == pytest.approx(skm.mean_absolute_error(frame.y, constant))
    again = performance.PerformanceReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again == report
    assert report.summary().startswith(
        f"mae {performance.format_number(report.metrics['mae'])} (CI "
        f"{performance.format_number(low)} to {performance.format_number(high)}; constant model "
        f"{performance.format_number(report.baseline['mae'])}), rmse "
    )


def test_report_written_before_intervals_reads_back_empty():
    """Reference: sklearn.metrics.mean_absolute_error of [1, 3] vs [2, 3] (carried through)."""
    raw = {"task": "regression", "n_rows": 2, "metrics": {"mae": 0.5}, "segments": []}
    report = performance.PerformanceReport.from_dict(raw)
    assert (report.intervals, report.baseline) == ({}, {})
    assert report.metrics["mae"] == skm.mean_absolute_error([1, 3], [2, 3])


def test_evaluate_frame_multiclass_score_columns():
    """Reference: sklearn.metrics.roc_auc_score(multi_class="ovr") and log_loss on the
    probability columns, per segment too; the bootstrap off gives no intervals."""
    y, pred, proba, classes = multiclass_sample(25, 240)
    rng = np.random.default_rng(25)
    frame = pd.DataFrame(
        {"V1": 0, "V2": rng.choice(["x", "y"], 240), "Class": y, "prediction": pred}
        | {f"p.{c}": proba[:, j] for j, c in enumerate(classes)}
    )
    data = BANK_DATA.model_copy(update={"positive_label": None})
    report = performance.evaluate_frame(
        frame,
        data,
        "classification",
        PerformanceSettings(min_segment_rows=10, bootstrap=BootstrapSettings(samples=0)),
        score_columns={c: f"p.{c}" for c in classes},
    )
    assert report.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y, proba, multi_class="ovr")
    )
    seg = next(s for s in report.segments if s.value == "x")
    rows = (frame.V2 == "x").to_numpy()
    assert seg.metrics["log_loss"] == pytest.approx(
        skm.log_loss(y[rows], y_proba=proba[rows], labels=classes)
    )
    assert report.intervals == {}
    with pytest.raises(ValueError, match=r"give score_column .* or score_columns"):
        performance.evaluate_frame(
            frame,
            data,
            "classification",
            PerformanceSettings(),
            score_column="p.2",
            score_columns={c: f"p.{c}" for c in classes},
        )


def test_ranking_areas_with_weights_match_sklearn_sample_weight():
    """Reference: sklearn.metrics.roc_auc_score and average_precision_score with sample_weight
    (each item once as a positive with its positive weight, once as a negative)."""
    rng = np.random.default_rng(26)
    score = np.round(rng.uniform(size=50), 1)  # many ties
    pos_w, neg_w = rng.uniform(size=50), rng.uniform(size=50)
    roc, ap = performance.ranking_areas(score, pos_w, neg_w)
    labels = np.r_[np.ones(50), np.zeros(50)]
    scores, weights = np.r_[score, score], np.r_[pos_w, neg_w]
    assert roc[0] == pytest.approx(skm.roc_auc_score(labels, scores, sample_weight=weights))
    assert ap[0] == pytest.approx(
        skm.average_precision_score(labels, scores, sample_weight=weights)
    )
