"""Whether a retrained challenger replaces the champion, judged on a holdout neither saw (pure).

Both models' predictions on the same labelled rows go through a list of checks: value and change
thresholds (a gate passed in by the caller: modelwatch.gate wraps MLflow's model validation, so
this module imports no mlflow), a cap on suspiciously large gains, guard metrics, the
significance of the gain (paired bootstrap, or McNemar's exact test for accuracy), non-inferiority
in every segment, and a limit on the gap between the groups of each sensitive column.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
import scipy.stats

from modelwatch.errors import ConfigError, InsufficientDataError, SchemaError
from modelwatch.performance import (
    compute_metrics,
    format_number,
    format_percent,
    metric_direction,
    worsening,
)
from modelwatch.scoring import SCORE
from modelwatch.settings import DataSettings, PromotionSettings

# Relative changes are float ratios; a challenger exactly at a limit must pass.
_TOLERANCE = 1e-9
# Bootstrap resamples are drawn in chunks of at most this many row indices (memory bound).
_CHUNK_CELLS = 2_000_000


@dataclass(frozen=True)
class Check:
    """One promotion check: its verdict, a sentence with the numbers, and the numbers."""

    name: str
    passed: bool
    sentence: str
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionDecision:
    """Whether to promote the candidate, on which numbers, and every check as a sentence."""

    promote: bool
    candidate_version: str
    champion_version: str | None
    metric: str
    candidate_score: float
    champion_score: float | None
    improvement: float | None
    reasons: tuple[str, ...]
    checks: tuple[Check, ...] = ()
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] | None = None
    decision_id: str = ""

    def summary(self) -> str:
        """Returns one line: the verdict followed by every check."""
        if self.promote and self.champion_version is None:
            verdict = f"promote candidate version {self.candidate_version}"
        elif self.promote:
            verdict = (
                f"promote candidate version {self.candidate_version} "
                f"over champion version {self.champion_version}"
            )
        elif self.champion_version is None:
            verdict = f"reject candidate version {self.candidate_version} (no champion yet)"
        else:
            verdict = (
                f"keep champion version {self.champion_version}, "
                f"reject candidate version {self.candidate_version}"
            )
        return f"{verdict}: {'; '.join(self.reasons)}"

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict; from_dict reads it back."""
        out = asdict(self)
        out["reasons"] = list(self.reasons)
        out["checks"] = [asdict(c) for c in self.checks]
        return out

    @classmethod
    def from_dict(cls, raw: Mapping) -> PromotionDecision:
        """Returns the decision that to_dict wrote."""
        champ = raw.get("champion_metrics")
        return cls(
            promote=bool(raw["promote"]),
            candidate_version=str(raw["candidate_version"]),
            champion_version=raw["champion_version"],
            metric=raw["metric"],
            candidate_score=float(raw["candidate_score"]),
            champion_score=_opt_float(raw["champion_score"]),
            improvement=_opt_float(raw["improvement"]),
            reasons=tuple(raw["reasons"]),
            checks=tuple(Check(**c) for c in raw.get("checks", [])),
            candidate_metrics={k: float(v) for k, v in raw.get("candidate_metrics", {}).items()},
            champion_metrics=None if champ is None else {k: float(v) for k, v in champ.items()},
            decision_id=raw.get("decision_id", ""),
        )


class GateOutcome(Protocol):
    """What a threshold gate returns (modelwatch.gate.GateResult)."""

    @property
    def passed(self) -> bool: ...

    @property
    def sentences(self) -> tuple[str, ...]: ...


# (challenger metrics, champion metrics or None, settings, task) -> verdict on the thresholds
Gate = Callable[
    [Mapping[str, float], Mapping[str, float] | None, PromotionSettings, str], GateOutcome
]


@dataclass(frozen=True)
class Predictions:
    """One model's predictions on the holdout rows; scores = positive-class probabilities."""

    labels: np.ndarray
    scores: np.ndarray | None = None


@dataclass(frozen=True)
class BootstrapResult:
    """Paired bootstrap of the metric gain (positive = challenger better, metric units)."""

    difference: float  # on the whole holdout
    low: float
    high: float
    confidence: float
    samples: int
    undefined: int  # resamples on which the metric is undefined for either model, left out
    differences: np.ndarray  # per resample, NaN where undefined


