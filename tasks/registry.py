"""Load the champion (and its shadow), score with it, move aliases through the alias history."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import names
from modelwatch.stores import project, recovery, registry, tracking, versioning
from modelwatch.stores.project import Project
from modelwatch.training import model_card, scoring


def _via() -> str:
    from prefect.runtime import flow_run

    return f"prefect flow run {flow_run.name} ({flow_run.id})"


@task(cache_policy=NO_CACHE)
def load_champion(proj: Project) -> tuple[Any, registry.ModelVersionInfo]:
    """Returns the champion pipeline (models:/<name>@champion) and its version info; an
    interrupted alias move is finished or undone first."""
    registry.recover(proj.client, proj.model_name, recovery.history_of(proj))
    info = registry.require_alias(proj.client, proj.model_name, registry.CHAMPION)
    model = _load_verified(proj, registry.CHAMPION)
    get_run_logger().info("champion: %s version %s", proj.model_name, info.version)
    return model, info


@task(cache_policy=NO_CACHE)
def champion_info(proj: Project) -> registry.ModelVersionInfo | None:
    """Returns the champion's version info, or None before the first champion."""
    return registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)


@task(cache_policy=NO_CACHE)
def newest_window_end(proj: Project) -> int | None:
    """Returns the last batch the newest registered version was trained through, if any."""
    return registry.newest_trained_through(proj.client, proj.model_name)


@task(cache_policy=NO_CACHE)
def load_shadow(
    proj: Project, champion: registry.ModelVersionInfo
) -> tuple[Any, registry.ModelVersionInfo] | None:
    """Returns the previous champion while the champion is on probation (it scores in shadow)."""
    if recovery.probation_of(proj, champion) != "active":
        return None
    previous = registry.get_alias(proj.client, proj.model_name, registry.PREVIOUS)
    if previous is None:
        return None
    get_run_logger().info(
        "champion %s on probation: version %s scores in shadow", champion.version, previous.version
    )
    return _load_verified(proj, registry.PREVIOUS), previous


def _load_verified(proj: Project, alias: str) -> Any:
    """The model behind an alias, verified before it is loaded (stores.integrity)."""
    trusted = proj.settings.training.trusted_types
    return registry.load_model(proj.client, proj.ledger, proj.model_name, alias, trusted)


@task(cache_policy=NO_CACHE)
def load_calibration(proj: Project, champion: registry.ModelVersionInfo) -> Any:
    """Returns the champion's calibrator (from its training run), or None without one."""
    from modelwatch.performance import estimation

    run_id = champion.tags.get(names.TRAINING_RUN_ID)
    if proj.settings.project.task != "classification" or not run_id:
        return None
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        raw = mlflow.artifacts.load_dict(f"runs:/{run_id}/calibration.json")
    except (MlflowException, OSError):
        return None
    return estimation.Calibrator.from_dict(raw) if raw else None


@task(cache_policy=NO_CACHE)
def score_batch(model: Any, frame: pd.DataFrame, proj: Project) -> pd.DataFrame:
    """Returns the id, prediction (and class scores) of every row."""
    return scoring.score_frame(model, frame, proj.settings.data, proj.settings.project.task)


