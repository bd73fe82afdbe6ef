"""Paired bootstrap and McNemar's exact test (modelwatch.performance.significance) against
scikit-learn and scipy on fixed resamples."""

from functools import partial

import numpy as np
import pytest
import scipy.stats
from sklearn import metrics as skm

from modelwatch.performance import significance
from modelwatch.performance.metrics import compute_metrics
from modelwatch.performance.resampling import bootstrap_chunks
from modelwatch.performance.significance import (
    Predictions,
    mcnemar_exact,
    paired_bootstrap,
    paired_differences,
)


def test_bootstrap_interval_is_the_percentile_of_paired_resamples(rng):
    """Reference: numpy.quantile of the per-resample differences, drawn as documented."""
    n = 300
    y = rng.gamma(4, 50, n)
    cand, champ = Predictions(y + rng.normal(0, 20, n)), Predictions(y + rng.normal(0, 22, n))
    res = paired_bootstrap(
        y, cand, champ, "rmse", "regression", samples=400, confidence=0.9, seed=5
    )
    diffs = np.concatenate(
        [
            paired_differences(y, cand, champ, "rmse", "regression", i)
            for i in bootstrap_chunks(n, 400, 5)
        ]
    )
    np.testing.assert_allclose(res.differences, diffs, rtol=1e-12)
    assert (res.low, res.high) == pytest.approx(tuple(np.quantile(diffs, [0.05, 0.95])), rel=1e-12)
    want = skm.root_mean_squared_error(y, champ.labels) - skm.root_mean_squared_error(
        y, cand.labels
    )
    assert res.difference == pytest.approx(want, rel=1e-9)
    assert (res.samples, res.undefined) == (400, 0)


def _binary(rng, n):
    y = rng.integers(0, 2, n)
    scores = [np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1) for _ in range(2)]
    scores[1] = np.round(scores[1], 1)  # ties in the champion's scores
    return y, *(Predictions((s > 0.5).astype(int), s) for s in scores)


def _multiclass(rng, n):
    y = rng.choice(["a", "b", "c"], n)
    return y, *(
        Predictions(np.where(rng.random(n) < right, y, rng.choice(["a", "b", "c"], n)))
        for right in (0.7, 0.5)
    )


def _regression(rng, n):
    y = rng.gamma(4, 50, n)
    return y, Predictions(y + rng.normal(0, 20, n)), Predictions(y + rng.normal(5, 25, n))


def _macro(score):
    return partial(score, average="macro", zero_division=0)


METRIC_CASES = [
    # data, metric, sklearn reference, on scores, higher is better
    (_regression, "mae", skm.mean_absolute_error, False, False),
    (_regression, "rmse", skm.root_mean_squared_error, False, False),
    (_regression, "mape", skm.mean_absolute_percentage_error, False, False),
    (_regression, "r2", skm.r2_score, False, True),
    (_binary, "accuracy", skm.accuracy_score, False, True),
    (_binary, "precision", partial(skm.precision_score, zero_division=0), False, True),
    (_binary, "recall", partial(skm.recall_score, zero_division=0), False, True),
    (_binary, "f1", partial(skm.f1_score, zero_division=0), False, True),
    (_binary, "roc_auc", skm.roc_auc_score, True, True),
    (_binary, "pr_auc", skm.average_precision_score, True, True),
    (_binary, "log_loss", partial(skm.log_loss, labels=[0, 1]), True, False),
    (_multiclass, "accuracy", skm.accuracy_score, False, True),
    (_multiclass, "precision", _macro(skm.precision_score), False, True),
    (_multiclass, "recall", _macro(skm.recall_score), False, True),
    (_multiclass, "f1", _macro(skm.f1_score), False, True),
]