def compare_models(
    frame: pd.DataFrame,
    candidate: pd.DataFrame,
    champion: pd.DataFrame | None,
    settings: PromotionSettings,
    data: DataSettings,
    task: str,
    *,
    gate: Gate,
    candidate_version: str,
    champion_version: str | None,
    min_segment_rows: int = 30,
    decision_id: str = "",
) -> PromotionDecision:
    """Returns whether the challenger should become champion, both scored on the same holdout.

    `frame` holds the holdout rows (data.target, segment and sensitive columns); `candidate` and
    `champion` hold each model's data.prediction (and prediction_score for classification) for
    the same rows in the same order. Without a champion, settings.first_model decides. With one,
    the challenger is promoted only when every check passes; without any value or change
    threshold configured it never is.

    Raises:
        InsufficientDataError: a metric needed for a check is missing or not finite.
        SchemaError: a needed column is absent, or a holdout row has no target.
        ConfigError: a metric is not one of the task's metrics, or McNemar on a regression.
        ValueError: predictions not aligned with frame; champion without champion_version.
    """
    if (champion is None) != (champion_version is None):
        raise ValueError("champion and champion_version must both be given or both be None")
    truth = _holdout_target(frame, settings, data)
    cand = _predictions(candidate, frame, data, task, "candidate", candidate_version)
    cand_metrics = _metrics(truth, cand, task, data)
    if champion is None:
        return decide_first_model(
            cand_metrics,
            settings,
            task,
            gate=gate,
            candidate_version=candidate_version,
            decision_id=decision_id,
        )
    champ = _predictions(champion, frame, data, task, "champion", champion_version)
    champ_metrics = _metrics(truth, champ, task, data)
    metric = settings.metric
    cand_score = _score(cand_metrics, metric, "candidate", candidate_version, task)
    champ_score = _score(champ_metrics, metric, "champion", champion_version, task)
    checks = [
        _threshold_check(cand_metrics, champ_metrics, settings, task, gate),
        *_cap_check(metric, cand_score, champ_score, settings.max_relative_change, task),
    ]
    for guard, tolerance in settings.guard_metrics.items():
        g_cand = _score(cand_metrics, guard, "candidate", candidate_version, task)
        g_champ = _score(champ_metrics, guard, "champion", champion_version, task)
        checks.append(_guard_check(guard, g_cand, g_champ, tolerance, task))
    scores = (cand_score, champ_score)
    checks.append(_significance_check(truth, cand, champ, settings, task, data, scores))
    groups = _Groups(frame, truth, cand, champ, task, data)
    checks += _segment_checks(groups, settings, data, min_segment_rows)
    checks += _fairness_checks(groups, settings)
    return PromotionDecision(
        promote=all(c.passed for c in checks),
        candidate_version=candidate_version,
        champion_version=champion_version,
        metric=metric,
        candidate_score=cand_score,
        champion_score=champ_score,
        improvement=-worsening(metric, champ_score, cand_score, task),
        reasons=tuple(c.sentence for c in checks),
        checks=tuple(checks),
        candidate_metrics=cand_metrics,
        champion_metrics=champ_metrics,
        decision_id=decision_id,
    )


def decide_first_model(
    candidate_metrics: Mapping[str, float],
    settings: PromotionSettings,
    task: str,
    *,
    gate: Gate,
    candidate_version: str,
    decision_id: str = "",
) -> PromotionDecision:
    """Returns the decision on a first model (no champion), as settings.first_model says.

    "promote" promotes it, "never" does not, "check_threshold" promotes it only when it reaches
    settings.threshold (judged by `gate`); without a threshold it is not promoted.

    Raises:
        InsufficientDataError: settings.metric is missing or not finite.
        ConfigError: settings.metric is not one of the task's metrics.
    """
    metric, policy = settings.metric, settings.first_model
    score = _score(candidate_metrics, metric, "candidate", candidate_version, task)
    said = f"no champion yet, promotion.first_model is {policy!r}"
    if policy == "check_threshold" and settings.threshold is not None:
        verdict = gate(candidate_metrics, None, settings, task)
        passed, text = verdict.passed, "; ".join(verdict.sentences)
    elif policy == "check_threshold":
        passed, text = False, "promotion.threshold is not set: not promoted"
    else:
        passed = policy == "promote"
        text = f"{'promoted' if passed else 'not promoted'} ({metric} {format_number(score)})"
    details = {"policy": policy, "threshold": settings.threshold}
    check = Check("first_model", passed, f"{said}: {text}", details)
    return PromotionDecision(
        promote=check.passed,
        candidate_version=candidate_version,
        champion_version=None,
        metric=metric,
        candidate_score=score,
        champion_score=None,
        improvement=None,
        reasons=(check.sentence,),
        checks=(check,),
        candidate_metrics=dict(candidate_metrics),
        champion_metrics=None,
        decision_id=decision_id,
    )


