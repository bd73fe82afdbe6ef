"""monitor-batch: validate, score, measure drift and performance, log, decide, retrain when due."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed

from flows.common import DEFAULT_PARAMS, run_name, tag_run
from flows.retrain import retrain
from modelwatch import drift
from modelwatch.alerts import incidents
from modelwatch.decide import policy, probation, promotion
from modelwatch.errors import ConfigError
from modelwatch.stores import validation
from tasks.alerts import send_alerts
from tasks.artifacts import publish_monitor_artifacts
from tasks.drift import compute_drift, compute_multivariate_drift, render_drift_report
from tasks.events import finish_event, retrain_done_at, start_event
from tasks.intake import claim_batch, recover_state
from tasks.performance import Evaluation, estimate_performance, evaluate_labelled_batches
from tasks.policy import decide_retraining
from tasks.probation import judge_probation
from tasks.project import open_project
from tasks.registry import (
    end_probation,
    load_calibration,
    load_champion,
    load_shadow,
    rollback_champion,
    score_batch,
)
from tasks.tracking import (
    advance_batch,
    describe_retrain,
    log_monitoring_run,
    log_rejection,
    record_outcome,
    release_batch,
)
from tasks.validation import quarantine_batch, validate_batch
from tasks.versioning import (
    Scored,
    load_reference,
    reuse_versioned,
    select_drift_reference,
    stage_batch,
    version_files,
)


@dataclass(frozen=True)
class MonitorResult:
    batch_id: str
    index: int
    validation: validation.ValidationResult
    drift: drift.DriftReport
    evaluations: tuple[Evaluation, ...]
    decision: policy.RetrainDecision
    promotion: promotion.PromotionDecision | None
    run_id: str
    probation: probation.ProbationVerdict | None = None
    estimated: dict[str, float] | None = None


def outcome_tags(
    report: drift.DriftReport,
    decision: policy.RetrainDecision,
    verdict: probation.ProbationVerdict | None,
    retrain_outcome: str | None,
    dry_run: bool = False,
) -> list[str]:
    """Tags of an accepted batch's flow run: what a person filters the Prefect UI by."""
    tags = ["accepted"]
    if report.dataset_drift:
        tags.append("drift")
    if decision.severity in ("warning", "critical"):
        tags.append(decision.severity)
    if decision.retrain:
        tags.append("retrain")
    if retrain_outcome:
        word = retrain_outcome.split()[0].strip(":")  # promoted, kept, deferred, ...
        tags.append(f"dry-run-{word}" if dry_run else word)
    if verdict is not None and verdict.status == "failed":
        tags.append("probation-failed")
    return tags


@flow(name="monitor-batch", flow_run_name=lambda: run_name("monitor", "batch_path"))
def monitor_batch(
    batch_path: Path,
    params_path: Path = DEFAULT_PARAMS,
    force_retrain: bool = False,
    retrain_reason: str | None = None,
):
    """Processes one production batch; a failing batch ends Failed("Rejected") in quarantine."""
    batch_path = Path(batch_path)
    if force_retrain and not (retrain_reason or "").strip():
        raise ConfigError("force_retrain: a manual retrain needs a reason (retrain_reason)")
    proj = open_project(params_path)
    tag_run(proj.model_name, "monitor", "manual-retrain" if force_retrain else None)
    recover_state(proj)
    intake = claim_batch(proj, batch_path)
    if intake.done:
        tag_run("duplicate")
        return Completed(name="Skipped", message=intake.skipped_message(batch_path.name))
    try:
        return _process(proj, intake, batch_path, params_path, force_retrain, retrain_reason)
    except Exception as exc:  # this batch's failure: recorded, and the batch is free to rerun
        release_batch(proj, intake, f"{type(exc).__name__}: {exc}")
        raise


def _score_and_version(
    proj: Any, intake: Any, batch_path: Path, batch: Any, model: Any, champion: Any
) -> Scored:
    """Scores the batch with the champion (and its shadow on probation) and versions the batch
    and its predictions in the data repository."""
    predictions = score_batch(model, batch, proj)
    stored, shadow_version = predictions, None
    shadow = load_shadow(proj, champion)
    if shadow is not None:
        shadow_model, shadow_info = shadow
        shadow_scores = probation.shadow_columns(
            score_batch(shadow_model, batch, proj), proj.settings.data
        )
        stored = predictions.merge(shadow_scores, on=proj.settings.data.id, how="left")
        shadow_version = shadow_info.version
    advance_batch(
        proj, intake, "scored", champion_version=champion.version, shadow_version=shadow_version
    )
    batch_id = intake.batch_id
    files = stage_batch(proj, batch_path, batch, stored, batch_id, intake.index)
    versions = version_files(proj, files, f"accept {batch_id} (step {intake.index})")
    commit = versions[f"data/batches/{batch_id}.csv"].commit
    advance_batch(proj, intake, "versioned", data_commit=commit)
    return Scored(predictions, shadow_version, versions, champion.version)


