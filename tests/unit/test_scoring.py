"""Scoring writes class probabilities; evaluation reads them back (modelwatch.training.scoring)."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

from modelwatch.settings import BootstrapSettings, DataSettings, PerformanceSettings
from modelwatch.training import scoring

SETTINGS = PerformanceSettings(min_segment_rows=5, bootstrap=BootstrapSettings(samples=50))


def labelled_frame(labels: list, n: int = 300, seed: int = 50) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    logits = np.column_stack([np.zeros(n), 2 * x1, 2 * x2][: len(labels)])
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    drawn = (rng.uniform(size=(n, 1)) > p.cumsum(axis=1)).sum(axis=1)
    return pd.DataFrame(
        {
            "row": np.arange(n),
            "x1": x1,
            "x2": x2,
            "site": rng.choice(["n", "s"], n),
            "y": np.asarray(labels)[drawn],
        }
    )


def data_for(positive_label=None) -> DataSettings:
    return DataSettings(
        id="row",
        target="y",
        features=["x1", "x2", "site"],
        categorical=["site"],
        segments=["site"],
        positive_label=positive_label,
    )


def fitted(frame: pd.DataFrame) -> LogisticRegression:
    return LogisticRegression().fit(frame[["x1", "x2"]], frame.y)


class TwoFeatureModel:
    """The classifier under the scoring code: sees only the numeric features."""

    def __init__(self, model: LogisticRegression):
        self.model, self.classes_ = model, model.classes_

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict(x[["x1", "x2"]])

    def predict_proba(self, x: pd.DataFrame) -> np.ndarray:
        return self.model.predict_proba(x[["x1", "x2"]])


def test_binary_scores_are_the_positive_class_probability():
    """Reference: LogisticRegression.predict_proba, the column of class 1 (positive label 1,
    the first column: not simply the last one)."""
    frame = labelled_frame([1, 2])
    model = fitted(frame)
    scored = scoring.score_frame(TwoFeatureModel(model), frame, data_for(1), "classification")
    assert list(scored.columns) == ["row", "prediction", scoring.SCORE]
    want = model.predict_proba(frame[["x1", "x2"]])[:, 0]
    np.testing.assert_allclose(scored[scoring.SCORE], want)
    y_score, classes = scoring.read_scores(scored)
    assert classes is None
    np.testing.assert_allclose(y_score, want)


def test_multiclass_scores_have_one_column_per_class():
    """Reference: LogisticRegression.predict_proba, one column per entry of classes_."""
    frame = labelled_frame([3, 7, 10])
    model = fitted(frame)
    scored = scoring.score_frame(TwoFeatureModel(model), frame, data_for(), "classification")
    names = ["prediction_score.3", "prediction_score.7", "prediction_score.10"]
    assert list(scored.columns) == ["row", "prediction", *names]
    np.testing.assert_allclose(scored[names], model.predict_proba(frame[["x1", "x2"]]))
    y_score, classes = scoring.read_scores(scored)
    assert classes == ["3", "7", "10"] and y_score.shape == (300, 3)


def test_evaluate_predictions_multiclass_has_probabilistic_metrics_and_baseline():
    """Reference: sklearn.metrics.roc_auc_score(multi_class="ovr"), log_loss and, for the
    constant model, log_loss of the reference class shares (DummyClassifier(strategy="prior"))."""
    frame, reference = labelled_frame([3, 7, 10]), labelled_frame([3, 7, 10], 500, seed=51)
    model = TwoFeatureModel(fitted(reference))
    scored = scoring.score_frame(model, frame, data_for(), "classification")
    labels = frame[["row", "y"]].iloc[::-1]  # labels arrive in another order
    coverage, report = scoring.evaluate_predictions(
        scored,
        frame,
        labels,
        data_for(),
        "classification",
        SETTINGS,
        reference_target=reference.y,
    )
    proba = model.predict_proba(frame)
    assert coverage == 1.0
    assert report.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(frame.y, proba, multi_class="ovr")
    )
    assert report.metrics["log_loss"] == pytest.approx(skm.log_loss(frame.y, y_proba=proba))
    shares = reference.y.value_counts(normalize=True).reindex([3, 7, 10]).to_numpy()
    assert report.baseline["log_loss"] == pytest.approx(
        skm.log_loss(frame.y, y_proba=np.tile(shares, (300, 1)), labels=[3, 7, 10])
    )
    assert report.baseline["log_loss"] > report.metrics["log_loss"]  # the model learned
    assert set(report.intervals) == set(report.metrics)
    assert {s.value for s in report.segments} == {"n", "s"}


def test_evaluate_predictions_binary_reads_the_positive_score():
    """Reference: sklearn.metrics.roc_auc_score and average_precision_score of class 2."""
    frame = labelled_frame([1, 2], seed=52)
    model = TwoFeatureModel(fitted(frame))
    scored = scoring.score_frame(model, frame, data_for(2), "classification")
    labels = frame[["row", "y"]].iloc[:290]  # 10 labels still missing: coverage 96.7%
    coverage, report = scoring.evaluate_predictions(
        scored, frame, labels, data_for(2), "classification", SETTINGS
    )
    rows = frame.iloc[:290]
    p2 = model.predict_proba(rows)[:, 1]
    assert coverage == pytest.approx(290 / 300)
    assert report.n_missing_target == 10 and report.baseline == {}
    assert report.metrics["roc_auc"] == pytest.approx(skm.roc_auc_score(rows.y == 2, p2))
    assert report.metrics["pr_auc"] == pytest.approx(skm.average_precision_score(rows.y == 2, p2))
    too_few = scoring.evaluate_predictions(
        scored, frame, labels.iloc[:100], data_for(2), "classification", SETTINGS
    )
    assert too_few == (pytest.approx(100 / 300), None)
