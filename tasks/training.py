"""Build the training window, train a candidate through DVC, register it as challenger."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import io, names
from modelwatch.stores import integrity, project, recovery, registry, tracking, versioning
from modelwatch.stores.project import Project
from modelwatch.training import fit, model_card, windows
from tasks import runtime


@dataclass(frozen=True)
class Candidate:
    version: str
    run_id: str
    cv_metrics: dict[str, float]
    window_tag: str
    window_md5: str
    data_commit: str


@task(cache_policy=NO_CACHE)
def build_training_window(proj: Project, since_drop: int | None = None) -> windows.TrainingWindow:
    """Returns the training window and holdout from DVC-versioned labelled batches.

    since_drop: the retrain policy's proposal after a performance drop (the labelled batches
    since it). Every window of windows.window_options (training's own, long_window_batches,
    since_drop) is fitted and the one better on the holdout is returned (fit.choose_window)."""
    settings = proj.settings.training
    # the newest evaluated batches are the candidates (a few spare for partly labelled ones)
    longest = max(settings.window_batches, settings.long_window_batches or 0)
    wanted = 3 * (longest + settings.holdout_batches)
    recent = proj.ledger.recent_accepted(proj.model_name, wanted, evaluated=True)
    order = {b.batch_id: b.step for b in recent}
    labelled = [
        windows.LabelledBatch(bid, order[bid], frame)
        for bid, frame in project.labelled_batches(
            proj, list(order), since_step=min(order.values(), default=0)
        )
    ]
    reference = project.load_reference(proj)
    options = windows.window_options(reference, labelled, settings, since_drop)
    window = options[0]
    if len(options) > 1:
        window, scored = fit.choose_window(
            options,
            proj.settings.data,
            settings,
            proj.settings.project.task,
            proj.settings.promotion.metric,
            search_path=proj.paths.params_file.resolve().parent,
        )
        metric = proj.settings.promotion.metric
        get_run_logger().info(
            "windows tried on the holdout: %s; training on %d batch(es)",
            ", ".join(f"{n} batch(es) {metric} {v:.4g}" for n, v in scored),
            len(window.train_batches),
        )
    get_run_logger().info("training window: %s", window.describe())
    return window


@task(cache_policy=NO_CACHE)
def next_window_tag(proj: Project) -> str:
    """Returns the git tag of the next training window: window-001, window-002, ..."""
    return f"window-{len(versioning.tags(proj.paths.data_repo, 'window-*')) + 1:03d}"


@task(cache_policy=NO_CACHE)
def write_window(
    proj: Project, train: pd.DataFrame, holdout: pd.DataFrame | None, tag: str, message: str
) -> dict[str, versioning.DataVersion]:
    """Writes and versions the window files (git tag `tag`); returns rel path -> version."""
    files = [proj.repo_path(project.WINDOW)]
    io.write_csv(train, files[0])
    if holdout is not None:
        files.append(proj.repo_path(project.HOLDOUT))
        io.write_csv(holdout, files[1])
    versions = versioning.track(proj.paths.data_repo, files, message)
    return {v.path: v for v in versions}


EXPLANATION = "explanation.json"  # the version's global explanation (model card, Explanations)


def _log_explanation(proj: Project, model: Any, train: pd.DataFrame) -> None:
    """Logs the new version's global explanation to its training run when explain.enabled:
    mean |SHAP| per feature on a sample of its window (explanation.json) and the bar and
    beeswarm plots. A model the explainers cannot read gives a warning, not a failed retrain."""
    cfg = proj.settings.explain
    if not cfg.enabled:
        return
    from modelwatch import explain
    from modelwatch.explain.plots import PLOTS, global_plots

    try:
        rows = explain.sample_rows(train, cfg.sample_rows, cfg.seed)
        background = explain.sample_rows(train, cfg.background_rows, cfg.seed + 1)
        found = explain.explain_with_settings(model, rows, background, proj.settings)
        plots = global_plots(found)
    except Exception as exc:  # an exotic user model: the version is registered without it
        get_run_logger().warning("explain: no global explanation: %s: %s", type(exc).__name__, exc)
        return
    summary = {"method": found.method, "output": found.output, "rows": found.rows}
    tracking.log_json(summary | {"mean_abs_shap": found.mean_abs(), "plots": list(PLOTS.values())},
                      EXPLANATION)  # fmt: skip
    for name, png in plots.items():
        tracking.log_bytes(png, name)


@task(cache_policy=NO_CACHE)
def train_candidate(
    proj: Project,
    train: pd.DataFrame,
    window: dict[str, versioning.DataVersion],
    reason: str,
    through_index: int,
    tag: str,
) -> Candidate:
    """Runs `dvc repro train`, logs and registers the model with alias challenger; the training
    run links the Prefect flow run and profiles its window (training_window.json)."""
    root = proj.paths.data_repo
    ran, sha = versioning.reproduce(root, "train", f"train model on {tag}: {reason}", tag=tag)
    metrics = json.loads(proj.repo_path(project.TRAIN_METRICS).read_text())
    trusted = proj.settings.training.trusted_types
    model = fit.load_model(proj.repo_path(project.MODEL_FILE), trusted)
    win = window[project.WINDOW]
    data = proj.settings.data
    tags = {
        names.REASON: reason,
        names.WINDOW_TAG: tag,
        names.DATA_COMMIT: sha,
        names.WINDOW_MD5: win.md5,
        names.STAGES_RUN: ",".join(ran) or "(cached)",
        names.VALIDATION_SCHEME: metrics.get("validation", "shuffled_cv"),
        names.ENTRY_POINT: metrics.get("entry_point", ""),
        **runtime.flow_run_tags(),
    }
    profile = model_card.profile_window(train, data, tag=tag, md5=win.md5, commit=sha)
    with tracking.run(proj.experiments.training, f"train-{tag}", tags) as run_id:
        tracking.log_metrics(
            {names.cv(k): v for k, v in metrics["cv"].items()}
            | {names.TRAIN_ROWS: metrics["rows"]},
            step=through_index,
        )
        tracking.log_json(metrics.get("importance", {}), "feature_importance.json")
        tracking.log_json(profile.to_dict(), "training_window.json")
        _log_explanation(proj, model, train)
        if metrics.get("calibration"):
            tracking.log_json(metrics["calibration"], "calibration.json")
        tracking.set_tags(
            {f"{names.PARAM_PREFIX}{k}": v for k, v in proj.settings.training.model_dump().items()}
        )
        tracking.log_dataset(
            train, "training_window", project.WINDOW, "training", win.md5, targets=data.target
        )
        _, version = tracking.log_sklearn_model(
            model, train[data.features], proj.model_name, trusted
        )
    integrity.record(proj.client, proj.ledger, proj.model_name, version)
    registry.tag_version(
        proj.client,
        proj.model_name,
        version,
        {
            names.TRAINED_THROUGH_BATCH: through_index,
            names.WINDOW_TAG: tag,
            names.WINDOW_MD5: win.md5,
            names.DATA_COMMIT: sha,
            names.REASON: reason,
            names.VALIDATION_SCHEME: metrics.get("validation", "shuffled_cv"),
            names.ENTRY_POINT: metrics.get("entry_point", ""),
            names.TRAINING_RUN_ID: run_id,
            names.FEATURE_IMPORTANCE: json.dumps(
                {k: round(v, 6) for k, v in metrics.get("importance", {}).items()}
            ),
        },
    )
    if proj.settings.retrain.run_mode == "enabled":
        registry.set_challenger(
            proj.client, proj.model_name, version, history=recovery.history_of(proj)
        )
    get_run_logger().info("candidate version %s registered (%s)", version, tag)
    return Candidate(version, run_id, metrics["cv"], tag, win.md5, sha)


@task(cache_policy=NO_CACHE)
def score_holdout(proj: Project, holdout: pd.DataFrame, version: str) -> pd.DataFrame:
    """Returns the predictions (and class scores) of one model version on the holdout rows."""
    from modelwatch.training import scoring

    model = integrity.load_verified(
        proj.client,
        proj.ledger,
        proj.model_name,
        version,
        proj.settings.training.trusted_types,
    )
    return scoring.score_frame(model, holdout, proj.settings.data, proj.settings.project.task)


@task(cache_policy=NO_CACHE)
def log_holdout_evaluation(
    proj: Project,
    run_id: str,
    holdout: pd.DataFrame,
    scored: dict[str, pd.DataFrame | None],
) -> dict[str, dict[str, float]]:
    """Logs mlflow.models.evaluate of each model's holdout predictions into the challenger's
    training run (metrics prefixed `holdout.<role>.`, the evaluation dataset as its input);
    returns role -> MLflow's metrics."""
    import warnings

    import mlflow

    data = proj.settings.data
    model_type = "regressor" if proj.settings.project.task == "regression" else "classifier"
    out = {}
    with tracking.resume(run_id), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for role, preds in scored.items():
            if preds is None:
                continue
            frame = pd.DataFrame(
                {
                    data.target: holdout[data.target].to_numpy(),
                    data.prediction: preds[data.prediction].to_numpy(),
                }
            )
            result = mlflow.models.evaluate(
                data=frame,
                predictions=data.prediction,
                targets=data.target,
                model_type=model_type,
                evaluator_config={
                    "metric_prefix": f"holdout.{role}.",
                    "log_model_explainability": False,
                },
            )
            out[role] = dict(result.metrics)
    return out


