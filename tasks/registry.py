"""Load the champion, score with it, move aliases."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import registry, scoring
from modelwatch.project import Project


@task(cache_policy=NO_CACHE)
def load_champion(proj: Project) -> tuple[Any, registry.ModelVersionInfo]:
    """Returns the champion pipeline (models:/<name>@champion) and its version info."""
    info = registry.require_alias(proj.client, proj.model_name, registry.CHAMPION)
    model = registry.load_model(proj.model_name, registry.CHAMPION)
    get_run_logger().info("champion: %s version %s", proj.model_name, info.version)
    return model, info


@task(cache_policy=NO_CACHE)
def score_batch(model: Any, frame: pd.DataFrame, proj: Project) -> pd.DataFrame:
    """Returns the id, prediction (and positive-class score) of every row."""
    return scoring.score_frame(model, frame, proj.settings.data, proj.settings.project.task)


@task(cache_policy=NO_CACHE)
def apply_promotion(
    proj: Project,
    decision: Any,
    candidate_run_id: str,
    baseline: float,
    candidate_scores: dict[str, float],
    champion_scores: dict[str, float] | None,
) -> str | None:
    """Moves the aliases when the decision says so, and logs the comparison in MLflow.

    Returns:
        The outgoing champion version when promoted, else None.
    """
    from modelwatch import tracking

    name, version = proj.model_name, decision.candidate_version
    with tracking.resume(candidate_run_id):
        tracking.log_metrics(
            {f"challenger.{k}": v for k, v in candidate_scores.items()}
            | {f"champion.{k}": v for k, v in (champion_scores or {}).items()}
            | ({"improvement": decision.improvement} if decision.improvement is not None else {}),
            step=0,
        )
        tracking.log_json(decision.to_dict(), "promotion_decision.json")
        tracking.set_tags(
            {
                "promotion": "promoted" if decision.promote else "rejected",
                "champion_version_before": decision.champion_version or "",
            }
        )
    registry.tag_version(
        proj.client,
        name,
        version,
        {
            "promotion": "promoted" if decision.promote else "rejected",
            f"baseline_{proj.settings.retrain.performance_metric}": baseline,
        },
    )
    proj.client.update_model_version(name, version, description=decision.summary())
    logger = get_run_logger()
    if not decision.promote:
        logger.info("kept champion %s: %s", decision.champion_version, decision.summary())
        return None
    old = registry.promote(proj.client, name, version)
    logger.info("promoted version %s to champion (previous %s)", version, old)
    return old
