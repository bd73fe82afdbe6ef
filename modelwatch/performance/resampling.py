"""The metrics of performance.metrics on bootstrap resamples of the rows, vectorised, with
percentile intervals; and the metrics of a constant model beside them (pure).

A resample's metric is the one compute_metrics gives on the resampled rows (NaN where it is
undefined there): means are weighted sums over the original rows, each weighted by how often it
was drawn.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence

import numpy as np
import pandas as pd
from sklearn.dummy import DummyClassifier, DummyRegressor

from modelwatch.errors import InsufficientDataError
from modelwatch.performance.metrics import (
    ArrayLike,
    ClassInputs,
    Inputs,
    ScoreLike,
    as_float,
    compute_metrics,
    defined_metrics,
    label_key,
    metric_directions,
    prepare_inputs,
)
from modelwatch.settings import BootstrapSettings

# Work arrays of the bootstrap hold at most this many (resample, row) cells at a time.
_BOOTSTRAP_CELLS = 2_000_000
_EPS = np.finfo(float).eps


def ranking_areas(
    score: np.ndarray, positive_weight: np.ndarray, negative_weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Returns the ROC AUC and the average precision of `score` for each row of the weights.

    Row r gives every item i the weight positive_weight[r, i] as a positive and
    negative_weight[r, i] as a negative: bootstrap counts times the true class, or a calibrated
    probability and its complement (CBPE). Thresholds are the distinct scores, ties count half
    (the trapezoid of sklearn.metrics.roc_auc_score; average precision as
    sklearn.metrics.average_precision_score: sum of recall gains times precision). A row with
    no positive or no negative weight gets NaN for both.
    """
    score = np.asarray(score, dtype=float)
    pos_w, neg_w = np.atleast_2d(positive_weight), np.atleast_2d(negative_weight)
    order = np.argsort(-score, kind="stable")
    # one threshold per distinct score: the cumulative sums at the last item of each tie group
    ends = np.r_[np.flatnonzero(np.diff(score[order])), score.size - 1]
    tps = np.cumsum(pos_w[:, order], axis=1)[:, ends]
    fps = np.cumsum(neg_w[:, order], axis=1)[:, ends]
    zero = np.zeros((tps.shape[0], 1))
    tps0, fps0 = np.hstack([zero, tps]), np.hstack([zero, fps])
    n_pos, n_neg = tps[:, -1], fps[:, -1]
    defined = (n_pos > 0) & (n_neg > 0)
    area = np.sum(np.diff(fps0, axis=1) * (tps0[:, 1:] + tps0[:, :-1]), axis=1) / 2
    kept = tps + fps
    precision = np.divide(tps, kept, out=np.zeros_like(tps), where=kept > 0)
    gain = np.sum(np.diff(tps0, axis=1) * precision, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        roc = np.where(defined, area / (n_pos * n_neg), np.nan)
        ap = np.where(defined, gain / n_pos, np.nan)
    return roc, ap


def bootstrap_chunks(n_rows: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Yields the row indices of `samples` resamples with replacement, in (k, n_rows) chunks
    drawn one after the other from numpy.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    step = max(1, _BOOTSTRAP_CELLS // max(n_rows, 1))
    for start in range(0, samples, step):
        yield rng.integers(0, n_rows, size=(min(step, samples - start), n_rows))


def bootstrap_indices(n_rows: int, settings: BootstrapSettings) -> np.ndarray:
    """Returns the row indices of every resample (settings.samples x n_rows), drawn with
    numpy.random.Generator(settings.seed), the same that bootstrap_intervals uses."""
    chunks = list(bootstrap_chunks(n_rows, settings.samples, settings.seed))
    return np.vstack(chunks) if chunks else np.empty((0, n_rows), dtype=np.int64)


def resampled_metrics(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    indices: np.ndarray,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
) -> dict[str, np.ndarray]:
    """Returns each metric of compute_metrics on each resample (one row of indices), vectorised;
    NaN where a metric is undefined on that resample.

    Only metrics that compute_metrics defines on all rows are returned; the averaging (binary or
    macro) is the one of all rows.

    Raises:
        see compute_metrics.
    """
    inputs = prepare_inputs(
        y_true, y_pred, task, y_score=y_score, classes=classes, positive_label=positive_label
    )
    return resample(inputs, np.atleast_2d(np.asarray(indices, dtype=np.int64)))


def resample(
    inputs: Inputs, indices: np.ndarray, metrics: Collection[str] | None = None
) -> dict[str, np.ndarray]:
    """Returns the metrics of defined_metrics(inputs) (only those named in `metrics`, if given)
    on each resample, one per row of `indices`; NaN where undefined on a resample."""
    wanted = [m for m in defined_metrics(inputs) if metrics is None or m in metrics]
    if isinstance(inputs, ClassInputs):
        got = _resampled_classification(inputs, _counts(indices, inputs.true.size), wanted)
    else:
        got = _resampled_regression(*inputs, indices, wanted)
    return {k: got[k] for k in wanted}


def _counts(indices: np.ndarray, n_rows: int) -> np.ndarray:
    """Returns how often each row occurs in each resample (resamples x rows)."""
    offsets = indices + n_rows * np.arange(indices.shape[0])[:, None]
    flat = np.bincount(offsets.ravel(), minlength=indices.shape[0] * n_rows)
    return flat.reshape(indices.shape[0], n_rows).astype(float)


def _resampled_regression(
    true: np.ndarray, pred: np.ndarray, indices: np.ndarray, wanted: list[str]
) -> dict[str, np.ndarray]:
    t, err = true[indices], pred[indices] - true[indices]

    def r2() -> np.ndarray:
        ss_tot = np.sum((t - t.mean(axis=1, keepdims=True)) ** 2, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(np.ptp(t, axis=1) > 0, 1 - np.sum(err**2, axis=1) / ss_tot, np.nan)

    formulas = {
        "mae": lambda: np.mean(np.abs(err), axis=1),
        "rmse": lambda: np.sqrt(np.mean(err**2, axis=1)),
        # as sklearn.metrics.mean_absolute_percentage_error
        "mape": lambda: np.mean(np.abs(err) / np.maximum(np.abs(t), _EPS), axis=1),
        "r2": r2,
    }
    return {k: formulas[k]() for k in wanted}


def _resampled_classification(
    c: ClassInputs, counts: np.ndarray, wanted: list[str]
) -> dict[str, np.ndarray]:
    n = c.true.size
    out = {}
    if "accuracy" in wanted:
        out["accuracy"] = counts @ (c.true == c.pred).astype(float) / n
    if {"precision", "recall", "f1"} & set(wanted):
        out |= _resampled_rates(c, counts)
    if {"roc_auc", "pr_auc"} & set(wanted):
        out["roc_auc"], out["pr_auc"] = _resampled_areas(c, counts)
    if "log_loss" in wanted:
        assert c.score is not None
        if c.pos is not None:
            p_true = np.where(c.true == c.pos, c.score, 1 - c.score)
        else:
            column = np.searchsorted(np.array(c.classes, dtype=object), c.true)
            p_true = c.score[np.arange(n), column]
        # sklearn.metrics.log_loss clips probabilities to [eps, 1 - eps]
        out["log_loss"] = counts @ -np.log(np.clip(p_true, _EPS, 1 - _EPS)) / n
    return out


def _resampled_rates(c: ClassInputs, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Returns precision, recall and f1 (binary, or macro over the labels that occur in a
    resample, as sklearn's average="macro"), with sklearn's zero_division=0."""
    labels = sorted(set(c.true) | set(c.pred)) if c.pos is None else [c.pos]
    tp = _weighted_counts(counts, [(c.true == k) & (c.pred == k) for k in labels])
    pp = _weighted_counts(counts, [c.pred == k for k in labels])
    ap = _weighted_counts(counts, [c.true == k for k in labels])
    per_label = {
        "precision": _ratio(tp, pp),
        "recall": _ratio(tp, ap),
        "f1": _ratio(2 * tp, pp + ap),
    }
    if c.pos is not None:
        return {name: values[:, 0] for name, values in per_label.items()}
    present = (pp + ap) > 0
    return {
        name: np.sum(values * present, axis=1) / np.sum(present, axis=1)
        for name, values in per_label.items()
    }


def _weighted_counts(counts: np.ndarray, masks: list[np.ndarray]) -> np.ndarray:
    """Returns, per resample (row of counts), how many resampled rows each mask selects."""
    return counts @ np.column_stack(masks).astype(float)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (sklearn's zero_division=0)."""
    return np.divide(num, den, out=np.zeros_like(num, dtype=float), where=den > 0)


def _resampled_areas(c: ClassInputs, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns roc_auc and pr_auc per resample: binary, or the macro mean one-vs-rest."""
    assert c.score is not None
    if c.pos is not None:
        is_pos = c.true == c.pos
        return ranking_areas(c.score, counts * is_pos, counts * ~is_pos)
    curves = [
        ranking_areas(c.score[:, j], counts * (c.true == k), counts * (c.true != k))
        for j, k in enumerate(c.classes)
    ]
    return np.mean([r for r, _ in curves], axis=0), np.mean([a for _, a in curves], axis=0)


def bootstrap_intervals(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    task: str,
    *,
    y_score: ScoreLike | None = None,
    classes: Sequence | None = None,
    positive_label: str | int | None = None,
    settings: BootstrapSettings,
) -> dict[str, tuple[float, float]]:
    """Returns a percentile-bootstrap confidence interval of each metric of compute_metrics.

    settings.samples resamples of the rows (with replacement, bootstrap_indices); a metric's
    interval is the (1 - confidence) / 2 and (1 + confidence) / 2 quantiles (numpy.percentile,
    linear) of its values on the resamples where it is defined. Empty with 0 samples.

    Raises:
        see compute_metrics.
    """
    if settings.samples == 0:
        return {}
    inputs = prepare_inputs(
        y_true, y_pred, task, y_score=y_score, classes=classes, positive_label=positive_label
    )
    n_rows = inputs.true.size if isinstance(inputs, ClassInputs) else inputs[0].size
    values: dict[str, list[np.ndarray]] = {}
    for indices in bootstrap_chunks(n_rows, settings.samples, settings.seed):
        for name, v in resample(inputs, indices).items():
            values.setdefault(name, []).append(v)
    tail = (1 - settings.confidence) / 2 * 100
    out = {}
    for name, parts in values.items():
        v = np.concatenate(parts)
        v = v[np.isfinite(v)]
        if v.size:
            low, high = np.percentile(v, [tail, 100 - tail])
            out[name] = (float(low), float(high))
    return out


def baseline_metrics(
    reference_target: ArrayLike,
    y_true: ArrayLike,
    task: str,
    *,
    positive_label: str | int | None = None,
) -> dict[str, float]:
    """Returns the metrics of a constant model fitted on the reference target, scored on y_true:
    sklearn.dummy.DummyRegressor(strategy="mean") or DummyClassifier(strategy="prior") (its
    majority class as prediction, the reference class shares as scores).

    Raises:
        InsufficientDataError: the reference target has no values.
        see compute_metrics.
    """
    metric_directions(task)
    ref = np.asarray(reference_target, dtype=object)
    ref = ref[~pd.isna(ref)]
    if ref.size == 0:
        raise InsufficientDataError("reference target has no values: no constant model to fit")
    fit_x, x = np.zeros((ref.size, 1)), np.zeros((len(y_true), 1))
    if task == "regression":
        regressor = DummyRegressor(strategy="mean").fit(fit_x, as_float(ref, "reference target"))
        return compute_metrics(y_true, regressor.predict(x), task)
    keys = np.array([label_key(v) for v in ref], dtype=object)
    classifier = DummyClassifier(strategy="prior").fit(fit_x, keys)
    return compute_metrics(
        y_true,
        classifier.predict(x),
        task,
        y_score=classifier.predict_proba(x),
        classes=list(classifier.classes_),
        positive_label=positive_label,
    )