@task(cache_policy=NO_CACHE)
def apply_promotion(
    proj: Project,
    decision: Any,
    candidate_run_id: str,
    baseline: float,
    reason: str,
) -> str | None:
    """Logs the comparison and the model card (model_card.md, model_card.json) in the
    challenger's training run, describes the version with both and, when the decision says so
    and run_mode is enabled, moves the aliases (recorded in the alias history).

    Returns:
        The outgoing champion version when promoted, else None.
    """
    name, version = proj.model_name, decision.candidate_version
    mode = proj.settings.retrain.run_mode
    moved = decision.promote and mode == "enabled" and not decision.awaiting_approval
    outcome = "promoted" if moved else "rejected" if not decision.promote else "dry_run"
    if decision.awaiting_approval:
        outcome = "awaiting_approval"  # tasks/approval.py moves the aliases once approved
    card = _model_card(proj, decision, candidate_run_id, outcome)
    with tracking.resume(candidate_run_id):
        tracking.log_metrics(
            {names.challenger(k): v for k, v in decision.candidate_metrics.items()}
            | {names.champion(k): v for k, v in (decision.champion_metrics or {}).items()}
            | (
                {names.IMPROVEMENT: decision.improvement}
                if decision.improvement is not None
                else {}
            ),
            step=0,
        )
        tracking.log_json(decision.to_dict(), "promotion_decision.json")
        tracking.log_text(_comparison_markdown(decision), "promotion_decision.md")
        tracking.log_json(card, "model_card.json")
        tracking.log_text(model_card.card_markdown(card), "model_card.md")
        tracking.set_tags(
            {
                names.PROMOTION: outcome,
                names.DECISION_ID: decision.decision_id,
                names.CHAMPION_VERSION_BEFORE: decision.champion_version or "",
            }
        )
    tags = {
        names.PROMOTION: outcome,
        names.DECISION_ID: decision.decision_id,
        names.baseline(proj.settings.retrain.performance_metric): baseline,
    }
    registry.tag_version(proj.client, name, version, tags)
    if moved and decision.champion_version and proj.settings.promotion.probation.batches:
        recovery.set_probation(proj, version, "active")
    description = (
        f"{_comparison_markdown(decision)}\n\nModel card: runs:/{candidate_run_id}/model_card.md"
    )
    proj.client.update_model_version(name, version, description=description)
    logger = get_run_logger()
    if not moved:
        logger.info("%s: %s", outcome, decision.summary())
        return None
    old = registry.promote(
        proj.client,
        name,
        version,
        history=recovery.history_of(proj),
        via=_via(),
        reason=reason,
        decision_id=decision.decision_id,
    )
    logger.info("promoted version %s to champion (previous %s)", version, old)
    if old and proj.ledger.get_meta(name, f"probation:{old}") == "active":
        said = f"superseded by version {version} before it was judged (a manual retrain)"
        recovery.set_probation(proj, old, "superseded", {names.PROBATION_REASON: said})
        logger.warning("probation of version %s ended: %s", old, said)
    return old


def _model_card(proj: Project, decision: Any, run_id: str, outcome: str) -> dict:
    """Returns the card of the challenger from its training run: CV metrics, window profile and
    feature importance as train_candidate logged them; the holdout section only when
    log_holdout_evaluation logged one (a first model from bootstrap has none)."""
    import mlflow.artifacts

    metrics = proj.client.get_run(run_id).data.metrics
    window = mlflow.artifacts.load_dict(f"runs:/{run_id}/training_window.json")
    return model_card.card_dict(
        name=proj.model_name,
        task=proj.settings.project.task,
        data=proj.settings.data,
        training=proj.settings.training,
        window=model_card.WindowProfile.from_dict(window),
        cv_metrics={k[3:]: v for k, v in metrics.items() if k.startswith("cv.")},
        decision=decision,
        importance=mlflow.artifacts.load_dict(f"runs:/{run_id}/feature_importance.json"),
        on_holdout=any(k.startswith("holdout.challenger.") for k in metrics),
        outcome=outcome,
        explanation=_explanation(proj, run_id),
    )


def _explanation(proj: Project, run_id: str) -> dict | None:
    """The global explanation train_candidate logged (explanation.json), if it did."""
    import mlflow.artifacts

    if not any(a.path == "explanation.json" for a in proj.client.list_artifacts(run_id)):
        return None
    return mlflow.artifacts.load_dict(f"runs:/{run_id}/explanation.json")


def _comparison_markdown(decision: Any) -> str:
    lines = [f"**{decision.summary().split(':', 1)[0]}** (decision {decision.decision_id})", ""]
    lines += [f"- {c.sentence}" for c in decision.checks]
    return "\n".join(lines)


@task(cache_policy=NO_CACHE)
def rollback_champion(proj: Project, reason: str, decision_id: str = "") -> tuple[str, str]:
    """Restores previous_champion as champion (alias history records it) and makes its training
    data the drift reference again. Returns (from version, to version)."""
    name = proj.model_name
    before, after = registry.rollback(
        proj.client,
        name,
        history=recovery.history_of(proj),
        reason=reason,
        via=_via(),
        decision_id=decision_id,
    )
    recovery.set_probation(proj, before, "rolled_back", {names.ROLLED_BACK_REASON: reason})
    restored = registry.get_alias(proj.client, name, registry.CHAMPION)
    window_tag = restored.tags.get(names.WINDOW_TAG) if restored else None
    if window_tag:
        raw = versioning.read_version(proj.paths.data_repo, project.WINDOW, window_tag)
        path = proj.repo_path(project.REFERENCE)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
        versioning.track(
            proj.paths.data_repo, [path], f"reference for champion {after} (rollback from {before})"
        )
    proj.ledger.set_meta(name, recovery.REFERENCE_FOR, after)
    get_run_logger().warning("rolled back champion %s -> %s: %s", before, after, reason)
    return before, after


@task(cache_policy=NO_CACHE)
def end_probation(proj: Project, version: str, status: str, reason: str) -> None:
    """Records how a champion's probation ended (passed) on its model version."""
    recovery.set_probation(proj, version, status, {names.PROBATION_REASON: reason})
