"""Unit tests for modelwatch.drift.stattests: each statistic against scipy, each bad input."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from modelwatch.drift import stattests
from modelwatch.drift.stattests import TESTS, FeatureDrift


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


def _s(values, name: str = "x") -> pd.Series:
    return pd.Series(values, name=name)


def _table(ref: list, cur: list) -> np.ndarray:
    """Returns the 2 x k contingency table built by hand, categories in first-seen order."""
    cats = list(dict.fromkeys([*ref, *cur]))
    return np.array([[ref.count(c) for c in cats], [cur.count(c) for c in cats]])


# --- ks ----------------------------------------------------------------------------------------


def test_ks_no_drift_matches_scipy(rng):
    """Reference: scipy.stats.ks_2samp (two-sided)."""
    ref, cur = rng.normal(0, 1, 700), rng.normal(0, 1, 170)
    got = stattests.ks_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert (got.status, got.drifted, got.ref_rows, got.cur_rows) == ("ok", False, 700, 170)
    assert (got.column, got.kind, got.test, got.threshold) == ("x", "numeric", "ks", 0.05)


def test_ks_clear_drift_matches_scipy(rng):
    """Reference: scipy.stats.ks_2samp (two-sided)."""
    ref, cur = rng.normal(0, 1, 700), rng.normal(1.0, 1, 170)
    got = stattests.ks_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.drifted and got.status == "ok"
    assert got.message.startswith("column 'x': KS p-value") and "< 0.05" in got.message


def test_ks_drops_missing_values_before_testing(rng):
    """Reference: scipy.stats.ks_2samp (two-sided) on the non-missing values."""
    ref, cur = rng.normal(0, 1, 100), rng.normal(0.5, 1, 60)
    ref_nan, cur_nan = ref.copy(), cur.copy()
    ref_nan[:10], cur_nan[:5] = np.nan, np.nan
    got = stattests.ks_test(_s(ref_nan), _s(cur_nan), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref[10:], cur[5:])
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert (got.ref_rows, got.cur_rows) == (90, 55)


def test_ks_coerces_numeric_strings(rng):
    """Reference: scipy.stats.ks_2samp (two-sided) on the coerced floats."""
    ref, cur = rng.normal(0, 1, 80), rng.normal(0, 1, 40)
    mixed = pd.Series([str(v) if i % 2 else v for i, v in enumerate(cur)], dtype=object)
    got = stattests.ks_test(_s(ref), mixed.rename("x"), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.status == "ok"
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)


def test_ks_identical_constants_do_not_drift():
    """Reference: scipy.stats.ks_2samp (two-sided); a constant on both sides gives p = 1."""
    ref, cur = np.full(40, 3.0), np.full(30, 3.0)
    got = stattests.ks_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9) and got.p_value == 1.0
    assert not got.drifted and got.status == "ok"


@pytest.mark.parametrize(
    ("current", "message"),
    [
        ([np.nan] * 50, "column 'hum': 0 non-missing current values, need at least 30"),
        ([], "column 'hum': 0 non-missing current values, need at least 30"),
        ([0.4], "column 'hum': 1 non-missing current values, need at least 30"),
        (
            [0.4] * 12 + [np.nan] * 40,
            "column 'hum': 12 non-missing current values, need at least 30",
        ),
    ],
    ids=["nan-only", "empty", "single-value", "twelve-values"],
)
def test_ks_too_few_values_is_insufficient_data(rng, current, message):
    """Too few non-missing values gives status insufficient_data, never an exception."""
    got = stattests.ks_test(_s(rng.normal(size=100), "hum"), _s(current, "hum"), 0.05, 30)
    assert (got.status, got.drifted, got.statistic, got.p_value) == (
        "insufficient_data",
        False,
        None,
        None,
    )
    assert got.message == message


def test_ks_too_few_reference_values_is_insufficient_data(rng):
    """The reference side is checked too."""
    got = stattests.ks_test(_s([1.0] * 5, "hum"), _s(rng.normal(size=50), "hum"), 0.05, 30)
    assert got.status == "insufficient_data"
    assert got.message == "column 'hum': 5 non-missing reference values, need at least 30"


def test_ks_infinity_is_invalid(rng):
    """An infinite value makes a numeric test invalid; the column is not tested."""
    cur = rng.normal(size=50)
    cur[3] = np.inf
    got = stattests.ks_test(_s(rng.normal(size=50)), _s(cur), 0.05, 30)
    assert (got.status, got.drifted, got.p_value) == ("invalid", False, None)
    assert got.message == (
        "column 'x': 1 infinite current values; a numeric test needs finite numbers"
    )


def test_ks_non_numeric_values_are_invalid(rng):
    """Values that pd.to_numeric cannot coerce make the column invalid, with examples."""
    cur = pd.Series([*rng.normal(size=40), "abc", "n/a", "abc"], dtype=object, name="x")
    got = stattests.ks_test(_s(rng.normal(size=50)), cur, 0.05, 30)
    assert got.status == "invalid" and not got.drifted
    assert got.message == (
        "column 'x': 3 non-numeric current values (e.g. 'abc', 'n/a'); a numeric test needs numbers"
    )


def test_ks_string_column_is_invalid():
    """A string column under a numeric test is invalid, not an exception."""
    ref = pd.Series(["a", "b"] * 20, name="x")
    got = stattests.ks_test(ref, ref.copy(), 0.05, 30)
    assert got.status == "invalid" and "40 non-numeric reference values" in got.message


# --- wasserstein -------------------------------------------------------------------------------


def test_wasserstein_no_drift_matches_scipy(rng):
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)."""
    ref, cur = rng.normal(10, 2, 700), rng.normal(10, 2, 170)
    got = stattests.wasserstein_test(_s(ref), _s(cur), threshold=0.3, min_rows=30)
    want = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert got.statistic == pytest.approx(want, rel=1e-9)
    assert (got.p_value, got.drifted, got.status, got.test) == (None, False, "ok", "wasserstein")