def _process(
    proj: Any,
    intake: Any,
    batch_path: Path,
    params_path: Path,
    force_retrain: bool,
    retrain_reason: str | None,
):
    """The stages of one claimed batch (monitor_batch releases it when one raises)."""
    index, batch_id = intake.index, intake.batch_id
    reference, reference_md5 = load_reference(proj)
    model, champion = load_champion(proj)
    batch, checked = validate_batch(batch_path, reference, proj)
    if not checked.success:
        folder = quarantine_batch(batch_path, checked, proj)
        run_id = log_rejection(proj, intake, batch_path, checked, folder, champion.version)
        found = incidents.validation_alerts(checked, batch_path.stem, index, str(folder))
        send_alerts(proj, found, batch_path.stem, index, run_id)
        advance_batch(proj, intake, "done", status="rejected", champion_version=champion.version)
        tag_run("rejected")
        return Failed(name="Rejected", message=f"rejected: {checked.summary()}; kept in {folder}")
    advance_batch(proj, intake, "validated")
    if intake.record.reached("versioned"):  # a killed attempt scored and versioned it already
        scored = reuse_versioned(proj, intake)
    else:
        scored = _score_and_version(proj, intake, batch_path, batch, model, champion)
    predictions, shadow_version, versions = (
        scored.predictions,
        scored.shadow_version,
        scored.versions,
    )
    estimated = estimate_performance(proj, predictions, load_calibration(proj, champion))
    pred_col = proj.settings.data.prediction
    ref_scores = score_batch(model, reference, proj)[pred_col]
    drift_ref, drift_ref_preds, ref_label = select_drift_reference(proj, reference, ref_scores)
    report = compute_drift(
        drift_ref,
        batch,
        proj.settings.data,
        proj.settings.drift,
        drift_ref_preds,
        predictions[pred_col],
        model,
        json.loads(champion.tags.get("feature_importance", "null")),
    )
    overall = compute_multivariate_drift(
        drift_ref, batch, proj.settings.data, proj.settings.multivariate
    )
    html = render_drift_report(
        report,
        drift_ref,
        batch,
        (drift_ref_preds, predictions[pred_col]),
        f"Drift: {batch_id} vs {ref_label}",
        proj.settings.drift,
        overall,
    )
    # late labels first: the retrain policy reads the performance they give
    evaluations = evaluate_labelled_batches(proj, reference, index)
    verdict = judge_probation(proj, champion)
    if verdict is not None and verdict.status != "pending":
        if verdict.status == "passed" or proj.settings.retrain.run_mode != "enabled":
            end_probation(proj, champion.version, verdict.status, verdict.reason)
        else:
            rollback_champion(proj, f"{batch_id}: automatic rollback: {verdict.reason}")
    decision = decide_retraining(proj, index, report.drift_share, force_retrain, retrain_reason)
    run_id = log_monitoring_run(
        proj,
        intake,
        batch_id,
        checked,
        batch,
        report,
        predictions,
        decision,
        versions,
        scored.champion_version,
        reference_md5,
        ref_label,
        overall,
        html,
        estimated,
        shadow_version,
        verdict,
    )
    mode = proj.settings.retrain.run_mode
    found = incidents.validation_alerts(checked, batch_id, index) + incidents.decision_alerts(
        decision, batch_id, index
    )
    if verdict is not None:
        rolled_back = verdict.status == "failed" and mode == "enabled"
        found += incidents.probation_alerts(verdict, batch_id, index, rolled_back=rolled_back)
    advance_batch(proj, intake, "decided", decision=decision.to_dict())
    outcome, described = None, None
    earlier = retrain_done_at(proj, index) if decision.retrain else None
    if earlier is not None:  # a killed attempt of this batch got that far: not twice
        described = earlier.outcome
    elif decision.retrain and mode != "disabled":
        state = retrain(
            reason=f"{batch_id}: {decision.summary()}",
            params_path=params_path,
            batch_index=index,
            force=force_retrain,  # a manual retrain trains even without new labels
            batch_id=batch_id,
            return_state=True,
        )
        done = state.is_completed() and state.name != "Skipped"
        outcome = state.result(raise_on_failure=False) if done else None
        described = describe_retrain(state, outcome)
        record_outcome(run_id, described)
        if outcome is not None:
            found += incidents.retrain_alerts(batch_id, index, None)
            if not (outcome.promote and mode == "enabled"):  # a promotion alerts by itself
                found += incidents.promotion_alerts(
                    outcome, batch_id, index, dry_run=mode == "dry_run"
                )
        elif not described.startswith(("deferred", "skipped")):
            found += incidents.retrain_alerts(batch_id, index, described)
    elif decision.retrain:  # decided but not run; it counts for cooldown like one that ran
        event = start_event(proj, "retrain", decision.summary(), step=index)
        finish_event(proj, event, "not run (retrain.run_mode: disabled)")
    advance_batch(proj, intake, "acted", outcome=described)
    send_alerts(proj, found, batch_id, index, run_id)
    tag_run(*outcome_tags(report, decision, verdict, described, dry_run=mode == "dry_run"))
    publish_monitor_artifacts(
        proj,
        batch_id,
        index,
        checked,
        report,
        evaluations,
        estimated,
        decision,
        described,
        run_id,
    )
    advance_batch(proj, intake, "done", status="accepted")
    return MonitorResult(
        batch_id,
        index,
        checked,
        report,
        tuple(evaluations),
        decision,
        outcome,
        run_id,
        verdict,
        estimated,
    )