ADOPTED = "adopted_from"  # ledger meta: the source URI of a champion `modelwatch adopt` registered


@task(cache_policy=NO_CACHE)
def trainer_spec(proj: Project) -> str | None:
    """The entry point that trains challengers, or None: monitoring only (training.model
    "none", or an adopted champion with neither training.entry_point nor training.model set)."""
    from modelwatch.training import entry

    adopted = proj.ledger.get_meta(proj.model_name, ADOPTED) is not None
    return entry.spec_of(proj.settings.training, adopted)


@task(cache_policy=NO_CACHE)
def register_adopted(
    proj: Project, model_uri: str, reference: pd.DataFrame, ref: versioning.DataVersion
) -> Candidate:
    """Registers a model trained elsewhere as a version of the project's model, unchanged:
    read from model_uri the way every load is (skops, the allow-list), measured on the newest
    share of the labelled reference (fit.evaluate_fitted), logged in a training run with the
    reference as its dataset, its files' digest recorded; the ledger notes the adoption.

    A rerun after a kill finds the version an earlier attempt registered (its training run is
    tagged adopted_from=model_uri) and finishes it: a model is adopted once."""
    from modelwatch.stores import integrity

    settings, data = proj.settings, proj.settings.data
    trusted = settings.training.trusted_types
    earlier = _adopted_before(proj, model_uri)
    if earlier is not None:
        version, run_id = earlier
        metrics = proj.client.get_run(run_id).data.metrics
        measured_metrics = {k[3:]: v for k, v in metrics.items() if k.startswith("cv.")}
        get_run_logger().info("resumed: %s was registered as version %s", model_uri, version)
        return _finish_adoption(proj, model_uri, version, run_id, measured_metrics, ref, None)
    model = integrity.load_source(model_uri, trusted)
    measured = fit.evaluate_fitted(model, reference, data, settings.training, settings.project.task)
    tag = "reference"
    reason = f"adopted from {model_uri}"
    tags = {
        names.REASON: reason,
        names.ADOPTED_FROM: model_uri,
        names.WINDOW_TAG: tag,
        names.DATA_COMMIT: ref.commit,
        names.WINDOW_MD5: ref.md5,
        names.VALIDATION_SCHEME: measured.validation,
        names.ENTRY_POINT: "adopted",
        **runtime.flow_run_tags(),
    }
    profile = model_card.profile_window(reference, data, tag=tag, md5=ref.md5, commit=ref.commit)
    with tracking.run(proj.experiments.training, "adopt", tags) as run_id:
        tracking.log_metrics(
            {names.cv(k): v for k, v in measured.cv_metrics.items()}
            | {names.TRAIN_ROWS: measured.n_rows},
            step=0,
        )
        tracking.log_json(measured.importance, "feature_importance.json")
        tracking.log_json(profile.to_dict(), "training_window.json")
        if measured.calibration:
            tracking.log_json(measured.calibration, "calibration.json")
        tracking.log_dataset(reference, "reference", project.REFERENCE, "training", ref.md5,
                             targets=data.target)  # fmt: skip
        _, version = tracking.log_sklearn_model(
            model, reference[data.features], proj.model_name, trusted
        )
    return _finish_adoption(proj, model_uri, version, run_id, measured.cv_metrics, ref, measured)


