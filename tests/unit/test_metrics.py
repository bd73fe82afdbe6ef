"""performance.metrics against scikit-learn: values, directions, label handling."""

import numpy as np
import pytest
from sklearn import metrics as skm

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.performance import metrics


def test_regression_metrics_match_sklearn():
    """Reference: sklearn.metrics.mean_absolute_error, root_mean_squared_error,
    mean_absolute_percentage_error, r2_score."""
    rng = np.random.default_rng(1)
    y = rng.gamma(3.0, 40.0, 300)
    pred = y + rng.normal(5, 25, 300)
    got = metrics.compute_metrics(y, pred, "regression")
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
    got = metrics.compute_metrics(y, pred, "regression")
    assert "r2" not in got
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))


def test_regression_zero_target_omits_mape():
    """Reference: sklearn.metrics.root_mean_squared_error (mape divides by the target)."""
    y, pred = np.array([0.0, 2.0, 4.0, 8.0]), np.array([1.0, 2.0, 3.0, 9.0])
    got = metrics.compute_metrics(y, pred, "regression")
    assert set(got) == {"mae", "rmse", "r2"}
    assert got["rmse"] == pytest.approx(skm.root_mean_squared_error(y, pred))


def test_binary_labels_1_2_with_positive_label_2_match_sklearn():
    """Reference: sklearn.metrics.accuracy_score, precision_score, recall_score, f1_score
    (pos_label=2, average="binary"), roc_auc_score, average_precision_score, log_loss."""
    rng = np.random.default_rng(2)
    y = rng.choice([1, 2], 400, p=[0.8, 0.2])
    score = np.clip((y == 2) * 0.35 + rng.uniform(0, 0.65, 400), 0, 1)
    pred = np.where(score > 0.5, 2, 1)
    got = metrics.compute_metrics(y, pred, "classification", y_score=score, positive_label=2)
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
    got = metrics.compute_metrics(y_true, y_pred, "classification", positive_label=positive_label)
    want = np.array([1, 2, 2, 1, 2]), np.array([1, 2, 1, 1, 2])
    assert got["recall"] == pytest.approx(skm.recall_score(*want, pos_label=2)) == 2 / 3
    assert got["precision"] == pytest.approx(skm.precision_score(*want, pos_label=2)) == 1.0


