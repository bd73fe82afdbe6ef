"""Probation: judge a freshly promoted champion against its predecessor, scored in shadow."""

from __future__ import annotations

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.decide import probation
from modelwatch.errors import InsufficientDataError
from modelwatch.stores import live_shadow, project, recovery, registry, tracking
from modelwatch.stores.project import Project
from modelwatch.training import scoring


@task(cache_policy=NO_CACHE)
def judge_probation(
    proj: Project, champion: registry.ModelVersionInfo
) -> probation.ProbationVerdict | None:
    """Returns the verdict on the champion's probation, or None when it is not on probation.

    The rows are those of labelled batches this champion scored while the previous champion
    scored the same rows in shadow."""
    settings = proj.settings.promotion.probation
    if recovery.probation_of(proj, champion) != "active" or settings.batches == 0:
        return None
    previous = registry.get_alias(proj.client, proj.model_name, registry.PREVIOUS)
    if previous is None:
        return None
    data = proj.settings.data
    runs = proj.ledger.shadowed(
        proj.model_name, champion.version, previous.version, settings.batches
    )
    labels = project.all_labels(proj, since_step=runs[0].step if runs else 0)
    frames = []
    for run in runs:
        preds = io.read_csv_file(proj.repo_path("data/predictions") / f"{run.batch_id}.csv")
        frames.append(preds.merge(labels[[data.id, data.target]], on=data.id, how="inner"))
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    verdict = probation.judge(
        rows,
        len(runs),
        settings,
        data,
        proj.settings.project.task,
        proj.settings.retrain.performance_metric,
        champion_version=champion.version,
        previous_version=previous.version,
        score_column=scoring.SCORE if scoring.SCORE in rows.columns else None,
    )
    get_run_logger().info("probation: %s", verdict.reason)
    return verdict


@task(cache_policy=NO_CACHE)
def live_shadow_evidence(
    proj: Project, champion: registry.ModelVersionInfo | None
) -> probation.LiveShadow | None:
    """Returns how the version the scoring service ran in shadow did against the champion on
    live traffic: the newest evaluated batches (at most training.window_batches) this champion
    answered while that version scored beside it, on the rows it scored. None without any."""
    if champion is None:
        return None
    try:
        live = live_shadow.gather(proj, champion.version)
    except InsufficientDataError as exc:  # too few rows for the metric: no evidence, said so
        get_run_logger().warning("live shadow evidence: %s", exc)
        return None
    if live is not None:
        get_run_logger().info("%s", live.sentence())
    return live


@task(cache_policy=NO_CACHE)
def log_live_shadow(proj: Project, run_id: str, live: probation.LiveShadow) -> None:
    """Records the live shadow evidence beside the holdout comparison, in the challenger's
    training run: live.champion.<metric>, live.shadow.<metric>, live_shadow.json."""
    with tracking.resume(run_id):
        tracking.log_metrics(
            {
                f"live.champion.{live.metric}": live.champion_score,
                f"live.shadow.{live.metric}": live.shadow_score,
                "live.rows": live.rows,
            },
            step=0,
        )
        tracking.log_json(live.to_dict(), "live_shadow.json")
        tracking.set_tags({"live_shadow_version": live.shadow_version})
