"""Late labels, decision records, promotion with its checks, probation, rollback and dry run,
through real flows (Prefect test server, MLflow SQLite, git+DVC) on bike-sharing batches."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sklearn.metrics

from modelwatch.app.status import decision_record
from modelwatch.settings import load_settings
from modelwatch.stores import alias_history, history, registry, tracking, versioning
from modelwatch.stores.project import REFERENCE, WINDOW, open_project
from tests.conftest import demo_plan, write_params

pytestmark = pytest.mark.slow

QUIET_RETRAIN = {  # no automatic rule fires: every retrain here is asked for
    "max_drift_share": None,
    "max_drift_share_increase": None,
    "max_performance_drop": None,
    "max_model_age_batches": None,
    "cooldown_batches": 0,
}
LAX_PROMOTION = {  # a challenger that is better at all is promoted
    "min_relative_change": None,
    "min_absolute_change": 0.001,
    "max_relative_change": None,
    "guard_metrics": {},
    "significance": {"method": "none"},
    "segment_margin": None,
    "probation": {"batches": 2, "tolerance": 1.0},  # wide: only a broken model fails
}


class Life:
    """A project driven batch by batch, label files dropped by hand."""

    def __init__(self, folder, **overrides):
        self.params = write_params(
            "params.yaml",
            folder,
            retrain=QUIET_RETRAIN,
            promotion={**LAX_PROMOTION, **overrides.pop("promotion", {})},
            **overrides,
        )
        self.loaded = load_settings(self.params)
        paths, settings = self.loaded.paths, self.loaded.settings
        self.plan = demo_plan(self.loaded, paths.home / "demo")
        self.batches = [b for b in self.plan.batches if b.labels is not None]
        self.proj = open_project(self.params)
        self.client, self.exps = self.proj.client, self.proj.experiments
        self.name = settings.project.model_name

    def bootstrap(self) -> None:
        from flows.bootstrap import bootstrap

        bootstrap(reference_path=self.plan.reference, params_path=self.params)

    def labels(self, k: int, rows: slice = slice(None)) -> None:
        frame = pd.read_csv(self.batches[k - 1].labels).iloc[rows]
        target = (
            self.loaded.paths.incoming_labels / f"{self.batches[k - 1].batch_id}-{rows.start}.csv"
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_csv(target, index=False)

    def monitor(self, k: int, **kwargs):
        from flows.monitor import monitor_batch

        target = self.loaded.paths.incoming_batches / self.batches[k - 1].inputs.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(self.batches[k - 1].inputs, target)
        return monitor_batch(batch_path=target, params_path=self.params, **kwargs)

    def run_of(self, k: int) -> history.BatchRun:
        return history.find_by_batch_id(self.client, self.exps.monitoring, self.batch_id(k))

    def batch_id(self, k: int) -> str:
        return self.batches[k - 1].batch_id

    def aliases(self) -> dict[str, str]:
        return registry.aliases(self.client, self.name)

    def history(self) -> alias_history.AliasHistory:
        return alias_history.AliasHistory(self.loaded.paths.registry_dir, self.name)


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    """Batches 1-3 with labels arriving late and in parts; a manual retrain at batch 3 that is
    promoted; batches 4-6 on probation (tolerance wide enough that it passes)."""
    life = Life(tmp_path_factory.mktemp("life"))
    life.bootstrap()
    life.monitor(1)
    life.labels(1, slice(0, 84))  # half of batch 1's labels arrive with batch 2
    life.coverage_after_half = None
    life.monitor(2)
    life.coverage_after_half = life.run_of(1).metrics.get("label_coverage")
    life.evaluated_after_half = life.run_of(1).evaluated
    life.labels(1, slice(84, None))
    life.labels(2)
    life.before_promotion = datetime.now(UTC)
    life.retrained = life.monitor(3, force_retrain=True, retrain_reason="ops ticket 7: new fleet")
    life.after_promotion = datetime.now(UTC)
    for k in (4, 5, 6):
        life.labels(k - 1)
        life.last = life.monitor(k)
    return life


def test_partial_labels_log_coverage_and_wait(life):
    assert life.coverage_after_half == pytest.approx(84 / 163, abs=0.01)
    assert life.evaluated_after_half is False


def test_late_labels_fill_in_the_batch_step(life):
    """Reference: sklearn.metrics.mean_absolute_error on stored predictions joined to labels."""
    run = life.run_of(1)
    assert run.evaluated
    assert run.metrics["label_coverage"] == 1.0
    assert run.metrics["label_latency_batches"] == 2.0  # processed at 1, labelled at 3
    assert life.run_of(2).metrics["label_latency_batches"] == 1.0
    assert run.metrics["label_latency_seconds"] > 0
    root = life.loaded.paths.data_repo
    preds = pd.read_csv(root / f"data/predictions/{run.batch_id}.csv")
    labels = pd.read_csv(life.batches[0].labels)
    joined = preds.merge(labels, on="instant")
    mae = sklearn.metrics.mean_absolute_error(joined["cnt"], joined["prediction"])
    assert run.metrics["performance.mae"] == pytest.approx(mae, rel=1e-9)
    # the metric history of batch 1 carries the value at batch 1's own step
    steps = {m.step for m in life.client.get_metric_history(run.run_id, "performance.mae")}
    assert steps == {1}
    low, high = run.metrics["performance.mae.ci_low"], run.metrics["performance.mae.ci_high"]
    assert low < mae < high
    # a constant model (the reference mean) beside it; reference: sklearn DummyRegressor(mean)
    reference = pd.read_csv(life.plan.reference)
    dummy = sklearn.metrics.mean_absolute_error(
        joined["cnt"], [reference["cnt"].mean()] * len(joined)
    )
    assert run.metrics["baseline.dummy.mae"] == pytest.approx(dummy, rel=1e-9)


def test_decision_record_is_found_by_batch_id(life):
    record = json.loads(decision_record(life.params, life.batch_id(3)))
    assert record["batch_id"] == life.batch_id(3)
    assert record["retrain"] is True
    assert record["rules_fired"] == ["manual"]
    assert record["inputs"]["force_reason"] == "ops ticket 7: new fleet"
    assert record["thresholds"]["cooldown_batches"] == 0
    assert record["severity"] == "info"
    assert any(r.startswith("manual: ops ticket 7") for r in record["reasons"])
    assert record["retrain_outcome"].startswith("promoted v")
    quiet = json.loads(decision_record(life.params, life.batch_id(2)))
    assert quiet["retrain"] is False and quiet["severity"] == "info"


def test_promotion_compared_on_the_holdout_and_recorded(life):
    decision = life.retrained.promotion
    assert decision.promote, decision.summary()
    assert decision.champion_version == "1"
    names = {c.name for c in decision.checks}
    assert "thresholds" in names
    # the holdout (batch 2) is newer than anything the champion (reference only) saw
    version = registry.get_alias(life.client, life.name, registry.PREVIOUS)
    assert version is not None and version.version == "1"
    mv = life.client.get_model_version(life.name, decision.candidate_version)
    assert decision.decision_id in mv.description
    assert mv.tags["decision_id"] == decision.decision_id
    # MLflow's evaluation of both models on the holdout agrees (reference: mlflow.models.evaluate)
    run = life.client.get_run(mv.tags["training_run_id"]).data.metrics
    assert run["holdout.challenger.mean_absolute_error"] == pytest.approx(
        decision.candidate_metrics["mae"], rel=1e-9
    )
    assert run["holdout.champion.mean_absolute_error"] == pytest.approx(
        decision.champion_metrics["mae"], rel=1e-9
    )
    # the drift reference is now the new champion's training window, versioned with DVC
    root = life.loaded.paths.data_repo
    window_tag = mv.tags["window_tag"]
    assert (root / REFERENCE).read_bytes() == versioning.read_version(root, WINDOW, window_tag)


def test_alias_history_answers_which_version_was_champion(life):
    hist = life.history()
    promoted = [r for r in hist.records() if r.action == "promote" and r.state == "committed"]
    assert promoted[-1].to_version == life.retrained.promotion.candidate_version
    assert promoted[-1].decision_id == life.retrained.promotion.decision_id
    assert "manual: ops ticket 7" in promoted[-1].reason
    assert "prefect flow run" in (promoted[-1].via or "")
    assert hist.champion_at(life.before_promotion) == "1"
    assert hist.champion_at(life.after_promotion) == life.retrained.promotion.candidate_version


def test_probation_scores_the_previous_champion_in_shadow_then_passes(life):
    new = life.retrained.promotion.candidate_version
    root = life.loaded.paths.data_repo
    preds = pd.read_csv(root / f"data/predictions/{life.batch_id(4)}.csv")
    assert {"prediction", "shadow.prediction"} <= set(preds.columns)
    run = life.run_of(4)
    assert run.tags["shadow_version"] == "1"
    assert "shadow.performance.mae" in run.metrics
    assert life.last.probation is not None and life.last.probation.status == "passed"
    mv = life.client.get_model_version(life.name, new)
    assert mv.tags["probation"] == "passed"
    assert life.aliases()["champion"] == new


def test_rollback_flow_restores_previous_champion_and_its_reference(life):
    from flows.rollback import rollback

    new = life.aliases()["champion"]
    before = datetime.now(UTC)
    assert rollback(reason="complaints from station 12", params_path=life.params) == (new, "1")
    assert life.aliases()["champion"] == "1"
    last = life.history().records()[-1]
    assert (last.action, last.state, last.reason) == (
        "rollback",
        "committed",
        "complaints from station 12",
    )
    assert life.history().champion_at(before - timedelta(seconds=1)) == new
    root = life.loaded.paths.data_repo
    assert (root / REFERENCE).read_bytes() == versioning.read_version(root, WINDOW, "window-000")


def test_rollback_without_previous_champion_fails_clearly(life):
    from flows.rollback import rollback

    state = rollback(reason="again", params_path=life.params, return_state=True)
    assert state.is_failed()
    assert "previous_champion" in state.message
    assert life.aliases()["champion"] == "1"


def test_worse_champion_on_probation_is_rolled_back_automatically(life):
    """A constant model promoted by hand is scored against the previous champion in shadow and
    rolled back once two of its batches are labelled."""
    from sklearn.dummy import DummyRegressor

    data = life.loaded.settings.data
    reference = pd.read_csv(life.plan.reference)
    bad = DummyRegressor(strategy="constant", constant=1.0).fit(
        reference[data.features], reference[data.target]
    )
    with tracking.run(life.exps.training, "constant-model", {"reason": "test"}):
        _, version = tracking.log_sklearn_model(bad, reference[data.features], life.name)
    registry.tag_version(
        life.client, life.name, version, {"probation": "active", "baseline_mae": 1.0}
    )
    registry.promote(
        life.client, life.name, version, history=life.history(), reason="test: a bad model"
    )
    life.labels(6)
    life.monitor(7)
    life.labels(7)
    life.monitor(8)
    life.labels(8)
    result = life.monitor(9)
    assert result.probation is not None and result.probation.status == "failed"
    assert "roll back" in result.probation.reason
    assert life.aliases()["champion"] == "1"
    last = life.history().records()[-1]
    assert last.action == "rollback" and "automatic rollback" in last.reason
    mv = life.client.get_model_version(life.name, version)
    assert mv.tags["probation"] == "rolled_back"


def test_dry_run_decides_and_trains_but_moves_nothing(life, tmp_path):
    params = write_params(
        "params.yaml",
        tmp_path,
        home=life.loaded.paths.home,
        retrain={**QUIET_RETRAIN, "run_mode": "dry_run"},
        promotion=LAX_PROMOTION,
    )
    from flows.monitor import monitor_batch

    before, records = life.aliases(), len(life.history().records())
    life.labels(9)
    target = life.loaded.paths.incoming_batches / life.batches[9].inputs.name
    shutil.copy(life.batches[9].inputs, target)
    result = monitor_batch(
        batch_path=target, params_path=params, force_retrain=True, retrain_reason="dry run check"
    )
    assert result.decision.mode == "dry_run" and result.decision.retrain
    assert result.promotion is not None  # trained and compared ...
    assert life.aliases() == before  # ... but no alias moved
    assert len(life.history().records()) == records
    trained = tracking.find_runs(
        life.client, life.exps.training, "tags.reason LIKE '%dry run check%'"
    )
    assert len(trained) == 1
    assert trained[0].data.tags["promotion"] in {"dry_run", "rejected"}


def test_monitor_run_publishes_markdown_summary_and_drift_table(life):
    from prefect.artifacts import Artifact

    key = life.batch_id(3).lower()
    summary = Artifact.get(f"monitor-{key}")
    assert summary is not None and summary.type == "markdown"
    assert "**Validation**" in summary.data and "**Drift**" in summary.data
    assert "**Decision** (info)" in summary.data and "retrain: promoted v" in summary.data
    assert f"runs/{life.run_of(3).run_id}" in summary.data
    table = Artifact.get(f"drift-{key}")
    assert table is not None and table.type == "table"
    assert "hum" in table.data


def test_versions_carry_a_model_card_and_link_their_flow_run(life, tmp_path):
    """The training runs of the promoted version (retrain) and of the first one (bootstrap):
    model_card.md/.json among their artifacts, the Prefect flow run that trained them in their
    tags, and a pointer to the card in the version's description."""
    from pathlib import Path
    from uuid import UUID

    import mlflow.artifacts
    from prefect.client.orchestration import get_client

    decision = life.retrained.promotion
    cards = {}
    for version, flow in ((decision.candidate_version, "retrain"), ("1", "bootstrap")):
        mv = life.client.get_model_version(life.name, version)
        run_id = mv.tags["training_run_id"]
        assert f"Model card: runs:/{run_id}/model_card.md" in mv.description
        folder = Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id,
                dst_path=str(tmp_path / version),
                tracking_uri=life.proj.paths.tracking_uri,
            )
        )
        card = json.loads((folder / "model_card.json").read_text())
        markdown = (folder / "model_card.md").read_text()
        assert markdown.startswith(f"# Model card: {life.name} version {version}\n")
        assert card["model"]["version"] == version
        assert card["training_window"]["tag"] == mv.tags["window_tag"]
        assert card["training_window"]["md5"] == mv.tags["window_md5"]
        tags = life.client.get_run(run_id).data.tags
        with get_client(sync_client=True) as prefect:
            flow_run = prefect.read_flow_run(UUID(tags["prefect.flow_run_id"]))
            assert prefect.read_flow(flow_run.flow_id).name == flow
        assert tags["prefect.flow_run_name"] == flow_run.name
        cards[version] = card
    promoted = cards[decision.candidate_version]
    assert promoted["promotion"]["decision_id"] == decision.decision_id
    assert promoted["promotion"]["outcome"] == "promoted"
    holdout = promoted["metrics"]["holdout"]
    assert holdout["challenger"]["mae"] == pytest.approx(decision.candidate_metrics["mae"])
    assert holdout["champion_version"] == "1"
    assert set(promoted["training_window"]["ranges"]) == set(life.loaded.settings.data.numeric)
    assert cards["1"]["metrics"]["holdout"] is None  # bootstrap: judged on CV, no holdout
    assert [c["name"] for c in cards["1"]["promotion"]["checks"]] == ["first_model"]
