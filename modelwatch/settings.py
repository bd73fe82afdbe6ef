"""Typed settings loaded from params.yaml, with every store resolved under one project home."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from modelwatch.errors import ConfigError

Direction = Literal["min", "max"]

# every metric modelwatch reports, per task, and whether lower ("min") or higher ("max") is
# better; defined here, in the base, because params are validated against it
# (modelwatch.performance.metrics computes them)
METRIC_DIRECTIONS: dict[str, dict[str, Direction]] = {
    "regression": {"mae": "min", "rmse": "min", "mape": "min", "r2": "max"},
    "classification": {
        "accuracy": "max",
        "precision": "max",
        "recall": "max",
        "f1": "max",
        "roc_auc": "max",
        "pr_auc": "max",
        "log_loss": "min",
    },
}

LEDGER_URL_ENV = "MODELWATCH_LEDGER_URL"
TRACKING_URI_ENV = "MODELWATCH_TRACKING_URI"
HOME_ENV = "MODELWATCH_HOME"
PROJECT_PLACEHOLDER = "{project}"  # in a ledger URL: the project's model name, database-safe
SCHEDULER_ENV = "MODELWATCH_DASK_SCHEDULER"
SCHEDULER_PATTERN = r"^(tcp|tls|ucx|ws|wss|inproc)://[^\s/]+$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSettings(_Frozen):
    model_name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    task: Literal["regression", "classification"]
    home: str = ".modelwatch"


class DataSettings(_Frozen):
    """What the columns of a batch mean. Nothing dataset-specific lives in code."""

    id: str
    target: str
    timestamp: str | None = None
    prediction: str = "prediction"
    features: list[str] = Field(min_length=1)
    categorical: list[str] = []
    positive_label: str | int | None = None
    segments: list[str] = []

    @model_validator(mode="after")
    def _consistent(self) -> DataSettings:
        unknown = sorted(set(self.categorical) - set(self.features))
        if unknown:
            raise ValueError(f"data.categorical: columns {unknown} are not in data.features")
        unknown = sorted(set(self.segments) - set(self.features))
        if unknown:
            raise ValueError(f"data.segments: columns {unknown} are not in data.features")
        reserved = {self.id, self.target, self.prediction} & set(self.features)
        if reserved:
            raise ValueError(
                f"data.features: must not contain the id/target/prediction columns "
                f"{sorted(reserved)}"
            )
        return self

    @property
    def numeric(self) -> list[str]:
        return [c for c in self.features if c not in self.categorical]


class DemoSettings(_Frozen):
    """How the bundled dataset is cut into a reference period and production batches."""

    source: str
    add_row_id: StrictBool = False
    reference_rows: StrictInt | None = Field(None, gt=0)
    reference_end: str | None = None
    batch_freq: str | None = None
    batch_rows: StrictInt | None = Field(None, gt=0)
    max_batches: StrictInt | None = Field(None, gt=0)
    label_delay_batches: StrictInt = Field(1, ge=0)
    shuffle_seed: StrictInt | None = None
    bad_batch_after: StrictInt | None = Field(None, ge=0)
    bad_batch_column: str | None = None
    bad_batch_factor: StrictFloat = 100.0

    @model_validator(mode="after")
    def _one_rule(self) -> DemoSettings:
        if (self.reference_rows is None) == (self.reference_end is None):
            raise ValueError("demo: set exactly one of reference_rows and reference_end")
        if (self.batch_rows is None) == (self.batch_freq is None):
            raise ValueError("demo: set exactly one of batch_rows and batch_freq")
        return self


class ColumnRule(_Frozen):
    min: StrictFloat | None = None
    max: StrictFloat | None = None
    values: list[str | int | float] | None = None
    max_missing_share: StrictFloat | None = Field(None, ge=0, le=1)


class ValidationSettings(_Frozen):
    min_rows: StrictInt = Field(1, ge=1)
    max_rows: StrictInt = Field(1_000_000, ge=1)
    max_missing_share: StrictFloat = Field(0.0, ge=0, le=1)
    infer_ranges: StrictBool = True
    range_margin: StrictFloat = Field(0.1, ge=0)
    infer_categories: StrictBool = True
    max_cell_length: StrictInt = Field(1_000, ge=1)  # characters in any text cell
    # How far a batch's timestamps may lie from the newest timestamp accepted so far (the
    # reference's before the first batch), either way; a pandas Timedelta ("366D", "12h"), or
    # null to turn the check off.
    max_time_gap: StrictStr | None = "366D"
    rules: dict[str, ColumnRule] = {}

    @field_validator("max_time_gap")
    @classmethod
    def _timedelta(cls, value: str | None) -> str | None:
        if value is None:
            return None
        import pandas as pd

        try:
            gap = pd.Timedelta(value)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{value!r} is not a duration such as '366D' or '12h'") from exc
        if gap <= pd.Timedelta(0):
            raise ValueError(f"{value!r} must be a positive duration")
        return value


# Names of modelwatch.drift.stattests.TESTS (a unit test keeps them in step with the registry).
NumericDriftTest = Literal[
    "auto",
    "ks",
    "wasserstein",
    "anderson_darling",
    "cramervonmises",
    "energy",
    "jensenshannon_base2",
    "psi",
    "kl",
    "hellinger",
]
CategoricalDriftTest = Literal["auto", "chi2", "z", "jensenshannon_base2", "psi", "kl", "hellinger"]
DriftTestName = Literal[NumericDriftTest, CategoricalDriftTest]


class DriftColumnSettings(_Frozen):
    """Per-column override of the drift test, its threshold and its effect-size floor."""

    test: DriftTestName | None = None
    threshold: StrictFloat | None = Field(None, gt=0)
    effect_size_floor: StrictFloat | None = Field(None, ge=0, lt=1)


class DriftNullSettings(_Frozen):
    """The bootstrap null of each distance test (modelwatch.drift.null); a distance drifts when
    it reaches the larger of distance_threshold (or the column's threshold) and the null's
    quantile at the batch's size.

    samples: pairs of resamples of the reference per column and batch (0: off, the configured
        threshold alone, exactly as without a null).
    quantile: the quantile of the null distances that becomes the threshold (Harrell-Davis
        estimate): on a stationary stream a column drifts in about 1 - quantile of the batches
        (on average over columns: each column's rate depends on its draws).
    seed: seeds each column's generator together with a hash of its name, so a rerun of a
        batch records the same thresholds.
    max_rows: at most this many rows per resample (cost); fewer rows than the reference or the
        batch only widen the null, so the cap errs towards fewer alarms.
    """

    samples: StrictInt = Field(200, ge=0)
    quantile: StrictFloat = Field(0.99, gt=0.5, lt=1)
    seed: StrictInt = 0
    max_rows: StrictInt = Field(20000, ge=100)


class DriftSettings(_Frozen):
    """How each column is tested and when the batch as a whole counts as drifted.

    "auto" chooses per column as Evidently does: with a reference of at most auto_max_rows rows,
    KS for numeric columns with more than 5 distinct values, else the z-test for binary columns
    and chi-squared for the rest, judged at p_value_threshold; with a larger reference, the
    normalised Wasserstein distance for numeric columns and the Jensen-Shannon distance (base 2)
    otherwise, judged at distance_threshold.
    """

    numeric_test: NumericDriftTest = "auto"
    categorical_test: CategoricalDriftTest = "auto"
    auto_max_rows: StrictInt = Field(1000, ge=1)
    p_value_threshold: StrictFloat = Field(0.05, gt=0, lt=1)
    distance_threshold: StrictFloat = Field(0.1, gt=0)
    effect_size_floor: StrictFloat = Field(0.05, ge=0, lt=1)
    correction: Literal["bh", "none"] = "bh"
    dataset_drift_share: StrictFloat = Field(0.5, gt=0, le=1)
    dataset_fdr: StrictFloat | None = Field(0.01, gt=0, lt=1)
    min_rows: StrictInt = Field(30, ge=2)
    columns: dict[str, DriftColumnSettings] = {}
    html_report: StrictBool = True
    html_max_plots: StrictInt | None = Field(30, ge=1)
    # distance tests: the threshold is the larger of distance_threshold and the quantile of
    # this bootstrap null of the distance (modelwatch.drift.null)
    bootstrap: DriftNullSettings = DriftNullSettings()


class MultivariateSettings(_Frozen):
    """Whole-dataset drift beside the per-column tests (modelwatch.drift.multivariate)."""

    methods: list[Literal["domain_classifier", "pca_reconstruction"]] = [
        "domain_classifier",
        "pca_reconstruction",
    ]
    classifier_auc_threshold: StrictFloat = Field(0.55, gt=0.5, lt=1)
    pca_variance: StrictFloat = Field(0.9, gt=0, lt=1)


class ExplainSettings(_Frozen):
    """SHAP explanations of the champion (modelwatch.explain): a sample of each batch against a
    background sample of the reference, and the attribution drift between the two."""

    enabled: StrictBool = True  # README, Explanations: what it costs per batch
    sample_rows: StrictInt = Field(50, ge=1)  # batch rows explained per batch
    background_rows: StrictInt = Field(25, ge=1)  # reference rows the values are measured against
    seed: StrictInt = 0
    exact_max_features: StrictInt = Field(8, ge=1, le=12)  # model-agnostic: Exact up to this many
    permutations: StrictInt = Field(5, ge=1)  # ... else Permutation with this many passes


class ReferenceSettings(_Frozen):
    """What a batch's drift is measured against (validation always uses the champion's data)."""

    strategy: Literal["champion", "previous_batch", "rolling"] = "champion"
    rolling_batches: StrictInt = Field(4, ge=1)


class BootstrapSettings(_Frozen):
    """Percentile bootstrap: how many resamples, at which confidence, from which seed."""

    samples: StrictInt = Field(200, ge=0)  # 0 turns the intervals off
    confidence: StrictFloat = Field(0.95, gt=0, lt=1)
    seed: StrictInt = 0


class PerformanceSettings(_Frozen):
    min_segment_rows: StrictInt = Field(30, ge=1)
    min_label_coverage: StrictFloat = Field(0.95, gt=0, le=1)
    bootstrap: BootstrapSettings = BootstrapSettings()  # confidence intervals of every metric
    estimate: StrictBool = True  # classification: CBPE estimate from calibrated scores first


class PersistenceSettings(_Frozen):
    """Retrain only when at least `violations` of the last `window` batches broke a rule (the
    latest included). 1 of 1 acts on the first violation."""

    violations: StrictInt = Field(1, ge=1)
    window: StrictInt = Field(1, ge=1)

    @model_validator(mode="after")
    def _fits(self) -> PersistenceSettings:
        if self.violations > self.window:
            raise ValueError(
                f"persistence: violations ({self.violations}) cannot exceed window ({self.window})"
            )
        return self


class BudgetSettings(_Frozen):
    """At most `max_retrains` automatic retrains in any `per_batches` consecutive batches."""

    max_retrains: StrictInt | None = Field(None, ge=1)  # null: no budget
    per_batches: StrictInt = Field(13, ge=1)


class GainSettings(_Frozen):
    """Retrain less where retraining has not paid. The expected gain of a retrain is the mean
    relative gain of the last `lookback` challengers over the champion they faced (on the
    promotion holdout, in promotion.metric; a challenger that lost has a negative or small
    gain). While it is below `min_expected`, every challenger lost in a row multiplies the wait
    after a retrain by `backoff`: max(cooldown_batches, 1) x backoff ** losses batches, at most
    `max_wait_batches`. A promotion ends the run of losses. backoff 1 turns the rule off."""

    lookback: StrictInt = Field(3, ge=1)
    min_expected: StrictFloat = 0.0
    backoff: StrictFloat = Field(2.0, ge=1)
    max_wait_batches: StrictInt = Field(26, ge=1)


Severity = Literal["info", "warning", "critical"]


class RetrainSettings(_Frozen):
    """When to retrain. Every threshold is optional (null turns its rule off).

    Drift: `max_drift_share` is absolute (share of drifted features); `max_drift_share_increase`
    is relative to the share this champion showed on its first batch. Performance:
    `max_performance_drop` is relative to the champion's baseline, `max_performance_drop_abs` is
    in the metric's units, `performance_limit` is a bound on the value itself (direction-aware).
    `drift_weighting` "importance" reads every drift share as the champion's feature importance
    of the drifted features (drift in a feature the model does not use cannot change its
    predictions), "equal" as the plain share. `prediction_drift` also counts a drifted
    prediction as drift. `max_estimated_drop` (classification): the CBPE estimate of the
    performance metric, made before labels arrive, worse than the baseline by this share.
    `performance_evidence` "interval" judges the performance limits on the better end of the
    metric's bootstrap interval (fire only when the whole interval is past the limit), "point"
    on the value itself. `window_after_drop`: when performance fires, the challenger trains only
    on the labelled batches since performance first fell below its limit (a model that learns
    from before a concept change cannot beat the champion on data after it), and the retrain
    waits until one such batch exists beyond the holdout.
    """

    run_mode: Literal["enabled", "dry_run", "disabled"] = "enabled"
    max_drift_share: StrictFloat | None = Field(0.5, gt=0, le=1)
    max_drift_share_increase: StrictFloat | None = Field(None, gt=0, le=1)
    drift_weighting: Literal["importance", "equal"] = "importance"
    prediction_drift: StrictBool = False
    max_estimated_drop: StrictFloat | None = Field(None, gt=0)
    performance_evidence: Literal["interval", "point"] = "interval"
    window_after_drop: StrictBool = True
    performance_metric: str = "mae"
    max_performance_drop: StrictFloat | None = Field(0.2, gt=0)
    max_performance_drop_abs: StrictFloat | None = Field(None, gt=0)
    performance_limit: StrictFloat | None = None
    max_model_age_batches: StrictInt | None = Field(26, ge=1)
    persistence: PersistenceSettings = PersistenceSettings()
    cooldown_batches: StrictInt = Field(0, ge=0)
    budget: BudgetSettings = BudgetSettings()
    gain: GainSettings = GainSettings()
    severity: dict[
        Literal["drift", "performance", "estimated", "staleness", "manual"], Severity
    ] = {
        "drift": "warning",
        "performance": "critical",
        "estimated": "warning",
        "staleness": "info",
        "manual": "info",
    }


class TrainingSettings(_Frozen):
    window_batches: StrictInt = Field(8, ge=1)
    # a longer window fitted beside window_batches on each retrain; the one better on the
    # holdout becomes the challenger (null: only window_batches)
    long_window_batches: StrictInt | None = Field(None, ge=2)
    holdout_batches: StrictInt = Field(1, ge=1)
    # a built-in model (modelwatch.training.builtin), or "none": no challengers, monitoring only
    model: Literal["hist_gradient_boosting", "random_forest", "linear", "dummy", "none"] = (
        "hist_gradient_boosting"
    )
    # "package.module:function" that fits a model on a window (modelwatch.training.entry);
    # modules are looked up beside the params file first. Set, it replaces `model`.
    entry_point: StrictStr | None = Field(None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    seed: StrictInt = 0
    hyperparameters: dict[str, float | int | str | bool | None] = {}
    # How a new model's own metrics (the first champion's baseline) are estimated: "auto" is
    # a time-ordered holdout when data.timestamp is set (train on the oldest rows, score the
    # newest holdout_share: shuffled folds leak the future on a stream), else shuffled k-fold.
    validation: Literal["auto", "time_holdout", "shuffled_cv"] = "auto"
    holdout_share: StrictFloat = Field(0.2, gt=0, lt=1)
    # Types (module.Name) a model may hold beyond modelwatch's allow-list
    # (stores.integrity.ALLOWED_TYPES); a model with any other type is neither saved nor loaded.
    trusted_types: list[StrictStr] = []

    @model_validator(mode="after")
    def _long_is_longer(self) -> TrainingSettings:
        if self.long_window_batches is not None and self.long_window_batches <= self.window_batches:
            raise ValueError(
                f"training: long_window_batches ({self.long_window_batches}) must exceed "
                f"window_batches ({self.window_batches})"
            )
        return self


class SignificanceSettings(_Frozen):
    """The challenger's gain must be significant on the shared holdout.

    auto: McNemar's exact test when the metric is accuracy, else a paired bootstrap confidence
    interval of the difference (it must exclude zero on the better side)."""

    method: Literal["auto", "bootstrap", "mcnemar", "none"] = "auto"
    confidence: StrictFloat = Field(0.95, gt=0, lt=1)
    samples: StrictInt = Field(1000, ge=100)
    seed: StrictInt = 0


class FairnessSettings(_Frozen):
    """Limit on the challenger's metric gap between the groups of each sensitive column."""

    columns: list[str] = []
    metric: str | None = None  # default: promotion.metric
    max_gap: StrictFloat | None = Field(None, ge=0)  # absolute, in the metric's units
    min_group_rows: StrictInt = Field(30, ge=1)


class ProbationSettings(_Frozen):
    """After a promotion, the new champion is watched on its next `batches` labelled batches
    against the previous champion scored in shadow on the same rows; worse by more than
    `tolerance` (relative) rolls it back automatically. 0 batches turns probation off."""

    batches: StrictInt = Field(3, ge=0)
    tolerance: StrictFloat = Field(0.05, ge=0)


class LiveShadowSettings(_Frozen):
    """The challenger's live shadow metric as a promotion check: on at least `min_rows` labelled
    production rows it scored in shadow, it may be worse than the champion's on the same rows by
    at most `max_worse` (relative); fewer rows: the check is skipped and says why."""

    min_rows: StrictInt = Field(200, ge=1)
    max_worse: StrictFloat | StrictInt = Field(0.05, ge=0)


_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: Any) -> float:
    """Returns a duration in seconds from a number of seconds or a string such as "24h", "30m",
    "90s", "2d" (one number and one unit).

    Raises:
        ValueError: not a positive duration in that form.
    """
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 24h, 30m, 90s or 2d, got {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.fullmatch(str(value).lower())
        if match is None:
            raise ValueError(
                f"expected a duration such as 24h, 30m, 90s, 2d or a number of seconds, "
                f"got {value!r}"
            )
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"expected a positive duration, got {value!r}")
    return seconds


