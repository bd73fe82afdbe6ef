"""Performance estimated before labels arrive, from calibrated scores (CBPE, as NannyML's CBPE).

A calibrated probability p says that a row is positive with probability p, so over a batch the
confusion matrix is expected to be: TP = sum of p over predicted-positive rows, FP = sum of 1 - p
over them, FN and TN likewise over the predicted-negative rows. Every metric follows from these
expected counts; ROC AUC and average precision from expected counts at every score threshold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.performance.metrics import label_key
from modelwatch.performance.resampling import ranking_areas

if TYPE_CHECKING:
    from modelwatch.settings import DataSettings

ArrayLike = Sequence | np.ndarray | pd.Series | pd.DataFrame


@dataclass(frozen=True)
class Calibrator:
    """Isotonic maps from a classifier's scores to calibrated probabilities, one per class
    (one-vs-rest), stored as the knots of sklearn.isotonic.IsotonicRegression and applied with
    linear interpolation, clipped at both ends (out_of_bounds="clip").

    Binary: `classes` holds the positive label alone and apply maps P(positive). Multiclass:
    one map per score column in `classes` order; calibrated rows are renormalised to sum 1.
    """

    classes: tuple[str, ...]
    x_thresholds: tuple[tuple[float, ...], ...]
    y_thresholds: tuple[tuple[float, ...], ...]
    binary: bool

    def apply(self, scores: ArrayLike) -> np.ndarray:
        """Returns calibrated probabilities: 1-D P(positive) for binary (scores 1-D or one
        column), rows summing to 1 for multiclass (a row whose maps are all 0 becomes uniform).

        Raises:
            SchemaError: missing scores, or not one column per class.
        """
        x = _scores(scores, None if self.binary else len(self.classes), self.classes)
        if self.binary:
            return np.interp(x, self.x_thresholds[0], self.y_thresholds[0])
        out = np.column_stack(
            [
                np.interp(x[:, j], xt, yt)
                for j, (xt, yt) in enumerate(zip(self.x_thresholds, self.y_thresholds, strict=True))
            ]
        )
        total = out.sum(axis=1, keepdims=True)
        uniform = np.full_like(out, 1 / len(self.classes))
        return np.divide(out, total, out=uniform, where=total > 0)

    def label_kwargs(self) -> dict[str, str | list[str]]:
        """Returns the label argument of estimate_metrics: positive_label or classes."""
        if self.binary:
            return {"positive_label": self.classes[0]}
        return {"classes": list(self.classes)}

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict; from_dict reads it back."""
        return {
            "kind": "binary" if self.binary else "multiclass",
            "classes": list(self.classes),
            "x_thresholds": [list(x) for x in self.x_thresholds],
            "y_thresholds": [list(y) for y in self.y_thresholds],
        }

    @classmethod
    def from_dict(cls, raw: Mapping) -> Calibrator:
        """Returns the calibrator that to_dict wrote.

        Raises:
            SchemaError: a key is missing or the knots do not pair up.
        """
        try:
            calibrator = cls(
                classes=tuple(str(c) for c in raw["classes"]),
                x_thresholds=tuple(tuple(float(v) for v in x) for x in raw["x_thresholds"]),
                y_thresholds=tuple(tuple(float(v) for v in y) for y in raw["y_thresholds"]),
                binary=raw["kind"] == "binary",
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SchemaError(f"calibration: not a calibrator dict ({exc!r})") from None
        c = calibrator
        lengths = [(len(x), len(y)) for x, y in zip(c.x_thresholds, c.y_thresholds, strict=False)]
        counts = {len(c.classes), len(c.x_thresholds), len(c.y_thresholds)}
        if counts != {1 if c.binary else len(c.classes)} or any(
            a != b or a == 0 for a, b in lengths
        ):
            raise SchemaError(
                f"calibration: {len(c.classes)} {raw['kind']} class(es) need as many non-empty, "
                f"equally long x/y threshold lists (got lengths {lengths})"
            )
        return calibrator


def fit_calibrator(
    scores: ArrayLike,
    y_true: ArrayLike,
    positive_label: str | int | None = None,
    classes: Sequence | None = None,
) -> Calibrator:
    """Returns isotonic calibration maps of scores against the labels (one-vs-rest per class),
    each fitted with sklearn.isotonic.IsotonicRegression(out_of_bounds="clip").

    Binary: scores are P(positive_label), 1-D or one column. Multiclass: one score column per
    label of `classes`. Labels compare by value (performance.metrics.label_key).

    Raises:
        InsufficientDataError: fewer than two rows.
        SchemaError: missing values, or scores and labels of different lengths.
        ConfigError: neither a positive_label (binary) nor classes (multiclass) to go by.
    """
    binary = classes is None
    if binary and positive_label is None:
        raise ConfigError("calibration: binary scores need data.positive_label")
    keys = (label_key(positive_label),) if binary else tuple(label_key(c) for c in classes)
    x = _scores(scores, None if binary else len(keys), keys)
    true = np.asarray(y_true, dtype=object)
    if true.shape != x.shape[:1]:
        raise SchemaError(f"calibration: {true.size} labels for {x.shape[0]} rows of scores")
    if true.size < 2:
        raise InsufficientDataError(f"calibration: {true.size} labelled row(s), need at least 2")
    if n := int(pd.isna(true).sum()):
        raise SchemaError(f"calibration: {n} missing label(s) of {true.size}")
    true_keys = np.array([label_key(v) for v in true], dtype=object)
    columns = x[:, None] if binary else x
    fitted = [
        IsotonicRegression(out_of_bounds="clip").fit(columns[:, j], (true_keys == k).astype(float))
        for j, k in enumerate(keys)
    ]
    return Calibrator(
        classes=keys,
        x_thresholds=tuple(tuple(map(float, f.X_thresholds_)) for f in fitted),
        y_thresholds=tuple(tuple(map(float, f.y_thresholds_)) for f in fitted),
        binary=binary,
    )


def estimate_metrics(
    y_pred: ArrayLike,
    calibrated: ArrayLike,
    *,
    positive_label: str | int | None = None,
    classes: Sequence | None = None,
) -> dict[str, float]:
    """Returns accuracy, precision, recall, f1, roc_auc and pr_auc expected from calibrated
    probabilities (CBPE), under the names of performance.metrics.compute_metrics.

    Binary (positive_label; calibrated = P(positive)): the expected confusion matrix gives
    accuracy, precision, recall and f1 of the positive label; roc_auc and pr_auc are the area
    under the expected ROC curve and the expected average precision over the thresholds of the
    calibrated score (performance.resampling.ranking_areas with weights p and 1 - p). Multiclass
    (classes; one calibrated column per class): the same one-vs-rest per class, macro-averaged, and
    accuracy is the mean calibrated probability of the predicted class. A metric whose expected
    denominator is 0 is 0 (as sklearn's zero_division=0); roc_auc and pr_auc are left out when
    no positive or no negative is expected.

    Raises:
        ValueError: both or neither of positive_label and classes.
        InsufficientDataError: no rows.
        SchemaError: missing values, or not one calibrated column per class.
    """
    if (positive_label is None) == (classes is None):
        raise ValueError("give positive_label (binary) or classes (multiclass), exactly one")
    keys = [label_key(positive_label)] if classes is None else [label_key(c) for c in classes]
    p = _scores(calibrated, None if classes is None else len(keys), keys)
    pred = np.asarray(y_pred, dtype=object)
    if pred.shape != p.shape[:1]:
        raise SchemaError(f"estimation: {pred.size} predictions for {p.shape[0]} rows of scores")
    if pred.size == 0:
        raise InsufficientDataError("estimation: no rows to estimate on")
    if n := int(pd.isna(pred).sum()):
        raise SchemaError(f"estimation: {n} missing prediction(s) of {pred.size}")
    pred_keys = np.array([label_key(v) for v in pred], dtype=object)
    if classes is None:
        return _expected_one_vs_rest(pred_keys == keys[0], p, with_accuracy=True)
    per_class = [_expected_one_vs_rest(pred_keys == k, p[:, j]) for j, k in enumerate(keys)]
    column = {k: j for j, k in enumerate(keys)}
    p_pred = [p[i, column[k]] if k in column else 0.0 for i, k in enumerate(pred_keys)]
    out = {"accuracy": float(np.mean(p_pred))}
    for name in ["precision", "recall", "f1", "roc_auc", "pr_auc"]:
        if all(name in m for m in per_class):
            out[name] = float(np.mean([m[name] for m in per_class]))
    return out


def _expected_one_vs_rest(
    predicted: np.ndarray, p: np.ndarray, with_accuracy: bool = False
) -> dict[str, float]:
    tp, fp = float(p[predicted].sum()), float((1 - p[predicted]).sum())
    fn, tn = float(p[~predicted].sum()), float((1 - p[~predicted]).sum())
    out = {"accuracy": (tp + tn) / p.size} if with_accuracy else {}
    out |= {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }
    roc, ap = ranking_areas(p, p, 1 - p)
    if np.isfinite(roc[0]):
        out |= {"roc_auc": float(roc[0]), "pr_auc": float(ap[0])}
    return out


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else 0.0


def _scores(scores: ArrayLike, n_columns: int | None, keys: Sequence[str]) -> np.ndarray:
    """Returns scores as floats: 1-D when n_columns is None (one column accepted), else 2-D."""
    try:
        x = np.asarray(scores, dtype=float)
    except (TypeError, ValueError):
        raise SchemaError("scores: expected numbers") from None
    if n_columns is None and x.ndim == 2 and x.shape[1] == 1:
        x = x[:, 0]
    want = 1 if n_columns is None else 2
    if x.ndim != want or (n_columns is not None and x.shape[1] != n_columns):
        raise SchemaError(
            f"scores have shape {x.shape}: expected "
            + ("one score per row" if n_columns is None else f"{n_columns} columns")
            + f" for classes {', '.join(keys)}"
        )
    if n := int(np.isnan(x).sum()):
        raise SchemaError(f"scores: {n} missing value(s) of {x.size}")
    return x


def estimate_batch(
    predictions: pd.DataFrame, calibrator: Calibrator, data: DataSettings
) -> dict[str, float]:
    """Returns the CBPE estimates of a scored batch (scoring.score_frame's columns) from the
    champion's calibrator: estimate_metrics on its calibrated scores."""
    from modelwatch.training import scoring

    if calibrator.binary:
        scores = predictions[scoring.SCORE].to_numpy(dtype=float)
    else:
        cols = [scoring.class_score_column(c) for c in calibrator.classes]
        scores = predictions[cols].to_numpy(dtype=float)
    return estimate_metrics(
        predictions[data.prediction].to_numpy(),
        calibrator.apply(scores),
        **calibrator.label_kwargs(),
    )
