"""Where a task runs: links from what it writes back to the Prefect flow run that wrote it.

Helpers for tasks, not tasks: any task module may import this one (tasks never import
each other)."""

from __future__ import annotations

from modelwatch import names

PREFECT_UI = "http://127.0.0.1:4200"  # where `make ui` / `modelwatch ui` serves the Prefect UI


def prefect_ui() -> str:
    """The Prefect UI the links point at: PREFECT_UI_URL if set, else the server of
    PREFECT_API_URL when one is set (`modelwatch serve`), else `make ui`'s default address (the
    demo's temporary server is gone once it ends; `make ui` shows its runs there)."""
    import os

    if os.environ.get("PREFECT_UI_URL"):
        return os.environ["PREFECT_UI_URL"].rstrip("/")
    api = os.environ.get("PREFECT_API_URL", "").rstrip("/")
    return api.removesuffix("/api") if api else PREFECT_UI


def flow_run_tags() -> dict[str, str]:
    """Links an MLflow run to the Prefect flow run that made it: id, name, the address in the
    Prefect UI, and a run description (rendered as markdown by MLflow) with a clickable link."""
    from prefect.runtime import flow_run

    if not flow_run.id:
        return {}
    url = f"{prefect_ui()}/runs/flow-run/{flow_run.id}"
    return {
        names.PREFECT_FLOW_RUN_ID: str(flow_run.id),
        names.PREFECT_FLOW_RUN_NAME: str(flow_run.name),
        names.PREFECT_FLOW_RUN_URL: url,
        names.NOTE: f"Made by Prefect flow run [{flow_run.name}]({url}).",
    }
