"""Per-feature, prediction, target and dataset drift of a batch against the reference.

Dataset verdict: two rules over the features that could be tested (status "ok"); a column that
could not be tested is reported with its status and counts in neither rule.
- "share": the share of drifted features reaches dataset_drift_share (Evidently's rule). With
  correction "bh", a p-value test's per-column verdict uses its Benjamini-Hochberg adjusted
  p-value, so the share counts features that survive the correction.
- "bh": the Benjamini-Hochberg procedure across the features' p-value tests finds at least one
  feature with adjusted p < dataset_fdr and effect size >= its floor. Under no drift at all this
  fires in at most dataset_fdr of batches (Simes), so a strong drift in a few features is not
  lost below the share threshold. dataset_fdr: null turns the rule off.
The batch drifted when either rule fires; dataset_rule names the first that did ("share" before
"bh"). Prediction and target are reported beside the features, not counted in either rule.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.stats

from modelwatch.drift.null import null_threshold
from modelwatch.drift.stattests import TESTS, FeatureDrift, Kind, decide, untested
from modelwatch.errors import ConfigError
from modelwatch.progress import Progress

if TYPE_CHECKING:
    from modelwatch.settings import DataSettings, DriftSettings

logger = logging.getLogger(__name__)

# A numeric column with at most this many distinct reference values is tested as categories.
MAX_LABEL_VALUES = 5
TOP_FEATURES = 3
DatasetRule = Literal["share", "bh"]


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
    dataset_rule: DatasetRule | None = None
    dataset_reason: str = ""
    correction: Literal["bh", "none"] = "none"
    dataset_fdr: float | None = None
    # the champion's importance of the drifted features over that of the tested ones (equal
    # weights without importances): the share of what the model uses that drifted
    weighted_drift_share: float = 0.0

    def drifted_features(self) -> list[str]:
        """Returns the names of the drifted features, in configuration order."""
        return [f.column for f in self.features if f.drifted]

    def ranked(self) -> list[FeatureDrift]:
        """Returns drifted features first, each group by importance-weighted drift (largest
        first); untested last. A large weight on a column that did not drift must not outrank
        a drift that happened."""
        return sorted(
            self.features,
            key=lambda f: (
                f.weighted_score is None,
                not f.drifted,
                -f.weighted_score if f.weighted_score is not None else 0.0,
            ),
        )

    def summary(self) -> str:
        """Returns the verdict in a sentence, the top drifted features and what was not tested."""
        text = self.dataset_reason or _reason(self)
        top = [f for f in self.ranked() if f.drifted][:TOP_FEATURES]
        if top:
            text += "; most important: " + ", ".join(
                f"{f.column} ({f.weighted_score:.3g})" for f in top
            )
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
        raw = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        raw["features"] = [f.to_dict() for f in self.features]
        for key in ("prediction", "target"):
            raw[key] = raw[key].to_dict() if raw[key] else None
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> DriftReport:
        """Returns the report that to_dict produced (older reports lack the newer fields)."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        values["features"] = tuple(FeatureDrift.from_dict(f) for f in raw["features"])
        for key in ("prediction", "target"):
            values[key] = FeatureDrift.from_dict(raw[key]) if raw.get(key) else None
        return cls(**values)

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
    importance: Mapping[str, float] | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> DriftReport:
    """Returns the drift of each configured feature, the prediction and the target. Progress
    lines (one per column, when the work is long) go to `on_progress` when given, else to the
    modelwatch.progress logger.

    importance: the champion's feature importances (any scale; normalised to sum 1 over the
    features; None or all zero gives equal weights). A column that cannot be tested is reported
    with its status and left out of the dataset verdict; nothing here raises for bad data.

    Raises:
        ConfigError: drift.columns names an unknown column or a test that does not accept it.
    """
    check_column_overrides(settings, data)
    progress = Progress(f"drift on {len(current)} rows", len(data.features), on_line=on_progress)
    found = []
    for column in data.features:
        found.append(feature_drift(reference, current, column, data, settings))
        progress.advance(detail=column)
    prediction = task_drift(data.prediction, prediction_reference, prediction_current, settings)
    target = task_drift(data.target, target_reference, target_current, settings)
    return combine_drift(found, data, settings, prediction, target, importance)


