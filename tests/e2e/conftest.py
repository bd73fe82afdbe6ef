"""End-to-end tests run real Prefect flows against a temporary Prefect server (one per session)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"  # as every modelwatch process
os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "modelwatch")
# core modules also log outside flow runs (unit tests in the same session): keep those local
os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


@pytest.fixture(scope="session", autouse=True)
def prefect_backend():
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield
