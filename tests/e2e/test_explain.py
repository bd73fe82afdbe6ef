"""Explanations in the monitor flow: the champion's attribution drift per batch in MLflow, the
JSON and HTML drift reports, the reference's attributions computed once per version."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modelwatch import names
from modelwatch.stores import history
from modelwatch.stores.project import open_project
from tests.conftest import write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    """Two demo weeks monitored by the default HistGradientBoosting champion with the default
    explain settings: 11 features, so the permutation estimator (README, Explanations)."""
    from flows.replay import replay

    folder = tmp_path_factory.mktemp("explain")
    params = write_params(
        "params.yaml",
        folder,
        demo={"max_batches": 2, "bad_batch_after": None},
    )
    replay(params_path=params)
    return open_project(params)


def _artifact(proj, run_id: str, name: str) -> str:
    return Path(proj.client.download_artifacts(run_id, name)).read_text()


def test_each_batch_logs_its_attribution_drift(replayed):
    proj = replayed
    features = proj.settings.data.features
    runs = history.batch_runs(proj.client, proj.experiments.monitoring)
    assert len(runs) == 2
    for run in runs:
        assert run.tags[names.EXPLAIN_METHOD] == "permutation"
        rows = json.loads(_artifact(proj, run.run_id, "attribution_drift.json"))["rows"]
        assert sorted(r["feature"] for r in rows) == sorted(features)
        assert [r["rank"] for r in rows] == list(range(1, len(features) + 1))
        changes = [abs(r["change"]) for r in rows]
        assert changes == sorted(changes, reverse=True)
        for r in rows:  # the metrics are the table's numbers
            assert run.metrics[names.attribution(r["feature"])] == pytest.approx(r["current"])
            assert run.metrics[names.attribution(r["feature"], drift=True)] == pytest.approx(
                r["current"] - r["reference"]
            )
        report = json.loads(_artifact(proj, run.run_id, "drift_report.json"))
        assert report["attribution"]["features"] == rows
        assert report["attribution"]["rows"] == 50 and report["attribution"]["reference_rows"] == 50
        html = _artifact(proj, run.run_id, "drift_report.html")
        assert "<h2>Attribution drift (SHAP)</h2>" in html
        assert f"<td>{rows[0]['feature']}</td>" in html


def test_reference_attributions_are_computed_once_per_version(replayed):
    proj = replayed
    runs = history.batch_runs(proj.client, proj.experiments.monitoring)
    version = runs[0].champion_version
    assert {r.champion_version for r in runs} == {version}
    stored = json.loads(proj.ledger.get_meta(proj.model_name, names.attribution_reference(version)))
    for run in runs:  # both batches compared with the one stored reference
        rows = json.loads(_artifact(proj, run.run_id, "attribution_drift.json"))["rows"]
        assert {r["feature"]: r["reference"] for r in rows} == pytest.approx(stored["values"])


def test_the_model_card_carries_the_global_explanation(replayed):
    """The first champion's training run: explanation.json, both PNG plots, and the card's
    section with the same numbers."""
    proj = replayed
    version = history.batch_runs(proj.client, proj.experiments.monitoring)[0].champion_version
    run_id = proj.client.get_model_version(proj.model_name, version).run_id
    found = json.loads(_artifact(proj, run_id, "explanation.json"))
    assert found["method"] == "permutation" and found["rows"] == 50
    assert sorted(found["mean_abs_shap"]) == sorted(proj.settings.data.features)
    for name in ("explanation_bar.png", "explanation_beeswarm.png"):
        png = Path(proj.client.download_artifacts(run_id, name)).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    card = json.loads(_artifact(proj, run_id, "model_card.json"))["global_explanation"]
    assert card["mean_abs_shap"] == pytest.approx(found["mean_abs_shap"])
    ranked = list(card["mean_abs_shap"].values())
    assert ranked == sorted(ranked, reverse=True)
    markdown = _artifact(proj, run_id, "model_card.md")
    assert "## Global explanation (SHAP, on the training window)" in markdown
    assert "![explanation_beeswarm.png](explanation_beeswarm.png)" in markdown


class _Opaque:
    """A user model the explainers cannot run: its predict raises."""

    def predict(self, frame):
        raise RuntimeError("opaque model")


def test_a_model_that_cannot_be_explained_gives_an_error_not_a_failure(replayed):
    from prefect import flow

    from modelwatch.stores import project
    from tasks.explain import explain_batch

    reference = project.load_reference(replayed)

    @flow
    def explain_opaque():
        return explain_batch(replayed, _Opaque(), "99", reference, reference.head(30))

    state = explain_opaque(return_state=True)
    assert state.is_completed()
    got = state.result()
    assert got.drift is None
    assert got.error == "no SHAP values for version 99: RuntimeError: opaque model"
    assert replayed.ledger.get_meta(replayed.model_name, names.attribution_reference("99")) is None