class PromotionSettings(_Frozen):
    """When a challenger replaces the champion. Thresholds mirror mlflow.models.MetricThreshold.

    With none of threshold, min_relative_change and min_absolute_change set, nothing is ever
    promoted. `first_model` says what happens when there is no champion to compare with."""

    metric: str
    first_model: Literal["promote", "check_threshold", "never"]  # required: an explicit choice
    threshold: StrictFloat | None = None  # the challenger's metric must reach it (direction-aware)
    min_relative_change: StrictFloat | None = Field(None, ge=0, le=1)  # gain vs champion, relative
    min_absolute_change: StrictFloat | None = Field(None, gt=0)  # gain vs champion, metric units
    max_relative_change: StrictFloat | None = Field(None, gt=0)  # larger gains are suspicious
    guard_metrics: dict[str, StrictFloat] = {}  # not worse than the champion by more than this
    significance: SignificanceSettings = SignificanceSettings()
    segment_margin: StrictFloat | None = Field(None, ge=0)  # per segment: not worse by more (rel.)
    fairness: FairnessSettings = FairnessSettings()
    probation: ProbationSettings = ProbationSettings()
    live_shadow: LiveShadowSettings | None = None  # null: the live shadow is recorded, not judged
    approval: Literal["none", "required"] = "none"  # required: a person approves in Prefect
    approval_timeout: float = 86400.0  # seconds; "24h", "30m", "90s", "2d" or a number

    @field_validator("approval_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> float:
        return parse_duration(value)

    @model_validator(mode="after")
    def _fairness_complete(self) -> PromotionSettings:
        if self.fairness.columns and self.fairness.max_gap is None:
            raise ValueError("promotion.fairness: columns are set but max_gap is not")
        return self


class ScheduleSettings(_Frozen):
    """When `modelwatch serve` runs the monitor deployment, in an explicit time zone.

    Catch-up: each run processes every batch file waiting in incoming/batches, oldest name
    first, so ticks missed while nothing was serving are made up by the next run; runs of the
    monitor deployment never overlap (deployment concurrency limit 1)."""

    cron: str = "0 6 * * 1"  # minute hour day month weekday
    timezone: str = "UTC"  # an IANA name such as Europe/Berlin; required to be valid
    max_batches_per_run: StrictInt | None = Field(None, ge=1)  # null: drain the folder

    @model_validator(mode="after")
    def _known_zone(self) -> ScheduleSettings:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"schedule.timezone: {self.timezone!r} is not an IANA time zone "
                "(e.g. UTC, Europe/Berlin)"
            ) from None
        if len(self.cron.split()) != 5:
            raise ValueError(
                f"schedule.cron: {self.cron!r} needs five fields: minute hour day month weekday"
            )
        return self