def combine_drift(
    features: Sequence[FeatureDrift],
    data: DataSettings,
    settings: DriftSettings,
    prediction: FeatureDrift | None = None,
    target: FeatureDrift | None = None,
    importance: Mapping[str, float] | None = None,
) -> DriftReport:
    """Returns the report of per-column results computed one by one (feature_drift, in
    data.features order; task_drift): Benjamini-Hochberg across them, importance weights and
    the dataset verdict, exactly as compute_drift does (modelwatch.scale computes the columns
    on a Dask cluster and assembles them here)."""
    weighted = _weigh(_correct(tuple(features), settings), data.features, importance)
    for result in (*weighted, prediction, target):
        if result is not None and result.status != "ok":
            logger.warning("drift not tested: %s", result.message)
    return _assemble(weighted, prediction, target, settings)


def compute_series_drift(
    name: str, reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    """Returns the drift of one task series (e.g. late-arriving labels against the reference
    target): the numeric test for a continuous series, a categorical test for class labels."""
    return _series_drift(reference.rename(name), current.rename(name), settings)


def check_column_overrides(settings: DriftSettings, data: DataSettings) -> None:
    """Raises ConfigError if drift.columns names an unknown column or a test of the wrong kind."""
    known = [*data.features, data.prediction, data.target]
    for column, override in settings.columns.items():
        key = f"drift.columns.{column}"
        if column not in known:
            raise ConfigError(
                f"{key}: {column!r} is not a feature, the prediction or the target "
                f"(known: {', '.join(known)})"
            )
        if override.test in (None, "auto") or column not in data.features:
            continue
        kind: Kind = "categorical" if column in data.categorical else "numeric"
        accepted = TESTS[override.test].kinds
        if kind not in accepted:
            choices = sorted(n for n, t in TESTS.items() if kind in t.kinds)
            raise ConfigError(
                f"{key}.test: {override.test!r} does not accept the {kind} column {column!r} "
                f"(accepted: {', '.join(choices)})"
            )


def choose_test(
    reference: pd.Series,
    current: pd.Series,
    kind: Kind,
    settings: DriftSettings,
    reference_rows: int,
) -> str:
    """Returns the test for a column: its override, the configured test, or the "auto" choice.

    auto, as Evidently: a reference of at most settings.auto_max_rows rows gets KS for numeric
    columns with more than 5 distinct values, else z for binary columns (over both sides) and
    chi2 for the rest; a larger reference gets wasserstein and jensenshannon_base2.
    """
    override = settings.columns.get(str(reference.name))
    if override is not None and override.test not in (None, "auto"):
        return override.test
    configured = settings.numeric_test if kind == "numeric" else settings.categorical_test
    if configured != "auto" and not (override is not None and override.test == "auto"):
        return configured
    ref = reference.dropna()
    continuous = kind == "numeric" and _more_distinct_than(ref, MAX_LABEL_VALUES)
    if reference_rows > settings.auto_max_rows:
        return "wasserstein" if continuous else "jensenshannon_base2"
    if continuous:
        return "ks"
    both = pd.concat([ref, current.dropna()], ignore_index=True)
    return "z" if pd.factorize(both)[1].size <= 2 else "chi2"


def _more_distinct_than(values: pd.Series, limit: int) -> bool:
    """Whether a series has more than `limit` distinct values, without hashing all of a large
    column when its head already shows enough (the check runs per column per batch)."""
    head = values.iloc[:1000]
    return bool(head.nunique() > limit or (len(values) > len(head) and values.nunique() > limit))


def _threshold(test: str, column: str, settings: DriftSettings) -> float:
    override = settings.columns.get(column)
    if override is not None and override.threshold is not None:
        return override.threshold
    if TESTS[test].gives == "p_value":
        return settings.p_value_threshold
    return settings.distance_threshold


def _floor(column: str, settings: DriftSettings) -> float:
    override = settings.columns.get(column)
    if override is not None and override.effect_size_floor is not None:
        return override.effect_size_floor
    return settings.effect_size_floor


def _run(
    test: str, reference: pd.Series, current: pd.Series, kind: Kind, settings: DriftSettings
) -> FeatureDrift:
    """Returns the test's result; a data-driven scipy/numpy failure becomes status "error"."""
    column = str(reference.name)
    threshold = _threshold(test, column, settings)
    try:
        result = TESTS[test].func(
            reference, current, threshold, settings.min_rows, _floor(column, settings), kind
        )
        if TESTS[test].gives == "distance" and result.status == "ok":
            result = _with_null(result, reference, kind, settings)
        return result
    except (ValueError, TypeError, ArithmeticError) as exc:
        logger.exception("drift test %s failed on column %r", test, column)
        message = f"column {column!r}: {test} failed: {type(exc).__name__}: {exc}"
        rows = int(reference.count()), int(current.count())
        return untested(column, kind, test, threshold, "error", message, *rows)


def _with_null(
    result: FeatureDrift, reference: pd.Series, kind: Kind, settings: DriftSettings
) -> FeatureDrift:
    """A distance test judged at the larger of its threshold and the bootstrap null's quantile
    at this batch's size (modelwatch.drift.null)."""
    null = settings.bootstrap
    found = null_threshold(TESTS[result.test], reference, result.cur_rows, kind, null)
    if found is None:
        return result
    basis = f"{null.quantile:g} quantile of {found.resamples} resamples at {found.rows} rows"
    judged = dataclasses.replace(
        result,
        threshold=max(result.threshold, found.value),
        null_threshold=found.value,
        threshold_floor=result.threshold,
        null_basis=basis,
    )
    return decide(judged)


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    column: str,
    data: DataSettings,
    settings: DriftSettings,
) -> FeatureDrift:
    """Returns the drift of one feature; `reference` and `current` need only hold that column
    (and all of their rows: the reference's row count chooses the "auto" test)."""
    kind: Kind = "categorical" if column in data.categorical else "numeric"
    sides = {"reference": reference, "current": current}
    missing = [side for side, frame in sides.items() if column not in frame.columns]
    if not missing:
        ref, cur = reference[column], current[column]
        test = choose_test(ref, cur, kind, settings, len(reference))
        return _run(test, ref, cur, kind, settings)
    given = next((f[column] for f in sides.values() if column in f.columns), pd.Series())
    test = choose_test(given.rename(column), given, kind, settings, len(reference))
    rows = [int(f[column].count()) if column in f.columns else 0 for f in sides.values()]
    message = f"column {column!r} is missing from the {' and '.join(missing)} data"
    threshold = _threshold(test, column, settings)
    return untested(column, kind, test, threshold, "invalid", message, *rows)