def _adopted_before(proj: Project, model_uri: str) -> tuple[str, str] | None:
    """The version (and its training run) an earlier attempt of adopt registered, if any."""
    runs = tracking.find_runs(
        proj.client,
        proj.experiments.training,
        f"tags.`{names.ADOPTED_FROM}` = {tracking.quoted(model_uri)}",
    )
    for run in runs:
        found = proj.client.search_model_versions(
            f"name = {tracking.quoted(proj.model_name)} and run_id = '{run.info.run_id}'"
        )
        if found:
            return str(found[0].version), run.info.run_id
    return None


def _finish_adoption(
    proj: Project,
    model_uri: str,
    version: str,
    run_id: str,
    cv_metrics: dict[str, float],
    ref: versioning.DataVersion,
    measured: fit.TrainedModel | None,
) -> Candidate:
    """Records the digest (once), tags the version, notes the adoption in the ledger and makes
    the version the challenger: every step safe to repeat."""
    from modelwatch.stores import integrity

    settings, tag, reason = proj.settings, "reference", f"adopted from {model_uri}"
    if proj.ledger.get_meta(proj.model_name, integrity.META_KEY.format(version=version)) is None:
        integrity.record(proj.client, proj.ledger, proj.model_name, version)
    info = dict(proj.client.get_model_version(proj.model_name, version).tags)
    importance = (
        json.dumps({k: round(v, 6) for k, v in measured.importance.items()})
        if measured is not None
        else info.get(names.FEATURE_IMPORTANCE, "{}")
    )
    registry.tag_version(
        proj.client,
        proj.model_name,
        version,
        {
            names.TRAINED_THROUGH_BATCH: 0,
            names.WINDOW_TAG: tag,
            names.WINDOW_MD5: ref.md5,
            names.DATA_COMMIT: ref.commit,
            names.REASON: reason,
            names.ADOPTED_FROM: model_uri,
            names.TRAINING_RUN_ID: run_id,
            names.FEATURE_IMPORTANCE: importance,
            **({names.VALIDATION_SCHEME: measured.validation} if measured is not None else {}),
        },
    )
    proj.ledger.set_meta(proj.model_name, ADOPTED, model_uri)
    if settings.retrain.run_mode == "enabled":
        registry.set_challenger(
            proj.client, proj.model_name, version, history=recovery.history_of(proj)
        )
    get_run_logger().info("adopted %s as version %s", model_uri, version)
    return Candidate(version, run_id, cv_metrics, tag, ref.md5, ref.commit)
