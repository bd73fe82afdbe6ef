"""Unit tests for modelwatch.drift.report: per-feature results, the verdict and serialisation."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import scipy.spatial.distance
import scipy.stats

from modelwatch.drift import DriftReport, compute_drift
from modelwatch.errors import ConfigError
from modelwatch.settings import DataSettings, DriftSettings, load_settings
from tests.conftest import write_params

DATA = DataSettings(id="id", target="y", features=["a", "b", "c", "cat"], categorical=["cat"])
# the fixed, uncorrected tests of earlier releases: KS and chi-squared, share rule only
KS = DriftSettings(
    numeric_test="ks",
    categorical_test="chi2",
    p_value_threshold=0.05,
    effect_size_floor=0.0,
    correction="none",
    dataset_fdr=None,
    dataset_drift_share=0.5,
    min_rows=30,
)
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
    assert (report.dataset_rule, report.summary()) == (
        "share",
        "drift: 2 of 4 features (share 0.50 >= 0.50): a, b; most important: "
        f"a ({_by_column(report)['a'].effect_size / 4:.3g}), "
        f"b ({_by_column(report)['b'].effect_size / 4:.3g})",
    )


def test_categorical_drift_uses_chi2(rng):
    """Reference: scipy.stats.chi2_contingency (correction=False) on the 2 x k table."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, cat_p=(0.1, 0.2, 0.7))
    got = _by_column(compute_drift(ref, cur, DATA, KS))["cat"]
    assert (got.test, got.kind, got.drifted) == ("chi2", "categorical", True)
    assert got.p_value == pytest.approx(_chi2_p(ref["cat"], cur["cat"]), rel=1e-9)