# ---------------------------------------------------------------- inputs and metrics


def _holdout_target(
    frame: pd.DataFrame, settings: PromotionSettings, data: DataSettings
) -> np.ndarray:
    needed = [data.target]
    if settings.segment_margin is not None:
        needed += data.segments
    needed += settings.fairness.columns
    absent = [c for c in dict.fromkeys(needed) if c not in frame.columns]
    if absent:
        raise SchemaError(
            f"holdout: columns {absent} are missing (frame has {list(frame.columns)})"
        )
    truth = frame[data.target].to_numpy()
    if n := int(pd.isna(truth).sum()):
        raise SchemaError(
            f"holdout: {n} of {len(truth)} rows have no target {data.target!r}; "
            "the comparison needs labelled rows"
        )
    return truth


def _predictions(
    scored: pd.DataFrame,
    frame: pd.DataFrame,
    data: DataSettings,
    task: str,
    role: str,
    version: str | None,
) -> Predictions:
    if len(scored) != len(frame):
        raise ValueError(
            f"{role} version {version}: {len(scored)} predictions for {len(frame)} holdout rows "
            "(they must be aligned row for row)"
        )
    if data.prediction not in scored.columns:
        raise SchemaError(
            f"{role} version {version}: column {data.prediction!r} is missing "
            f"(has {list(scored.columns)})"
        )
    if data.id in scored.columns and data.id in frame.columns:
        mismatch = scored[data.id].to_numpy() != frame[data.id].to_numpy()
        if mismatch.any():
            raise ValueError(
                f"{role} version {version}: {int(mismatch.sum())} rows have another "
                f"{data.id!r} than the holdout row in the same position"
            )
    scores = None
    if task == "classification" and SCORE in scored.columns:
        scores = scored[SCORE].to_numpy()
    return Predictions(scored[data.prediction].to_numpy(), scores)


def _metrics(
    truth: np.ndarray, preds: Predictions, task: str, data: DataSettings
) -> dict[str, float]:
    return compute_metrics(
        truth, preds.labels, task, y_score=preds.scores, positive_label=data.positive_label
    )


def _score(
    metrics: Mapping[str, float], name: str, role: str, version: str | None, task: str
) -> float:
    metric_direction(name, task)  # a metric of the wrong task is a config error, not missing data
    value = metrics.get(name)
    if value is None or not math.isfinite(value):
        has = ", ".join(sorted(metrics)) or "none"
        raise InsufficientDataError(
            f"{role} version {version}: metric {name!r} is missing or "
            f"not a finite number (got {value!r}; metrics: {has})"
        )
    return float(value)


def _opt_float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _verdict(passed: bool) -> str:
    return "pass" if passed else "fail"


def _gain(metric: str, cand: float, champ: float, task: str) -> float:
    """Returns cand - champ in the metric's better direction (positive = challenger better)."""
    return cand - champ if metric_direction(metric, task) == "max" else champ - cand


# ---------------------------------------------------------------- threshold, cap, guards


def _threshold_check(
    cand: Mapping[str, float],
    champ: Mapping[str, float],
    settings: PromotionSettings,
    task: str,
    gate: Gate,
) -> Check:
    details = {
        "threshold": settings.threshold,
        "min_relative_change": settings.min_relative_change,
        "min_absolute_change": settings.min_absolute_change,
    }
    if all(v is None for v in details.values()):
        return Check(
            "thresholds",
            False,
            "thresholds: none configured (promotion.threshold, min_relative_change, "
            "min_absolute_change), so no challenger is ever promoted (fail)",
            details,
        )
    verdict = gate(cand, champ, settings, task)
    return Check("thresholds", verdict.passed, "; ".join(verdict.sentences), details)


def _cap_check(metric: str, cand: float, champ: float, cap: float | None, task: str) -> list[Check]:
    if cap is None:
        return []
    details: dict = {"max_relative_change": cap, "relative_gain": None}
    if champ == 0:
        return [
            Check(
                "max_relative_change",
                True,
                f"max_relative_change: the champion's {metric} is 0, a relative gain is "
                "undefined: cap not applied",
                details,
            )
        ]
    gain = _gain(metric, cand, champ, task) / abs(champ)
    passed = gain <= cap + _TOLERANCE
    details["relative_gain"] = gain
    if passed:
        text = f"{metric} gain {format_percent(gain)} is within the {format_percent(cap)} cap"
    else:
        text = (
            f"{metric} gain {format_percent(gain)} ({format_number(champ)} -> "
            f"{format_number(cand)}) exceeds the {format_percent(cap)} cap: suspiciously "
            "large, check for leakage"
        )
    sentence = f"max_relative_change: {text} ({_verdict(passed)})"
    return [Check("max_relative_change", passed, sentence, details)]


