"""Unit tests for modelwatch.drift.stattests: each statistic against scipy, each bad input."""

import json
import typing

import numpy as np
import pandas as pd
import pytest
import scipy.spatial.distance
import scipy.stats
from scipy.stats.contingency import association

from modelwatch.drift import stattests
from modelwatch.drift.stattests import EPSILON, TESTS, FeatureDrift
from modelwatch.settings import CategoricalDriftTest, NumericDriftTest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240501)


def _s(values, name: str = "x") -> pd.Series:
    return pd.Series(values, name=name)


def _table(ref: list, cur: list) -> np.ndarray:
    """Returns the 2 x k contingency table built by hand, categories in first-seen order."""
    cats = list(dict.fromkeys([*ref, *cur]))
    return np.array([[ref.count(c) for c in cats], [cur.count(c) for c in cats]])


def _decile_freqs(ref: np.ndarray, cur: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns frequencies over reference-decile bins open at both ends (numpy.histogram)."""
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, 11))[1:-1])
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    r, c = np.histogram(ref, bins)[0], np.histogram(cur, bins)[0]
    return r / r.sum(), c / c.sum()


def _smooth(p: np.ndarray) -> np.ndarray:
    q = np.where(p == 0, EPSILON, p)
    return q / q.sum()


# --- ks ----------------------------------------------------------------------------------------


def test_ks_no_drift_matches_scipy(rng):
    """Reference: scipy.stats.ks_2samp (two-sided)."""
    ref, cur = rng.normal(0, 1, 700), rng.normal(0, 1, 170)
    got = stattests.ks_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert got.effect_size == got.statistic
    assert (got.status, got.drifted, got.ref_rows, got.cur_rows) == ("ok", False, 700, 170)
    assert (got.column, got.kind, got.test, got.threshold) == ("x", "numeric", "ks", 0.05)


def test_ks_clear_drift_matches_scipy(rng):
    """Reference: scipy.stats.ks_2samp (two-sided)."""
    ref, cur = rng.normal(0, 1, 700), rng.normal(1.0, 1, 170)
    got = stattests.ks_test(_s(ref), _s(cur), 0.05, 30, effect_size_floor=0.1)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.drifted and got.status == "ok"
    assert got.message.startswith("column 'x': KS p-value") and "< 0.05" in got.message
    assert got.message.endswith(f"effect size {want.statistic:.3g} >= 0.1")


def test_ks_significant_but_below_effect_size_floor_is_not_drift(rng):
    """Reference: scipy.stats.ks_2samp; a tiny shift on large samples is significant but small."""
    ref, cur = rng.normal(0, 1, 200_000), rng.normal(0.03, 1, 200_000)
    got = stattests.ks_test(_s(ref), _s(cur), 0.05, 30, effect_size_floor=0.05)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9) and want.pvalue < 1e-6
    assert want.statistic < 0.05 and not got.drifted
    assert "significant but below the effect-size floor" in got.message
    assert stattests.ks_test(_s(ref), _s(cur), 0.05, 30, effect_size_floor=0.0).drifted


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
    ("current", "n"),
    [([np.nan] * 50, 0), ([], 0), ([0.4], 1), ([0.4] * 12 + [np.nan] * 40, 12)],
    ids=["nan-only", "empty", "single-value", "twelve-values"],
)
def test_ks_too_few_values_is_insufficient_data(rng, current, n):
    """Too few non-missing values gives status insufficient_data, never an exception."""
    got = stattests.ks_test(_s(rng.normal(size=100), "hum"), _s(current, "hum"), 0.05, 30)
    assert (got.status, got.drifted, got.statistic, got.p_value) == (
        "insufficient_data",
        False,
        None,
        None,
    )
    assert got.message == (
        f"column 'hum': not enough data: {n} non-missing current values, need at least 30"
    )


def test_ks_too_few_reference_values_is_insufficient_data(rng):
    """The reference side is checked too."""
    got = stattests.ks_test(_s([1.0] * 5, "hum"), _s(rng.normal(size=50), "hum"), 0.05, 30)
    assert got.status == "insufficient_data"
    assert got.message == (
        "column 'hum': not enough data: 5 non-missing reference values, need at least 30"
    )


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


# --- anderson_darling and cramervonmises --------------------------------------------------------


def test_anderson_darling_matches_scipy_and_reports_the_clipped_p_value(rng):
    """Reference: scipy.stats.anderson_ksamp([ref, cur], variant="midrank")."""
    ref, cur = rng.normal(0, 1, 300), rng.normal(0.2, 1, 200)
    got = stattests.anderson_darling_test(_s(ref), _s(cur), 0.05, 30)
    want = scipy.stats.anderson_ksamp([ref, cur], variant="midrank")
    assert 0.001 < want.pvalue < 0.25 and "clipped" not in got.message
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.effect_size == pytest.approx(scipy.stats.ks_2samp(ref, cur).statistic, rel=1e-9)
    assert got.drifted == (want.pvalue < 0.05)
    shifted = rng.normal(1.0, 1, 200)
    with pytest.warns(UserWarning, match="p-value floored"):
        far = stattests.anderson_darling_test(_s(ref), _s(shifted), 0.05, 30)
    assert far.p_value == 0.001 and far.drifted
    assert far.message.endswith("p-value clipped to [0.001, 0.25] by scipy")


def test_cramervonmises_matches_scipy(rng):
    """Reference: scipy.stats.cramervonmises_2samp(ref, cur)."""
    ref, cur = rng.normal(0, 1, 300), rng.normal(0.5, 1, 200)
    got = stattests.cramervonmises_test(_s(ref), _s(cur), 0.05, 30)
    want = scipy.stats.cramervonmises_2samp(ref, cur)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.drifted and got.test == "cramervonmises"


@pytest.mark.parametrize("name", ["anderson_darling", "cramervonmises"])
def test_rank_tests_on_one_shared_constant_are_not_tested(name):
    """Both sides one value: scipy raises (anderson) or gives p = 0.04 (cramervonmises)."""
    got = TESTS[name].func(_s([2.0] * 40), _s([2.0] * 40), 0.05, 30)
    assert (got.status, got.drifted, got.p_value) == ("constant", False, None)
    assert got.message == "column 'x': both sides hold the single value 2; nothing to compare"


# --- wasserstein and energy --------------------------------------------------------------------


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
    assert got.drifted and got.message.startswith("column 'x': normalised Wasserstein distance")


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


def test_energy_distance_matches_scipy(rng):
    """Reference: scipy.stats.energy_distance(ref, cur) / numpy.std(ref)."""
    ref, cur = rng.normal(5, 2, 400), rng.normal(6, 2, 150)
    got = stattests.energy_test(_s(ref), _s(cur), 0.1, 30)
    want = scipy.stats.energy_distance(ref, cur) / np.std(ref)
    assert got.statistic == pytest.approx(want, rel=1e-9)
    assert (got.drifted, got.p_value, got.effect_size) == (True, None, got.statistic)
    same = stattests.energy_test(_s(ref), _s(rng.normal(5, 2, 150)), 0.1, 30)
    assert not same.drifted


# --- chi2 and z --------------------------------------------------------------------------------


def test_chi2_two_categories_matches_scipy_homogeneity():
    """Reference: scipy.stats.chi2_contingency(table, correction=False), table 2 x k."""
    ref = [0] * 400 + [1] * 300
    cur = [0] * 100 + [1] * 70
    got = stattests.chi2_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(_table(ref, cur), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert (got.drifted, got.status, got.kind, got.test) == (False, "ok", "numeric", "chi2")
    # a goodness-of-fit test against reference frequencies would give a different p-value
    gof = scipy.stats.chisquare([100, 70], f_exp=np.array([400, 300]) / 700 * 170)
    assert got.p_value != pytest.approx(gof.pvalue, rel=1e-3)


def test_chi2_clear_drift_matches_scipy_with_cramers_v(rng):
    """Reference: scipy.stats.chi2_contingency and scipy.stats.contingency.association."""
    ref = list(rng.choice(["a", "b", "c"], size=700, p=[0.6, 0.3, 0.1]))
    cur = list(rng.choice(["a", "b", "c"], size=170, p=[0.2, 0.3, 0.5]))
    got = stattests.chi2_test(_s(ref), _s(cur), threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(_table(ref, cur), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    v = association(_table(ref, cur), method="cramer", correction=False)
    assert got.effect_size == pytest.approx(v, rel=1e-9)
    assert got.drifted and got.kind == "categorical"
    assert got.message.endswith(f"effect size {v:.3g} >= 0; over 3 categories")


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
    assert (got.effect_size, got.drifted, got.status) == (0.0, False, "ok")


def test_chi2_aligns_int_and_float_labels_and_ignores_unused_levels():
    """Reference: scipy.stats.chi2_contingency; 1.0 (float, column had NaN) equals 1 (int)."""
    ref = pd.Series(pd.Categorical([1] * 30 + [2] * 30, categories=[1, 2, 9]), name="x")
    cur = pd.Series([1.0] * 10 + [2.0] * 25 + [np.nan] * 5, name="x")
    got = stattests.chi2_test(ref, cur, threshold=0.05, min_rows=30)
    want = scipy.stats.chi2_contingency(np.array([[30, 30], [10, 25]]), correction=False)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9)
    assert (got.ref_rows, got.cur_rows) == (60, 35)


def test_chi2_all_unique_reference_is_high_cardinality():
    """An id-like column (every reference value distinct) is not a category test's input."""
    ref = _s([f"id{i}" for i in range(50)], "code")
    got = stattests.chi2_test(ref, _s([f"id{i}" for i in range(50, 90)], "code"), 0.05, 30)
    assert (got.status, got.drifted, got.p_value) == ("high_cardinality", False, None)
    assert got.message.startswith("column 'code': all 50 reference values are distinct")


def test_z_matches_formula_norm_and_chi2(rng):
    """Reference: pooled two-proportion z by hand, scipy.stats.norm.sf (two-sided), and
    scipy.stats.chi2_contingency(correction=False) on the 2 x 2 table (z**2 = chi2, same p)."""
    ref, cur = rng.binomial(1, 0.3, 700), rng.binomial(1, 0.45, 170)
    got = stattests.z_test(_s(ref), _s(cur), 0.05, 30, effect_size_floor=0.05)
    x1, n1, x2, n2 = ref.sum(), ref.size, cur.sum(), cur.size
    pooled = (x1 + x2) / (n1 + n2)
    z = (x2 / n2 - x1 / n1) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    assert got.statistic == pytest.approx(z, rel=1e-9)
    assert got.p_value == pytest.approx(2 * scipy.stats.norm.sf(abs(z)), rel=1e-9)
    table = np.array([[n1 - x1, x1], [n2 - x2, x2]])
    chi2 = scipy.stats.chi2_contingency(table, correction=False)
    assert got.statistic**2 == pytest.approx(chi2.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(chi2.pvalue, rel=1e-9)
    assert got.effect_size == pytest.approx(abs(x2 / n2 - x1 / n1), rel=1e-9)
    assert got.drifted


def test_z_no_drift_on_strings_and_single_value(rng):
    """Reference: scipy.stats.norm.sf; the larger label ("yes") counts as success."""
    ref = _s(rng.choice(["no", "yes"], 500, p=[0.8, 0.2]))
    cur = _s(rng.choice(["no", "yes"], 200, p=[0.8, 0.2]))
    got = stattests.z_test(ref, cur, 0.05, 30)
    x1, x2 = int((ref == "yes").sum()), int((cur == "yes").sum())
    z, p, _ = stattests.two_proportion_z(x1, 500, x2, 200)
    assert (got.statistic, got.p_value) == (z, p) and not got.drifted
    one = stattests.z_test(_s(["a"] * 40), _s(["a"] * 40), 0.05, 30)
    assert (one.status, one.statistic, one.p_value, one.drifted) == ("ok", 0.0, 1.0, False)


def test_z_on_more_than_two_values_is_invalid():
    """A new third category makes the z-test inapplicable; the message names the values."""
    got = stattests.z_test(_s(["a", "b"] * 20), _s(["a", "b", "c"] * 14), 0.05, 30)
    assert got.status == "invalid"
    assert got.message == (
        "column 'x': the z-test needs a binary column, found 3 values (e.g. 'a', 'b', 'c')"
    )


# --- binned tests -----------------------------------------------------------------------------


def test_jensenshannon_categorical_over_the_union_matches_scipy():
    """Reference: scipy.spatial.distance.jensenshannon(p_ref, p_cur, base=2)."""
    ref = ["a"] * 60 + ["b"] * 40
    cur = ["a"] * 20 + ["b"] * 20 + ["new"] * 10
    got = stattests.jensenshannon_test(_s(ref), _s(cur), 0.1, 30, kind="categorical")
    want = scipy.spatial.distance.jensenshannon([0.6, 0.4, 0], [0.4, 0.4, 0.2], base=2)
    assert got.statistic == pytest.approx(want, rel=1e-9)
    assert got.drifted and got.test == "jensenshannon_base2"
    assert got.message.startswith("column 'x': Jensen-Shannon distance (base 2)")


def test_jensenshannon_numeric_uses_reference_deciles(rng):
    """Reference: scipy.spatial.distance.jensenshannon(base=2) on numpy.histogram counts over
    reference-decile edges, open at both ends."""
    ref, cur = rng.normal(0, 1, 2000), rng.normal(0.5, 1.5, 300)
    got = stattests.jensenshannon_test(_s(ref), _s(cur), 0.1, 30)
    p, q = _decile_freqs(ref, cur)
    assert got.statistic == pytest.approx(
        scipy.spatial.distance.jensenshannon(p, q, base=2), rel=1e-9
    )
    assert got.kind == "numeric" and got.message.endswith("over 10 bins")
    same = stattests.jensenshannon_test(_s(ref), _s(rng.normal(0, 1, 300)), 0.1, 30)
    assert not same.drifted


def test_psi_matches_formula_with_smoothing(rng):
    """Reference: sum((c - r) ln(c / r)) on smoothed decile frequencies, by hand."""
    ref, cur = rng.normal(0, 1, 2000), rng.normal(3, 0.2, 300)  # most deciles empty in cur
    got = stattests.psi_test(_s(ref), _s(cur), 0.1, 30)
    p, q = _decile_freqs(ref, cur)
    assert (q == 0).any()
    r, c = _smooth(p), _smooth(q)
    assert got.statistic == pytest.approx(np.sum((c - r) * np.log(c / r)), rel=1e-9)
    assert np.isfinite(got.statistic) and got.drifted


def test_kl_matches_scipy_entropy(rng):
    """Reference: scipy.stats.entropy(smoothed p_ref, smoothed p_cur) in nats."""
    ref = _s(rng.choice(list("abcd"), 800, p=[0.4, 0.3, 0.2, 0.1]))
    cur = _s(rng.choice(list("abc"), 200, p=[0.2, 0.3, 0.5]))  # "d" never seen in current
    got = stattests.kl_test(ref, cur, 0.1, 30)
    table = stattests.contingency_table(ref, cur)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    assert got.statistic == pytest.approx(scipy.stats.entropy(_smooth(p), _smooth(q)), rel=1e-9)
    assert got.drifted and got.kind == "categorical"


def test_hellinger_matches_scipy_euclidean(rng):
    """Reference: scipy.spatial.distance.euclidean(sqrt p, sqrt q) / sqrt(2)."""
    ref = _s(rng.choice(list("abc"), 800, p=[0.5, 0.3, 0.2]))
    cur = _s(rng.choice(list("abc"), 200, p=[0.3, 0.3, 0.4]))
    got = stattests.hellinger_test(ref, cur, 0.1, 30)
    table = stattests.contingency_table(ref, cur)
    p, q = table[0] / table[0].sum(), table[1] / table[1].sum()
    want = scipy.spatial.distance.euclidean(np.sqrt(p), np.sqrt(q)) / np.sqrt(2)
    assert got.statistic == pytest.approx(want, rel=1e-9) and got.drifted


def test_binned_tests_treat_few_numeric_values_as_categories():
    """Reference: scipy.spatial.distance.jensenshannon(base=2) over the values 1..4."""
    ref, cur = [1, 2, 3, 4] * 25, [1] * 40 + [4] * 10
    got = stattests.jensenshannon_test(_s(ref), _s(cur), 0.1, 30)
    want = scipy.spatial.distance.jensenshannon([0.25] * 4, [0.8, 0, 0, 0.2], base=2)
    assert got.statistic == pytest.approx(want, rel=1e-9)


# --- every column fails alone -------------------------------------------------------------------

BAD = {
    "nan-only": ([1.0, 2.0, 3.0] * 20, [np.nan] * 40),
    "empty": ([1.0, 2.0, 3.0] * 20, []),
    "constant": ([5.0] * 60, [5.0] * 40),
    "all-unique": ([f"u{i}" for i in range(60)], [f"v{i}" for i in range(40)]),
    "mixed-types": ([1, "a", 2.5, None] * 15, ["a", 3, True, 2.5] * 10),
    "new-categories": (["a", "b"] * 30, ["c", "d"] * 20),
    "infinities": ([1.0, 2.0, np.inf, 3.0] * 15, [-np.inf, 1.0] * 20),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("test", sorted(TESTS))
def test_every_bad_column_gives_a_status_never_an_exception(test, case):
    """Each test on each degenerate column returns a result with a status and a message."""
    ref, cur = BAD[case]
    for kind in TESTS[test].kinds:
        got = TESTS[test].func(_s(ref, "bad"), _s(cur, "bad"), 0.05, 30, 0.05, kind)
        assert got.column == "bad" and got.message.startswith("column 'bad'")
        assert got.status in typing.get_args(stattests.Status)
        if got.status != "ok":
            assert (got.drifted, got.statistic, got.p_value) == (False, None, None)
        else:
            assert np.isfinite(got.statistic)


def test_bad_columns_get_the_expected_status():
    """The status names what is wrong, per case, for the default tests."""
    got = {
        case: (
            stattests.ks_test(_s(r), _s(c), 0.05, 30).status,
            stattests.chi2_test(_s(r), _s(c), 0.05, 30).status,
        )
        for case, (r, c) in BAD.items()
    }
    assert got == {
        "nan-only": ("insufficient_data", "insufficient_data"),
        "empty": ("insufficient_data", "insufficient_data"),
        "constant": ("ok", "ok"),
        "all-unique": ("invalid", "high_cardinality"),
        "mixed-types": ("invalid", "ok"),
        "new-categories": ("invalid", "ok"),
        "infinities": ("invalid", "ok"),
    }


@pytest.mark.parametrize("test", sorted(TESTS))
def test_empty_series_with_min_rows_zero_does_not_raise(test):
    """Even with min_rows=0, empty input gives insufficient_data rather than a scipy error."""
    got = TESTS[test].func(_s([], "e"), _s([], "e"), 0.05, 0)
    assert (got.status, got.message) == (
        "insufficient_data",
        "column 'e': not enough data: 0 non-missing reference values, need at least 1",
    )


# --- registry and result ------------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:p-value capped:UserWarning")  # anderson on equal samples
def test_registry_describes_each_test():
    """Each registered test runs under its own name and declares what it gives."""
    assert {n: (t.gives, t.kinds, t.default_threshold) for n, t in TESTS.items()} == {
        "ks": ("p_value", ("numeric",), 0.05),
        "chi2": ("p_value", ("numeric", "categorical"), 0.05),
        "z": ("p_value", ("numeric", "categorical"), 0.05),
        "anderson_darling": ("p_value", ("numeric",), 0.05),
        "cramervonmises": ("p_value", ("numeric",), 0.05),
        "wasserstein": ("distance", ("numeric",), 0.1),
        "energy": ("distance", ("numeric",), 0.1),
        "jensenshannon_base2": ("distance", ("numeric", "categorical"), 0.1),
        "psi": ("distance", ("numeric", "categorical"), 0.1),
        "kl": ("distance", ("numeric", "categorical"), 0.1),
        "hellinger": ("distance", ("numeric", "categorical"), 0.1),
    }
    ref, cur = _s(np.arange(40.0) % 2), _s(np.arange(40.0) % 2)
    assert {n: t.func(ref, cur, 0.05, 30).test for n, t in TESTS.items()} == {n: n for n in TESTS}


def test_settings_choices_match_the_registry():
    """params.yaml accepts exactly the registered tests of each kind (plus "auto")."""
    numeric = {n for n, t in TESTS.items() if "numeric" in t.kinds} - {"chi2", "z"}
    categorical = {n for n, t in TESTS.items() if "categorical" in t.kinds}
    assert set(typing.get_args(NumericDriftTest)) == numeric | {"auto"}
    assert set(typing.get_args(CategoricalDriftTest)) == categorical | {"auto"}


def test_feature_drift_round_trips_through_json(rng):
    """to_dict is JSON-able and from_dict rebuilds an equal result."""
    got = stattests.ks_test(_s(rng.normal(size=50)), _s(rng.normal(size=50)), 0.05, 30)
    back = FeatureDrift.from_dict(json.loads(json.dumps(got.to_dict())))
    assert back == got
    assert type(got.to_dict()["p_value"]) is float and type(got.to_dict()["drifted"]) is bool


@pytest.mark.parametrize("case", ["normal", "ties", "sizes"])
def test_wasserstein_1d_equals_scipy(rng, case):
    """Reference: scipy.stats.wasserstein_distance (the fast sorted-merge path must agree)."""
    if case == "normal":
        u, v = rng.normal(0, 1, 5000), rng.normal(0.3, 1.2, 4000)
    elif case == "ties":
        u, v = rng.poisson(3, 3000).astype(float), rng.poisson(4, 2000).astype(float)
    else:
        u, v = rng.normal(0, 1, 7), rng.exponential(1, 1)
    want = scipy.stats.wasserstein_distance(u, v)
    assert stattests.wasserstein_1d(u, v) == pytest.approx(want, rel=1e-9, abs=1e-12)