class TrackingSettings(_Frozen):
    experiment: str = Field(min_length=1)


class StoresSettings(_Frozen):
    """Where the MLflow tracking store and the ledger live. Unset (the default): embedded,
    SQLite files in the project home. Server mode: `tracking_uri` is the http(s):// address of
    an MLflow tracking server (artifacts proxied by it), `ledger_url` any SQLAlchemy URL, e.g.
    postgresql+psycopg://user@host:5432/modelwatch_ledger_{project}, where {project} becomes the
    model name (lower case, [a-z0-9_]). The environment wins over the file:
    MODELWATCH_TRACKING_URI and MODELWATCH_LEDGER_URL; Prefect's own PREFECT_API_URL picks the
    Prefect server."""

    tracking_uri: StrictStr | None = Field(None, pattern=r"^https?://[^/\s]+")
    ledger_url: StrictStr | None = Field(None, min_length=1)


class WebhookSettings(_Frozen):
    """Where alerts go: an http(s) incoming webhook that accepts Slack-compatible JSON (Slack,
    Mattermost, Rocket.Chat), or any apprise URL (mailto://, msteams://, discord://, ...)."""

    url: str
    name: str | None = Field(None, min_length=1)  # in logs and results; default: the URL's host
    min_severity: Severity = "warning"
    timeout_seconds: StrictFloat = Field(5, gt=0, le=60)

    @field_validator("url")
    @classmethod
    def _known_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            if not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host")
            return url
        import apprise  # only for the non-http channels: off the path of most commands

        if not parts.scheme or apprise.Apprise.instantiate(url) is None:
            raise ValueError(
                "must be an http:// or https:// webhook URL (Slack-compatible JSON) or a URL "
                "apprise knows (mailto://, msteams://, discord://, tgram://, ntfys://, json://, "
                "...; see https://github.com/caronc/apprise/wiki)"
            )
        return url

    @property
    def is_webhook(self) -> bool:
        """An http(s) URL: Slack-compatible JSON. Anything else goes through apprise."""
        return urlsplit(self.url).scheme in ("http", "https")

    @property
    def label(self) -> str:
        """The name, or the webhook URL's host and port (never the path, which often holds a
        token); for an apprise URL, its scheme and a short hash (its host is often a token)."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        if self.is_webhook:
            return parts.netloc.rpartition("@")[2]
        # an apprise URL's host part is often its token (tgram://<bot token>/...): not shown
        digest = hashlib.sha256(self.url.encode()).hexdigest()[:8]
        return f"{parts.scheme}-{digest}"


class AlertSettings(_Frozen):
    """Where alerts go: the log from `min_severity` up, each webhook from its own min_severity.

    An open incident is alerted once; `repeat_after_batches` re-sends it while it stays open
    (null: never). An alert a webhook did not accept waits in an outbox and is tried again with
    the next batch's alerts, up to `max_attempts` tries in all."""

    min_severity: Severity = "info"
    webhooks: list[WebhookSettings] = []
    repeat_after_batches: StrictInt | None = Field(None, ge=1)
    # tries per webhook and alert; a failed one is tried again with the next batch's alerts
    max_attempts: StrictInt = Field(5, ge=1, le=100)

    @model_validator(mode="after")
    def _unique_labels(self) -> AlertSettings:
        labels = [w.label for w in self.webhooks]
        repeated = sorted({x for x in labels if labels.count(x) > 1})
        if repeated:
            raise ValueError(
                f"alerts.webhooks: {repeated} appear more than once; give each webhook a name"
            )
        return self