def test_wasserstein_clear_drift_matches_scipy(rng):
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)."""
    ref, cur = rng.normal(10, 2, 700), rng.normal(12, 2, 170)
    got = stattests.wasserstein_test(_s(ref), _s(cur), threshold=0.3, min_rows=30)
    want = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert got.statistic == pytest.approx(want, rel=1e-9) and got.statistic > 0.8
    assert got.drifted


def test_wasserstein_drift_at_exactly_the_threshold(rng):
    """Reference: scipy.stats.wasserstein_distance; drift when distance >= threshold."""
    ref, cur = rng.normal(0, 1, 100), rng.normal(0.2, 1, 50)
    want = scipy.stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert stattests.wasserstein_test(_s(ref), _s(cur), float(want), 30).drifted
    assert not stattests.wasserstein_test(_s(ref), _s(cur), float(want) * 1.001, 30).drifted


def test_wasserstein_constant_reference_is_not_drift(rng):
    """A constant reference cannot normalise the distance: status constant_reference."""
    ref, cur = np.full(50, 0.1), rng.normal(size=50)
    got = stattests.wasserstein_test(_s(ref), _s(cur), 0.1, 30)
    raw = scipy.stats.wasserstein_distance(ref, cur)
    assert (got.status, got.drifted, got.statistic) == ("constant_reference", False, None)
    assert got.message == (
        f"column 'x': reference is constant (0.1), cannot normalise; raw distance {raw:.3g}"
    )


def test_wasserstein_nan_only_and_infinity():
    """Missing-only is insufficient_data; -inf is invalid."""
    ref = _s(np.linspace(0, 1, 40))
    assert stattests.wasserstein_test(ref, _s([np.nan] * 40), 0.1, 30).status == (
        "insufficient_data"
    )
    got = stattests.wasserstein_test(_s([*np.linspace(0, 1, 39), -np.inf]), ref, 0.1, 30)
    assert got.status == "invalid" and "1 infinite reference values" in got.message


# --- chi2 --------------------------------------------------------------------------------------


def test_chi2_two_categories_matches_scipy_homogeneity():
    """Reference: scipy.stats.chi2_contingency(table, correction=False), table 2 x k."""
    ref = [0] * 400 + [1] * 300
    cur = [0] * 100 + [1] * 70
    got = stattests.chi2_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(_table(ref, cur), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert (got.drifted, got.status, got.kind, got.test) == (False, "ok", "categorical", "chi2")
    # a goodness-of-fit test against reference frequencies would give a different p-value
    gof = scipy.stats.chisquare([100, 70], f_exp=np.array([400, 300]) / 700 * 170)
    assert got.p_value != pytest.approx(gof.pvalue, rel=1e-3)


def test_chi2_clear_drift_matches_scipy(rng):
    """Reference: scipy.stats.chi2_contingency(table, correction=False)."""
    ref = list(rng.choice(["a", "b", "c"], size=700, p=[0.6, 0.3, 0.1]))
    cur = list(rng.choice(["a", "b", "c"], size=170, p=[0.2, 0.3, 0.5]))
    got = stattests.chi2_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(_table(ref, cur), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.drifted and got.message.endswith("< 0.05 over 3 categories")


def test_chi2_new_category_in_current():
    """Reference: scipy.stats.chi2_contingency on the union of categories (0 for unseen)."""
    ref = ["a"] * 50 + ["b"] * 50
    cur = ["a"] * 20 + ["b"] * 20 + ["new"] * 10
    got = stattests.chi2_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(np.array([[50, 50, 0], [20, 20, 10]]), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.drifted


def test_chi2_single_category_on_both_sides():
    """Reference: scipy.stats.chi2_contingency on a 2 x 1 table (statistic 0, p-value 1)."""
    got = stattests.chi2_test(_s([1] * 40), _s([1] * 35), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(np.array([[40], [35]]), correction=False)
    assert (got.statistic, got.p_value) == (want.statistic, want.pvalue) == (0.0, 1.0)
    assert not got.drifted and got.status == "ok"


def test_chi2_aligns_int_and_float_labels_and_ignores_unused_levels():
    """Reference: scipy.stats.chi2_contingency; 1.0 (float, column had NaN) equals 1 (int)."""
    ref = pd.Series(pd.Categorical([1] * 30 + [2] * 30, categories=[1, 2, 9]), name="x")
    cur = pd.Series([1.0] * 10 + [2.0] * 25 + [np.nan] * 5, name="x")
    got = stattests.chi2_test(ref, cur, threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(np.array([[30, 30], [10, 25]]), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert (got.ref_rows, got.cur_rows) == (60, 35)


def test_chi2_nan_only_is_insufficient_data():
    """Missing values are dropped before counting rows."""
    got = stattests.chi2_test(_s(["a"] * 40, "season"), _s([None] * 40, "season"), 0.05, 30)
    assert (got.status, got.drifted, got.p_value) == ("insufficient_data", False, None)
    assert got.message == "column 'season': 0 non-missing current values, need at least 30"


# --- registry and result ------------------------------------------------------------------------


def test_registry_describes_each_test():
    """Each registered test runs under its own name and declares what it gives."""
    assert {n: (t.gives, t.kinds) for n, t in TESTS.items()} == {
        "ks": ("p_value", ("numeric",)),
        "wasserstein": ("distance", ("numeric",)),
        "chi2": ("p_value", ("categorical",)),
    }
    ref, cur = _s(np.arange(40.0)), _s(np.arange(40.0) + 1)
    assert {n: t.func(ref, cur, 0.05, 30).test for n, t in TESTS.items()} == {n: n for n in TESTS}


def test_feature_drift_round_trips_through_json(rng):
    """to_dict is JSON-able and from_dict rebuilds an equal result."""
    got = stattests.ks_test(_s(rng.normal(size=50)), _s(rng.normal(size=50)), 0.05, 30)
    back = FeatureDrift.from_dict(json.loads(json.dumps(got.to_dict())))
    assert back == got
    assert type(got.to_dict()["p_value"]) is float and type(got.to_dict()["drifted"]) is bool


@pytest.mark.parametrize("test", sorted(TESTS))
def test_empty_series_with_min_rows_zero_does_not_raise(test):
    """Even with min_rows=0, empty input gives insufficient_data rather than a scipy error."""
    got = TESTS[test].func(_s([], "e"), _s([], "e"), 0.05, 0)
    assert (got.status, got.message) == (
        "insufficient_data",
        "column 'e': 0 non-missing reference values, need at least 1",
    )
