"""Per-feature, prediction, target and dataset drift of a batch against the reference."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelwatch.drift.stattests import TESTS, FeatureDrift, Kind, untested

if TYPE_CHECKING:
    from modelwatch.settings import DataSettings, DriftSettings

logger = logging.getLogger(__name__)

# A numeric prediction/target with at most this many distinct values is treated as class labels.
MAX_LABEL_VALUES = 5


@dataclass(frozen=True)
class DriftReport:
    """Drift of every feature, the prediction and the target; the verdict counts features only."""

    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift | None
    target: FeatureDrift | None
    n_features_tested: int
    n_drifted: int
    drift_share: float
    dataset_drift: bool
    share_threshold: float

    def drifted_features(self) -> list[str]:
        """Returns the names of the drifted features, in configuration order."""
        return [f.column for f in self.features if f.drifted]

    def summary(self) -> str:
        """Returns one sentence, e.g. "drift: 4 of 10 features (share 0.40 >= 0.30): temp, hr"."""
        if self.n_features_tested == 0:
            text = f"drift not assessed: none of {len(self.features)} features could be tested"
        else:
            head, op = ("drift", ">=") if self.dataset_drift else ("no dataset drift", "<")
            text = (
                f"{head}: {self.n_drifted} of {self.n_features_tested} features "
                f"(share {self.drift_share:.2f} {op} {self.share_threshold:.2f})"
            )
            if self.n_drifted:
                text += ": " + ", ".join(self.drifted_features())
        skipped = [f"{f.column} ({f.status})" for f in self.features if f.status != "ok"]
        if skipped:
            text += "; not tested: " + ", ".join(skipped)
        for role, result in (("prediction", self.prediction), ("target", self.target)):
            if result is not None and (result.drifted or result.status != "ok"):
                verdict = "drifted" if result.drifted else f"not tested ({result.status})"
                text += f"; {role} {result.column!r} {verdict}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """Returns the report as a JSON-able dict with named fields."""
        return {
            "features": [f.to_dict() for f in self.features],
            "prediction": self.prediction.to_dict() if self.prediction else None,
            "target": self.target.to_dict() if self.target else None,
            "n_features_tested": self.n_features_tested,
            "n_drifted": self.n_drifted,
            "drift_share": self.drift_share,
            "dataset_drift": self.dataset_drift,
            "share_threshold": self.share_threshold,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftReport:
        """Returns the report that to_dict produced."""
        optional = {
            k: FeatureDrift.from_dict(raw[k]) if raw[k] else None for k in ("prediction", "target")
        }
        return cls(
            features=tuple(FeatureDrift.from_dict(f) for f in raw["features"]),
            **optional,
            n_features_tested=raw["n_features_tested"],
            n_drifted=raw["n_drifted"],
            drift_share=raw["drift_share"],
            dataset_drift=raw["dataset_drift"],
            share_threshold=raw["share_threshold"],
        )

    def to_rows(self) -> list[dict[str, Any]]:
        """Returns one flat row per feature, then prediction and target (for a table artifact)."""
        rows = [{"role": "feature", **f.to_dict()} for f in self.features]
        for role, result in (("prediction", self.prediction), ("target", self.target)):
            if result is not None:
                rows.append({"role": role, **result.to_dict()})
        return rows


def compute_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    data: DataSettings,
    settings: DriftSettings,
    *,
    prediction_reference: pd.Series | None = None,
    prediction_current: pd.Series | None = None,
    target_reference: pd.Series | None = None,
    target_current: pd.Series | None = None,
) -> DriftReport:
    """Returns the drift of each configured feature, the prediction and the target.

    A column that cannot be tested (missing, too few values, invalid values) is reported with its
    status and left out of the dataset verdict; nothing here raises for bad data.
    """
    features = tuple(
        _feature_drift(reference, current, column, data, settings) for column in data.features
    )
    prediction = _task_drift(data.prediction, prediction_reference, prediction_current, settings)
    target = _task_drift(data.target, target_reference, target_current, settings)
    for result in (*features, prediction, target):
        if result is not None and result.status != "ok":
            logger.warning("drift not tested: %s", result.message)
    return _assemble(features, prediction, target, settings.dataset_drift_share)


def compute_series_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    """Returns the drift of one task series (e.g. late-arriving labels against the reference
    target): the numeric test for a continuous series, chi-squared for class labels."""
    test = _task_test(reference, settings)
    return _run(test, reference.rename(name), current.rename(name), settings)


def _threshold(test: str, settings: DriftSettings) -> float:
    if TESTS[test].gives == "p_value":
        return settings.p_value_threshold
    return settings.wasserstein_threshold


def _run(
    test: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    threshold = _threshold(test, settings)
    return TESTS[test].func(reference, current, threshold, settings.min_rows)


def _feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column: str,
    data: DataSettings,
    settings: DriftSettings,
) -> FeatureDrift:
    kind: Kind = "categorical" if column in data.categorical else "numeric"
    test = settings.categorical_test if kind == "categorical" else settings.numeric_test
    sides = {"reference": reference, "current": current}
    missing = [side for side, frame in sides.items() if column not in frame.columns]
    if not missing:
        return _run(test, reference[column], current[column], settings)
    rows = [int(f[column].count()) if column in f.columns else 0 for f in sides.values()]
    message = f"column {column!r} is missing from the {' and '.join(missing)} data"
    return untested(column, kind, test, _threshold(test, settings), "invalid", message, *rows)


def _task_drift(
    name: str, reference: pd.Series | None, current: pd.Series | None, settings: DriftSettings
) -> FeatureDrift | None:
    """Returns the drift of a prediction or target series, or None if neither side was given."""
    if reference is None and current is None:
        return None
    if reference is None or current is None:
        given = reference if reference is not None else current
        absent = "reference" if reference is None else "current"
        test = _task_test(given, settings)
        rows = [int(s.count()) if s is not None else 0 for s in (reference, current)]
        message = f"column {name!r}: no {absent} values given"
        kind = TESTS[test].kinds[0]
        return untested(name, kind, test, _threshold(test, settings), "invalid", message, *rows)
    test = _task_test(reference, settings)
    return _run(test, reference.rename(name), current.rename(name), settings)


def _task_test(reference: pd.Series, settings: DriftSettings) -> str:
    """Returns the numeric test for a continuous series, chi2 for class labels."""
    dtype = reference.dtype
    is_numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    if is_numeric and reference.nunique() > MAX_LABEL_VALUES:
        return settings.numeric_test
    return settings.categorical_test


def _assemble(
    features: tuple[FeatureDrift, ...],
    prediction: FeatureDrift | None,
    target: FeatureDrift | None,
    share_threshold: float,
) -> DriftReport:
    tested = [f for f in features if f.status == "ok"]
    n_drifted = sum(f.drifted for f in tested)
    share = n_drifted / len(tested) if tested else 0.0
    return DriftReport(
        features=features,
        prediction=prediction,
        target=target,
        n_features_tested=len(tested),
        n_drifted=n_drifted,
        drift_share=share,
        dataset_drift=bool(tested) and share >= share_threshold,
        share_threshold=share_threshold,
    )