# not worse than the champion by more than this, at the serving threshold (predict)
CLASSIFICATION_GUARDS = {"accuracy": 0.02, "f1": 0.05}


class ScaleSettings(_Frozen):
    """Large Parquet batches (modelwatch.scale): the Dask cluster they run on.

    scheduler: address of a running Dask scheduler (e.g. tcp://10.0.0.5:8786); null starts a
    local cluster of `workers` processes with `threads_per_worker` threads each and at most
    `worker_memory` each (Dask's memory limit: it spills, then pauses, then restarts a worker).
    The environment variable MODELWATCH_DASK_SCHEDULER overrides it (scheduler_address).
    partition_rows: a batch is read in pieces of whole row groups of about this many rows (one
    Dask partition each); a file with a single larger row group is one piece.
    storage_options: passed to fsspec for s3://, gcs://, ... paths (e.g. {anon: true}).
    """

    scheduler: StrictStr | None = Field(None, pattern=SCHEDULER_PATTERN)
    workers: StrictInt = Field(2, ge=1)
    threads_per_worker: StrictInt = Field(1, ge=1)
    worker_memory: StrictStr = Field("1.75GiB", pattern=r"^\d+(\.\d+)?\s*(B|kB|MB|GB|KiB|MiB|GiB)$")
    partition_rows: StrictInt = Field(500_000, ge=1)
    storage_options: dict[str, StrictStr | StrictInt | StrictFloat | StrictBool] = {}


