"""CBPE estimates (modelwatch.performance.estimation) against scikit-learn on labels drawn from the
calibrated probabilities, and the isotonic calibrator against sklearn.isotonic."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from modelwatch.errors import ConfigError, SchemaError
from modelwatch.performance import estimation
from modelwatch.settings import DataSettings, TrainingSettings
from modelwatch.training import fit

METRICS = ["accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc"]


def test_expected_confusion_matrix_by_hand():
    """Hand-computed expected counts; reference: sklearn.metrics precision_score, recall_score,
    f1_score, accuracy_score, roc_auc_score and average_precision_score with sample_weight on
    the rows expanded into a positive (weight p) and a negative (weight 1 - p)."""
    p = np.array([0.9, 0.8, 0.3, 0.2, 0.6])
    pred = np.array(["yes", "yes", "no", "no", "no"])
    got = estimation.estimate_metrics(pred, p, positive_label="yes")
    # TP = .9 + .8 = 1.7, FP = .1 + .2 = .3, FN = .3 + .2 + .6 = 1.1, TN = .7 + .8 + .4 = 1.9
    assert got["accuracy"] == pytest.approx((1.7 + 1.9) / 5)
    assert got["precision"] == pytest.approx(1.7 / 2.0)
    assert got["recall"] == pytest.approx(1.7 / 2.8)
    assert got["f1"] == pytest.approx(2 * 1.7 / (2 * 1.7 + 0.3 + 1.1))
    # expected ROC: cumulative TP .9 1.7 2.3 2.6 2.8, FP .1 .3 .7 1.4 2.2 (scores descending)
    area = 0.1 * 0.9 / 2 + 0.2 * 2.6 / 2 + 0.4 * 4.0 / 2 + 0.7 * 4.9 / 2 + 0.8 * 5.4 / 2
    assert got["roc_auc"] == pytest.approx(area / (2.8 * 2.2))

    y = np.r_[np.ones(5), np.zeros(5)]
    predicted = np.r_[pred == "yes", pred == "yes"].astype(int)
    weights, scores = np.r_[p, 1 - p], np.r_[p, p]
    assert got == pytest.approx(
        {
            "accuracy": skm.accuracy_score(y, predicted, sample_weight=weights),
            "precision": skm.precision_score(y, predicted, sample_weight=weights),
            "recall": skm.recall_score(y, predicted, sample_weight=weights),
            "f1": skm.f1_score(y, predicted, sample_weight=weights),
            "roc_auc": skm.roc_auc_score(y, scores, sample_weight=weights),
            "pr_auc": skm.average_precision_score(y, scores, sample_weight=weights),
        }
    )


def test_multiclass_expected_metrics_by_hand():
    """Accuracy is the mean calibrated probability of the predicted class (by hand, not the
    largest probability); reference: sklearn.metrics accuracy_score, precision/recall/f1_score
    (average="macro") and roc_auc_score(multi_class="ovr") with sample_weight on every row
    expanded into one row per class weighted by its probability."""
    classes = ["a", "b", "c"]
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]])
    pred = np.array(["b", "c", "c", "a"])
    got = estimation.estimate_metrics(pred, p, classes=classes)
    assert got["accuracy"] == pytest.approx((0.3 + 0.3 + 0.8 + 0.3) / 4)
    # class c: TP = .3 + .8, FP = .7 + .2 (rows predicted c), all expected c = 1.5
    c_precision, c_recall = 1.1 / 2.0, 1.1 / 1.5
    a_precision, b_precision = 0.3 / 1.0, 0.3 / 1.0
    assert got["precision"] == pytest.approx((a_precision + b_precision + c_precision) / 3)
    assert got["recall"] == pytest.approx((0.3 / 1.2 + 0.3 / 1.3 + c_recall) / 3)

    y, weights = np.repeat([classes], 4, axis=0).ravel(), p.ravel()
    predicted, scores = np.repeat(pred, 3), np.repeat(p, 3, axis=0)
    want = {
        "accuracy": skm.accuracy_score(y, predicted, sample_weight=weights),
        "precision": skm.precision_score(y, predicted, average="macro", sample_weight=weights),
        "recall": skm.recall_score(y, predicted, average="macro", sample_weight=weights),
        "f1": skm.f1_score(y, predicted, average="macro", sample_weight=weights),
        "roc_auc": skm.roc_auc_score(y, scores, multi_class="ovr", sample_weight=weights),
    }
    assert {k: got[k] for k in want} == pytest.approx(want)
    # a predicted label without a calibrated column has probability 0 of being right
    odd = estimation.estimate_metrics(["z", "c", "c", "a"], p, classes=classes)
    assert odd["accuracy"] == pytest.approx((0 + 0.3 + 0.8 + 0.3) / 4)


def test_no_predicted_positive_gives_zero_precision():
    """Reference: sklearn.metrics.precision_score(zero_division=0) is 0 without predicted
    positives; the expected recall is then 0 as well."""
    got = estimation.estimate_metrics([0, 0, 0], [0.2, 0.4, 0.9], positive_label=1)
    assert (got["precision"], got["recall"]) == (0.0, 0.0)
    assert got["precision"] == skm.precision_score([1, 0, 1], [0, 0, 0], zero_division=0)
    assert got["accuracy"] == pytest.approx((0.8 + 0.6 + 0.1) / 3)


def test_binary_estimates_match_realized_metrics_on_drawn_labels():
    """Labels drawn as Bernoulli(p) from the calibrated probabilities (n = 20,000); reference:
    sklearn.metrics accuracy_score, precision_score, recall_score, f1_score, roc_auc_score and
    average_precision_score on the drawn labels."""
    rng = np.random.default_rng(40)
    p = rng.beta(2.0, 3.0, 20_000)
    y = (rng.uniform(size=p.size) < p).astype(int)
    pred = (p > 0.4).astype(int)
    got = estimation.estimate_metrics(pred, p, positive_label=1)
    realized = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred),
        "recall": skm.recall_score(y, pred),
        "f1": skm.f1_score(y, pred),
        "roc_auc": skm.roc_auc_score(y, p),
        "pr_auc": skm.average_precision_score(y, p),
    }
    assert list(got) == METRICS
    assert got == pytest.approx(realized, abs=0.02)


def test_multiclass_estimates_match_realized_metrics_on_drawn_labels():
    """Labels drawn from Dirichlet class probabilities (n = 20,000); reference: sklearn.metrics
    accuracy_score, precision/recall/f1_score(average="macro"), roc_auc_score(ovr, macro) and
    the macro mean of one-vs-rest average_precision_score on the drawn labels."""
    rng = np.random.default_rng(41)
    classes = np.array(["a", "b", "c"])
    p = rng.dirichlet([4.0, 2.0, 0.7], 20_000)
    y = classes[(rng.uniform(size=(p.shape[0], 1)) > p.cumsum(axis=1)).sum(axis=1)]
    pred = classes[p.argmax(axis=1)]
    got = estimation.estimate_metrics(pred, p, classes=list(classes))
    realized = {
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, average="macro"),
        "recall": skm.recall_score(y, pred, average="macro"),
        "f1": skm.f1_score(y, pred, average="macro"),
        "roc_auc": skm.roc_auc_score(y, p, multi_class="ovr"),
        "pr_auc": np.mean(
            [skm.average_precision_score(y == c, p[:, j]) for j, c in enumerate(classes)]
        ),
    }
    assert got == pytest.approx(realized, abs=0.02)
    assert abs(got["precision"] - got["recall"]) > 0.02  # the classes differ: not one number


def test_calibration_makes_raw_scores_estimable():
    """A model whose scores are too high (raw = sqrt(p)): calibrated on one sample, estimated
    on a fresh one; reference: sklearn.metrics on labels drawn from the true p. Without the
    calibration the estimate is off."""
    rng = np.random.default_rng(42)

    def sample(n):
        p = rng.beta(1.5, 4.0, n)
        return np.sqrt(p), (rng.uniform(size=n) < p).astype(int)

    raw_ref, y_ref = sample(20_000)
    raw, y = sample(20_000)
    pred = (raw > 0.5).astype(int)
    calibrator = estimation.fit_calibrator(raw_ref, y_ref, positive_label=1)
    got = estimation.estimate_metrics(pred, calibrator.apply(raw), **calibrator.label_kwargs())
    realized_precision = skm.precision_score(y, pred)
    assert got["precision"] == pytest.approx(realized_precision, abs=0.02)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=0.02)
    uncalibrated = estimation.estimate_metrics(pred, raw, positive_label=1)
    assert abs(uncalibrated["precision"] - realized_precision) > 0.1


def test_calibrator_round_trips_and_equals_isotonic_regression():
    """Reference: sklearn.isotonic.IsotonicRegression(out_of_bounds="clip").predict, also
    outside the fitted range."""
    rng = np.random.default_rng(43)
    scores = rng.uniform(size=500)
    y = np.where(rng.uniform(size=500) < scores**2, "2", "1")
    calibrator = estimation.fit_calibrator(scores, y, positive_label=2)
    again = estimation.Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    assert again == calibrator
    iso = IsotonicRegression(out_of_bounds="clip").fit(scores, y == "2")
    new = np.r_[-0.5, rng.uniform(size=300), 1.5]
    np.testing.assert_allclose(again.apply(new), iso.predict(new), rtol=0, atol=1e-12)
    np.testing.assert_allclose(again.apply(new[:, None]), iso.predict(new), atol=1e-12)
    assert again.label_kwargs() == {"positive_label": "2"}


def test_multiclass_calibrator_is_one_vs_rest_renormalised():
    """Reference: one sklearn.isotonic.IsotonicRegression per class column (class vs rest),
    each row divided by its sum."""
    rng = np.random.default_rng(44)
    classes = [0, 1, 2]
    p = rng.dirichlet([1.0, 1.0, 1.0], 400)
    y = (rng.uniform(size=(400, 1)) > p.cumsum(axis=1)).sum(axis=1)
    calibrator = estimation.fit_calibrator(p, y, classes=classes)
    again = estimation.Calibrator.from_dict(json.loads(json.dumps(calibrator.to_dict())))
    new = rng.dirichlet([1.0, 1.0, 1.0], 50)
    per_class = np.column_stack(
        [
            IsotonicRegression(out_of_bounds="clip").fit(p[:, j], y == c).predict(new[:, j])
            for j, c in enumerate(classes)
        ]
    )
    want = per_class / per_class.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(again.apply(new), want, atol=1e-12)
    assert again.label_kwargs() == {"classes": ["0", "1", "2"]}


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match=r"binary scores need data.positive_label"):
        estimation.fit_calibrator([0.1, 0.9], [0, 1])
    calibrator = estimation.fit_calibrator(np.eye(3)[[0, 1, 2, 0]], [0, 1, 2, 0], classes=[0, 1, 2])
    with pytest.raises(SchemaError, match=r"scores have shape \(2, 2\): expected 3 columns"):
        calibrator.apply([[0.5, 0.5], [0.1, 0.9]])
    raw = calibrator.to_dict() | {"y_thresholds": calibrator.to_dict()["y_thresholds"][:2]}
    with pytest.raises(SchemaError, match=r"3 multiclass class\(es\) need as many"):
        estimation.Calibrator.from_dict(raw)
    with pytest.raises(SchemaError, match=r"not a calibrator dict"):
        estimation.Calibrator.from_dict({"classes": ["1"]})
    with pytest.raises(ValueError, match=r"exactly one"):
        estimation.estimate_metrics([1, 0], [0.3, 0.6], positive_label=1, classes=[0, 1])
    with pytest.raises(SchemaError, match=r"scores: 1 missing value"):
        estimation.estimate_metrics([1, 0], [np.nan, 0.6], positive_label=1)


def classification_frame(n: int, labels: list) -> pd.DataFrame:
    rng = np.random.default_rng(45)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    logits = np.column_stack([np.zeros(n), x1, x2][: len(labels)])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    drawn = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    return pd.DataFrame({"x1": x1, "x2": x2, "y": np.asarray(labels)[drawn]})


@pytest.mark.parametrize("labels", [[1, 2], ["a", "b", "c"]])
def test_fit_model_calibrates_out_of_fold_probabilities(labels):
    """Reference: sklearn.model_selection.cross_val_predict(method="predict_proba") with the
    same StratifiedKFold, then sklearn.isotonic.IsotonicRegression per class."""
    frame = classification_frame(200, labels)
    data = DataSettings(
        id="row",
        target="y",
        features=["x1", "x2"],
        positive_label=2 if len(labels) == 2 else None,
    )
    settings = TrainingSettings(model="linear", seed=3)
    trained = fit.fit_model(frame, data, settings, "classification")
    calibrator = estimation.Calibrator.from_dict(trained.calibration)
    folds = StratifiedKFold(5, shuffle=True, random_state=3)
    pipe = fit.build_pipeline(data, settings, "classification")
    oof = cross_val_predict(pipe, frame[["x1", "x2"]], frame.y, cv=folds, method="predict_proba")
    probe = np.linspace(0, 1, 41)
    columns = [1] if len(labels) == 2 else range(len(labels))
    for j in columns:
        iso = IsotonicRegression(out_of_bounds="clip").fit(oof[:, j], frame.y == labels[j])
        k = 0 if len(labels) == 2 else j
        got = np.interp(probe, calibrator.x_thresholds[k], calibrator.y_thresholds[k])
        np.testing.assert_allclose(got, iso.predict(probe), atol=1e-9)
    scores = oof[:, 1] if len(labels) == 2 else oof
    cv_roc = (
        skm.roc_auc_score(frame.y == 2, scores)
        if len(labels) == 2
        else skm.roc_auc_score(frame.y, scores, multi_class="ovr")
    )
    assert trained.cv_metrics["roc_auc"] == pytest.approx(cv_roc)
    assert trained.cv_metrics["log_loss"] == pytest.approx(skm.log_loss(frame.y, y_proba=oof))


def test_fit_model_has_no_calibration_for_regression():
    """Reference: sklearn.metrics.mean_absolute_error is all the regression CV reports; there
    are no probabilities to calibrate."""
    frame = classification_frame(60, [1, 2]).assign(y=lambda f: f.x1 * 2 + f.x2)
    data = DataSettings(id="row", target="y", features=["x1", "x2"])
    trained = fit.fit_model(frame, data, TrainingSettings(model="linear"), "regression")
    assert trained.calibration is None
    assert trained.cv_metrics["mae"] < skm.mean_absolute_error(frame.y, np.full(60, frame.y.mean()))


def test_a_timestamped_window_is_validated_on_its_newest_rows():
    """With data.timestamp set, the model's own metrics come from a time-ordered holdout: fit on
    the oldest 80 % of rows (in time order, whatever the file order), score the newest 20 %.
    Reference: sklearn.linear_model.Ridge fitted by hand on the same split, then
    sklearn.metrics.mean_absolute_error and r2_score. A relation that changes over time makes
    shuffled folds look better than the holdout, as on a real stream."""
    rng = np.random.default_rng(7)
    n = 200
    frame = pd.DataFrame({"row": range(n), "x1": rng.normal(size=n), "x2": rng.normal(size=n)})
    frame["day"] = pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d")
    slope = np.linspace(1, 3, n)  # concept drift: the effect of x1 grows over time
    frame["y"] = slope * frame.x1 + frame.x2 + rng.normal(scale=0.1, size=n)
    shuffled = frame.sample(frac=1, random_state=1)  # file order is not time order
    data = DataSettings(id="row", target="y", features=["x1", "x2"], timestamp="day")
    settings = TrainingSettings(model="linear")
    trained = fit.fit_model(shuffled, data, settings, "regression")
    assert trained.validation == "time_holdout"
    old, new = frame.iloc[:160], frame.iloc[160:]
    ridge = fit.build_pipeline(data, settings, "regression").fit(old[["x1", "x2"]], old.y)
    pred = ridge.predict(new[["x1", "x2"]])
    assert trained.cv_metrics["mae"] == pytest.approx(skm.mean_absolute_error(new.y, pred))
    assert trained.cv_metrics["r2"] == pytest.approx(skm.r2_score(new.y, pred))

    cv = fit.fit_model(shuffled, data, settings.model_copy(update={"validation": "shuffled_cv"}),
                       "regression")  # fmt: skip
    assert cv.validation == "shuffled_cv"
    assert cv.cv_metrics["mae"] < trained.cv_metrics["mae"]  # shuffled folds see the future
    untimed = fit.fit_model(shuffled, data.model_copy(update={"timestamp": None}), settings,
                            "regression")  # fmt: skip
    assert untimed.validation == "shuffled_cv"
    assert untimed.cv_metrics == cv.cv_metrics


def test_a_time_holdout_with_one_class_on_a_side_falls_back_to_folds():
    frame = classification_frame(100, [1, 2]).sort_values("y", kind="stable")
    frame["day"] = pd.date_range("2024-01-01", periods=100, freq="D").strftime("%Y-%m-%d")
    data = DataSettings(id="row", target="y", features=["x1", "x2"], positive_label=2,
                        timestamp="day")  # fmt: skip
    trained = fit.fit_model(frame, data, TrainingSettings(model="linear"), "classification")
    assert trained.validation == "shuffled_cv"
