"""Shared defaults of the flows."""

from __future__ import annotations

from pathlib import Path

DEFAULT_PARAMS = Path(__file__).resolve().parent.parent / "params.yaml"


def run_name(prefix: str, key: str) -> str:
    """Returns a flow run name like monitor-batch-012-2011-04-16 from a runtime parameter."""
    from prefect.runtime import flow_run

    value = flow_run.parameters.get(key)
    return f"{prefix}-{Path(str(value)).stem}" if value else prefix
