"""Decide on retraining with the policy in params.yaml."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import history, policy, registry
from modelwatch.project import Project

VIOLATED_TAG = "policy_violated"


@task(cache_policy=NO_CACHE)
def decide_retraining(
    proj: Project, index: int, drift_share: float | None, force: bool, reason: str | None
) -> policy.RetrainDecision:
    """Gathers the policy inputs from MLflow (this champion's baseline, the violations of the
    last batches, earlier retrains) and returns the decision with its reasons."""
    settings = proj.settings.retrain
    metric = settings.performance_metric
    champ = registry.require_alias(proj.client, proj.model_name, registry.CHAMPION)
    runs = [
        b
        for b in history.batch_runs(proj.client, proj.experiments.monitoring)
        if b.status == history.ACCEPTED and b.index < index
    ]
    current = history.latest_realized(runs, metric, champ.version)
    baseline = champ.tags.get(f"baseline_{metric}")
    window = max(settings.persistence.window, 1)
    recent = tuple(
        policy.BatchSignal(b.index, tuple(v for v in b.tags.get(VIOLATED_TAG, "").split(",") if v))
        for b in runs[-(window - 1) :]
        if window > 1
    )
    retrains = {b.index for b in runs if b.metrics.get("retrain") == 1.0}
    last = history.last_retrain_batch(proj.client, proj.model_name)
    if last is not None:
        retrains.add(last)
    own = [b for b in runs if b.champion_version == champ.version and "drift_share" in b.metrics]
    inputs = policy.PolicyInputs(
        batch_index=index,
        drift_share=drift_share,
        metric=metric,
        current_metric=current,
        baseline_metric=float(baseline) if baseline else None,
        baseline_drift_share=own[0].metrics["drift_share"] if own else None,
        batches_since_champion=history.champion_age(proj.client, proj.model_name, index),
        recent=recent,
        retrain_batches=tuple(sorted(retrains)),
        force=force,
        force_reason=reason,
    )
    decision = policy.decide_retraining(inputs, settings, proj.settings.project.task)
    get_run_logger().info("decision (%s): %s", decision.severity, decision.summary())
    return decision
