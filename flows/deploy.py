"""modelwatch server deploy: a project's deployments in a process work pool (server mode).

Each project gets its own deployments, named after its model (flow/deployment), so several
projects share one Prefect server and its workers: monitor-incoming/<model> on the project's
schedule, bootstrap/<model>, retrain/<model> and rollback/<model> by hand or through the API.
Every deployment has concurrency limit 1: runs of one project's flow never overlap, while the
other project's runs go on beside them."""

from __future__ import annotations

from pathlib import Path

from modelwatch.settings import load_settings

SOURCE = Path(__file__).resolve().parent.parent  # the code the workers run: this checkout
FLOWS = {
    "monitor-incoming": "flows/incoming.py:monitor_incoming",
    "bootstrap": "flows/bootstrap.py:bootstrap",
    "retrain": "flows/retrain.py:retrain",
    "rollback": "flows/rollback.py:rollback",
}


def deploy_project(params_path: Path, pool: str) -> list[str]:
    """Registers the project's four deployments in the work pool (updating them if they exist);
    returns their names (flow/deployment)."""
    from prefect import deploy, flow
    from prefect.schedules import Cron

    settings = load_settings(params_path).settings
    model, schedule = settings.project.model_name, settings.schedule
    params = {"params_path": str(Path(params_path).resolve())}
    deployments = []
    for name, entrypoint in FLOWS.items():
        loaded = flow.from_source(source=str(SOURCE), entrypoint=entrypoint)
        extra = {}
        if name == "monitor-incoming":
            extra["schedules"] = [Cron(schedule.cron, timezone=schedule.timezone)]
        deployments.append(
            loaded.to_deployment(
                name=model,
                parameters=params,
                concurrency_limit=1,
                tags=[model, name],
                description=f"{name} of {model} ({params['params_path']})",
                **extra,
            )
        )
    deploy(
        *deployments,
        work_pool_name=pool,
        build=False,
        push=False,
        print_next_steps_message=False,
        ignore_warnings=True,
    )
    return [f"{name}/{model}" for name in FLOWS]
