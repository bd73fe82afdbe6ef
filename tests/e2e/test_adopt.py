"""`modelwatch adopt` (README, Bring your own model): a model a separate script logged becomes
the first champion without retraining, is monitored, alerted on and challenged by the entry
point, or only monitored without one; a killed adopt rerun adopts once. Real CLI, flows,
stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from modelwatch.settings import load_settings
from modelwatch.stores import history, registry
from modelwatch.stores.project import open_project
from tests.conftest import demo_plan
from tests.e2e.test_lifecycle import LAX_PROMOTION
from tests.e2e.test_own_model import BANK_RETRAIN, ROOT, example_params, versions_of
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow


SEPARATE_SCRIPT = textwrap.dedent(
    """
    import sys
    import mlflow
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    tracking_uri, reference, features, categorical = sys.argv[1:5]
    features, categorical = features.split(","), categorical.split(",")
    frame = pd.read_csv(reference)
    numeric = [c for c in features if c not in categorical]
    model = Pipeline([
        ("encode", ColumnTransformer([("c", OneHotEncoder(handle_unknown="ignore"), categorical),
                                      ("n", StandardScaler(), numeric)])),
        ("model", LogisticRegression(max_iter=1000)),
    ]).fit(frame[features], frame["Class"])
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    mlflow.set_experiment("their-team")
    with mlflow.start_run():
        mlflow.sklearn.log_model(model, name="model", registered_model_name="their-model",
                                 pip_requirements=[])
    """
)


def _adopt_project(folder: Path, **overrides: dict) -> tuple[Path, Path]:
    """A project with a model logged by a separate script into its tracking store, and the
    reference the script trained on."""
    params = example_params(folder, **overrides)
    loaded = load_settings(params)
    plan = demo_plan(loaded, folder / "stream")
    data = loaded.settings.data
    script = folder / "their_training.py"
    script.write_text(SEPARATE_SCRIPT)
    loaded.paths.home.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, str(script), loaded.paths.tracking_uri, str(plan.reference),
         ",".join(data.features), ",".join(data.categorical)],
        cwd=folder, env=_env(), check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return params, plan.reference


def _env() -> dict[str, str]:
    """This process's environment without what earlier tests pointed at their own stores
    (mlflow.set_tracking_uri also sets MLFLOW_TRACKING_URI for child processes)."""
    drop = (
        "PREFECT_API",
        "PREFECT_HOME",
        "MODELWATCH",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
    )
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _cli(params: Path, *args: str, kill: str | None = None) -> subprocess.CompletedProcess:
    env = _env()
    if kill:  # tests/faults: SIGKILL the process group at a function of the product
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "tests" / "faults"), str(ROOT)])
        env["MODELWATCH_TEST_KILL"] = kill
    return subprocess.run(
        [sys.executable, "-m", "modelwatch.app.cli", "--params", str(params), *args],
        env=env, capture_output=True, text=True, timeout=600, start_new_session=True,
    )  # fmt: skip


def test_adopt_a_model_logged_elsewhere_then_monitor_alert_and_retrain(tmp_path, receiver):  # noqa: F811
    from flows.replay import replay

    hook = {"name": "ops", "url": f"{receiver.base}/hook", "min_severity": "info"}
    params, reference = _adopt_project(
        tmp_path,
        demo={"max_batches": 4},
        retrain=BANK_RETRAIN,
        promotion={**LAX_PROMOTION, "threshold": None},
        alerts={"webhooks": [hook]},
    )
    proc = _cli(params, "adopt", "models:/their-model/1", "--reference", str(reference))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == (
        "champion: version 1 (adopted from models:/their-model/1)"
    )
    proj = open_project(params)
    champion = registry.require_alias(proj.client, "bank-splines", registry.CHAMPION)
    assert champion.tags["adopted_from"] == "models:/their-model/1"
    assert champion.tags["trained_through_batch"] == "0"
    run = proj.client.get_run(champion.tags["training_run_id"])
    assert "cv.roc_auc" in run.data.metrics  # the baseline, measured on the reference's newest rows

    rows = replay(params_path=params)  # bootstrap sees the champion and does nothing
    assert [r["validation"] for r in rows] == ["accepted"] * 4
    retrained = [
        v for v in versions_of(params) if v.tags.get("entry_point") == "bank_splines:train"
    ]
    assert retrained, [
        r["decision"] for r in rows
    ]  # staleness fired: a challenger from the example
    assert any("staleness" in t.lower() or "retrain" in t.lower() for t in receiver.titles("/hook"))


def test_an_adopted_champion_without_an_entry_point_is_only_monitored(tmp_path):
    from flows.replay import replay
    from flows.retrain import retrain

    params, reference = _adopt_project(
        tmp_path, demo={"max_batches": 2}, retrain=BANK_RETRAIN, promotion={"threshold": None}
    )
    raw = yaml.safe_load(params.read_text())
    raw["training"] = {k: v for k, v in raw["training"].items() if k not in ("entry_point",)}
    raw["training"].pop("model", None)
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    assert (
        _cli(params, "adopt", "models:/their-model/1", "--reference", str(reference)).returncode
        == 0
    )
    rows = replay(params_path=params)
    assert [r["validation"] for r in rows] == ["accepted"] * 2
    assert [str(v.version) for v in versions_of(params)] == ["1"]  # no challenger was trained
    state = retrain(reason="by hand", params_path=params, force=True, return_state=True)
    assert state.name == "Skipped" and "monitoring only" in state.message
    runs = history.batch_runs(
        open_project(params).client, open_project(params).experiments.monitoring
    )
    assert all(r.tags["champion_version"] == "1" for r in runs)


@pytest.mark.parametrize(
    "point",
    [
        "modelwatch.stores.integrity:record:before",  # registered, nothing recorded yet
        "tasks.events:mark_reference:before",  # promoted, the reference not yet marked
    ],
)
def test_adopt_killed_mid_way_then_rerun_adopts_once(tmp_path, point):
    """SIGKILL of the whole `modelwatch adopt` process group at a step, then the same command
    again: one registered version, the champion, its digest recorded and its files loadable."""
    from modelwatch.stores import integrity, recovery

    params, reference = _adopt_project(tmp_path, promotion={"threshold": None})
    args = ("adopt", "models:/their-model/1", "--reference", str(reference))
    killed = _cli(params, *args, kill=point)
    assert killed.returncode == -9, killed.stderr[-2000:]
    again = _cli(params, *args)
    assert again.returncode == 0, again.stderr[-3000:]
    proj = open_project(params)
    assert [str(v.version) for v in versions_of(params)] == ["1"]
    assert registry.aliases(proj.client, "bank-splines")["champion"] == "1"
    assert proj.ledger.get_meta("bank-splines", recovery.REFERENCE_FOR) == "1"
    assert proj.ledger.get_meta("bank-splines", "model_digest:1")
    assert integrity.load_verified(proj.client, proj.ledger, "bank-splines", "1") is not None