def test_wasserstein_setting_uses_distance_threshold(rng):
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)."""
    settings = DriftSettings(
        numeric_test="wasserstein",
        categorical_test="chi2",
        distance_threshold=0.2,
        min_rows=30,
        bootstrap={"samples": 0},  # the configured threshold alone (the null: test_drift_null)
    )
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
    assert got["c"].message == (
        "column 'c': not enough data: 0 non-missing current values, need at least 30"
    )
    assert (report.n_features_tested, report.n_drifted, report.dataset_drift) == (2, 1, True)
    assert report.summary() == (
        "drift: 1 of 2 features (share 0.50 >= 0.50): a; "
        f"most important: a ({got['a'].weighted_score:.3g}); "
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


def test_classification_labels_use_the_categorical_test(rng):
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


# --- automatic choice per column ----------------------------------------------------------------

AUTO_DATA = DataSettings(
    id="id", target="y", features=["a", "few", "flag", "cat"], categorical=["flag", "cat"]
)


def _auto_frame(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "a": rng.normal(shift, 1, n),
            "few": rng.integers(0, 4, n),  # numeric, 4 distinct values
            "flag": rng.choice(["no", "yes"], n),
            "cat": rng.choice(CATS, n),
        }
    )


def test_auto_small_reference_uses_p_value_tests(rng):
    """Reference of <= 1000 rows: KS, chi2 for few numeric values, z for binary; p < 0.05.
    Reference: scipy.stats.ks_2samp, chi2_contingency(correction=False), norm.sf."""
    ref, cur = _auto_frame(rng, 1000), _auto_frame(rng, 200)
    got = _by_column(compute_drift(ref, cur, AUTO_DATA, DriftSettings(correction="none")))
    assert {c: (f.test, f.threshold) for c, f in got.items()} == {
        "a": ("ks", 0.05),
        "few": ("chi2", 0.05),
        "flag": ("z", 0.05),
        "cat": ("chi2", 0.05),
    }
    assert got["a"].p_value == pytest.approx(
        scipy.stats.ks_2samp(ref["a"], cur["a"]).pvalue, rel=1e-9
    )
    assert got["cat"].p_value == pytest.approx(_chi2_p(ref["cat"], cur["cat"]), rel=1e-9)
    x1, x2 = (ref["flag"] == "yes").sum(), (cur["flag"] == "yes").sum()
    pooled = (x1 + x2) / 1200
    z = (x2 / 200 - x1 / 1000) / np.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 200))
    assert got["flag"].p_value == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)


def test_auto_large_reference_uses_distances(rng):
    """Reference of > 1000 rows: normalised Wasserstein and Jensen-Shannon (base 2), >= 0.1.
    Reference: scipy.stats.wasserstein_distance / numpy.std, scipy jensenshannon(base=2)."""
    ref, cur = _auto_frame(rng, 1001), _auto_frame(rng, 200, shift=0.5)
    fixed = DriftSettings(bootstrap={"samples": 0})  # the null's thresholds: test_drift_null
    got = _by_column(compute_drift(ref, cur, AUTO_DATA, fixed))
    assert {c: (f.test, f.threshold, f.p_value) for c, f in got.items()} == {
        "a": ("wasserstein", 0.1, None),
        "few": ("jensenshannon_base2", 0.1, None),
        "flag": ("jensenshannon_base2", 0.1, None),
        "cat": ("jensenshannon_base2", 0.1, None),
    }
    want = scipy.stats.wasserstein_distance(ref["a"], cur["a"]) / np.std(ref["a"])
    assert got["a"].statistic == pytest.approx(want, rel=1e-9) and got["a"].drifted
    table = [[int((s == c).sum()) for c in CATS] for s in (ref["cat"], cur["cat"])]
    p, q = (np.array(row) / sum(row) for row in table)
    js = scipy.spatial.distance.jensenshannon(p, q, base=2)
    assert got["cat"].statistic == pytest.approx(js, rel=1e-9)


def test_column_overrides_choose_test_threshold_and_floor(rng):
    """Reference: scipy.stats.anderson_ksamp and ks_2samp; an override beats numeric_test."""
    settings = DriftSettings(
        numeric_test="ks",
        columns={
            "b": {"test": "psi", "threshold": 0.25},
            "c": {"effect_size_floor": 0.5},
            "a": {"test": "cramervonmises"},
        },
    )
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    got = _by_column(compute_drift(ref, cur, DATA, settings))
    assert (got["b"].test, got["b"].threshold) == ("psi", 0.25)
    assert (got["c"].test, got["c"].effect_size_floor) == ("ks", 0.5)
    assert got["a"].p_value == pytest.approx(
        scipy.stats.cramervonmises_2samp(ref["a"], cur["a"]).pvalue, rel=1e-9
    )


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            {"cat": {"test": "ks"}},
            "drift.columns.cat.test: 'ks' does not accept the categorical column 'cat' "
            "(accepted: chi2, hellinger, jensenshannon_base2, kl, psi, z)",
        ),
        (
            {"nope": {"threshold": 0.2}},
            "drift.columns.nope: 'nope' is not a feature, the prediction or the target "
            "(known: a, b, c, cat, prediction, y)",
        ),
    ],
    ids=["wrong-kind", "unknown-column"],
)
def test_bad_column_override_is_a_config_error(rng, columns, message):
    """The message names the key and what is accepted."""
    with pytest.raises(ConfigError) as info:
        compute_drift(_frame(rng, 50), _frame(rng, 50), DATA, DriftSettings(columns=columns))
    assert str(info.value) == message


def test_unknown_test_name_in_params_is_a_config_error(tmp_path):
    """An unknown test in drift.columns is rejected when params.yaml loads, naming the key."""
    params = write_params(
        "params.yaml", tmp_path, drift={"columns": {"temp": {"test": "anderson"}}}
    )
    with pytest.raises(ConfigError, match=r"drift\.columns\.temp\.test: .*\(got 'anderson'\)"):
        load_settings(params)
    assert params.exists()


# --- Benjamini-Hochberg and the dataset verdict ---------------------------------------------


def test_bh_adjusted_p_values_match_scipy_and_decide_columns(rng):
    """Reference: scipy.stats.false_discovery_control(p, method="bh") over the p-value tests."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=0.15)
    raw = compute_drift(ref, cur, DATA, DriftSettings(correction="none", effect_size_floor=0))
    bh = compute_drift(ref, cur, DATA, DriftSettings(correction="bh", effect_size_floor=0))
    p = [f.p_value for f in raw.features]
    want = scipy.stats.false_discovery_control(p, method="bh")
    assert [f.p_value_adjusted for f in bh.features] == pytest.approx(list(want), rel=1e-9)
    assert [f.p_value for f in bh.features] == p  # the raw p-value is kept
    assert [f.drifted for f in raw.features] == [x < 0.05 for x in p]
    assert [f.drifted for f in bh.features] == [x < 0.05 for x in want]
    assert "BH-adjusted p-value" in bh.features[0].message