def _guard_check(metric: str, cand: float, champ: float, tolerance: float, task: str) -> Check:
    worse_by = -_gain(metric, cand, champ, task)
    passed = worse_by <= tolerance + _TOLERANCE
    if worse_by > 0:
        change = f"{format_number(worse_by)} worse"
    elif worse_by < 0:
        change = f"{format_number(-worse_by)} better"
    else:
        change = "equal"
    return Check(
        f"guard {metric}",
        passed,
        f"guard {metric}: challenger {format_number(cand)} vs champion {format_number(champ)} "
        f"is {change}, tolerance {format_number(tolerance)} ({_verdict(passed)})",
        {"candidate": cand, "champion": champ, "tolerance": tolerance},
    )


# ---------------------------------------------------------------- significance


def _significance_check(
    truth: np.ndarray,
    cand: Predictions,
    champ: Predictions,
    settings: PromotionSettings,
    task: str,
    data: DataSettings,
    expected: tuple[float, float],
) -> Check:
    sig, metric = settings.significance, settings.metric
    method = sig.method
    if method == "auto":
        method = "mcnemar" if metric == "accuracy" else "bootstrap"
    if method == "none":
        return Check(
            "significance",
            True,
            "significance: not tested (promotion.significance.method is 'none')",
            {"method": "none"},
        )
    if method == "mcnemar":
        if task != "classification":
            raise ConfigError(
                "promotion.significance.method: 'mcnemar' compares correct predictions and "
                f"needs a classification task, this is a {task} (use 'bootstrap' or 'auto')"
            )
        return _mcnemar_check(truth, cand, champ, sig.confidence)
    res = paired_bootstrap(
        truth,
        cand,
        champ,
        metric,
        task,
        samples=sig.samples,
        confidence=sig.confidence,
        seed=sig.seed,
        positive_label=data.positive_label,
        expected=expected,
    )
    details = {
        "method": "bootstrap",
        "difference": res.difference,
        "low": _finite_or_none(res.low),
        "high": _finite_or_none(res.high),
        "confidence": res.confidence,
        "samples": res.samples,
        "undefined": res.undefined,
        "seed": sig.seed,
    }
    used = res.samples - res.undefined
    if used == 0:
        return Check(
            "significance",
            False,
            f"significance: {metric} is undefined on every bootstrap resample, so the gain "
            "cannot be shown (fail)",
            details,
        )
    passed = bool(res.low > 0)
    left_out = f" ({res.undefined} with an undefined {metric} left out)" if res.undefined else ""
    return Check(
        "significance",
        passed,
        f"significance: challenger {metric} gain {format_number(res.difference)}, "
        f"{format_percent(res.confidence)} paired bootstrap interval "
        f"[{format_number(res.low)}, {format_number(res.high)}] over {used} resamples"
        f"{left_out} {'lies' if passed else 'does not lie'} above 0 ({_verdict(passed)})",
        details,
    )


def _mcnemar_check(
    truth: np.ndarray, cand: Predictions, champ: Predictions, confidence: float
) -> Check:
    true = _label_keys(truth)
    cand_ok, champ_ok = _label_keys(cand.labels) == true, _label_keys(champ.labels) == true
    wins, losses = int(np.sum(cand_ok & ~champ_ok)), int(np.sum(~cand_ok & champ_ok))
    p = mcnemar_exact(wins, losses)
    alpha = 1 - confidence
    passed = wins > losses and p < alpha
    return Check(
        "significance",
        passed,
        f"significance: McNemar exact test on {len(true)} rows: challenger right where the "
        f"champion is wrong on {wins}, the reverse on {losses}, p {p:.3g} "
        f"{'<' if p < alpha else '>='} {alpha:.3g} ({_verdict(passed)})",
        {"method": "mcnemar", "wins": wins, "losses": losses, "p_value": p, "alpha": alpha},
    )


def mcnemar_exact(wins: int, losses: int) -> float:
    """Returns the two-sided exact McNemar p-value of the discordant pairs.

    wins: rows the challenger gets right and the champion wrong; losses: the reverse. Under the
    null each discordant row is a win with probability 1/2, so p = min(1, 2 P(X <= min)) with
    X ~ Binomial(wins + losses, 1/2) (scipy.stats.binom; equals scipy.stats.binomtest).
    """
    n = wins + losses
    if n == 0:
        return 1.0
    return min(1.0, 2.0 * float(scipy.stats.binom.cdf(min(wins, losses), n, 0.5)))


