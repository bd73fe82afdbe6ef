"""retrain: train a challenger on versioned data; promote it only if better on unseen data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from prefect import flow
from prefect.states import Completed, State

from flows.common import DEFAULT_PARAMS, one_at_a_time, tag_run
from modelwatch import names
from modelwatch.alerts import incidents
from modelwatch.decide import promotion
from modelwatch.decide.outcome import RetrainOutcome
from modelwatch.errors import ConfigError, InsufficientDataError
from modelwatch.stores import gate
from modelwatch.stores.project import Project
from tasks.alerts import send_alerts
from tasks.approval import request_approval
from tasks.events import (
    finish_event,
    mark_reference,
    note_event,
    others_alive,
    release_events,
    start_event,
)
from tasks.probation import live_shadow_evidence, log_live_shadow
from tasks.project import open_project
from tasks.registry import apply_promotion, champion_info, newest_window_end
from tasks.training import (
    build_training_window,
    log_holdout_evaluation,
    next_window_tag,
    score_holdout,
    train_candidate,
    trainer_spec,
    write_window,
)


@flow(name="retrain", flow_run_name="retrain")
def retrain(
    reason: str,
    params_path: Path = DEFAULT_PARAMS,
    batch_index: int | None = None,
    force: bool = False,
    window_batches: int | None = None,
    batch_id: str | None = None,
    since_drop_batches: int | None = None,
) -> promotion.PromotionDecision | State:
    """Trains a challenger on the latest labelled window and compares it with the champion on
    the holdout batches neither was trained on; promotes it only when every check passes
    (retrain.run_mode dry_run: decides and logs, moves no alias). One retrain, promotion or
    rollback of a model runs at a time (Prefect concurrency limit `promotion-<model>`).

    Args:
        reason: who or what asks for the retrain, and why (recorded with the model version).
        params_path: the project's params.yaml.
        batch_index: the monitored batch that triggered it (set by monitor-batch).
        force: retrain even when no labelled batch arrived since the newest model version's
            window (that would train on the same data again).
        window_batches: train on this many labelled batches instead of
            training.window_batches (the holdout stays training.holdout_batches).
        batch_id: the monitored batch that triggered it (its alerts name it).
        since_drop_batches: the policy's window after a performance drop (the labelled batches
            since it began); the challenger trains on it or on training's own window,
            whichever scores better on the holdout.
    """
    if not reason or not reason.strip():
        raise ConfigError("retrain needs a reason: who or what asked for it, and why")
    for name, value in (
        ("window_batches", window_batches),
        ("since_drop_batches", since_drop_batches),
    ):
        if value is not None and value < 1:
            raise ConfigError(f"{name} must be at least 1, got {value}")
    proj = open_project(params_path)
    by_policy = batch_index is not None and not force  # a forced retrain is always asked by hand
    tag_run(proj.model_name, "retrain", "by-policy" if by_policy else "manual")
    if window_batches is not None:
        training = proj.settings.training.model_copy(update={"window_batches": window_batches})
        proj = replace(proj, settings=proj.settings.model_copy(update={"training": training}))
    event = start_event(proj, "retrain", reason, step=batch_index, manual=not by_policy)
    try:
        with one_at_a_time(proj.model_name, others_alive(proj, event)):
            result = _retrain(proj, reason, batch_index, force, event, batch_id, since_drop_batches)
    except Exception as exc:
        finish_event(proj, event, f"failed: {type(exc).__name__}: {exc}", kind="failed")
        release_events(proj)  # a promotion it began is finished by the next run
        raise
    ended = _outcome(result)
    finish_event(proj, event, ended.text, kind=ended.kind, gain=ended.gain)
    if isinstance(result, promotion.PromotionDecision):
        dry = proj.settings.retrain.run_mode == "dry_run"
        moved = result.promote and not dry and not result.awaiting_approval
        tag_run(
            "promoted" if moved else "not-promoted",
            "dry-run" if dry else None,
            "awaiting-approval" if result.awaiting_approval else None,
        )
    else:
        tag_run(result.name.lower())
    return result


def _outcome(result: promotion.PromotionDecision | State) -> RetrainOutcome:
    if isinstance(result, promotion.PromotionDecision):
        return RetrainOutcome.from_decision(result)
    return RetrainOutcome.from_state(result.name, result.message)


def _baseline(champion: Any, metric: str) -> float | None:
    """The champion's baseline in `metric` (a version tag), when it has one."""
    raw = champion.tags.get(names.baseline(metric)) if champion is not None else None
    try:
        return float(raw) if raw else None
    except ValueError:
        return None


