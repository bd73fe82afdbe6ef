"""Unit tests for modelwatch.drift.report: per-feature results, the verdict and serialisation."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from modelwatch.drift import DriftReport, compute_drift
from modelwatch.settings import DataSettings, DriftSettings

DATA = DataSettings(id="id", target="y", features=["a", "b", "c", "cat"], categorical=["cat"])
KS = DriftSettings(numeric_test="ks", p_value_threshold=0.05, dataset_drift_share=0.5, min_rows=30)
CATS = ["x", "y", "z"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(11)


def _frame(
    rng: np.random.Generator, n: int, shift: float = 0.0, cat_p: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": np.arange(n),
            "a": rng.normal(shift, 1, n),
            "b": rng.gamma(2.0, 1.0 + shift, n),
            "c": rng.uniform(0, 1, n),
            "cat": rng.choice(CATS, size=n, p=list(cat_p)),
        }
    )


def _chi2_p(ref: pd.Series, cur: pd.Series) -> float:
    table = [[int((s == c).sum()) for c in CATS] for s in (ref, cur)]
    return scipy.stats.chi2_contingency(table, correction=False).pvalue


def _by_column(report: DriftReport) -> dict:
    return {f.column: f for f in report.features}


def test_no_drift(rng):
    """Reference: scipy.stats.ks_2samp (two-sided) and chi2_contingency (correction=False)."""
    ref, cur = _frame(rng, 700), _frame(rng, 170)
    report = compute_drift(ref, cur, DATA, KS)
    got = _by_column(report)
    for col in ("a", "b", "c"):
        want = scipy.stats.ks_2samp(ref[col], cur[col]).pvalue
        assert got[col].p_value == pytest.approx(want, rel=1e-9)
    assert got["cat"].p_value == pytest.approx(_chi2_p(ref["cat"], cur["cat"]), rel=1e-9)
    assert (report.n_features_tested, report.n_drifted, report.dataset_drift) == (4, 0, False)
    assert report.summary() == "no dataset drift: 0 of 4 features (share 0.00 < 0.50)"
    assert (report.prediction, report.target) == (None, None)


def test_clear_drift(rng):
    """Reference: scipy.stats.ks_2samp (two-sided); a and b shift, c and cat do not."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    report = compute_drift(ref, cur, DATA, KS)
    for col in ("a", "b"):
        want = scipy.stats.ks_2samp(ref[col], cur[col]).pvalue
        assert _by_column(report)[col].p_value == pytest.approx(want, rel=1e-9)
    assert report.drifted_features() == ["a", "b"]
    assert (report.n_drifted, report.drift_share, report.dataset_drift) == (2, 0.5, True)
    assert report.summary() == "drift: 2 of 4 features (share 0.50 >= 0.50): a, b"


def test_categorical_drift_uses_chi2(rng):
    """Reference: scipy.stats.chi2_contingency (correction=False) on the 2 x k table."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, cat_p=(0.1, 0.2, 0.7))
    got = _by_column(compute_drift(ref, cur, DATA, KS))["cat"]
    assert (got.test, got.kind, got.drifted) == ("chi2", "categorical", True)
    assert got.p_value == pytest.approx(_chi2_p(ref["cat"], cur["cat"]), rel=1e-9)


def test_wasserstein_setting_uses_distance_threshold(rng):
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)."""
    settings = DriftSettings(numeric_test="wasserstein", wasserstein_threshold=0.2, min_rows=30)
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    got = _by_column(compute_drift(ref, cur, DATA, settings))
    want = scipy.stats.wasserstein_distance(ref["a"], cur["a"]) / np.std(ref["a"])
    assert got["a"].statistic == pytest.approx(want, rel=1e-9)
    assert (got["a"].test, got["a"].threshold, got["a"].p_value) == ("wasserstein", 0.2, None)
    assert (got["cat"].test, got["cat"].threshold) == ("chi2", 0.05)


def test_missing_column_is_invalid_and_others_still_tested(rng):
    """A column missing from the batch is reported by name and left out of the share."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0).drop(columns=["c"])
    report = compute_drift(ref, cur, DATA, KS)
    got = _by_column(report)["c"]
    assert (got.status, got.drifted, got.ref_rows, got.cur_rows) == ("invalid", False, 700, 0)
    assert got.message == "column 'c' is missing from the current data"
    assert (report.n_features_tested, report.n_drifted) == (3, 2)
    assert report.drift_share == pytest.approx(2 / 3)
    assert report.summary().endswith("; not tested: c (invalid)")


def test_column_missing_from_both_sides(rng):
    """Both sides are named when neither frame has the column."""
    ref, cur = _frame(rng, 100).drop(columns=["a"]), _frame(rng, 100).drop(columns=["a"])
    got = _by_column(compute_drift(ref, cur, DATA, KS))["a"]
    assert got.message == "column 'a' is missing from the reference and current data"


def test_one_broken_column_does_not_poison_the_verdict(rng):
    """NaN-only and infinite columns are not tested; the share counts only tested columns."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    cur["c"] = np.nan
    cur.loc[0, "b"] = np.inf
    report = compute_drift(ref, cur, DATA, KS)
    got = _by_column(report)
    assert (got["b"].status, got["c"].status) == ("invalid", "insufficient_data")
    assert got["c"].message == "column 'c': 0 non-missing current values, need at least 30"
    assert (report.n_features_tested, report.n_drifted, report.dataset_drift) == (2, 1, True)
    assert report.summary() == (
        "drift: 1 of 2 features (share 0.50 >= 0.50): a; "
        "not tested: b (invalid), c (insufficient_data)"
    )


