"""retrain: train a challenger on versioned data; promote it only if better on unseen data."""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from flows.common import DEFAULT_PARAMS
from modelwatch import history, promotion, registry, versioning
from modelwatch.errors import ConfigError
from tasks.project import open_project
from tasks.registry import apply_promotion
from tasks.training import build_training_window, score_on_holdout, train_candidate, write_window


@flow(name="retrain", flow_run_name="retrain")
def retrain(
    reason: str, params_path: Path = DEFAULT_PARAMS, batch_index: int | None = None
) -> promotion.PromotionDecision:
    """Retrains and promotes the challenger only if it beats the champion on the holdout."""
    if not reason or not reason.strip():
        raise ConfigError("retrain needs a reason: who or what asked for it, and why")
    proj = open_project(params_path)
    window = build_training_window(proj)
    tag = f"window-{len(versioning.tags(proj.paths.data_repo, 'window-*')) + 1:03d}"
    versions = write_window(proj, window.train, window.holdout, tag, f"training window {tag}")
    cand = train_candidate(proj, window.train, versions, reason, window.through_index, tag)
    cand_scores = score_on_holdout(proj, window.holdout, registry.CHALLENGER)
    champion = registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)
    champ_scores = score_on_holdout(proj, window.holdout, registry.CHAMPION) if champion else None
    decision = promotion.compare_models(
        cand_scores,
        champ_scores,
        proj.settings.promotion,
        proj.settings.project.task,
        candidate_version=cand.version,
        champion_version=champion.version if champion else None,
    )
    baseline = cand_scores[proj.settings.retrain.performance_metric]
    apply_promotion(proj, decision, cand.run_id, baseline, cand_scores, champ_scores)
    if decision.promote:
        from tasks.versioning import set_reference

        set_reference(proj, window.train, f"reference for champion {cand.version}")
    if batch_index is not None:
        history.record_retrain(proj.client, proj.model_name, batch_index)
    return decision