def _series_kind(series: pd.Series) -> Kind:
    """Returns numeric for a continuous series, categorical for class labels."""
    dtype = series.dtype
    is_numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return "numeric" if is_numeric and series.nunique() > MAX_LABEL_VALUES else "categorical"


def _series_drift(
    reference: pd.Series, current: pd.Series, settings: DriftSettings
) -> FeatureDrift:
    kind = _series_kind(reference)
    test = choose_test(reference, current, kind, settings, len(reference))
    return _run(test, reference, current, kind, settings)


def task_drift(
    name: str, reference: pd.Series | None, current: pd.Series | None, settings: DriftSettings
) -> FeatureDrift | None:
    """Returns the drift of a prediction or target series, or None if neither side was given."""
    if reference is None and current is None:
        return None
    if reference is None or current is None:
        given = (reference if reference is not None else current).rename(name)
        absent = "reference" if reference is None else "current"
        kind = _series_kind(given)
        test = choose_test(given, given, kind, settings, len(given))
        rows = [int(s.count()) if s is not None else 0 for s in (reference, current)]
        message = f"column {name!r}: no {absent} values given"
        threshold = _threshold(test, name, settings)
        return untested(name, kind, test, threshold, "invalid", message, *rows)
    return _series_drift(reference.rename(name), current.rename(name), settings)


def _p_value_family(features: tuple[FeatureDrift, ...]) -> list[int]:
    """Returns the positions of the tested features that carry a p-value."""
    return [i for i, f in enumerate(features) if f.status == "ok" and f.p_value is not None]


def _correct(features: tuple[FeatureDrift, ...], settings: DriftSettings) -> tuple:
    """Returns the features with Benjamini-Hochberg p-values; with correction "bh" they decide.

    Reference: scipy.stats.false_discovery_control(p, method="bh").
    """
    family = _p_value_family(features)
    if not family:
        return features
    raw = np.array([features[i].p_value for i in family], dtype=float)
    adjusted = scipy.stats.false_discovery_control(raw, method="bh")
    out = list(features)
    for i, p in zip(family, adjusted, strict=True):
        result = dataclasses.replace(out[i], p_value_adjusted=float(p))
        out[i] = decide(result, adjusted=True) if settings.correction == "bh" else result
    return tuple(out)