def test_nothing_testable_gives_no_verdict(rng):
    """An empty batch tests nothing: share 0, no dataset drift, and the summary says so."""
    report = compute_drift(_frame(rng, 700), _frame(rng, 0), DATA, KS)
    assert (report.n_features_tested, report.drift_share, report.dataset_drift) == (0, 0.0, False)
    assert report.summary().startswith("drift not assessed: none of 4 features could be tested")


def test_regression_prediction_and_target_use_numeric_test(rng):
    """Reference: scipy.stats.ks_2samp (two-sided); not counted in the feature share."""
    ref, cur = _frame(rng, 700), _frame(rng, 170)
    pred_ref, pred_cur = pd.Series(rng.normal(0, 1, 700)), pd.Series(rng.normal(2, 1, 170))
    y_ref, y_cur = pd.Series(rng.poisson(50, 700)), pd.Series(rng.poisson(50, 170))
    report = compute_drift(
        ref,
        cur,
        DATA,
        KS,
        prediction_reference=pred_ref,
        prediction_current=pred_cur,
        target_reference=y_ref,
        target_current=y_cur,
    )
    assert report.prediction.p_value == pytest.approx(
        scipy.stats.ks_2samp(pred_ref, pred_cur).pvalue, rel=1e-9
    )
    assert report.target.p_value == pytest.approx(
        scipy.stats.ks_2samp(y_ref, y_cur).pvalue, rel=1e-9
    )
    assert (report.prediction.column, report.prediction.test, report.prediction.drifted) == (
        "prediction",
        "ks",
        True,
    )
    assert (report.target.column, report.target.test, report.target.drifted) == ("y", "ks", False)
    assert (report.n_features_tested, report.n_drifted) == (4, 0)
    assert report.summary().endswith("; prediction 'prediction' drifted")


def test_classification_labels_use_chi2(rng):
    """Reference: scipy.stats.chi2_contingency (correction=False) for 0/1 labels."""
    ref, cur = _frame(rng, 200), _frame(rng, 100)
    y_ref = pd.Series(rng.binomial(1, 0.3, 200))
    y_cur = pd.Series(rng.binomial(1, 0.6, 100))
    got = compute_drift(ref, cur, DATA, KS, target_reference=y_ref, target_current=y_cur).target
    table = [[int((s == v).sum()) for v in (0, 1)] for s in (y_ref, y_cur)]
    want = scipy.stats.chi2_contingency(table, correction=False).pvalue
    assert (got.test, got.kind, got.drifted) == ("chi2", "categorical", True)
    assert got.p_value == pytest.approx(want, rel=1e-9)


def test_prediction_given_on_one_side_only_is_invalid(rng):
    """A prediction series without its counterpart is reported, not silently skipped."""
    pred = pd.Series(rng.normal(size=170))
    report = compute_drift(_frame(rng, 700), _frame(rng, 170), DATA, KS, prediction_current=pred)
    assert (report.prediction.status, report.prediction.cur_rows) == ("invalid", 170)
    assert report.prediction.message == "column 'prediction': no reference values given"
    assert report.target is None


def test_does_not_mutate_inputs(rng):
    """Frames and series come back unchanged (values, dtypes, names)."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    cur.loc[:9, "a"] = np.nan
    cur["c"] = cur["c"].astype(object)
    pred_ref, pred_cur = (
        pd.Series(rng.normal(size=700), name="p"),
        pd.Series(rng.normal(size=170), name="p"),
    )
    inputs = (ref, cur, pred_ref, pred_cur)
    before = [x.copy(deep=True) for x in inputs]
    compute_drift(ref, cur, DATA, KS, prediction_reference=pred_ref, prediction_current=pred_cur)
    pd.testing.assert_frame_equal(ref, before[0])
    pd.testing.assert_frame_equal(cur, before[1])
    pd.testing.assert_series_equal(pred_ref, before[2])
    pd.testing.assert_series_equal(pred_cur, before[3])


def test_report_round_trips_through_json(rng):
    """to_dict is JSON-able with named fields; from_dict rebuilds an equal report."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0).drop(columns=["c"])
    report = compute_drift(
        ref,
        cur,
        DATA,
        KS,
        target_reference=pd.Series(rng.normal(size=700)),
        target_current=pd.Series(rng.normal(size=170)),
    )
    raw = json.loads(json.dumps(report.to_dict()))
    assert raw["features"][0]["column"] == "a" and raw["prediction"] is None
    assert raw["n_drifted"] == 2 and raw["share_threshold"] == 0.5
    assert DriftReport.from_dict(raw) == report


def test_to_rows_has_one_row_per_feature_prediction_and_target(rng):
    """Rows are flat dicts in order: features, then prediction, then target."""
    series = pd.Series(rng.normal(size=100))
    report = compute_drift(
        _frame(rng, 100),
        _frame(rng, 100),
        DATA,
        KS,
        prediction_reference=series,
        prediction_current=series,
        target_reference=series,
        target_current=series,
    )
    rows = report.to_rows()
    assert [(r["role"], r["column"]) for r in rows] == [
        ("feature", "a"),
        ("feature", "b"),
        ("feature", "c"),
        ("feature", "cat"),
        ("prediction", "prediction"),
        ("target", "y"),
    ]
    assert rows[4]["p_value"] == report.prediction.p_value == 1.0


def test_importing_report_loads_no_orchestration_or_tracking():
    """The pure core must not import prefect or mlflow (keeps `modelwatch --help` fast)."""
    code = (
        "import modelwatch.drift.report, sys; "
        "assert 'prefect' not in sys.modules and 'mlflow' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
