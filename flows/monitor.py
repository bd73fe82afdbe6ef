"""monitor-batch: validate, score, measure drift and performance, log, decide, retrain when due."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, Failed, State

from flows.common import DEFAULT_PARAMS, run_name, tag_run
from flows.retrain import retrain
from modelwatch import drift, names
from modelwatch.alerts import incidents
from modelwatch.decide import policy, probation, promotion
from modelwatch.decide.outcome import RetrainOutcome
from modelwatch.errors import ConfigError, ModelIntegrityError
from modelwatch.stores import validation
from modelwatch.stores.ledger import Intake
from modelwatch.stores.project import Project
from tasks.alerts import send_alerts
from tasks.approval import resume_approvals
from tasks.artifacts import publish_monitor_artifacts
from tasks.drift import measure_batch
from tasks.events import finish_event, retrain_done_at, start_event
from tasks.explain import explain_batch
from tasks.intake import claim_batch, recover_state
from tasks.performance import Evaluation, estimate_performance, evaluate_labelled_batches
from tasks.policy import decide_retraining
from tasks.predictions import log_system_health, served_predictions
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
from tasks.results import Scored
from tasks.tracking import (
    advance_batch,
    log_monitoring_run,
    log_rejection,
    record_outcome,
    release_batch,
)
from tasks.validation import (
    note_batch_time,
    note_rejected_ids,
    quarantine_batch,
    validate_batch,
)
from tasks.versioning import (
    labels_taken_in,
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


@dataclass(frozen=True)
class _Window:
    """A batch made from a prediction-log window: its served answers and system health."""

    served_path: Path | None = None
    health_path: Path | None = None


def outcome_tags(
    report: drift.DriftReport,
    decision: policy.RetrainDecision,
    verdict: probation.ProbationVerdict | None,
    retrained: RetrainOutcome | None,
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
    if retrained is not None:
        word = retrained.kind.replace(" ", "-")
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
    served_path: Path | None = None,
    health_path: Path | None = None,
):
    """Processes one production batch; a failing batch ends Failed("Rejected") in quarantine.

    served_path: what the model answered for these rows (a prediction-log window): monitored
    as served, not scored again. health_path: the window's system health, logged and judged."""
    batch_path = Path(batch_path)
    window = _Window(served_path and Path(served_path), health_path and Path(health_path))
    if force_retrain and not (retrain_reason or "").strip():
        raise ConfigError("force_retrain: a manual retrain needs a reason (retrain_reason)")
    proj = open_project(params_path)
    tag_run(proj.model_name, "monitor", "manual-retrain" if force_retrain else None)
    for alert in recover_state(proj).alerts:  # promotions an interrupted run finished now
        send_alerts(proj, incidents.Findings((alert,)), alert.batch_id, alert.batch_index)
    resume_approvals(proj)  # a pending approval whose waiting process was killed waits again
    intake = claim_batch(proj, batch_path)
    if intake.done:
        tag_run("duplicate")
        return Completed(name="Skipped", message=intake.skipped_message(batch_path.name))
    try:
        return _process(
            proj, intake, batch_path, params_path, force_retrain, retrain_reason, window
        )
    except Exception as exc:  # this batch's failure: recorded, and the batch is free to rerun
        release_batch(proj, intake, f"{type(exc).__name__}: {exc}")
        if isinstance(exc, ModelIntegrityError):  # someone changed a model: tell people now
            found = incidents.model_refused_alert(str(exc), intake.batch_id, intake.index)
            send_alerts(proj, found, intake.batch_id, intake.index)
        raise