def scheduler_address(settings: ScaleSettings) -> str | None:
    """Returns the Dask scheduler to use: MODELWATCH_DASK_SCHEDULER when set, else
    scale.scheduler (None: a local cluster).

    Raises:
        ConfigError: the environment variable is not a scheduler address.
    """
    value = os.environ.get(SCHEDULER_ENV)
    if not value:
        return settings.scheduler
    if not re.fullmatch(SCHEDULER_PATTERN, value):
        raise ConfigError(
            f"{SCHEDULER_ENV}: {value!r} is not a Dask scheduler address "
            "(expected e.g. tcp://host:8786; accepted schemes: tcp, tls, ucx, ws, wss, inproc)"
        )
    return value


class ServingSettings(_Frozen):
    """`modelwatch serve-model`: the scoring service of the champion and its prediction log.

    log_dir (relative to the project home) holds Parquet part files per UTC window
    (window=<start>/rows-*.parquet, requests-*.parquet), written at most every flush_seconds and
    at shutdown. shadow_share of the requests is also scored by the `challenger` alias, when one
    exists; reload_seconds is how often the `champion` alias is checked for a move; `modelwatch
    collect` turns a window into a monitor batch close_after_seconds after its end."""

    log_dir: StrictStr = Field("predictions", min_length=1)
    window: Literal["hourly", "daily"] = "hourly"
    flush_seconds: StrictFloat | StrictInt = Field(2.0, gt=0, le=3600)
    shadow_share: StrictFloat | StrictInt = Field(0.0, ge=0, le=1)
    reload_seconds: StrictFloat | StrictInt = Field(5.0, gt=0, le=86400)
    max_rows: StrictInt = Field(10_000, ge=1)
    host: StrictStr = Field("127.0.0.1", min_length=1)
    port: StrictInt = Field(8300, ge=1, le=65535)
    # `modelwatch collect` takes a window this long after its end (late part files)
    close_after_seconds: StrictFloat | StrictInt = Field(60.0, ge=0, le=86400)

    @field_validator("log_dir")
    @classmethod
    def _inside_home(cls, value: str) -> str:
        if not value.strip() or Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(
                f"serving.log_dir: {value!r} must name a folder inside project.home "
                "(e.g. predictions)"
            )
        return value