def bootstrap_indices(n_rows: int, samples: int, seed: int) -> Iterator[np.ndarray]:
    """Yields the row indices of `samples` resamples with replacement, in (k, n_rows) chunks
    drawn one after the other from np.random.default_rng(seed)."""
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_CELLS // max(n_rows, 1))
    for start in range(0, samples, per_chunk):
        yield rng.integers(0, n_rows, size=(min(per_chunk, samples - start), n_rows))


def paired_differences(
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    metric: str,
    task: str,
    indices: np.ndarray,
    *,
    positive_label: str | int | None = None,
) -> np.ndarray:
    """Returns the challenger's gain (metric units, positive = better) on each resample, both
    models scored on the same rows: one resample per row of `indices`; NaN where undefined.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see performance.compute_metrics.
    """
    cand = resampled_metric(y_true, candidate, metric, task, positive_label=positive_label)
    champ = resampled_metric(y_true, champion, metric, task, positive_label=positive_label)
    counts = _counts(indices, len(y_true))
    return _gain(metric, cand(indices, counts), champ(indices, counts), task)


def paired_bootstrap(
    y_true: np.ndarray,
    candidate: Predictions,
    champion: Predictions,
    metric: str,
    task: str,
    *,
    samples: int,
    confidence: float,
    seed: int,
    positive_label: str | int | None = None,
    expected: tuple[float, float] | None = None,
) -> BootstrapResult:
    """Returns the percentile confidence interval of the challenger's gain over the champion.

    Each resample draws the rows with replacement (bootstrap_indices) and scores both models on
    those same rows (paired). Reference: the percentile interval of Efron & Tibshirani (1993),
    numpy.quantile with linear interpolation at (1 - confidence) / 2 and its complement.
    `expected`: both models' metric on the whole holdout, when the caller already has them.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see performance.compute_metrics.
    """
    n = len(y_true)
    known = (None, None) if expected is None else expected
    cand, champ = (
        resampled_metric(y_true, p, metric, task, positive_label=positive_label, expected=e)
        for p, e in zip((candidate, champion), known, strict=True)
    )
    whole = np.arange(n)[None, :]
    ones = np.ones((1, n))
    difference = float(_gain(metric, cand(whole, ones), champ(whole, ones), task)[0])
    parts = []
    for idx in bootstrap_indices(n, samples, seed):
        counts = _counts(idx, n)
        parts.append(_gain(metric, cand(idx, counts), champ(idx, counts), task))
    diffs = np.concatenate(parts) if parts else np.empty(0)
    valid = diffs[np.isfinite(diffs)]
    alpha = 1 - confidence
    low, high = np.quantile(valid, [alpha / 2, 1 - alpha / 2]) if valid.size else (np.nan, np.nan)
    return BootstrapResult(
        difference=difference,
        low=float(low),
        high=float(high),
        confidence=confidence,
        samples=len(diffs),
        undefined=int(len(diffs) - valid.size),
        differences=diffs,
    )


# A metric on resamples: (indices (k, n), counts (k, n) of each row in each resample) -> (k,)
ResampledMetric = Callable[[np.ndarray, np.ndarray], np.ndarray]


def resampled_metric(
    y_true: np.ndarray,
    preds: Predictions,
    metric: str,
    task: str,
    *,
    positive_label: str | int | None = None,
    expected: float | None = None,
) -> ResampledMetric:
    """Returns a function that scores the metric on resamples of the rows (NaN where undefined).

    mae, rmse, mape, r2, accuracy, precision, recall, f1 (binary or macro) and, for two labels,
    roc_auc, pr_auc and log_loss are vectorised as weighted sums over the rows; they are used
    only when they reproduce performance.compute_metrics on the whole holdout (`expected`, when
    the caller already has it). Other metrics loop over compute_metrics, resample by resample.

    Raises:
        ConfigError, SchemaError, InsufficientDataError: see performance.compute_metrics.
    """
    y_true = np.asarray(y_true)
    full = expected
    if full is None:
        full = compute_metrics(
            y_true, preds.labels, task, y_score=preds.scores, positive_label=positive_label
        ).get(metric)
    fast = _fast_metric(y_true, preds, metric, task, positive_label)
    if fast is not None and full is not None:
        whole = float(fast(np.ones((1, len(y_true))))[0])
        if math.isclose(whole, full, rel_tol=1e-9, abs_tol=1e-12):
            return lambda _indices, counts: fast(counts)

    def loop(indices: np.ndarray, _counts: np.ndarray) -> np.ndarray:
        out = np.full(len(indices), np.nan)
        for i, rows in enumerate(indices):
            try:
                value = compute_metrics(
                    y_true[rows],
                    preds.labels[rows],
                    task,
                    y_score=None if preds.scores is None else preds.scores[rows],
                    positive_label=positive_label,
                ).get(metric)
            except (InsufficientDataError, ConfigError):
                continue  # undefined on this resample (e.g. a single label); counted by the caller
            out[i] = np.nan if value is None else value
        return out

    return loop


