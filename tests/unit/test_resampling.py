"""Bootstrap resamples and intervals of modelwatch.performance.resampling against scikit-learn, the
constant-model baseline, and the weighted ranking areas."""

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.dummy import DummyClassifier, DummyRegressor

from modelwatch.errors import InsufficientDataError
from modelwatch.performance import metrics, resampling
from modelwatch.performance.metrics import compute_metrics
from modelwatch.settings import BootstrapSettings
from tests.unit.test_metrics import multiclass_sample
from tests.unit.test_performance import regression_frame

# --- bootstrap intervals ----------------------------------------------------------------------


def binary_sample(seed: int, n: int):
    rng = np.random.default_rng(seed)
    y = rng.choice([1, 2], n, p=[0.75, 0.25])
    # rounded scores: ties must be handled as sklearn does
    score = np.round(np.clip((y == 2) * 0.3 + rng.uniform(0, 0.7, n), 0, 1), 2)
    return y, np.where(score > 0.5, 2, 1), score


@pytest.mark.parametrize("case", ["regression", "binary", "multiclass"])
def test_each_resample_matches_sklearn_on_the_same_rows(case):
    """Reference: metrics.compute_metrics (sklearn.metrics mean_absolute_error, ...,
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
    indices = resampling.bootstrap_indices(len(y), settings)
    assert indices.shape == (6, len(y))
    got = resampling.resampled_metrics(y, pred, task, indices, **kwargs)
    for k, rows in enumerate(indices):
        sub = {key: (v[rows] if key == "y_score" else v) for key, v in kwargs.items()}
        want = compute_metrics(y[rows], pred[rows], task, **sub)
        defined = {m: v[k] for m, v in got.items() if np.isfinite(v[k])}
        assert defined == pytest.approx(want, rel=1e-9)
    assert len(set(got["mae" if case == "regression" else "accuracy"])) > 1  # resamples differ
    if case == "multiclass":
        assert np.isnan(got["roc_auc"]).any() and not np.isnan(got["roc_auc"]).all()


def test_bootstrap_indices_are_the_seeded_generator_draws():
    """Reference: numpy.random.default_rng(seed).integers(0, n, (samples, n)) in one draw, also
    when the bootstrap works through the resamples in chunks (12,000 rows)."""
    settings = BootstrapSettings(samples=200, seed=7)
    got = resampling.bootstrap_indices(12_000, settings)
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
    got = resampling.bootstrap_intervals(
        y, pred, "classification", y_score=score, positive_label=2, settings=settings
    )
    aucs, accs = [], []
    for rows in resampling.bootstrap_indices(14, settings):
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
        ci = resampling.bootstrap_intervals(
            frame.y, frame.prediction, "regression", settings=settings
        )
        assert ci["mae"][0] < skm.mean_absolute_error(frame.y, frame.prediction) < ci["mae"][1]
        y, pred, score = binary_sample(20, n)
        cb = resampling.bootstrap_intervals(
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
    off = resampling.bootstrap_intervals(
        y, pred, "regression", settings=BootstrapSettings(samples=0)
    )
    assert off == {}
    ci = resampling.bootstrap_intervals(y, pred, "regression", settings=BootstrapSettings())
    assert set(ci) == {"mae", "rmse", "r2"}  # mape: the target has a zero on all rows
    assert ci["mae"][0] <= skm.mean_absolute_error(y, pred) <= ci["mae"][1]


# --- constant-model baseline ------------------------------------------------------------------


def test_baseline_regression_is_a_mean_dummy():
    """Reference: sklearn.dummy.DummyRegressor(strategy="mean") fitted on the reference target,
    scored with sklearn.metrics.mean_absolute_error and r2_score."""
    reference, current = regression_frame(21, n=300), regression_frame(22, n=80)
    got = resampling.baseline_metrics(reference.y, current.y, "regression")
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
    got = resampling.baseline_metrics(reference, y, "classification", positive_label=2)
    dummy = DummyClassifier(strategy="prior").fit(np.zeros((100, 1)), reference.astype(int))
    proba = dummy.predict_proba(np.zeros((20, 1)))
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, dummy.predict(np.zeros((20, 1)))))
    assert got["accuracy"] == 0.5 and got["recall"] == 0.0
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y == 2, proba[:, 1])) == 0.5
    assert got["log_loss"] == pytest.approx(skm.log_loss(y, y_proba=proba))


def test_baseline_needs_a_reference_target():
    with pytest.raises(InsufficientDataError, match=r"reference target has no values"):
        resampling.baseline_metrics(pd.Series([np.nan, np.nan]), [1.0, 2.0], "regression")


def test_ranking_areas_with_weights_match_sklearn_sample_weight():
    """Reference: sklearn.metrics.roc_auc_score and average_precision_score with sample_weight
    (each item once as a positive with its positive weight, once as a negative)."""
    rng = np.random.default_rng(26)
    score = np.round(rng.uniform(size=50), 1)  # many ties
    pos_w, neg_w = rng.uniform(size=50), rng.uniform(size=50)
    roc, ap = resampling.ranking_areas(score, pos_w, neg_w)
    labels = np.r_[np.ones(50), np.zeros(50)]
    scores, weights = np.r_[score, score], np.r_[pos_w, neg_w]
    assert roc[0] == pytest.approx(skm.roc_auc_score(labels, scores, sample_weight=weights))
    assert ap[0] == pytest.approx(
        skm.average_precision_score(labels, scores, sample_weight=weights)
    )


@pytest.mark.parametrize("case", ["regression", "binary", "multiclass"])
def test_a_subset_of_metrics_matches_all_of_them(case):
    """Reference: resampled_metrics with every metric (checked against compute_metrics above);
    resample computes only the metrics it is asked for, with the same values."""
    if case == "regression":
        frame = regression_frame(27, n=120)
        y, pred, kwargs, task = frame.y.to_numpy(), frame.prediction.to_numpy(), {}, "regression"
    elif case == "binary":
        y, pred, score = binary_sample(28, 120)
        kwargs, task = {"y_score": score, "positive_label": 2}, "classification"
    else:
        y, pred, proba, classes = multiclass_sample(29, 120)
        kwargs, task = {"y_score": proba, "classes": classes}, "classification"
    indices = resampling.bootstrap_indices(len(y), BootstrapSettings(samples=20, seed=4))
    every = resampling.resampled_metrics(y, pred, task, indices, **kwargs)
    inputs = metrics.prepare_inputs(y, pred, task, **kwargs)
    for name in every:
        alone = resampling.resample(inputs, indices, [name])
        assert list(alone) == [name]
        np.testing.assert_array_equal(alone[name], every[name])


@pytest.mark.parametrize("case", ["regression", "binary"])
def test_intervals_equal_scipy_stats_bootstrap_percentile(case):
    """Reference: scipy.stats.bootstrap(method="percentile", paired=True) with the same seed
    (scipy draws the same resample indices from numpy.random.default_rng(seed)), its
    statistic the metric of compute_metrics (scikit-learn) on the resampled rows."""
    from scipy import stats

    settings = BootstrapSettings(samples=100, confidence=0.9, seed=11)
    if case == "regression":
        frame = regression_frame(21, n=200)
        y, pred, kwargs = frame.y.to_numpy(), frame.prediction.to_numpy(), {}
        names = ["mae", "rmse", "r2"]
        data: tuple = (y, pred)
        scores = {}
    else:
        y, pred, score = binary_sample(22, 200)
        kwargs = {"positive_label": 2}
        names = ["accuracy", "f1", "roc_auc"]
        data = (y, pred, score)
        scores = {"y_score": score}
    task = "regression" if case == "regression" else "classification"
    ours = resampling.bootstrap_intervals(y, pred, task, settings=settings, **kwargs, **scores)
    for name in names:

        def statistic(*arrays, name=name):
            extra = {"y_score": arrays[2]} if len(arrays) > 2 else {}
            return compute_metrics(arrays[0], arrays[1], task, **extra, **kwargs)[name]

        ref = stats.bootstrap(
            data,
            statistic,
            paired=True,
            vectorized=False,
            n_resamples=settings.samples,
            confidence_level=settings.confidence,
            method="percentile",
            rng=np.random.default_rng(settings.seed),
        ).confidence_interval
        assert ours[name] == pytest.approx((ref.low, ref.high), rel=1e-12), name