class SystemHealthSettings(_Frozen):
    """Thresholds on a prediction-log window's system health (each null: that check is off);
    a window that crosses one raises a `system_health` alert of `severity`."""

    max_latency_p95_ms: float | None = Field(None, gt=0)
    max_latency_p99_ms: float | None = Field(None, gt=0)
    max_error_rate: float | None = Field(None, ge=0, le=1)  # server errors (5xx) per request
    max_client_error_rate: float | None = Field(None, ge=0, le=1)  # 4xx per request
    min_requests: StrictInt | None = Field(None, ge=0)
    severity: Severity = "warning"


class Settings(_Frozen):
    project: ProjectSettings
    data: DataSettings
    demo: DemoSettings | None = None
    validation: ValidationSettings = ValidationSettings()
    drift: DriftSettings = DriftSettings()
    reference: ReferenceSettings = ReferenceSettings()
    multivariate: MultivariateSettings = MultivariateSettings()
    explain: ExplainSettings = ExplainSettings()
    performance: PerformanceSettings = PerformanceSettings()
    retrain: RetrainSettings = RetrainSettings()
    training: TrainingSettings = TrainingSettings()
    promotion: PromotionSettings
    schedule: ScheduleSettings = ScheduleSettings()
    tracking: TrackingSettings
    stores: StoresSettings = StoresSettings()
    alerts: AlertSettings = AlertSettings()
    scale: ScaleSettings = ScaleSettings()
    serving: ServingSettings = ServingSettings()
    system_health: SystemHealthSettings = SystemHealthSettings()

    @model_validator(mode="before")
    @classmethod
    def _default_guards(cls, raw: Any) -> Any:
        """Classification without promotion.guard_metrics gets CLASSIFICATION_GUARDS: a
        ranking metric alone (ROC AUC) can promote a model whose thresholded answers are worse
        (an explicit `guard_metrics: {}` turns them off)."""
        if not isinstance(raw, dict):
            return raw
        task = (raw.get("project") or {}).get("task")
        promotion = raw.get("promotion")
        if task == "classification" and isinstance(promotion, dict):
            if "guard_metrics" not in promotion:
                promotion = {**promotion, "guard_metrics": dict(CLASSIFICATION_GUARDS)}
                raw = {**raw, "promotion": promotion}
        return raw

    @model_validator(mode="after")
    def _metrics_match_task(self) -> Settings:
        allowed = METRIC_DIRECTIONS[self.project.task]
        for key, name in [
            ("promotion.metric", self.promotion.metric),
            ("retrain.performance_metric", self.retrain.performance_metric),
            *[("promotion.guard_metrics", g) for g in self.promotion.guard_metrics],
            *(
                [("promotion.fairness.metric", self.promotion.fairness.metric)]
                if self.promotion.fairness.metric
                else []
            ),
        ]:
            if name not in allowed:
                raise ValueError(
                    f"{key}: {name!r} is not a {self.project.task} metric "
                    f"(accepted: {', '.join(sorted(allowed))})"
                )
        unknown = [c for c in self.promotion.fairness.columns if c not in self.data.features]
        if unknown:
            raise ValueError(f"promotion.fairness.columns: {unknown} are not in data.features")
        return self