def test_bh_rule_fires_below_the_share_threshold(rng):
    """One strongly drifted feature of four: the share rule does not fire, BH at FDR 0.01 does."""
    ref, cur = _frame(rng, 700), _frame(rng, 170)
    cur["a"] = cur["a"] + 2.0
    report = compute_drift(ref, cur, DATA, DriftSettings(dataset_fdr=0.01))
    assert (report.n_drifted, report.drift_share) == (1, 0.25)
    assert (report.dataset_drift, report.dataset_rule) == (True, "bh")
    assert report.dataset_reason == (
        "drift: Benjamini-Hochberg at FDR 0.01 flags 1 feature(s) (a) although only "
        "1 of 4 features after Benjamini-Hochberg (share 0.25 < 0.50): a"
    )
    off = compute_drift(ref, cur, DATA, DriftSettings(dataset_fdr=None))
    assert (off.dataset_drift, off.dataset_rule) == (False, None)
    assert off.dataset_reason.startswith("no dataset drift: 1 of 4 features")


def test_no_drift_reason_names_both_rules(rng):
    """Reference: the sentence says neither the share nor Benjamini-Hochberg fired."""
    report = compute_drift(_frame(rng, 700), _frame(rng, 170), DATA, DriftSettings())
    assert (report.dataset_drift, report.dataset_rule) == (False, None)
    assert report.summary() == (
        "no dataset drift: 0 of 4 features after Benjamini-Hochberg (share 0.00 < 0.50); "
        "no feature flagged by Benjamini-Hochberg at FDR 0.01"
    )


def test_broken_columns_never_poison_the_verdict(rng):
    """NaN-only, empty-string, constant, all-unique, mixed and infinite columns: each reported
    alone; the verdict is taken over the columns that could be tested."""
    data = DataSettings(
        id="id",
        target="y",
        features=["a", "nan", "const", "ids", "mixed", "inf", "newcat"],
        categorical=["ids", "newcat"],
    )
    n_ref, n_cur = 700, 170

    def frame(n: int, shift: float, cats: list[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "a": rng.normal(shift, 1, n),
                "nan": [np.nan] * n,
                "const": [1.0] * n,
                "ids": [f"{shift}-{i}" for i in range(n)],
                "mixed": pd.Series([*rng.normal(size=n - 2), "n/a", "x"], dtype=object),
                "inf": np.r_[rng.normal(size=n - 1), np.inf],
                "newcat": rng.choice(cats, n),
            }
        )

    ref, cur = frame(n_ref, 0.0, ["p", "q"]), frame(n_cur, 2.0, ["p", "q", "r"])
    report = compute_drift(ref, cur, data, DriftSettings())
    got = {f.column: (f.status, f.drifted) for f in report.features}
    assert got == {
        "a": ("ok", True),
        "nan": ("insufficient_data", False),
        "const": ("ok", False),
        "ids": ("high_cardinality", False),
        "mixed": ("invalid", False),
        "inf": ("invalid", False),
        "newcat": ("ok", True),
    }
    assert (report.n_features_tested, report.n_drifted) == (3, 2)
    assert (report.dataset_drift, report.dataset_rule) == (True, "share")


def test_a_scipy_failure_is_an_error_status_not_a_crash(rng, monkeypatch):
    """A data-driven exception inside a test is reported on its column, others still tested."""

    def broken(*args, **kwargs):
        raise ValueError("array must not contain infs or NaNs")

    monkeypatch.setattr(scipy.stats, "cramervonmises_2samp", broken)
    settings = DriftSettings(columns={"a": {"test": "cramervonmises"}})
    report = compute_drift(_frame(rng, 700), _frame(rng, 170, shift=1.0), DATA, settings)
    got = _by_column(report)["a"]
    assert (got.status, got.drifted) == ("error", False)
    assert got.message == (
        "column 'a': cramervonmises failed: ValueError: array must not contain infs or NaNs"
    )
    assert report.n_features_tested == 3 and report.drifted_features() == ["b"]


