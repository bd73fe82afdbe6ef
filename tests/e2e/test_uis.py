"""Both UIs looked at as a person would (headless Chromium over the DevTools protocol) after a
short replay run by `modelwatch demo` in its own process. Screenshots are kept as test output in
test-output/ui/ (what each one shows: modelwatch/ui_check.py)."""

from __future__ import annotations

import struct

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

OUT = ROOT / "test-output" / "ui"


@pytest.fixture(scope="module")
def checks(tmp_path_factory):
    from modelwatch import ui_check

    params = ui_check.replay(
        ROOT / "params.yaml", tmp_path_factory.mktemp("ui"), batches=4, source_root=ROOT
    )
    return {c.screenshot.name: c for c in ui_check.check_project(params, OUT)}


@pytest.mark.parametrize(
    "shot",
    [
        "prefect_runs.png",
        "prefect_run_artifacts.png",
        "prefect_summary.png",
        "mlflow_metrics.png",
        "mlflow_model.png",
        "mlflow_model_version.png",
    ],
)
def test_ui_page_shows_what_a_person_looks_for(checks, shot):
    check = checks[shot]
    assert check.ok, check.line()
    png = check.screenshot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1400, 1000)
    assert len(png) > 30_000, f"{check.screenshot} looks blank ({len(png)} bytes)"