def _counts(indices: np.ndarray, n_rows: int) -> np.ndarray:
    """Returns how often each row occurs in each resample, shape (k, n_rows)."""
    k = len(indices)
    flat = (indices + (np.arange(k) * n_rows)[:, None]).ravel()
    return np.bincount(flat, minlength=k * n_rows).reshape(k, n_rows).astype(float)


def _fast_metric(
    y_true: np.ndarray,
    preds: Predictions,
    metric: str,
    task: str,
    positive_label: str | int | None,
) -> Callable[[np.ndarray], np.ndarray] | None:
    """Returns the metric as a function of resample counts (k, n), or None when not vectorised.
    Each mean is a weighted sum: a resample's rows are the holdout rows, weighted by counts."""
    n = len(y_true)
    if task == "regression":
        y = y_true.astype(float)
        e = preds.labels.astype(float) - y
        if metric == "r2":
            centred, squared = y - y.mean(), e * e
            return lambda counts: _r2(centred, squared, counts)
        terms = {
            "mae": np.abs(e),
            "rmse": e * e,
            "mape": np.abs(e) / np.maximum(np.abs(y), np.finfo(float).eps),  # as sklearn
        }.get(metric)
        if terms is None:
            return None
        if metric == "rmse":
            return lambda counts: np.sqrt(counts @ terms / n)
        return lambda counts: counts @ terms / n
    true, pred = _label_keys(y_true), _label_keys(preds.labels)
    if metric == "accuracy":
        right = (true == pred).astype(float)
        return lambda counts: counts @ right / n
    labels = sorted(set(true) | set(pred))
    if len(labels) > 2 and metric in ("precision", "recall", "f1"):
        return _macro_rate(metric, true, pred, labels)
    if len(labels) > 2 or positive_label is None:
        return None
    pos = _label_key(positive_label)
    is_pos, said_pos = true == pos, pred == pos
    if metric in ("precision", "recall", "f1"):
        hits, said, actual = (is_pos & said_pos).astype(float), said_pos.astype(float), is_pos
        return lambda counts: _binary_rate(metric, hits, said, actual.astype(float), counts)
    if preds.scores is None or preds.scores.ndim != 1:
        return None
    scores = preds.scores.astype(float)
    if metric in ("roc_auc", "pr_auc"):
        return _ranking_metric(metric, is_pos, scores)
    if metric == "log_loss":
        eps = np.finfo(float).eps  # as sklearn.metrics.log_loss: clip, renormalise, -log
        both = np.clip(np.column_stack([1 - scores, scores]), eps, 1 - eps)
        loss = -np.log(both[np.arange(n), is_pos.astype(int)] / both.sum(axis=1))
        return lambda counts: counts @ loss / n
    return None


def _r2(centred: np.ndarray, squared_errors: np.ndarray, counts: np.ndarray) -> np.ndarray:
    n = counts.sum(axis=1)
    ss_res = counts @ squared_errors
    s1, s2 = counts @ centred, counts @ (centred * centred)
    ss_tot = s2 - s1 * s1 / n
    # a constant resampled target has no variance (rounding leaves ~1e-16 of s2): undefined
    defined = ss_tot > 1e-10 * s2
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(defined, 1 - ss_res / ss_tot, np.nan)


def _binary_rate(
    metric: str, hits: np.ndarray, said: np.ndarray, actual: np.ndarray, counts: np.ndarray
) -> np.ndarray:
    tp, predicted, positives = counts @ hits, counts @ said, counts @ actual
    den = {"precision": predicted, "recall": positives, "f1": (predicted + positives) / 2}[metric]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, tp / den, 0.0)  # sklearn zero_division=0


