"""Every MLflow tag and metric name modelwatch writes or reads, spelled once.

MLflow is the record people look at (runs, the timeline, registered versions); the ledger is
what the flows decide from. A name changes here or nowhere: the writers (tasks/), the readers
(modelwatch.stores.history, app/status) and the tests all import it from this module.
"""

from __future__ import annotations

# ---------------------------------------------------------------- tags of a batch's run
BATCH_ID = "batch_id"
BATCH_INDEX = "batch_index"
VALIDATION_STATUS = "validation_status"  # accepted | rejected
ACCEPTED, REJECTED = "accepted", "rejected"
QUARANTINE = "quarantine"  # the folder a rejected batch was kept in
FILE_MD5 = "file_md5"
DATA_MD5 = "data_md5"
PREDICTIONS_MD5 = "predictions_md5"
REFERENCE_MD5 = "reference_md5"
DRIFT_REFERENCE = "drift_reference"
DATA_COMMIT = "data_commit"
CHAMPION_VERSION = "champion_version"
SHADOW_VERSION = "shadow_version"
PREDICTION_WINDOW = "prediction_window"  # a run made from a window of the prediction log
DECISION = "decision"  # keep | keep (<blocked by>) | retrain | rejected
DECISION_SEVERITY = "decision_severity"
DECISION_RULES = "decision_rules"
DECISION_MODE = "decision_mode"
POLICY_VIOLATED = "policy_violated"
DATASET_DRIFT = "dataset_drift"
DATASET_DRIFT_RULE = "dataset_drift_rule"
RETRAIN_OUTCOME = "retrain_outcome"  # promoted vN | kept vM | deferred ... | failed: ...
LABELS_EVALUATED = "labels_evaluated"
LABELS_EVALUATED_AT = "labels_evaluated_at_batch"
ALERTS = "alerts"
ALERTS_FAILED = "alerts_failed"
BATCH_KIND = "batch_kind"  # large: a Parquet batch of monitor-large-batch (no ledger step)
BATCH_SOURCE = "batch_source"  # where the large batch was read (path or URL)
BATCH_FINGERPRINT = "batch_fingerprint"  # md5 of its files' names, sizes and change times

# links to Prefect (on every run modelwatch makes inside a flow run)
PREFECT_FLOW_RUN_ID = "prefect.flow_run_id"
PREFECT_FLOW_RUN_NAME = "prefect.flow_run_name"
PREFECT_FLOW_RUN_URL = "prefect.flow_run_url"
NOTE = "mlflow.note.content"  # MLflow's run description (markdown)

TIMELINE = "modelwatch.timeline"  # marks the monitoring timeline run

# ---------------------------------------------------------------- tags of a training run
REASON = "reason"
MODEL_DIGEST = "model_digest"  # sha256 of the version's files (the ledger holds the original)
ENTRY_POINT = "entry_point"  # the function that fitted a version (training.entry_point)
ADOPTED_FROM = "adopted_from"  # a champion registered by `modelwatch adopt`: its source URI
VALIDATION_SCHEME = "validation_scheme"  # how a model's cv.* metrics were measured
WINDOW_TAG = "window_tag"
WINDOW_MD5 = "window_md5"
STAGES_RUN = "stages_run"
PARAM_PREFIX = "param."
# promoted | rejected | dry_run | awaiting_approval | not_promoted_live_shadow (approved, but
# worse on live traffic than the champion: promotion.live_shadow)
PROMOTION = "promotion"
DECISION_ID = "decision_id"
CHAMPION_VERSION_BEFORE = "champion_version_before"