@pytest.mark.parametrize("path", ["vectorised", "loop over compute_metrics"])
@pytest.mark.parametrize("make, metric, reference, on_scores, higher_is_better", METRIC_CASES)
def test_paired_difference_on_fixed_resamples_matches_sklearn(
    rng, monkeypatch, path, make, metric, reference, on_scores, higher_is_better
):
    """Reference: sklearn.metrics computed by hand on the resampled rows of both models."""
    if path != "vectorised":  # the fallback for metrics without a vectorised form
        monkeypatch.setattr(significance, "_fast_metric", lambda *args: None)
    n = 300
    y, cand, champ = make(rng, n)
    task = "regression" if make is _regression else "classification"
    indices = next(bootstrap_chunks(n, 3, seed=11))
    got = paired_differences(y, cand, champ, metric, task, indices, positive_label=1)
    for rows, value in zip(indices, got, strict=True):

        def score(p, rows=rows):
            return reference(y[rows], (p.scores if on_scores else p.labels)[rows])

        want = score(cand) - score(champ) if higher_is_better else score(champ) - score(cand)
        assert value == pytest.approx(want, rel=1e-9, abs=1e-12)
    res = paired_bootstrap(
        y, cand, champ, metric, task, samples=3, confidence=0.9, seed=11, positive_label=1
    )
    np.testing.assert_allclose(res.differences, got, rtol=1e-12)


@pytest.mark.parametrize("make, metric", [(c[0], c[1]) for c in METRIC_CASES])
def test_vectorised_metrics_score_all_resamples_at_once(rng, monkeypatch, make, metric):
    """compute_metrics runs once per model (to check the vectorised form), not per resample."""
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return compute_metrics(*args, **kwargs)

    monkeypatch.setattr(significance, "compute_metrics", counted)
    y, cand, champ = make(rng, 200)
    task = "regression" if make is _regression else "classification"
    paired_bootstrap(
        y, cand, champ, metric, task, samples=300, confidence=0.9, seed=0, positive_label=1
    )
    assert len(calls) == 2


def test_resamples_with_an_undefined_metric_are_left_out_and_counted():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0])  # one positive: many resamples lack it
    scores = np.linspace(0.9, 0.1, 8)
    cand, champ = (
        Predictions((scores > 0.5).astype(int), scores),
        Predictions(np.zeros(8), 1 - scores),
    )
    res = paired_bootstrap(
        y,
        cand,
        champ,
        "roc_auc",
        "classification",
        samples=200,
        confidence=0.9,
        seed=2,
        positive_label=1,
    )
    no_positive = sum(int((idx != 0).all(axis=1).sum()) for idx in bootstrap_chunks(8, 200, 2))
    assert res.undefined == no_positive > 0
    assert np.isnan(res.differences).sum() == no_positive


@pytest.mark.parametrize(
    "wins, losses", [(30, 10), (10, 30), (12, 10), (5, 5), (1, 0), (0, 7), (200, 170), (3, 40)]
)
def test_mcnemar_exact_matches_binomtest(wins, losses):
    # reference: scipy.stats.binomtest (two-sided exact test of wins among discordant pairs, p=1/2)
    want = scipy.stats.binomtest(wins, wins + losses, 0.5).pvalue
    assert mcnemar_exact(wins, losses) == pytest.approx(want, rel=1e-12)


def test_mcnemar_without_discordant_rows_is_not_significant():
    assert mcnemar_exact(0, 0) == 1.0


def test_vectorised_and_loop_agree_on_undefined_resamples(monkeypatch):
    """Reference: compute_metrics on each resample (the loop) leaves pr_auc and roc_auc out
    where a resample holds one class only; the vectorised form gives NaN on the same ones."""
    y = np.array([1, 1, 1, 1, 1, 1, 1, 0])  # one negative: many resamples lack it
    scores = np.linspace(0.9, 0.1, 8)
    cand, champ = Predictions((scores > 0.5).astype(int), scores), Predictions(y, 1 - scores)
    kwargs = {"samples": 40, "confidence": 0.9, "seed": 2, "positive_label": 1}
    for metric in ("pr_auc", "roc_auc"):
        fast = paired_bootstrap(y, cand, champ, metric, "classification", **kwargs)
        with monkeypatch.context() as m:
            m.setattr(significance, "_fast_metric", lambda *args: None)
            loop = paired_bootstrap(y, cand, champ, metric, "classification", **kwargs)
        no_negative = sum(int((idx != 7).all(axis=1).sum()) for idx in bootstrap_chunks(8, 40, 2))
        assert fast.undefined == loop.undefined == no_negative > 0
        np.testing.assert_allclose(fast.differences, loop.differences, rtol=1e-12, atol=1e-15)
