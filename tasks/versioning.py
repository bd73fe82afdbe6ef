"""Version datasets in the git+DVC data repository."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch import io
from modelwatch.drift.reference import DriftReference
from modelwatch.stores import project, versioning
from modelwatch.stores.project import Project
from tasks.results import Scored


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def version_files(
    proj: Project, files: list[Path], message: str, tag: str | None = None
) -> dict[str, versioning.DataVersion]:
    """dvc add + git commit (+ tag) of files inside the data repo; returns rel -> version."""
    versions = versioning.track(proj.paths.data_repo, files, message, tag=tag)
    get_run_logger().info(
        "versioned %d file(s) at %s: %s",
        len(versions),
        versions[0].commit[:8] if versions else "-",
        message,
    )
    return {v.path: v for v in versions}


@task(cache_policy=NO_CACHE)
def reuse_versioned(proj: Project, intake: Any) -> Scored:
    """Returns what a killed attempt of this batch already scored and versioned, read back from
    the data repository: a resumed batch keeps the predictions it was first given (even when a
    promotion finished in between) and commits nothing again."""
    from modelwatch.decide import probation

    rec, root = intake.record, proj.paths.data_repo
    rels = [f"data/batches/{intake.batch_id}.csv", f"data/predictions/{intake.batch_id}.csv"]
    versions = {
        r: versioning.DataVersion(r, versioning.dvc_md5(root, r), rec.data_commit) for r in rels
    }
    stored = io.read_csv_file(root / rels[1])
    own = [c for c in stored.columns if not c.startswith(probation.SHADOW_PREFIX)]
    get_run_logger().info(
        "resumed: predictions of %s as versioned at %s", intake.batch_id, rec.data_commit
    )
    return Scored(stored[own], rec.shadow_version, versions, rec.champion_version or "")


@task(cache_policy=NO_CACHE)
def stage_batch(
    proj: Project,
    batch_path: Path,
    batch: pd.DataFrame,
    predictions: pd.DataFrame,
    batch_id: str,
    index: int,
) -> tuple[list[Path], tuple[project.RejectedLabels, ...]]:
    """Copies an accepted batch, its predictions and the labels files that arrived into the data
    repo (the ledger records at which step each labels file came); returns their paths and the
    labels files refused (kept in quarantine, never read)."""
    stored = project.store_for_repo(proj, batch_path, "data/batches", f"{batch_id}.csv")
    pred_path = proj.repo_path("data/predictions") / f"{batch_id}.csv"
    io.write_csv(predictions, pred_path)
    from modelwatch.performance.labels import id_keys

    proj.ledger.add_row_ids(proj.model_name, id_keys(batch[proj.settings.data.id]), index, True)
    labels, refused = project.ingest_labels(proj, index)
    proj.ledger.add_label_files(proj.model_name, [p.name for p in labels], index)
    for bad in refused:
        get_run_logger().warning("labels file %s refused: %s", bad.name, "; ".join(bad.problems))
    return [stored, pred_path, *labels], tuple(refused)


@task(cache_policy=NO_CACHE)
def load_reference(proj: Project) -> pd.DataFrame:
    """Returns the champion's reference data (its training data) from the data repo."""
    return project.load_reference(proj)


@task(cache_policy=NO_CACHE)
def set_reference(proj: Project, frame: pd.DataFrame, message: str) -> versioning.DataVersion:
    """Writes and versions the drift/validation reference (the champion's training data)."""
    path = proj.repo_path(project.REFERENCE)
    io.write_csv(frame, path)
    return versioning.track(proj.paths.data_repo, [path], message)[0]


@task(cache_policy=NO_CACHE)
def select_drift_reference(
    proj: Project, champion_reference: pd.DataFrame, champion_predictions: pd.Series
) -> DriftReference:
    """Returns the drift reference chosen by `reference.strategy`, with its predictions.

    champion: the champion's training data, scored by the champion. previous_batch / rolling:
    the newest accepted batch(es) with the predictions made for them at the time; until a
    batch has been accepted, the champion's data stands in (and the label says so).
    """
    md5 = versioning.dvc_md5(proj.paths.data_repo, project.REFERENCE)
    rule = proj.settings.reference
    if rule.strategy == "champion":
        return DriftReference(
            champion_reference, champion_predictions, "champion training data", md5
        )
    count = 1 if rule.strategy == "previous_batch" else rule.rolling_batches
    order = [b.batch_id for b in proj.ledger.recent_accepted(proj.model_name, count)]
    ids = project.recent_batches(proj, order, count)
    if not ids:
        label = "champion training data (no batch yet)"
        return DriftReference(champion_reference, champion_predictions, label, md5)
    frame, preds = project.batches_with_predictions(proj, ids)
    get_run_logger().info("drift reference: %s", ", ".join(ids))
    return DriftReference(frame, preds, f"{rule.strategy}: {', '.join(ids)}", md5)


@task(cache_policy=NO_CACHE)
def labels_taken_in(proj: Project, index: int) -> dict[str, int]:
    """What the labels files taken in at this step held (files, rows, unknown ids, rows of
    rejected batches kept apart), from the ledger: the same after a resumed run."""
    counts = proj.ledger.label_counts(proj.model_name, step=index)
    if counts["unknown_ids"]:
        get_run_logger().warning(
            "labels: %d id(s) matched no batch delivered so far", counts["unknown_ids"]
        )
    return counts
