"""Decide on retraining with the policy in params.yaml."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.decide import policy
from modelwatch.drift.report import DriftReport
from modelwatch.stores import recovery, registry
from modelwatch.stores.ledger import BatchRecord
from modelwatch.stores.project import Project

# how many earlier challenges the expected-gain rule may look at (their losses in a row count)
CHALLENGES_READ = 10


@task(cache_policy=NO_CACHE)
def decide_retraining(
    proj: Project,
    index: int,
    report: DriftReport | None,
    estimated: dict[str, float] | None,
    force: bool,
    reason: str | None,
) -> policy.RetrainDecision:
    """Gathers the policy inputs from the ledger (this champion's latest labelled batches with
    their intervals and its first batch's drift shares, the violations of the last batches,
    earlier retrains, manual ones included, and the gains of the last challengers) and the
    batch's drift report and CBPE estimate, and returns the decision with its reasons. A
    handful of indexed reads: the cost does not grow with the number of past batches."""
    settings, training = proj.settings.retrain, proj.settings.training
    metric = settings.performance_metric
    led, name = proj.ledger, proj.model_name
    champ = registry.require_alias(proj.client, name, registry.CHAMPION)
    keep = training.window_batches + training.holdout_batches
    evaluated = [
        e
        for e in (_evaluated(b, metric) for b in led.evaluated_by(name, champ.version, index, keep))
        if e is not None
    ]
    current = evaluated[-1] if evaluated else None
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
    first = first if first is not None and first.step < index else None
    inputs = policy.PolicyInputs(
        batch_index=index,
        drift_share=report.drift_share if report is not None else None,
        weighted_drift_share=report.weighted_drift_share if report is not None else None,
        baseline_drift_share=first.metrics.get(names.DRIFT_SHARE) if first else None,
        baseline_weighted_drift_share=(
            first.metrics.get(names.DRIFT_WEIGHTED_SHARE) if first else None
        ),
        prediction_drifted=(
            report.prediction.drifted
            if report is not None
            and report.prediction is not None
            and report.prediction.status == "ok"
            else None
        ),
        metric=metric,
        current_metric=current.value if current else None,
        current_interval=current.interval if current else None,
        estimated_metric=(estimated or {}).get(metric),
        baseline_metric=float(baseline) if baseline else None,
        batches_since_champion=_staleness(proj, champ, index),
        recent=recent,
        retrain_batches=tuple(s for s in led.retrain_steps(name, since_step=0) if s < index),
        force=force,
        force_reason=reason,
        on_probation=recovery.probation_of(proj, champ) == "active",
        challenges=tuple(
            policy.Challenge(step, gain, promoted)
            for step, gain, promoted in led.challenges(
                name, before_step=index, limit=max(settings.gain.lookback, CHALLENGES_READ)
            )
        ),
        evaluated=tuple(evaluated),
        holdout_batches=training.holdout_batches,
    )
    decision = policy.decide_retraining(inputs, settings, proj.settings.project.task)
    get_run_logger().info("decision (%s): %s", decision.severity, decision.summary())
    return decision


def _evaluated(record: BatchRecord, metric: str) -> policy.Evaluated | None:
    """A labelled batch's realized metric and interval, as the evaluation stored them."""
    value = record.metrics.get(names.performance(metric))
    if value is None:
        return None
    low, high = (record.metrics.get(k) for k in names.performance_interval(metric))
    interval = (low, high) if low is not None and high is not None and low <= high else None
    return policy.Evaluated(record.step, float(value), interval)


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
