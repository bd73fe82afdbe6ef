"""Probation verdicts: the new champion against the previous one on the same labelled rows."""

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, roc_auc_score

from modelwatch.decide import probation
from modelwatch.settings import DataSettings, ProbationSettings

DATA = DataSettings(id="id", target="y", features=["x"])
CLF = DataSettings(id="id", target="y", features=["x"], positive_label=1)


def _rows(champ_err: float, prev_err: float, n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.normal(100, 10, n)
    return pd.DataFrame(
        {
            "y": y,
            "prediction": y + champ_err * rng.choice([-1, 1], n),
            "shadow.prediction": y + prev_err * rng.choice([-1, 1], n),
        }
    )


@pytest.mark.parametrize(
    ("champ_err", "prev_err", "tolerance", "status"),
    [
        (5.0, 5.0, 0.05, "passed"),  # equal
        (5.2, 5.0, 0.05, "passed"),  # 4 % worse, within 5 %
        (5.3, 5.0, 0.05, "failed"),  # 6 % worse
        (4.0, 5.0, 0.0, "passed"),  # better
        (5.01, 5.0, 0.0, "failed"),  # any worsening with zero tolerance
    ],
)
def test_regression_verdicts(champ_err, prev_err, tolerance, status):
    rows = _rows(champ_err, prev_err)
    verdict = probation.judge(
        rows,
        2,
        ProbationSettings(batches=2, tolerance=tolerance),
        DATA,
        "regression",
        "mae",
        champion_version="3",
        previous_version="2",
    )
    assert verdict.status == status
    # reference: sklearn.metrics.mean_absolute_error on the same rows
    assert verdict.champion_score == pytest.approx(mean_absolute_error(rows.y, rows.prediction))
    assert verdict.previous_score == pytest.approx(
        mean_absolute_error(rows.y, rows["shadow.prediction"])
    )
    assert ("roll back" in verdict.reason) == (status == "failed")


def test_pending_until_enough_batches():
    verdict = probation.judge(
        _rows(9, 1),
        1,
        ProbationSettings(batches=2, tolerance=0.05),
        DATA,
        "regression",
        "mae",
        champion_version="3",
        previous_version="2",
    )
    assert verdict.status == "pending"
    assert verdict.champion_score is None
    assert "1 of 2" in verdict.reason


def test_classification_uses_scores_and_direction():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    good = np.clip(y * 0.6 + rng.uniform(0, 0.4, 400), 0, 1)
    noisy = rng.uniform(0, 1, 400)
    rows = pd.DataFrame(
        {
            "y": y,
            "prediction": (noisy > 0.5).astype(int),
            "prediction_score": noisy,
            "shadow.prediction": (good > 0.5).astype(int),
            "shadow.prediction_score": good,
        }
    )
    verdict = probation.judge(
        rows,
        3,
        ProbationSettings(batches=3, tolerance=0.05),
        CLF,
        "classification",
        "roc_auc",
        champion_version="5",
        previous_version="4",
        score_column="prediction_score",
    )
    # reference: sklearn.metrics.roc_auc_score
    assert verdict.champion_score == pytest.approx(roc_auc_score(y, noisy))
    assert verdict.previous_score == pytest.approx(roc_auc_score(y, good))
    assert verdict.status == "failed"


def test_shadow_columns_keep_the_id():
    scored = pd.DataFrame({"id": [1], "prediction": [2.0], "prediction_score": [0.3]})
    out = probation.shadow_columns(scored, DATA)
    assert list(out.columns) == ["id", "shadow.prediction", "shadow.prediction_score"]
