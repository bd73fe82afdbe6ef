"""Decide on retraining with the policy in params.yaml."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.decide import policy
from modelwatch.stores import recovery, registry
from modelwatch.stores.project import Project


@task(cache_policy=NO_CACHE)
def decide_retraining(
    proj: Project, index: int, drift_share: float | None, force: bool, reason: str | None
) -> policy.RetrainDecision:
    """Gathers the policy inputs from the ledger (this champion's latest realized metric and its
    first batch's drift share, the violations of the last batches, earlier retrains, manual
    ones included) and returns the decision with its reasons. A handful of indexed reads: the
    cost does not grow with the number of past batches."""
    settings = proj.settings.retrain
    metric = settings.performance_metric
    led, name = proj.ledger, proj.model_name
    champ = registry.require_alias(proj.client, name, registry.CHAMPION)
    latest = led.latest_evaluated(name, champ.version, before_step=index)
    current = latest.metrics.get(names.performance(metric)) if latest is not None else None
    baseline = champ.tags.get(names.baseline(metric))
    window = max(settings.persistence.window, 1)
    recent = (
        tuple(
            policy.BatchSignal(b.step, b.violations)
            for b in led.recent_accepted(name, window - 1, before_step=index)
        )
        if window > 1
        else ()
    )
    first = led.first_scored_by(name, champ.version)
    first_drift = first.metrics.get(names.DRIFT_SHARE) if first is not None else None
    inputs = policy.PolicyInputs(
        batch_index=index,
        drift_share=drift_share,
        metric=metric,
        current_metric=current,
        baseline_metric=float(baseline) if baseline else None,
        baseline_drift_share=first_drift if first is not None and first.step < index else None,
        batches_since_champion=_staleness(proj, champ, index),
        recent=recent,
        retrain_batches=tuple(s for s in led.retrain_steps(name, since_step=0) if s < index),
        force=force,
        force_reason=reason,
        on_probation=recovery.probation_of(proj, champ) == "active",
    )
    decision = policy.decide_retraining(inputs, settings, proj.settings.project.task)
    get_run_logger().info("decision (%s): %s", decision.severity, decision.summary())
    return decision


def _staleness(proj: Project, champ: registry.ModelVersionInfo, index: int) -> int:
    """Accepted batches since the champion's training data ended or since the last challenge
    (a retrain that compared a challenger with it, kept or promoted), whichever is later:
    rejected batches do not age a champion, and a challenger that lost restarts the clock
    (else staleness fires again every cooldown + 1 batches while challengers keep losing)."""
    seen = int(champ.tags.get(names.TRAINED_THROUGH_BATCH, "0") or 0)
    challenged = proj.ledger.last_challenge_step(proj.model_name, before_step=index)
    since = max(seen, challenged if challenged is not None else 0)
    # + 1: this batch, accepted by now (it passed validation), is not recorded as such yet
    return proj.ledger.count_accepted(proj.model_name, after_step=since, before_step=index) + 1
