"""bootstrap: train the first champion on the reference period and version the reference."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.common import DEFAULT_PARAMS, promote_first
from modelwatch import io
from tasks.project import open_project
from tasks.registry import champion_info
from tasks.tracking import open_timeline
from tasks.training import train_candidate, write_window
from tasks.validation import check_reference_data
from tasks.versioning import set_reference


@flow(name="bootstrap", flow_run_name="bootstrap")
def bootstrap(reference_path: Path, params_path: Path = DEFAULT_PARAMS) -> str:
    """Returns the champion version: trained now, or the existing one (bootstrap runs once)."""
    proj = open_project(params_path)
    # the monitoring timeline run exists before any monitor run could race to create it
    open_timeline(proj)
    existing = champion_info(proj)
    if existing is not None:
        get_run_logger().info("champion %s already exists; nothing to do", existing.version)
        return existing.version
    reference = io.read_csv_file(Path(reference_path))
    check_reference_data(reference, proj)  # warnings: what would reject good batches later
    set_reference(proj, reference, "reference for the first champion")
    versions = write_window(proj, reference, None, "window-000", "training window: reference")
    reason = "bootstrap: first model, trained on the reference period"
    cand = train_candidate(proj, reference, versions, reason, 0, "window-000")
    metric = proj.settings.promotion.metric
    # No labelled batch exists yet: the first-model policy judges the model's own validation
    # metrics (a time-ordered holdout of the reference's newest rows when a timestamp is set).
    promote_first(proj, cand, reason)
    get_run_logger().info(
        "first champion %s (cv %s %.4g)", cand.version, metric, cand.cv_metrics[metric]
    )
    return cand.version