def _process(
    proj: Project,
    intake: Intake,
    batch_path: Path,
    params_path: Path,
    force_retrain: bool,
    retrain_reason: str | None,
    window: _Window,
):
    """The stages of one claimed batch, in the product's order (monitor_batch releases the
    batch when one raises): validate -> score -> measure -> evaluate labels -> probation ->
    decide -> record -> act -> alert."""
    reference = load_reference(proj)
    model, champion = load_champion(proj)
    batch, checked = validate_batch(batch_path, reference, proj)
    if not checked.success:
        return _reject(proj, intake, batch_path, batch, checked, champion.version, window)
    advance_batch(proj, intake, "validated")
    note_batch_time(proj, batch)
    if intake.record.reached("versioned"):  # a killed attempt scored and versioned it already
        scored = reuse_versioned(proj, intake)
    else:
        scored = _score_and_version(proj, intake, batch_path, batch, model, champion, window)
    pred_col = proj.settings.data.prediction
    explained = explain_batch(proj, model, champion.version, reference, batch)
    measured = measure_batch(
        batch=batch,
        predictions=scored.predictions[pred_col],
        reference=select_drift_reference(
            proj, reference, score_batch(model, reference, proj)[pred_col]
        ),
        model=model,
        importance=json.loads(champion.tags.get(names.FEATURE_IMPORTANCE, "null")),
        data=proj.settings.data,
        settings=proj.settings.drift,
        multivariate_settings=proj.settings.multivariate,
        title=f"Drift: {intake.batch_id}",
        explained=explained,
    )
    estimated = estimate_performance(proj, scored.predictions, load_calibration(proj, champion))
    # late labels first: the retrain policy reads the performance they give
    evaluations, unevaluated = evaluate_labelled_batches(proj, reference, intake.index)
    verdict = _probation(proj, champion, intake.batch_id)
    decision = decide_retraining(
        proj, intake.index, measured.report, estimated, force_retrain, retrain_reason
    )
    run_id = log_monitoring_run(
        proj,
        intake=intake,
        checked=checked,
        batch=batch,
        scored=scored,
        measured=measured,
        estimated=estimated,
        decision=decision,
        verdict=verdict,
    )
    advance_batch(proj, intake, "decided", decision=decision.to_dict())
    retrained = _act(proj, intake, decision, run_id, params_path, force_retrain)
    advance_batch(proj, intake, "acted", outcome=retrained.text if retrained else None)
    found = _findings(proj, intake, checked, decision, verdict, retrained)
    found += incidents.labels_alerts(scored.refused_labels, intake.batch_id, intake.index)
    found += incidents.evaluation_alerts(unevaluated, intake.batch_id, intake.index)
    labels_in = labels_taken_in(proj, intake.index)
    found += incidents.labels_apart_alerts(labels_in, intake.batch_id, intake.index)
    if window.health_path is not None:
        found += log_system_health(proj, window.health_path, run_id, intake.batch_id, intake.index)
    send_alerts(proj, found, intake.batch_id, intake.index, run_id)
    dry_run = proj.settings.retrain.run_mode == "dry_run"
    tag_run(*outcome_tags(measured.report, decision, verdict, retrained, dry_run=dry_run))
    publish_monitor_artifacts(
        proj,
        intake=intake,
        checked=checked,
        report=measured.report,
        evaluations=evaluations,
        estimated=estimated,
        decision=decision,
        outcome=retrained,
        run_id=run_id,
    )
    advance_batch(proj, intake, "done", status="accepted")
    return MonitorResult(
        intake.batch_id,
        intake.index,
        checked,
        measured.report,
        tuple(evaluations),
        decision,
        retrained.promotion if retrained else None,
        run_id,
        verdict,
        estimated,
    )


def _reject(
    proj: Project,
    intake: Intake,
    batch_path: Path,
    batch: Any,
    checked: validation.ValidationResult,
    champion_version: str,
    window: _Window,
) -> State:
    """A batch that failed validation: kept in quarantine (its row ids noted, so later labels
    for them are kept apart), logged, alerted, and done."""
    folder = quarantine_batch(batch_path, checked, proj, intake.batch_id)
    note_rejected_ids(proj, batch, intake.index)
    run_id = log_rejection(proj, intake, batch_path, checked, folder, champion_version)
    found = incidents.validation_alerts(checked, intake.batch_id, intake.index, str(folder))
    if window.health_path is not None:  # the service's health counts even for a rejected batch
        found += log_system_health(proj, window.health_path, run_id, intake.batch_id, intake.index)
    send_alerts(proj, found, intake.batch_id, intake.index, run_id)
    advance_batch(proj, intake, "done", status="rejected", champion_version=champion_version)
    tag_run("rejected")
    return Failed(name="Rejected", message=f"{checked.problems()}; kept in {folder}")