def test_multiclass_uses_macro_average():
    """Reference: sklearn.metrics.precision_score, recall_score, f1_score (average="macro")."""
    rng = np.random.default_rng(3)
    y = rng.choice(["a", "b", "c"], 250)
    pred = np.where(rng.uniform(size=250) < 0.7, y, rng.choice(["a", "b", "c"], 250))
    got = metrics.compute_metrics(
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
    got = metrics.compute_metrics(
        y, pred, "classification", y_score=[0.1, 0.9, 0.2, 0.3], positive_label=2
    )
    assert "roc_auc" not in got
    assert got["accuracy"] == skm.accuracy_score(y, pred) == 0.75
    assert got["precision"] == skm.precision_score(y, pred, pos_label=2, zero_division=0) == 0.0


def test_binary_without_positive_label_is_a_config_error():
    with pytest.raises(ConfigError, match=r"data.positive_label is required .*labels seen: 1, 2"):
        metrics.compute_metrics([1, 2, 1], [1, 2, 2], "classification")


def test_positive_label_not_among_labels_is_a_config_error():
    with pytest.raises(ConfigError, match=r"positive_label 'yes' is not one of .*\(1, 2\)"):
        metrics.compute_metrics([1, 2, 1], [1, 2, 2], "classification", positive_label="yes")


@pytest.mark.parametrize("y_true, y_pred", [([], []), ([5.0], [4.0])])
def test_fewer_than_two_rows_is_insufficient(y_true, y_pred):
    with pytest.raises(InsufficientDataError, match=rf"{len(y_true)} labelled row\(s\)"):
        metrics.compute_metrics(y_true, y_pred, "regression")


def test_two_rows_is_enough():
    """Reference: sklearn.metrics.mean_absolute_error on two rows."""
    got = metrics.compute_metrics([1.0, 3.0], [2.0, 3.0], "regression")
    assert got["mae"] == skm.mean_absolute_error([1.0, 3.0], [2.0, 3.0]) == 0.5


def test_missing_prediction_is_a_schema_error():
    with pytest.raises(SchemaError, match=r"y_pred: 1 missing value\(s\) of 3"):
        metrics.compute_metrics([1.0, 2.0, 3.0], [1.0, np.nan, 3.0], "regression")


def test_unknown_task_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown task 'ranking'"):
        metrics.compute_metrics([1, 2], [1, 2], "ranking")


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
    assert metrics.worsening(metric, baseline, current, "regression") == pytest.approx(want)


def test_worsening_rejects_metric_of_other_task():
    with pytest.raises(ConfigError, match=r"'f1' is not a regression metric"):
        metrics.worsening("f1", 0.5, 0.4, "regression")


def test_metric_directions_cover_the_settings_validator():
    assert metrics.METRIC_DIRECTIONS["regression"] == {
        "mae": "min",
        "rmse": "min",
        "mape": "min",
        "r2": "max",
    }
    directions = metrics.METRIC_DIRECTIONS["classification"]
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
    got = metrics.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
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
    shuffled = metrics.compute_metrics(y, pred, "classification", y_score=proba, classes=[3, 10, 2])
    assert shuffled["log_loss"] != pytest.approx(got["log_loss"])


def test_multiclass_with_a_class_absent_omits_curves_but_keeps_log_loss():
    """Reference: sklearn.metrics.log_loss(labels=classes); roc_auc one-vs-rest is undefined for
    a class that never occurs in y_true. Only two labels occur, yet three classes make it a
    multiclass task: macro averages, no positive_label needed (sklearn precision_score macro)."""
    y, pred, proba, classes = multiclass_sample(12, 300)
    keep = y != 10
    y, pred, proba = y[keep], pred[keep], proba[keep]
    got = metrics.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
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
    got = metrics.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    assert set(got) == {"accuracy", "precision", "recall", "f1"}
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y.astype(int), pred))
    assert "labels ['99'] have no score column" in caplog.text


def test_two_dimensional_scores_must_be_probabilities():
    y, pred, proba, classes = multiclass_sample(14, 20)
    proba[4] *= 0.5
    with pytest.raises(
        SchemaError, match=r"y_score: 1 row\(s\) are not class probabilities.*row 4"
    ):
        metrics.compute_metrics(y, pred, "classification", y_score=proba, classes=classes)
    with pytest.raises(ValueError, match=r"y_score has 3 columns: classes must name each"):
        metrics.compute_metrics(y, pred, "classification", y_score=proba)


def test_binary_two_column_scores_pick_the_positive_column():
    """Reference: sklearn.metrics.roc_auc_score and log_loss on the column of label 2."""
    rng = np.random.default_rng(15)
    y = rng.choice([1, 2], 200)
    p2 = np.clip((y == 2) * 0.3 + rng.uniform(0, 0.7, 200), 0, 1)
    pred = np.where(p2 > 0.5, 2, 1)
    two = np.column_stack([1 - p2, p2])
    got = metrics.compute_metrics(
        y, pred, "classification", y_score=two, classes=[1, 2], positive_label=2
    )
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, p2), rel=1e-12)
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=two), rel=1e-12)


def test_decision_function_scores_have_roc_auc_but_no_log_loss():
    """Reference: sklearn.metrics.roc_auc_score (log_loss is undefined outside [0, 1])."""
    y = np.array([0, 1, 0, 1, 1, 0])
    margin = np.array([-2.0, 1.5, 0.3, 2.2, -0.1, -1.0])
    got = metrics.compute_metrics(
        y, (margin > 0).astype(int), "classification", y_score=margin, positive_label=1
    )
    assert "log_loss" not in got
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, margin))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, margin))
