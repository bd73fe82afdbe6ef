"""Decide on retraining with the policy in params.yaml."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import history, policy, registry
from modelwatch.project import Project


@task(cache_policy=NO_CACHE)
def decide_retraining(
    proj: Project, index: int, drift_share: float | None, force: bool, reason: str | None
) -> policy.RetrainDecision:
    """Gathers the policy inputs from MLflow and returns the decision with its reasons."""
    settings = proj.settings.retrain
    metric = settings.performance_metric
    champ = registry.require_alias(proj.client, proj.model_name, registry.CHAMPION)
    current = history.latest_realized(
        proj.client, proj.experiments.monitoring, metric, champ.version
    )
    baseline = champ.tags.get(f"baseline_{metric}")
    last = history.last_retrain_batch(proj.client, proj.model_name)
    inputs = policy.PolicyInputs(
        batch_index=index,
        drift_share=drift_share,
        metric=metric,
        current_metric=current,
        baseline_metric=float(baseline) if baseline else None,
        batches_since_champion=history.champion_age(proj.client, proj.model_name, index),
        batches_since_retrain=index - last if last is not None else None,
        force=force,
        force_reason=reason,
    )
    decision = policy.decide_retraining(inputs, settings, proj.settings.project.task)
    get_run_logger().info("decision: %s", decision.summary())
    return decision