# --- importance ---------------------------------------------------------------------------------


def test_importance_weights_and_ranks_the_features(rng):
    """weighted_score = effect size x normalised importance; ranked() sorts by it."""
    ref, cur = _frame(rng, 700), _frame(rng, 170, shift=1.0)
    report = compute_drift(ref, cur, DATA, KS, importance={"a": 1.0, "b": 7.0, "zzz": 5.0})
    got = _by_column(report)
    assert [got[c].importance for c in ("a", "b", "c", "cat")] == [0.125, 0.875, 0.0, 0.0]
    d_b = scipy.stats.ks_2samp(ref["b"], cur["b"]).statistic
    assert got["b"].weighted_score == pytest.approx(0.875 * d_b, rel=1e-9)
    assert [f.column for f in report.ranked()][:2] == ["b", "a"]
    assert "; most important: b (" in report.summary()


def test_no_importance_gives_equal_weights(rng):
    """Without importances (or all zero) every feature weighs 1 / n_features."""
    for importance in (None, {"a": 0.0}):
        report = compute_drift(_frame(rng, 200), _frame(rng, 100), DATA, KS, importance=importance)
        assert [f.importance for f in report.features] == [0.25] * 4


def test_feature_importance_of_a_fitted_pipeline(rng):
    """Reference: RandomForestRegressor.feature_importances_ summed back to input features."""
    from modelwatch.drift.importance import feature_importance
    from modelwatch.settings import TrainingSettings
    from modelwatch.training.fit import build_pipeline

    frame = _frame(rng, 300)
    y = 3 * frame["a"] + rng.normal(0, 0.1, 300)
    model = build_pipeline(
        DATA,
        TrainingSettings(model="random_forest", hyperparameters={"n_estimators": 10}),
        "regression",
    )
    model.fit(frame[DATA.features], y)
    got = feature_importance(model, DATA.features)
    names = model[:-1].get_feature_names_out()
    want = dict(zip(names, model[-1].feature_importances_, strict=True))
    assert got == pytest.approx(
        {"a": want["num__a"], "b": want["num__b"], "c": want["num__c"], "cat": want["cat__cat"]},
        rel=1e-9,
    )
    assert max(got, key=got.get) == "a"
    hgb = build_pipeline(DATA, TrainingSettings(), "regression").fit(frame[DATA.features], y)
    assert feature_importance(hgb, DATA.features) is None  # no feature_importances_


def test_old_report_dict_without_new_fields_still_loads(rng):
    """from_dict accepts reports written before dataset_rule and the FeatureDrift additions."""
    report = compute_drift(_frame(rng, 200), _frame(rng, 100), DATA, KS)
    raw = report.to_dict()
    for key in ("dataset_rule", "dataset_reason", "correction", "dataset_fdr"):
        del raw[key]
    back = DriftReport.from_dict(json.loads(json.dumps(raw)))
    assert back.features == report.features and back.dataset_rule is None


def test_importing_report_loads_no_orchestration_or_tracking():
    """The pure core must not import prefect or mlflow (keeps `modelwatch --help` fast)."""
    code = (
        "import modelwatch.drift.report, sys; "
        "assert 'prefect' not in sys.modules and 'mlflow' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ranked_puts_drift_first_even_under_a_heavier_weight(rng):
    """A column that did not drift never outranks one that did, whatever its importance."""
    data = DataSettings(id="id", target="y", features=["stable", "moved"])
    ref = pd.DataFrame({"stable": rng.normal(0, 1, 800), "moved": rng.normal(0, 1, 800)})
    cur = pd.DataFrame({"stable": rng.normal(0, 1, 500), "moved": rng.normal(1.0, 1, 500)})
    report = compute_drift(
        ref, cur, data, DriftSettings(numeric_test="ks"), importance={"stable": 0.99, "moved": 0.01}
    )
    stable, moved = (next(f for f in report.features if f.column == c) for c in ("stable", "moved"))
    assert moved.drifted and not stable.drifted
    assert stable.weighted_score > moved.weighted_score  # the weight alone would invert them
    assert [f.column for f in report.ranked()] == ["moved", "stable"]