def _retrain(
    proj: Project,
    reason: str,
    batch_index: int | None,
    force: bool,
    event: Any,
    batch_id: str | None = None,
    since_drop: int | None = None,
) -> promotion.PromotionDecision | State:
    champion = champion_info(proj)
    if trainer_spec(proj) is None:
        return Completed(
            name="Skipped",
            message="no training configured, monitoring only: set training.entry_point (or "
            "training.model) to train challengers",
        )
    window = build_training_window(proj, since_drop)
    if champion is not None:
        seen = int(champion.tags.get(names.TRAINED_THROUGH_BATCH, "0"))
        if seen >= window.holdout_from_index:
            raise InsufficientDataError(
                f"the holdout starts at batch {window.holdout_from_index} but champion "
                f"{champion.version} was trained through batch {seen}: no unseen labelled batch"
            )
    newest = newest_window_end(proj)
    if not force and newest is not None and newest == window.through_index:
        return Completed(
            name="Skipped",
            message=f"no labelled batch since the newest model version's window (through batch "
            f"{newest}); nothing new to learn (force=True retrains anyway)",
        )
    tag = next_window_tag(proj)
    versions = write_window(proj, window.train, window.holdout, tag, f"training window {tag}")
    cand = train_candidate(proj, window.train, versions, reason, window.through_index, tag)
    note_event(proj, event, {"candidate": cand.version})
    data = proj.settings.data
    cand_scored = score_holdout(proj, window.holdout, cand.version)
    champ_scored = score_holdout(proj, window.holdout, champion.version) if champion else None
    log_holdout_evaluation(
        proj, cand.run_id, window.holdout, {"challenger": cand_scored, "champion": champ_scored}
    )
    live = live_shadow_evidence(proj, champion)  # live traffic: recorded, and judged if set
    decision = promotion.compare_models(
        window.holdout,
        cand_scored,
        champ_scored,
        proj.settings.promotion,
        data,
        proj.settings.project.task,
        gate=gate.threshold_gate,
        candidate_version=cand.version,
        champion_version=champion.version if champion else None,
        min_segment_rows=proj.settings.performance.min_segment_rows,
        decision_id=f"promotion-{proj.model_name}-v{cand.version}",
        champion_baseline=_baseline(champion, proj.settings.promotion.metric),
        live=live,
    )
    if live is not None:
        log_live_shadow(proj, cand.run_id, live)
    metric = proj.settings.retrain.performance_metric
    baseline = decision.candidate_metrics.get(metric, cand.cv_metrics.get(metric, float("nan")))
    if not (decision.promote and proj.settings.retrain.run_mode == "enabled"):
        apply_promotion(proj, decision, cand.run_id, baseline, reason)
        return decision
    if proj.settings.promotion.approval == "required":  # a person decides, in another flow run
        decision = replace(decision, awaiting_approval=True)
        apply_promotion(proj, decision, cand.run_id, baseline, reason)
        request_approval(proj, decision, cand.run_id, reason, batch_index, batch_id)
        return decision
    _promote(proj, decision, cand, window.train, baseline, reason, batch_index, batch_id)
    return decision


def _promote(
    proj: Project,
    decision: promotion.PromotionDecision,
    cand: Any,
    train: Any,
    baseline: float,
    reason: str,
    batch_index: int | None,
    batch_id: str | None,
) -> None:
    """Promotion as one unit, recorded as an event first: alias move, drift reference, the
    promotion alert, then the event closed. A kill anywhere in between is finished by the next
    run (modelwatch.stores.recovery.finish_promotions), never left half done."""
    from tasks.versioning import set_reference

    probation = bool(decision.champion_version and proj.settings.promotion.probation.batches)
    event = start_event(
        proj,
        "promotion",
        reason,
        step=batch_index,
        detail={
            "candidate": cand.version,
            "champion": decision.champion_version,
            "decision_id": decision.decision_id,
            "probation": probation,
        },
    )
    old = apply_promotion(proj, decision, cand.run_id, baseline, reason)
    set_reference(proj, train, f"reference for champion {cand.version} (was {old})")
    mark_reference(proj, cand.version)
    step = batch_index if batch_index is not None else event.step or 0
    subject = batch_id or f"manual-retrain-after-step-{step}"
    send_alerts(proj, incidents.promotion_alerts(decision, subject, step), subject, step)
    finish_event(proj, event, f"promoted v{cand.version}")
