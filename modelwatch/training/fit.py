"""Build, fit and cross-validate the scikit-learn pipeline described in params.yaml."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelwatch.errors import (
    ConfigError,
    EntryPointError,
    InsufficientDataError,
    ModelIntegrityError,
)
from modelwatch.performance import estimation
from modelwatch.performance.metrics import compute_metrics, label_key
from modelwatch.progress import Progress
from modelwatch.settings import DataSettings, TrainingSettings
from modelwatch.training import trusted
from modelwatch.training.windows import TrainingWindow

log = logging.getLogger(__name__)

_ESTIMATORS = {
    ("regression", "hist_gradient_boosting"): HistGradientBoostingRegressor,
    ("classification", "hist_gradient_boosting"): HistGradientBoostingClassifier,
    ("regression", "random_forest"): RandomForestRegressor,
    ("classification", "random_forest"): RandomForestClassifier,
    ("regression", "linear"): Ridge,
    ("classification", "linear"): LogisticRegression,
    ("regression", "dummy"): DummyRegressor,
    ("classification", "dummy"): DummyClassifier,
}


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Any  # what the entry point returned: a fitted scikit-learn-compatible estimator
    cv_metrics: dict[str, float]
    n_rows: int
    importance: dict[str, float]
    calibration: dict | None = None  # classification: estimation.Calibrator.to_dict()
    validation: str = "shuffled_cv"  # how cv_metrics were measured (validation_scheme)
    entry_point: str = ""  # the function that fitted it (modelwatch.training.entry)


def build_pipeline(data: DataSettings, training: TrainingSettings, task: str) -> Pipeline:
    """Returns an unfitted pipeline: encoding of categorical columns, then the estimator.

    Raises:
        ConfigError: a hyperparameter is not accepted by the chosen estimator.
    """
    cls = _ESTIMATORS[(task, training.model)]
    params = dict(training.hyperparameters)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", training.seed)
    if training.model == "hist_gradient_boosting" and data.categorical:
        params["categorical_features"] = list(range(len(data.categorical)))
    try:
        estimator: BaseEstimator = cls(**params)
    except TypeError as exc:
        raise ConfigError(
            f"training.hyperparameters: not accepted by {cls.__name__}: {exc}"
        ) from None
    if training.model in ("linear",):
        encoder = ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown="ignore"), data.categorical),
                ("num", StandardScaler(), data.numeric),
            ]
        )
    else:
        encoder = ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(
                        handle_unknown="use_encoded_value",
                        unknown_value=np.nan,
                        encoded_missing_value=np.nan,
                    ),
                    data.categorical,
                ),
                ("num", "passthrough", data.numeric),
            ]
        )
    return Pipeline([("encode", encoder), ("model", estimator)])


def split_xy(frame: pd.DataFrame, data: DataSettings) -> tuple[pd.DataFrame, pd.Series]:
    """Returns the feature frame (in configured order) and the target of a labelled frame."""
    return frame[data.features].copy(), frame[data.target].copy()


def fit_model(
    frame: pd.DataFrame,
    data: DataSettings,
    training: TrainingSettings,
    task: str,
    cv_folds: int = 5,
    on_progress: Callable[[str], None] | None = None,
    search_path: Path | None = None,
) -> TrainedModel:
    """Returns the model the training entry point (modelwatch.training.entry) fits on all
    rows, its validation metrics (a time-ordered holdout or k-fold cross-validation, each fit
    by the same entry point) and, for classification, an isotonic calibration of its held-out
    scores (for CBPE estimates). Progress lines go to `on_progress` when given, else to the
    modelwatch.progress logger.

    Raises:
        InsufficientDataError: fewer rows than folds, or a single class for classification.
        EntryPointError: the entry point cannot be loaded, raised, or returned no estimator.
    """
    from modelwatch.training import entry

    spec = entry.spec_of(training)
    if spec is None:
        raise EntryPointError(
            "training.model is none and no training.entry_point is set: nothing to train "
            "(`modelwatch adopt` registers a champion trained elsewhere)"
        )
    trainer = entry.make_trainer(spec, data, training, task, search_path)
    labelled = frame.dropna(subset=[data.target])
    scheme = validation_scheme(labelled, data, training)
    if scheme == "time_holdout":  # oldest first; the stable sort keeps the file's order on ties
        order = parse_times(labelled[data.timestamp]).argsort(kind="stable")
        labelled = labelled.iloc[np.asarray(order)]
    x, y = split_xy(labelled, data)
    if len(x) < max(cv_folds * 2, 10):
        raise InsufficientDataError(
            f"training window has {len(x)} labelled rows, need at least {max(cv_folds * 2, 10)}"
        )
    if task == "classification" and y.nunique() < 2:
        raise InsufficientDataError(f"training window has a single class {y.iloc[0]!r}")
    if scheme == "time_holdout" and task == "classification":
        cut = holdout_cut(len(y), training.holdout_share)
        if y.iloc[:cut].nunique() < 2 or y.iloc[cut:].nunique() < 2:
            scheme = "shuffled_cv"  # a side with one class has no ROC AUC to measure
    if scheme == "time_holdout":
        progress = Progress(f"training on {len(x)} rows", 3, on_line=on_progress)
        cv_metrics, calibration = _time_holdout(labelled, trainer, data, training, task, progress)
    else:
        progress = Progress(f"training on {len(x)} rows", cv_folds + 2, on_line=on_progress)
        cv_metrics, calibration = _cross_validate(
            labelled, trainer, data, training, task, cv_folds, progress
        )
    model = trainer(labelled)
    progress.advance(detail="final fit")
    importance = permutation_importances(model, x, y, training, task)
    progress.advance(detail="permutation importance")
    return TrainedModel(model, cv_metrics, len(x), importance, calibration, scheme, spec)


def evaluate_fitted(
    model: Any, frame: pd.DataFrame, data: DataSettings, training: TrainingSettings, task: str
) -> TrainedModel:
    """A model trained elsewhere (`modelwatch adopt`), measured without refitting: its metrics
    and calibration on the newest training.holdout_share of the labelled rows (time-ordered with
    a timestamp, else a seeded random share), its permutation importance on all of them.

    Raises:
        InsufficientDataError: too few labelled rows.
        EntryPointError: the model cannot score the rows (its inputs differ from data.features).
    """
    labelled = frame.dropna(subset=[data.target])
    scheme = validation_scheme(labelled, data, training)
    if scheme == "time_holdout":
        labelled = labelled.iloc[
            np.asarray(parse_times(labelled[data.timestamp]).argsort(kind="stable"))
        ]
    else:
        labelled = labelled.sample(frac=1.0, random_state=training.seed)
        scheme = "random_holdout"
    x, y = split_xy(labelled, data)
    if len(x) < 10:
        raise InsufficientDataError(f"reference has {len(x)} labelled rows, need at least 10")
    cut = holdout_cut(len(x), training.holdout_share)
    try:
        metrics, calibration = holdout_metrics(
            model, x.iloc[cut:], y.iloc[cut:], np.unique(y.to_numpy()), data, task
        )
    except Exception as exc:
        raise EntryPointError(
            f"the model cannot score the reference's features {list(data.features)}: "
            f"{type(exc).__name__}: {exc}"
        ) from None
    importance = permutation_importances(model, x, y, training, task)
    return TrainedModel(model, metrics, len(x), importance, calibration, scheme, "adopted")


def validation_scheme(frame: pd.DataFrame, data: DataSettings, training: TrainingSettings) -> str:
    """The scheme that estimates a new model's metrics: training.validation, where "auto" is
    a time-ordered holdout when the window has a timestamp column whose values parse."""
    if training.validation != "auto":
        return training.validation
    if data.timestamp and data.timestamp in frame.columns:
        if parse_times(frame[data.timestamp]).notna().all():
            return "time_holdout"
    return "shuffled_cv"


def parse_times(series: pd.Series) -> pd.Series:
    """A timestamp column as datetimes (NaT where a value does not parse)."""
    if pd.api.types.is_datetime64_any_dtype(series):
        return series
    return pd.to_datetime(series, errors="coerce", format="mixed")


def permutation_importances(
    model: Any,
    x: pd.DataFrame,
    y: pd.Series,
    training: TrainingSettings,
    task: str = "regression",
    repeats: int = 5,
) -> dict[str, float]:
    """Returns each input feature's permutation importance on the training window, summing to 1
    (sklearn.inspection.permutation_importance; negative means are clipped to 0, and all-zero
    importances become equal weights). Computed once per model, used to rank drifted features.
    Scored with R2 or accuracy (what a scikit-learn regressor's or classifier's own `score`
    gives), so a model without a `score` method works too."""
    from sklearn.inspection import permutation_importance

    scoring = "r2" if task == "regression" else "accuracy"
    result = permutation_importance(
        model, x, y, scoring=scoring, n_repeats=repeats, random_state=training.seed
    )
    raw = {c: max(float(v), 0.0) for c, v in zip(x.columns, result.importances_mean, strict=True)}
    total = sum(raw.values())
    if total <= 0:
        return {c: 1.0 / len(raw) for c in raw}
    return {c: v / total for c, v in raw.items()}


def holdout_cut(rows: int, share: float) -> int:
    """The first row of the time-ordered holdout: the newest `share` of `rows`, at least one
    row on each side."""
    return min(max(int(round(rows * (1 - share))), 1), rows - 1)


def _time_holdout(
    labelled: pd.DataFrame,
    trainer: Callable[[pd.DataFrame], Any],
    data: DataSettings,
    training: TrainingSettings,
    task: str,
    progress: Progress | None = None,
) -> tuple[dict[str, float], dict | None]:
    """Fits on the oldest rows and returns the metrics on the newest training.holdout_share
    (rows in time order) and, for classification, the calibration of the holdout scores:
    what the model will meet next is newer than anything it learned from."""
    x, y = split_xy(labelled, data)
    cut = holdout_cut(len(x), training.holdout_share)
    pipe = trainer(labelled.iloc[:cut])
    x_new, y_new = x.iloc[cut:], y.iloc[cut:]
    if progress is not None:
        progress.advance(detail=f"time-ordered holdout: newest {len(x_new)} rows")
    return holdout_metrics(pipe, x_new, y_new, np.unique(y.to_numpy()), data, task)


def holdout_metrics(
    pipe: Any, x_new: pd.DataFrame, y_new: pd.Series, classes: np.ndarray, data: DataSettings,
    task: str,
) -> tuple[dict[str, float], dict | None]:  # fmt: skip
    """A fitted model's metrics on rows it did not learn from and, for classification, the
    calibration of its scores there (classes: every class of the window)."""
    y = y_new
    if task == "regression":
        return compute_metrics(y_new, pd.Series(pipe.predict(x_new), index=y_new.index), task), None
    y_pred = pd.Series(pipe.predict(x_new), index=y_new.index).astype(y.dtype)
    proba = np.zeros((len(y_new), len(classes)))
    proba[:, np.searchsorted(classes, pipe.classes_)] = pipe.predict_proba(x_new)
    return _classification_metrics(y_new, y_pred, proba, classes, data, task)


def _classification_metrics(
    y: pd.Series, y_pred: pd.Series, proba: np.ndarray, classes: np.ndarray, data: DataSettings,
    task: str,
) -> tuple[dict[str, float], dict]:  # fmt: skip
    """Metrics of held-out answers and class scores, and the isotonic calibration of the scores
    (the positive class's for binary classification, every class's otherwise)."""
    if len(classes) > 2:
        metrics = compute_metrics(y, y_pred, task, y_score=proba, classes=classes)
        calibrator = estimation.fit_calibrator(proba, y, classes=classes)
    else:
        pos = positive_index(list(classes), data.positive_label)
        metrics = compute_metrics(
            y, y_pred, task, y_score=proba[:, pos], positive_label=data.positive_label
        )
        calibrator = estimation.fit_calibrator(proba[:, pos], y, positive_label=classes[pos])
    return metrics, calibrator.to_dict()


def _cross_validate(
    labelled: pd.DataFrame,
    trainer: Callable[[pd.DataFrame], Any],
    data: DataSettings,
    training: TrainingSettings,
    task: str,
    folds: int,
    progress: Progress | None = None,
) -> tuple[dict[str, float], dict | None]:
    """Returns the out-of-fold metrics and, for classification, the calibration fitted on the
    out-of-fold probabilities (collected in the same loop: no second round of fits)."""
    x, y = split_xy(labelled, data)
    if task == "classification" and y.value_counts().min() >= folds:
        splitter = StratifiedKFold(folds, shuffle=True, random_state=training.seed)
    else:
        splitter = KFold(folds, shuffle=True, random_state=training.seed)
    preds = pd.Series(index=y.index, dtype=object if task == "classification" else float)
    classes = np.unique(y.to_numpy()) if task == "classification" else np.array([])
    proba = np.zeros((len(y), len(classes)))
    for fold, (train_idx, test_idx) in enumerate(splitter.split(x, y), start=1):
        pipe = trainer(labelled.iloc[train_idx])
        preds.iloc[test_idx] = pipe.predict(x.iloc[test_idx])
        if task == "classification":
            # a fold may miss a class: its column stays 0 for those rows
            columns = np.searchsorted(classes, pipe.classes_)
            proba[np.ix_(test_idx, columns)] = pipe.predict_proba(x.iloc[test_idx])
        if progress is not None:
            progress.advance(detail=f"cross-validation fold {fold}/{folds}")
    if task == "regression":
        return compute_metrics(y, preds.astype(float), task), None
    return _classification_metrics(y, preds.astype(y.dtype), proba, classes, data, task)


def positive_index(classes: list, positive_label: object) -> int:
    """Returns the column of the positive class among a model's classes (the last one if
    positive_label is not set or not among them); labels compare by label_key."""
    keys = [label_key(c) for c in classes]
    if positive_label is not None and label_key(positive_label) in keys:
        return keys.index(label_key(positive_label))
    return len(classes) - 1


def positive_scores(model: Pipeline, x: pd.DataFrame, positive_label: object) -> np.ndarray:
    """Returns the predicted probability of the positive class (the last class if none is set)."""
    return model.predict_proba(x)[:, positive_index(list(model.classes_), positive_label)]


def save_model(model: Pipeline, path: Path, extra_trusted: Sequence[str] = ()) -> None:
    """Writes the fitted pipeline with skops (an output of the DVC train stage), never pickle.

    Raises:
        ModelIntegrityError: the model holds a type outside the allow-list (training.trusted).
    """
    import skops.io

    trusted.check_saveable(model, extra_trusted)
    path.parent.mkdir(parents=True, exist_ok=True)
    skops.io.dump(model, path)


def load_model(path: Path, extra_trusted: Sequence[str] = ()) -> Pipeline:
    """Reads a pipeline written by save_model, trusting only the allow-list.

    Raises:
        ModelIntegrityError: the file holds a type outside the allow-list, or is not skops.
    """
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    try:
        return skops.io.load(path, trusted=trusted.trusted_types(extra_trusted))
    except UntrustedTypesFoundException as exc:
        raise ModelIntegrityError(f"{path}: types outside the allow-list: {exc}") from None
    except Exception as exc:  # not a skops file (a pickle put in its place), or damaged
        raise ModelIntegrityError(
            f"{path}: not a readable skops file: {type(exc).__name__}: {exc}"
        ) from None


def choose_window(
    options: list[TrainingWindow],
    data: DataSettings,
    training: TrainingSettings,
    task: str,
    metric: str,
    search_path: Path | None = None,
) -> tuple[TrainingWindow, list[tuple[int, float]]]:
    """Returns the window whose model (the training entry point fitted on its rows) scores best
    in `metric` on the holdout the options share, and each option's (batches, score) in order.

    The retrain policy proposes a window of the batches since performance dropped beside
    training's own: after a concept change the older rows teach the old relation, while on a
    stream that only drifts they are the larger sample. Which one holds is measured, not
    guessed; the winner then still has to beat the champion on the same holdout.

    Raises:
        ValueError: no options, or options with different holdouts.
        EntryPointError: see make_trainer.
    """
    from modelwatch.performance.metrics import metric_direction
    from modelwatch.training import entry, scoring

    if not options:
        raise ValueError("choose_window needs at least one window")
    holdouts = {w.holdout_batches for w in options}
    if len(holdouts) > 1:
        raise ValueError(f"the windows to choose from have different holdouts: {holdouts}")
    if len(options) == 1:
        return options[0], []
    spec = entry.spec_of(training)
    if spec is None:
        raise EntryPointError("training.model is none and no training.entry_point is set")
    trainer = entry.make_trainer(spec, data, training, task, search_path)
    hold = options[0].holdout
    sign = -1.0 if metric_direction(metric, task) == "min" else 1.0
    from threadpoolctl import threadpool_limits

    scored = []
    for option in options:
        # one OpenMP thread, as in the training stage (stage.py): on a shared 2-core machine
        # HistGradientBoosting's thread per core made three fits take 70-78 s (measured: one fit
        # 58-95 s with the default threads, 3-4.5 s with one, on the same loaded machine)
        with threadpool_limits(limits=1):
            model = trainer(option.train.dropna(subset=[data.target]))
            preds = scoring.score_frame(model, hold, data, task)
        values = compute_metrics(
            hold[data.target],
            preds[data.prediction],
            task,
            y_score=preds[scoring.SCORE] if scoring.SCORE in preds.columns else None,
            positive_label=data.positive_label,
        )
        scored.append((len(option.train_batches), values.get(metric, float("nan"))))
    finite = [i for i, (_, v) in enumerate(scored) if np.isfinite(v)]
    best = max(finite, key=lambda i: sign * scored[i][1]) if finite else 0
    return options[best], scored