def _macro_rate(
    metric: str, true: np.ndarray, pred: np.ndarray, labels: list[str]
) -> Callable[[np.ndarray], np.ndarray]:
    """Returns the unweighted mean over the labels that occur in the resample (in its targets or
    predictions), as sklearn's average="macro" with zero_division=0."""
    is_true = np.column_stack([true == label for label in labels]).astype(float)
    is_pred = np.column_stack([pred == label for label in labels]).astype(float)
    hits = is_true * is_pred

    def rate(counts: np.ndarray) -> np.ndarray:
        tp, predicted, actual = counts @ hits, counts @ is_pred, counts @ is_true
        den = {"precision": predicted, "recall": actual, "f1": (predicted + actual) / 2}[metric]
        with np.errstate(divide="ignore", invalid="ignore"):
            per_label = np.where(den > 0, tp / den, 0.0)
        present = (predicted + actual) > 0
        return (per_label * present).sum(axis=1) / present.sum(axis=1)

    return rate


def _ranking_metric(
    metric: str, is_pos: np.ndarray, scores: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Returns weighted roc_auc (Mann-Whitney, ties count 1/2) or pr_auc (average precision over
    the distinct scores), as sklearn's roc_auc_score and average_precision_score define them."""
    order = np.argsort(-scores, kind="stable")  # best first
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # groups of tied scores
    pos = is_pos[order].astype(float)

    def per_group(weights: np.ndarray) -> np.ndarray:
        return weights if len(starts) == len(ranked) else np.add.reduceat(weights, starts, axis=1)

    def score(counts: np.ndarray) -> np.ndarray:
        weights = counts[:, order]
        w_pos, w_neg = per_group(weights * pos), per_group(weights * (1 - pos))
        cum_pos, cum_neg = np.cumsum(w_pos, axis=1), np.cumsum(w_neg, axis=1)
        n_pos, n_neg = cum_pos[:, -1], cum_neg[:, -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            if metric == "roc_auc":
                below = n_neg[:, None] - cum_neg  # negatives scored strictly lower
                wins = (w_pos * (below + w_neg / 2)).sum(axis=1)
                return np.where(n_pos * n_neg > 0, wins / (n_pos * n_neg), np.nan)
            precision = np.where(w_pos > 0, cum_pos / (cum_pos + cum_neg), 0.0)
            return np.where(n_pos > 0, (w_pos * precision).sum(axis=1) / n_pos, np.nan)

    return score


def _label_keys(values: np.ndarray) -> np.ndarray:
    return np.array([_label_key(v) for v in values], dtype=object)


def _label_key(value: object) -> str:
    """Returns a label as text as modelwatch.performance compares labels (2, 2.0, "2" are one);
    the fast paths are checked against compute_metrics, McNemar against its accuracy in tests."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value).strip()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


# ---------------------------------------------------------------- segments and fairness


@dataclass(frozen=True)
class _Groups:
    """The holdout split by a column, with both models' metric on each group."""

    frame: pd.DataFrame
    truth: np.ndarray
    cand: Predictions
    champ: Predictions
    task: str
    data: DataSettings

    def split(self, column: str) -> list[tuple[object, np.ndarray]]:
        values = self.frame[column].reset_index(drop=True)
        groups = values.groupby(values, dropna=False, sort=True).indices
        return [(_plain(v), np.asarray(rows)) for v, rows in groups.items()]

    def metric(self, rows: np.ndarray, metric: str, preds: Predictions) -> float | None:
        """Returns the metric on these rows, or None where it is undefined (e.g. one class)."""
        try:
            value = compute_metrics(
                self.truth[rows],
                preds.labels[rows],
                self.task,
                y_score=None if preds.scores is None else preds.scores[rows],
                positive_label=self.data.positive_label,
            ).get(metric)
        except (InsufficientDataError, ConfigError):
            return None
        return None if value is None or not math.isfinite(value) else float(value)


def _plain(value: object) -> object:
    """Returns a JSON-friendly scalar (numpy scalars unwrapped, NaN as None)."""
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def _segment_checks(
    groups: _Groups, settings: PromotionSettings, data: DataSettings, min_rows: int
) -> list[Check]:
    margin = settings.segment_margin
    if margin is None:
        return []
    if not data.segments:
        return [
            Check(
                "segments",
                True,
                "segments: promotion.segment_margin is set but data.segments is empty: not checked",
                {"margin": margin},
            )
        ]
    return [_segment_check(groups, c, settings.metric, margin, min_rows) for c in data.segments]


def _segment_check(
    groups: _Groups, column: str, metric: str, margin: float, min_rows: int
) -> Check:
    entries = []
    for value, rows in groups.split(column):
        entry = {"value": value, "rows": len(rows), "candidate": None, "champion": None}
        entry |= {"worsening": None, "status": "too_small"}
        if len(rows) >= max(min_rows, 2):
            cand = groups.metric(rows, metric, groups.cand)
            champ = groups.metric(rows, metric, groups.champ)
            entry["status"] = "undefined"
            if cand is not None and champ is not None:
                worse = worsening(metric, champ, cand, groups.task)
                ok = worse <= margin + _TOLERANCE
                entry |= {"candidate": cand, "champion": champ, "worsening": worse}
                entry["status"] = "pass" if ok else "fail"
        entries.append(entry)
    details = {"metric": metric, "margin": margin, "min_rows": min_rows, "segments": entries}
    checked = [e for e in entries if e["status"] in ("pass", "fail")]
    failed = [e for e in checked if e["status"] == "fail"]
    skipped = _skipped(entries, "segment", min_rows, metric)
    name = f"segments {column}"
    if not checked:
        return Check(name, True, f"{name}: no segment{skipped}: not checked", details)
    if failed:
        listed = ", ".join(f"{column}={e['value']} ({_segment_change(e)})" for e in failed)
        text = (
            f"challenger {metric} worse than the champion by more than {format_percent(margin)} "
            f"in {len(failed)} of {_count(len(checked), 'segment')}: {listed}"
        )
    else:
        worst = max(checked, key=lambda e: e["worsening"])
        text = (
            f"challenger {metric} within {format_percent(margin)} of the champion in "
            f"{_count(len(checked), 'segment')} (weakest {column}={worst['value']}: "
            f"{_segment_change(worst)})"
        )
    passed = not failed
    return Check(name, passed, f"{name}: {text}{skipped} ({_verdict(passed)})", details)


def _segment_change(entry: dict) -> str:
    worse, champ = entry["worsening"], entry["champion"]
    fmt = format_number if champ == 0 else format_percent  # worsening is absolute from a 0
    side = "equal" if worse == 0 else f"{fmt(abs(worse))} {'worse' if worse > 0 else 'better'}"
    return f"{side}, {format_number(entry['candidate'])} vs {format_number(champ)}"


def _skipped(entries: list[dict], noun: str, min_rows: int, metric: str) -> str:
    small = sum(e["status"] == "too_small" for e in entries)
    undefined = sum(e["status"] == "undefined" for e in entries)
    parts = [f"{_count(small, noun)} under {min_rows} rows"] if small else []
    parts += [f"{_count(undefined, noun)} with an undefined {metric}"] if undefined else []
    return f"; left out: {', '.join(parts)}" if parts else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _fairness_checks(groups: _Groups, settings: PromotionSettings) -> list[Check]:
    fair = settings.fairness
    metric = fair.metric or settings.metric
    max_gap = fair.max_gap if fair.max_gap is not None else 0.0  # settings require it
    return [_fairness_check(groups, c, metric, max_gap, fair.min_group_rows) for c in fair.columns]


def _fairness_check(
    groups: _Groups, column: str, metric: str, max_gap: float, min_rows: int
) -> Check:
    entries = []
    for value, rows in groups.split(column):
        entry = {"value": value, "rows": len(rows), "candidate": None, "champion": None}
        entry["status"] = "too_small"
        if len(rows) >= max(min_rows, 2):
            entry["candidate"] = groups.metric(rows, metric, groups.cand)
            entry["champion"] = groups.metric(rows, metric, groups.champ)
            entry["status"] = "undefined" if entry["candidate"] is None else "measured"
        entries.append(entry)
    measured = [e for e in entries if e["status"] == "measured"]
    champ_values = [e["champion"] for e in measured if e["champion"] is not None]
    champ_gap = max(champ_values) - min(champ_values) if len(champ_values) >= 2 else None
    details = {"metric": metric, "max_gap": max_gap, "min_rows": min_rows, "groups": entries}
    details |= {"gap": None, "champion_gap": champ_gap}
    skipped = _skipped(entries, "group", min_rows, metric)
    name = f"fairness {column}"
    if len(measured) < 2:
        text = f"{name}: fewer than 2 groups with a {metric}{skipped}: not checked"
        return Check(name, True, text, details)
    low = min(measured, key=lambda e: e["candidate"])
    high = max(measured, key=lambda e: e["candidate"])
    gap = high["candidate"] - low["candidate"]
    details["gap"] = gap
    passed = gap <= max_gap + _TOLERANCE
    champion = "n/a" if champ_gap is None else format_number(champ_gap)
    return Check(
        name,
        passed,
        f"{name}: challenger {metric} gap {format_number(gap)} between groups "
        f"(lowest {column}={low['value']} {format_number(low['candidate'])}, "
        f"highest {column}={high['value']} {format_number(high['candidate'])}), "
        f"limit {format_number(max_gap)}, champion gap {champion}{skipped} ({_verdict(passed)})",
        details,
    )