def normalise_importance(
    features: list[str], importance: Mapping[str, float] | None
) -> dict[str, float]:
    """Returns non-negative weights over features that sum to 1 (equal when none are given)."""
    weights = {f: max(float((importance or {}).get(f, 0.0)), 0.0) for f in features}
    weights = {f: (w if np.isfinite(w) else 0.0) for f, w in weights.items()}
    total = sum(weights.values())
    if total <= 0:
        return {f: 1 / len(features) for f in features}
    return {f: w / total for f, w in weights.items()}


def _weigh(
    features: tuple[FeatureDrift, ...], names: list[str], importance: Mapping[str, float] | None
) -> tuple[FeatureDrift, ...]:
    weights = normalise_importance(names, importance)
    return tuple(
        dataclasses.replace(
            f,
            importance=weights[f.column],
            weighted_score=(
                f.effect_size * weights[f.column]
                if f.status == "ok" and f.effect_size is not None
                else None
            ),
        )
        for f in features
    )


def _bh_discoveries(features: tuple[FeatureDrift, ...], fdr: float | None) -> list[FeatureDrift]:
    """Returns the features the BH rule flags: adjusted p < fdr and effect size >= floor."""
    if fdr is None:
        return []
    return [
        f
        for f in features
        if f.status == "ok"
        and f.p_value_adjusted is not None
        and f.p_value_adjusted < fdr
        and (f.effect_size or 0.0) >= (f.effect_size_floor or 0.0)
    ]


def _reason(report: DriftReport) -> str:
    """Returns the sentence that explains the dataset verdict."""
    n, k = len(report.features), report.n_features_tested
    if k == 0:
        return f"drift not assessed: none of {n} features could be tested"
    bh_used = report.correction == "bh" and bool(_p_value_family(report.features))
    corrected = " after Benjamini-Hochberg" if bh_used else ""
    op = ">=" if report.drift_share >= report.share_threshold else "<"
    share = (
        f"{report.n_drifted} of {k} features{corrected} "
        f"(share {report.drift_share:.2f} {op} {report.share_threshold:.2f})"
    )
    if report.n_drifted:
        share += ": " + ", ".join(report.drifted_features())
    if report.dataset_rule == "share":
        return f"drift: {share}"
    found = _bh_discoveries(report.features, report.dataset_fdr)
    if report.dataset_rule == "bh":
        names = ", ".join(f.column for f in found)
        return (
            f"drift: Benjamini-Hochberg at FDR {report.dataset_fdr:g} flags {len(found)} "
            f"feature(s) ({names}) although only {share}"
        )
    text = f"no dataset drift: {share}"
    if report.dataset_fdr is not None and _p_value_family(report.features):
        text += f"; no feature flagged by Benjamini-Hochberg at FDR {report.dataset_fdr:g}"
    return text


def _assemble(
    features: tuple[FeatureDrift, ...],
    prediction: FeatureDrift | None,
    target: FeatureDrift | None,
    settings: DriftSettings,
) -> DriftReport:
    tested = [f for f in features if f.status == "ok"]
    n_drifted = sum(f.drifted for f in tested)
    share = n_drifted / len(tested) if tested else 0.0
    weight = sum(f.importance or 0.0 for f in tested)
    drifted_weight = sum(f.importance or 0.0 for f in tested if f.drifted)
    weighted = drifted_weight / weight if weight > 0 else share
    rule: DatasetRule | None = None
    if tested and share >= settings.dataset_drift_share:
        rule = "share"
    elif _bh_discoveries(features, settings.dataset_fdr):
        rule = "bh"
    report = DriftReport(
        features=features,
        prediction=prediction,
        target=target,
        n_features_tested=len(tested),
        n_drifted=n_drifted,
        drift_share=share,
        dataset_drift=rule is not None,
        share_threshold=settings.dataset_drift_share,
        dataset_rule=rule,
        correction=settings.correction,
        dataset_fdr=settings.dataset_fdr,
        weighted_drift_share=min(max(weighted, 0.0), 1.0),
    )
    return dataclasses.replace(report, dataset_reason=_reason(report))