def _score_and_version(
    proj: Project,
    intake: Intake,
    batch_path: Path,
    batch: Any,
    model: Any,
    champion: Any,
    window: _Window,
) -> Scored:
    """Scores the batch with the champion (and its shadow on probation) and versions the batch
    and its predictions in the data repository. A prediction-log window is not scored: its
    predictions are what the service answered, by the version that answered."""
    if window.served_path is not None:  # the champion's and its shadow's answers, as served
        served = served_predictions(proj, window.served_path, batch)
        predictions, stored = served.predictions, served.stored
        scored_by = served.version or champion.version  # a log without model_version values
        shadow_version, shadow = served.shadow_version, None
    else:
        predictions, scored_by = score_batch(model, batch, proj), champion.version
        stored, shadow_version = predictions, None
        shadow = load_shadow(proj, champion)
    if shadow is not None:
        shadow_model, shadow_info = shadow
        shadow_scores = probation.shadow_columns(
            score_batch(shadow_model, batch, proj), proj.settings.data
        )
        stored = predictions.merge(shadow_scores, on=proj.settings.data.id, how="left")
        shadow_version = shadow_info.version
    advance_batch(proj, intake, "scored", champion_version=scored_by, shadow_version=shadow_version)
    batch_id = intake.batch_id
    files, refused = stage_batch(proj, batch_path, batch, stored, batch_id, intake.index)
    versions = version_files(proj, files, f"accept {batch_id} (step {intake.index})")
    commit = versions[f"data/batches/{batch_id}.csv"].commit
    advance_batch(proj, intake, "versioned", data_commit=commit)
    return Scored(predictions, shadow_version, versions, scored_by, refused)


def _probation(proj: Project, champion: Any, batch_id: str) -> probation.ProbationVerdict | None:
    """Judges a champion on probation; ends the probation or rolls back when it is decided."""
    verdict = judge_probation(proj, champion)
    if verdict is not None and verdict.status != "pending":
        if verdict.status == "passed" or proj.settings.retrain.run_mode != "enabled":
            end_probation(proj, champion.version, verdict.status, verdict.reason)
        else:
            rollback_champion(proj, f"{batch_id}: automatic rollback: {verdict.reason}")
    return verdict


def _act(
    proj: Project,
    intake: Intake,
    decision: policy.RetrainDecision,
    run_id: str,
    params_path: Path,
    force_retrain: bool,
) -> RetrainOutcome | None:
    """Runs the retrain the decision asks for (once: a killed attempt's finished retrain is
    reused); returns what it ended in, or None when no retrain was due."""
    if not decision.retrain:
        return None
    earlier = retrain_done_at(proj, intake.index)
    if earlier is not None:  # a killed attempt of this batch got that far: not twice
        kind = earlier.detail.get("outcome_kind") or "failed"
        return RetrainOutcome(kind, earlier.outcome or "")
    if proj.settings.retrain.run_mode == "disabled":  # counts for cooldown like one that ran
        event = start_event(proj, "retrain", decision.summary(), step=intake.index)
        text = "not run (retrain.run_mode: disabled)"
        finish_event(proj, event, text, kind="not run")
        return RetrainOutcome("not run", text)
    state = retrain(
        reason=f"{intake.batch_id}: {decision.summary()}",
        params_path=params_path,
        batch_index=intake.index,
        force=force_retrain,  # a manual retrain trains even without new labels
        since_drop_batches=decision.window_batches,
        batch_id=intake.batch_id,
        return_state=True,
    )
    if state.is_completed() and state.name != "Skipped":
        retrained = RetrainOutcome.from_decision(state.result(raise_on_failure=False))
    else:
        retrained = RetrainOutcome.from_state(state.name, state.message)
    record_outcome(run_id, retrained)
    return retrained


def _findings(
    proj: Project,
    intake: Intake,
    checked: validation.ValidationResult,
    decision: policy.RetrainDecision,
    verdict: probation.ProbationVerdict | None,
    retrained: RetrainOutcome | None,
) -> incidents.Findings:
    """The batch's incidents: validation warnings, the decision's severity, probation, and
    what a retrain ended in (a promotion alerts by itself, from the retrain flow)."""
    batch_id, index, mode = intake.batch_id, intake.index, proj.settings.retrain.run_mode
    found = incidents.validation_alerts(checked, batch_id, index)
    found += incidents.decision_alerts(decision, batch_id, index)
    if verdict is not None:
        rolled_back = verdict.status == "failed" and mode == "enabled"
        found += incidents.probation_alerts(verdict, batch_id, index, rolled_back=rolled_back)
    if retrained is None or retrained.kind == "not run":
        return found
    if retrained.promotion is not None:
        found += incidents.retrain_alerts(batch_id, index, None)
        if not (retrained.promotion.promote and mode == "enabled"):
            found += incidents.promotion_alerts(
                retrained.promotion, batch_id, index, dry_run=mode == "dry_run"
            )
    elif not retrained.quiet:
        found += incidents.retrain_alerts(batch_id, index, retrained.text)
    return found
