"""Open the project: settings, stores, experiments."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from modelwatch.stores import project as core


@task(cache_policy=NO_CACHE)
def open_project(params_path: Path) -> core.Project:
    """Loads params.yaml and makes sure every store exists."""
    proj = core.open_project(params_path)
    get_run_logger().info("project %s: home %s", proj.model_name, proj.paths.home)
    return proj
