"""The live shadow evidence: how a version the scoring service scored in shadow did against the
champion on the same labelled production rows (the prediction log's windows, monitored as
batches, joined with the labels taken in). Used by the retrain comparison and by a pending
approval (tasks/probation.py, tasks/approval.py): one computation, probation.live_shadow."""

from __future__ import annotations

import pandas as pd

from modelwatch import io
from modelwatch.decide import probation
from modelwatch.stores import project as project_mod
from modelwatch.stores.project import Project
from modelwatch.training import scoring


def gather(
    proj: Project, champion_version: str, shadow_version: str | None = None
) -> probation.LiveShadow | None:
    """Returns the live shadow evidence of `shadow_version` (None: the version the service
    scored in shadow most recently) against the champion: the newest evaluated batches (at most
    training.window_batches) this champion answered while that version scored beside it, on
    the labelled rows it scored. None when there are none.

    Raises:
        InsufficientDataError: promotion.metric is undefined on these rows (e.g. one class).
    """
    recent = proj.ledger.evaluated_by(
        proj.model_name, champion_version, 2**31, proj.settings.training.window_batches
    )
    shadowed = [r for r in recent if r.shadow_version]
    if shadow_version is not None:
        shadowed = [r for r in shadowed if str(r.shadow_version) == str(shadow_version)]
    if not shadowed:
        return None
    version = shadowed[-1].shadow_version
    runs = [r for r in shadowed if r.shadow_version == version]
    data = proj.settings.data
    labels = project_mod.all_labels(proj, since_step=runs[0].step)
    frames = []
    for run in runs:
        preds = io.read_csv_file(proj.repo_path("data/predictions") / f"{run.batch_id}.csv")
        frames.append(preds.merge(labels[[data.id, data.target]], on=data.id, how="inner"))
    rows = pd.concat(frames, ignore_index=True)
    return probation.live_shadow(
        rows,
        len(runs),
        data,
        proj.settings.project.task,
        proj.settings.promotion.metric,
        champion_version=champion_version,
        shadow_version=str(version),
        score_column=scoring.SCORE if scoring.SCORE in rows.columns else None,
    )
