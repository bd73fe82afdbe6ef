"""The same loop on a classification dataset (UCI bank marketing), configured only by params."""

from __future__ import annotations

import pandas as pd
import pytest
import sklearn.metrics

from modelwatch.settings import load_settings
from modelwatch.stores import history, registry
from modelwatch.stores.project import open_project
from modelwatch.training import scoring
from tests.conftest import write_params

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    from flows.replay import replay

    folder = tmp_path_factory.mktemp("bank")
    params = write_params("params.bank.yaml", folder, demo={"max_batches": 3})
    rows = replay(params_path=params)
    proj = open_project(params)
    loaded, client, exps = load_settings(params), proj.client, proj.experiments
    return {"rows": rows, "loaded": loaded, "client": client, "exps": exps}


def test_classification_loop_runs_and_registers(bank):
    runs = history.batch_runs(bank["client"], bank["exps"].monitoring)
    assert [r.status for r in runs] == [history.ACCEPTED] * 3
    assert registry.aliases(bank["client"], "bank-subscription")["champion"]
    assert {
        "performance.roc_auc",
        "performance.f1",
        "performance.accuracy",
        "performance.precision",
        "performance.recall",
    } <= set(runs[0].metrics)


def test_realized_classification_metrics_match_sklearn(bank):
    """Reference: sklearn.metrics.roc_auc_score and f1_score (pos_label=2) on stored predictions."""
    root = bank["loaded"].paths.data_repo
    run = history.batch_runs(bank["client"], bank["exps"].monitoring)[0]
    preds = pd.read_csv(root / f"data/predictions/{run.batch_id}.csv")
    labels = pd.read_csv(root / f"data/labels/{run.batch_id}.csv")
    joined = preds.merge(labels, on="row_id")
    assert len(joined) == 2500
    auc = sklearn.metrics.roc_auc_score(joined["Class"] == 2, joined[scoring.SCORE])
    f1 = sklearn.metrics.f1_score(joined["Class"], joined["prediction"], pos_label=2)
    assert run.metrics["performance.roc_auc"] == pytest.approx(auc, rel=1e-9)
    assert run.metrics["performance.f1"] == pytest.approx(f1, rel=1e-9, abs=1e-12)


def test_cbpe_estimates_before_labels_then_compares_with_realized(bank):
    """Estimated metrics are logged when a batch is scored (no labels yet); when its labels
    arrive, estimation_error = realized - estimated is logged at the same step."""
    runs = history.batch_runs(bank["client"], bank["exps"].monitoring)
    for run in runs:
        assert {"estimated.accuracy", "estimated.roc_auc", "estimated.f1"} <= set(run.metrics)
    first = runs[0]
    for metric in ("accuracy", "roc_auc", "f1"):
        assert first.metrics[f"estimation_error.{metric}"] == pytest.approx(
            first.metrics[f"performance.{metric}"] - first.metrics[f"estimated.{metric}"]
        )
    assert abs(first.metrics["estimation_error.accuracy"]) < 0.05
    assert {"performance.pr_auc", "performance.log_loss", "baseline.dummy.log_loss"} <= set(
        first.metrics
    )