@dataclass(frozen=True)
class Paths:
    """Every store modelwatch writes, under one home folder (MODELWATCH_HOME moves it)."""

    project_root: Path
    params_file: Path
    home: Path
    tracking_server: str | None = None  # an MLflow server's http(s) URL (server mode)
    ledger_server: str | None = None  # a SQLAlchemy URL of the ledger (server mode)

    @property
    def mlflow_db(self) -> Path:
        return self.home / "mlflow.db"

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking server's URL in server mode, else SQLite in the project home."""
        return self.tracking_server or f"sqlite:///{self.mlflow_db}"

    @property
    def artifact_root(self) -> Path:
        return self.home / "mlartifacts"

    @property
    def experiment_artifact_root(self) -> Path | None:
        """Where new experiments keep their artifacts: the project's folder when embedded; None
        with a tracking server, whose proxied artifact store (mlflow-artifacts:/) decides."""
        return None if self.tracking_server else self.artifact_root

    @property
    def ledger_url(self) -> str:
        """The ledger database: stores.ledger_url or MODELWATCH_LEDGER_URL (any SQLAlchemy URL,
        e.g. PostgreSQL in a server deployment), else SQLite in the project home."""
        return self.ledger_server or f"sqlite:///{self.home / 'ledger.db'}"

    @property
    def mode(self) -> Literal["embedded", "server"]:
        """ "server" when the tracking store or the ledger is a server, else "embedded"."""
        return "server" if self.tracking_server or self.ledger_server else "embedded"

    @property
    def prefect_home(self) -> Path:
        return self.home / "prefect"

    @property
    def data_repo(self) -> Path:
        return self.home / "datarepo"

    @property
    def dvc_remote(self) -> Path:
        return self.home / "dvc-remote"

    @property
    def incoming(self) -> Path:
        return self.home / "incoming"

    @property
    def incoming_batches(self) -> Path:
        return self.incoming / "batches"

    @property
    def incoming_labels(self) -> Path:
        return self.incoming / "labels"

    @property
    def registry_dir(self) -> Path:
        """Append-only alias history of each registered model (who moved which alias, when)."""
        return self.home / "registry"

    @property
    def quarantine(self) -> Path:
        return self.data_repo / "data" / "quarantine"

    def resolve(self, relative: str) -> Path:
        """Resolve a path from params.yaml against the directory of params.yaml."""
        p = Path(relative)
        return p if p.is_absolute() else (self.project_root / p).resolve()


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    paths: Paths


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping: PyYAML would keep the
    last one silently (two `serving:` sections, the first one's keys lost)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[object, yaml.Mark] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    f"in a mapping (line {node.start_mark.line + 1})",
                    node.start_mark,
                    f"key {key!r} is given twice (first on line {seen[key].line + 1}): keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_settings(path: Path | str) -> LoadedSettings:
    """Returns the validated settings of a params file and the resolved store paths.

    Raises:
        ConfigError: the file is missing, not YAML, or a key is unknown or has a bad value.
    """
    path = Path(path).resolve()
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if raw is not None and not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    expanded: dict[str, str] = {}  # value -> the ${VAR} it came from: never shown in errors
    raw = _expand_env(raw or {}, path, (), expanded)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        lines = [_format_error(path, e) for e in exc.errors()]
        raise ConfigError(_masked("\n".join(lines), expanded)) from None
    env_home = os.environ.get(HOME_ENV)
    home = Path(env_home) if env_home else Path(settings.project.home)
    if not home.is_absolute():
        home = path.parent / home
    tracking = os.environ.get(TRACKING_URI_ENV) or settings.stores.tracking_uri
    if tracking and not re.match(r"^https?://[^/\s]+", tracking):
        raise ConfigError(
            f"{TRACKING_URI_ENV}: {redact_url(tracking)!r} is not the http(s):// URL of an "
            "MLflow tracking server"
        )
    ledger = os.environ.get(LEDGER_URL_ENV) or settings.stores.ledger_url
    if ledger:
        ledger = ledger.replace(PROJECT_PLACEHOLDER, database_name(settings.project.model_name))
    paths = Paths(path.parent, path, home.resolve(), tracking or None, ledger or None)
    return LoadedSettings(settings, paths)


def database_name(model_name: str) -> str:
    """A model name as a database-name part: lower case, [a-z0-9_] (bike-demand -> bike_demand)."""
    return re.sub(r"[^a-z0-9_]", "_", model_name.lower())


def redact_url(url: str) -> str:
    """The URL with its password (user:password@) shown as ***, for logs and status lines."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, path: Path, loc: tuple, expanded: dict[str, str]) -> Any:
    """Replaces ${NAME} in every string of the params with the environment variable NAME, so
    secrets (webhook URLs with tokens) stay out of the file. An unset variable is an error
    naming the key; `expanded` records each value that came from the environment."""
    if isinstance(value, dict):
        return {k: _expand_env(v, path, (*loc, k), expanded) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, path, (*loc, i), expanded) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def lookup(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            where = ".".join(str(p) for p in loc)
            raise ConfigError(f"{path}: {where}: environment variable {name} is not set")
        return os.environ[name]

    result = ENV_REFERENCE.sub(lookup, value)
    if result != value:
        expanded[result] = value
    return result


def _masked(text: str, expanded: dict[str, str]) -> str:
    """An error message with every value taken from the environment shown as its ${NAME}."""
    for secret, reference in sorted(expanded.items(), key=lambda kv: -len(kv[0])):
        if secret:
            text = text.replace(secret, reference)
    return text


def _format_error(path: Path, err: dict) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{path}: {loc}: unknown key (got {err['input']!r})"
    if err["type"] == "missing":
        return f"{path}: {loc}: required key is missing"
    if err["type"] == "value_error" and isinstance(err["input"], dict):
        # a cross-field check: its message names the keys and values itself
        return f"{path}: {err['msg'].removeprefix('Value error, ')}"
    return f"{path}: {loc}: {err['msg']} (got {err['input']!r})"
