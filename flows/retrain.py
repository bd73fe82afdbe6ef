"""retrain: train a challenger on versioned data; promote it only if better on unseen data."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import DEFAULT_PARAMS
from modelwatch import gate, history, promotion, registry, versioning
from modelwatch.errors import ConfigError, InsufficientDataError
from tasks.project import open_project
from tasks.registry import apply_promotion
from tasks.training import (
    build_training_window,
    log_holdout_evaluation,
    score_holdout,
    train_candidate,
    write_window,
)


@flow(name="retrain", flow_run_name="retrain")
def retrain(
    reason: str, params_path: Path = DEFAULT_PARAMS, batch_index: int | None = None
) -> promotion.PromotionDecision:
    """Trains a challenger on the latest labelled window and compares it with the champion on
    the holdout batches neither was trained on; promotes it only when every check passes
    (retrain.run_mode dry_run: decides and logs, moves no alias)."""
    if not reason or not reason.strip():
        raise ConfigError("retrain needs a reason: who or what asked for it, and why")
    proj = open_project(params_path)
    champion = registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)
    window = build_training_window(proj)
    if champion is not None:
        seen = int(champion.tags.get("trained_through_batch", "0"))
        if seen >= window.holdout_from_index:
            raise InsufficientDataError(
                f"the holdout starts at batch {window.holdout_from_index} but champion "
                f"{champion.version} was trained through batch {seen}: no unseen labelled batch"
            )
    tag = f"window-{len(versioning.tags(proj.paths.data_repo, 'window-*')) + 1:03d}"
    versions = write_window(proj, window.train, window.holdout, tag, f"training window {tag}")
    cand = train_candidate(proj, window.train, versions, reason, window.through_index, tag)
    data = proj.settings.data
    cand_scored = score_holdout(proj, window.holdout, cand.version)
    champ_scored = score_holdout(proj, window.holdout, champion.version) if champion else None
    log_holdout_evaluation(
        proj, cand.run_id, window.holdout, {"challenger": cand_scored, "champion": champ_scored}
    )
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
    )
    metric = proj.settings.retrain.performance_metric
    baseline = decision.candidate_metrics.get(metric, cand.cv_metrics.get(metric, float("nan")))
    old = apply_promotion(proj, decision, cand.run_id, baseline, reason)
    if decision.promote and proj.settings.retrain.run_mode == "enabled":
        from tasks.versioning import set_reference

        set_reference(proj, window.train, f"reference for champion {cand.version} (was {old})")
    if batch_index is not None:
        history.record_retrain(proj.client, proj.model_name, batch_index)
    return decision
