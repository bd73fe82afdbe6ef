"""Progress of a flow's long work in the Prefect UI: the run logger and a progress artifact."""

from __future__ import annotations

import logging

from modelwatch.progress import Progress

log = logging.getLogger(__name__)


def flow_progress(label: str, total: int, artifact_key: str, every: float = 0) -> Progress:
    """Returns a Progress that reports on the run logger and, inside a flow run, keeps a Prefect
    progress artifact (the bar in the run's Artifacts tab) at the share done. A progress bar is
    never worth failing a run: a failure to create or update it is logged and dropped."""
    from prefect import get_run_logger
    from prefect.artifacts import create_progress_artifact, update_progress_artifact
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is None or not total:
        return Progress(label, total, every=every)
    try:
        artifact = create_progress_artifact(0.0, key=artifact_key, description=f"{label} progress")
    except Exception as exc:  # noqa: BLE001 - see the docstring
        log.warning("no progress artifact for %s: %s", label, exc)
        return Progress(label, total, every=every, logger=get_run_logger())
    alive = [True]

    def update(percent: float) -> None:
        if not alive[0]:
            return
        try:
            update_progress_artifact(artifact, percent)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            log.warning("progress artifact of %s not updated: %s", label, exc)
            alive[0] = False

    return Progress(label, total, every=every, logger=get_run_logger(), on_update=update)