# ---------------------------------------------------------------- tags of a registered version
TRAINED_THROUGH_BATCH = "trained_through_batch"
TRAINING_RUN_ID = "training_run_id"
FEATURE_IMPORTANCE = "feature_importance"
PROBATION = "probation"  # active | passed | failed | rolled_back
PROBATION_REASON = "probation_reason"
ROLLED_BACK_REASON = "rolled_back_reason"
INTERRUPTED = "interrupted"
APPROVAL = "approval"  # pending | approved | rejected | timeout | superseded (also on its run)
APPROVAL_BY = "approval_by"  # the person who answered (or "modelwatch" for timeout, superseded)
APPROVAL_REASON = "approval_reason"
APPROVAL_AT = "approval_at"  # ISO 8601 UTC time of the answer
APPROVAL_LIVE_SHADOW = "approval_live_shadow"  # the live shadow evidence when approved
APPROVAL_FLOW_RUN = "approval_flow_run_id"  # the paused Prefect flow run that waits for it


def baseline(metric: str) -> str:
    """The version tag holding the performance baseline a champion is judged against."""
    return f"baseline_{metric}"


# ---------------------------------------------------------------- metrics of a batch's run
ROWS = "rows"
DRIFT_SHARE = "drift_share"
DRIFT_WEIGHTED_SHARE = "drift_weighted_share"  # the champion's importance of drifted features
DRIFTED_FEATURES = "drifted_features"
RETRAIN = "retrain"
FAILED_EXPECTATIONS = "validation.failed_expectations"
PREDICTION_MEAN = "prediction.mean"
LABEL_COVERAGE = "label_coverage"
LABEL_LATENCY_BATCHES = "label_latency_batches"
LABEL_LATENCY_SECONDS = "label_latency_seconds"
# what the labels files taken in with a batch held (ledger label_checks at the batch's step)
LABELS_FILES_IN = "labels.files_in"
LABELS_ROWS_IN = "labels.rows_in"
LABELS_UNKNOWN_IDS = "labels.unknown_ids"
LABELS_REJECTED_BATCH_ROWS = "labels.rejected_batch_rows"
TARGET_DRIFT = "target_drift"
CHAMPION_VERSION_METRIC = "champion_version"  # on the timeline, as a number


def drift(statistic: str, column: str) -> str:
    """Per-column drift: drift.<p_value|statistic|p_value_adjusted|effect_size|...>.<column>."""
    return f"drift.{statistic}.{column}"


def attribution(column: str, drift: bool = False) -> str:
    """Mean |SHAP| of a feature on the batch (attribution.<column>), or its change against the
    reference (attribution_drift.<column>)."""
    return f"attribution_drift.{column}" if drift else f"attribution.{column}"


EXPLAIN_ERROR = "explain.error"  # run tag: why a batch has no SHAP values (the batch went on)
EXPLAIN_METHOD = "explain.method"  # run tag: tree | exact | permutation


def attribution_reference(version: str) -> str:
    """Ledger meta key: a champion version's mean |SHAP| on its reference (computed once)."""
    return f"attribution_reference:{version}"


def estimated(metric: str) -> str:
    """A performance estimate made before labels arrive (CBPE)."""
    return f"estimated.{metric}"


def performance(metric: str) -> str:
    """Realized performance, logged once the batch's labels arrive."""
    return f"performance.{metric}"


def performance_interval(metric: str) -> tuple[str, str]:
    """The bootstrap interval of a realized metric: its low and high ends."""
    return f"performance.{metric}.ci_low", f"performance.{metric}.ci_high"


def multivariate(method: str, drifted: bool = False) -> str:
    """Whole-dataset drift of one method, or whether it flagged drift."""
    return f"multivariate.{method}.drifted" if drifted else f"multivariate.{method}"


# ---------------------------------------------------------------- metrics of a training run
TRAIN_ROWS = "train_rows"
IMPROVEMENT = "improvement"


def cv(metric: str) -> str:
    """A cross-validated metric of a training run."""
    return f"cv.{metric}"


def challenger(metric: str) -> str:
    """The challenger's holdout metric, logged in its training run."""
    return f"challenger.{metric}"


def champion(metric: str) -> str:
    """The champion's holdout metric on the same rows, logged in the challenger's run."""
    return f"champion.{metric}"
