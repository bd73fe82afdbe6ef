"""Distance thresholds that follow the sampling noise (modelwatch.drift.null): the bootstrap
null against scipy's own distances on the same resamples, the array paths against the tests
themselves, false alarms on stationary data at every batch size, power on real shifts,
determinism, and the switch that turns it off."""

import dataclasses
import zlib

import numpy as np
import pandas as pd
import pytest
import scipy.spatial.distance
import scipy.stats
from scipy.stats.mstats import hdquantiles

from modelwatch.drift import compute_drift
from modelwatch.drift.null import binned_null, null_distances, null_threshold
from modelwatch.drift.stattests import TESTS, FeatureDrift, binned_counts
from modelwatch.settings import DataSettings, DriftNullSettings, DriftSettings

DATA = DataSettings(id="id", target="y", features=["a", "skew", "cat"], categorical=["cat"])
NULL = DriftNullSettings(samples=200, quantile=0.99, seed=0)
DISTANCES = DriftSettings(numeric_test="wasserstein", categorical_test="jensenshannon_base2")
OFF = DISTANCES.model_copy(update={"bootstrap": DriftNullSettings(samples=0)})
BINNED = ("jensenshannon_base2", "psi", "kl", "hellinger")


def frame(rng: np.random.Generator, rows: int, shift: float = 0.0, share: float = 0.5):
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "a": rng.normal(shift, 1.0, rows),
            "skew": rng.exponential(1.0, rows),
            "cat": rng.choice(["x", "y", "z"], rows, p=[share, (1 - share) / 2, (1 - share) / 2]),
        }
    )


def by_column(report) -> dict[str, FeatureDrift]:
    return {f.column: f for f in report.features}


def same_draws(values: np.ndarray, name: str, n_ref: int, n_cur: int, samples: int = 200):
    """The resamples null_distances draws for a numeric distance: the same generator, seeded
    the same way, one row of reference-then-batch indices into the sorted values per resample."""
    x = np.sort(values)
    rng = np.random.default_rng([0, zlib.crc32(name.encode())])
    idx = rng.integers(0, x.size, (samples, n_ref + n_cur), dtype=np.int32)
    return [(x[i[:n_ref]], x[i[n_ref:]]) for i in idx]


# (reference rows, batch rows, max_rows): resample pairs with about as many rows as the
# reference has values (summed over its values) and far fewer (summed over the sorted draws)
SHAPES = [(800, 150, 20000), (6000, 100, 500)]


@pytest.mark.parametrize("n_ref, n_cur, max_rows", SHAPES)
def test_wasserstein_null_equals_scipys_distance_on_the_same_resamples(n_ref, n_cur, max_rows):
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref) on the same
    resamples, and scipy.stats.mstats.hdquantiles of those distances for the threshold."""
    ref = pd.Series(np.random.default_rng(1).normal(size=n_ref), name="a")
    settings = NULL.model_copy(update={"max_rows": max_rows})
    got = null_distances(TESTS["wasserstein"], ref, n_cur, "numeric", settings)
    rows = min(n_ref, max_rows), min(n_cur, max_rows)
    want = [
        scipy.stats.wasserstein_distance(r, c) / np.std(r)
        for r, c in same_draws(ref.to_numpy(), "a", *rows)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    found = null_threshold(TESTS["wasserstein"], ref, n_cur, "numeric", settings)
    assert found.value == pytest.approx(hdquantiles(np.array(want), [0.99])[0], rel=1e-12)
    assert (found.resamples, found.rows) == (200, rows[1])


@pytest.mark.parametrize("n_ref, n_cur, max_rows", SHAPES)
def test_energy_null_equals_scipys_distance(n_ref, n_cur, max_rows):
    """Reference: scipy.stats.energy_distance(ref, cur) / numpy.std(ref) on the same resamples."""
    ref = pd.Series(np.random.default_rng(2).gamma(2.0, size=n_ref), name="e")
    settings = DriftNullSettings(samples=50, max_rows=max_rows)
    got = null_distances(TESTS["energy"], ref, n_cur, "numeric", settings)
    rows = min(n_ref, max_rows), min(n_cur, max_rows)
    want = [
        scipy.stats.energy_distance(r, c) / np.std(r)
        for r, c in same_draws(ref.to_numpy(), "e", *rows, samples=50)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_energy_null_equals_scipys_distance_with_ties_and_a_row_cap():
    """Reference: scipy.stats.energy_distance(ref, cur) / numpy.std(ref) on the same resamples;
    a rounded column (repeated values) and max_rows below both sizes."""
    values = np.round(np.random.default_rng(2).gamma(2.0, size=3000), 1)
    ref = pd.Series(values, name="e")
    capped = DriftNullSettings(samples=50, max_rows=500)
    got = null_distances(TESTS["energy"], ref, 4000, "numeric", capped)
    want = [
        scipy.stats.energy_distance(r, c) / np.std(r)
        for r, c in same_draws(values, "e", 500, 500, samples=50)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_jensenshannon_null_equals_scipys_distance_on_the_same_counts():
    """Reference: scipy.spatial.distance.jensenshannon(p_ref, p_cur, base=2) on multinomial
    counts from the reference's shares, drawn by the same generator."""
    values = np.random.default_rng(2).choice(["x", "y", "z"], 600, p=[0.6, 0.3, 0.1])
    ref = pd.Series(values, name="cat")
    got = null_distances(TESTS["jensenshannon_base2"], ref, 100, "categorical", NULL)
    rng = np.random.default_rng([0, zlib.crc32(b"cat")])
    shares = ref.value_counts(normalize=True, sort=False).to_numpy()
    r = rng.multinomial(600, shares, size=200) / 600
    c = rng.multinomial(100, shares, size=200) / 100
    want = [scipy.spatial.distance.jensenshannon(p, q, base=2) for p, q in zip(r, c, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    found = null_threshold(TESTS["jensenshannon_base2"], ref, 100, "categorical", NULL)
    assert found.value == pytest.approx(hdquantiles(np.array(want), [0.99])[0], rel=1e-12)


@pytest.mark.parametrize("test", BINNED)
@pytest.mark.parametrize("kind", ["categorical", "numeric"])
def test_binned_distances_on_counts_equal_the_test_on_the_rows_counted(test, kind):
    """Reference: the registered test itself (stattests; scipy jensenshannon / entropy inside)
    run on resampled rows, against binned_null on those rows' counts. A rare category is absent
    from both sides of some resamples: the test's table leaves it out, so must the array path."""
    rng = np.random.default_rng(3)
    levels = ["x", "y", "z", "rare"] if kind == "categorical" else [0.0, 1.0, 2.0, 7.0]
    rows = np.append(rng.choice(levels[:3], 899, p=[0.5, 0.3, 0.2]), levels[3])  # one rare row
    ref_counts, cur_counts, want = [], [], []
    for _ in range(100):
        r, c = rows[rng.integers(0, 900, 900)], rows[rng.integers(0, 900, 60)]
        ref_counts.append([np.sum(r == v) for v in levels])
        cur_counts.append([np.sum(c == v) for v in levels])
        result = TESTS[test].func(pd.Series(r), pd.Series(c), np.inf, 2, 0.0, kind)
        want.append(result.statistic)
    ref_counts, cur_counts = np.array(ref_counts), np.array(cur_counts)
    assert ((ref_counts[:, 3] == 0) & (cur_counts[:, 3] == 0)).sum() >= 10
    got = binned_null(test, ref_counts, cur_counts)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("test", BINNED)
def test_multinomial_counts_give_the_null_that_resampling_rows_gives(test):
    """Reference: the test itself on rows resampled with replacement and counted (an
    independent generator), 1,000 resamples each way: the two nulls are one distribution
    (two-sample KS, scipy.stats.ks_2samp, p > 0.01; their 0.9 quantiles within 10 %)."""
    values = np.random.default_rng(8).choice(["x", "y", "z", "w"], 900, p=[0.4, 0.3, 0.2, 0.1])
    ref = pd.Series(values, name="cat")
    fast = null_distances(TESTS[test], ref, 120, "categorical", DriftNullSettings(samples=1000))
    rng = np.random.default_rng(9)
    slow = []
    for _ in range(1000):
        r = pd.Series(values[rng.integers(0, 900, 900)])
        c = pd.Series(values[rng.integers(0, 900, 120)])
        table = binned_counts(r, c, "categorical")
        slow.append(binned_null(test, table[:1], table[1:])[0])
    assert scipy.stats.ks_2samp(fast, slow).pvalue > 0.01
    assert np.quantile(fast, 0.9) == pytest.approx(np.quantile(slow, 0.9), rel=0.1)


@pytest.mark.parametrize("rows", [50, 300, 5000])
def test_a_stationary_stream_does_not_drift_at_any_batch_size(rows):
    """Batches from the reference's distributions (normal, exponential, three categories;
    reference 1,800 rows): with the null (default settings) each column drifts in at most 5 % of
    them; at 50 and 300 rows the fixed 0.1 alone fires far more often.

    A column's threshold at a batch size is fixed (its draws are seeded by its name), so its
    false-alarm rate is the share of stationary batches whose distance reaches it: measured on
    400 batches, as 40 would leave a column with a 2 % rate above 2 of 40 in 5 % of runs.
    compute_drift gives the thresholds and verdicts of two batches; the registered test
    functions (what compute_drift runs) give the distances of the rest.
    """
    rng = np.random.default_rng(rows)
    ref = frame(rng, 1800)
    first, second = frame(rng, rows), frame(rng, rows)
    judged = by_column(compute_drift(ref, first, DATA, DISTANCES))
    assert {c: f.threshold for c, f in judged.items()} == {
        c: f.threshold for c, f in by_column(compute_drift(ref, second, DATA, DISTANCES)).items()
    }
    rates, fixed_rates = {}, {}
    for column, f in judged.items():
        test = TESTS[f.test]
        assert f.drifted == (f.statistic >= f.threshold)
        found = np.array(
            [
                test.func(ref[column], frame(rng, rows)[column], 0.1, 30, 0.0, f.kind).statistic
                for _ in range(400)
            ]
        )
        rates[column], fixed_rates[column] = np.mean(found >= f.threshold), np.mean(found >= 0.1)
    assert max(rates.values()) <= 0.05, rates
    if rows <= 300:
        assert np.mean(list(fixed_rates.values())) >= 0.1, fixed_rates
        assert np.mean(list(rates.values())) <= np.mean(list(fixed_rates.values())) / 4
    else:  # large batches: the null is below 0.1, so the configured threshold decides alone
        assert all(f.threshold == 0.1 for f in judged.values())


def test_real_shifts_are_still_found_at_300_rows():
    rng = np.random.default_rng(7)
    ref = frame(rng, 1800)
    shifted = by_column(compute_drift(ref, frame(rng, 300, shift=0.5), DATA, DISTANCES))
    assert shifted["a"].drifted and shifted["a"].null_threshold > 0.1
    assert not shifted["skew"].drifted and not shifted["cat"].drifted
    moved = by_column(compute_drift(ref, frame(rng, 300, share=0.3), DATA, DISTANCES))
    assert moved["cat"].drifted and not moved["a"].drifted


def test_the_threshold_is_the_larger_of_the_floor_and_the_null_and_the_message_says_which():
    rng = np.random.default_rng(3)
    ref = frame(rng, 1800)
    big = by_column(compute_drift(ref, frame(rng, 5000), DATA, DISTANCES))["a"]
    assert big.null_threshold < 0.1 and big.threshold == big.threshold_floor == 0.1
    assert big.message == (
        f"column 'a': normalised Wasserstein distance {big.statistic:.3g} < 0.1 (floor; "
        f"bootstrap null {big.null_threshold:.3g}, 0.99 quantile of 200 resamples at 5000 rows)"
    )
    small = by_column(compute_drift(ref, frame(rng, 50), DATA, DISTANCES))["a"]
    assert small.threshold == small.null_threshold > small.threshold_floor == 0.1
    assert small.message == (
        f"column 'a': normalised Wasserstein distance {small.statistic:.3g} < "
        f"{small.threshold:.3g} (bootstrap null, 0.99 quantile of 200 resamples at 50 rows; "
        "floor 0.1)"
    )


def test_a_column_override_is_the_floor():
    rng = np.random.default_rng(3)
    ref, cur = frame(rng, 1800), frame(rng, 300)
    settings = DriftSettings(
        numeric_test="wasserstein",
        categorical_test="jensenshannon_base2",
        columns={"a": {"threshold": 0.5}},
    )
    got = by_column(compute_drift(ref, cur, DATA, settings))["a"]
    assert got.threshold == got.threshold_floor == 0.5 and got.null_threshold < 0.5


def test_prediction_and_target_get_the_null():
    """Prediction (continuous: Wasserstein) and target (classes: Jensen-Shannon) drift."""
    rng = np.random.default_rng(11)
    ref, cur = frame(rng, 1800), frame(rng, 100)
    report = compute_drift(
        ref,
        cur,
        DATA,
        DISTANCES,
        prediction_reference=ref["skew"],
        prediction_current=cur["skew"],
        target_reference=ref["cat"],
        target_current=cur["cat"],
    )
    for result, test in (
        (report.prediction, "wasserstein"),
        (report.target, "jensenshannon_base2"),
    ):
        assert result.test == test and result.null_threshold is not None
        assert result.threshold == max(0.1, result.null_threshold)
    assert report.prediction.null_threshold > 0.1 and not report.prediction.drifted


def test_the_null_is_the_same_on_a_rerun_and_differs_by_column():
    ref = pd.Series(np.random.default_rng(4).normal(size=900), name="a")
    first = null_distances(TESTS["wasserstein"], ref, 200, "numeric", NULL)
    again = null_distances(TESTS["wasserstein"], ref.copy(), 200, "numeric", NULL)
    assert np.array_equal(first, again)
    other = null_distances(TESTS["wasserstein"], ref.rename("b"), 200, "numeric", NULL)
    assert not np.array_equal(first, other)
    q = {
        name: null_threshold(TESTS["wasserstein"], ref.rename(name), 200, "numeric", NULL).value
        for name in ("a", "b")
    }
    assert q["a"] != q["b"] and q["b"] == pytest.approx(q["a"], rel=0.2)
    rng = np.random.default_rng(5)
    reference, batch = frame(rng, 1800), frame(rng, 300)
    runs = [compute_drift(reference, batch, DATA, DISTANCES).to_dict() for _ in range(2)]
    assert runs[0] == runs[1]


def test_samples_zero_gives_todays_results():
    """Reference: the registered test functions called directly (no null), for a distance and
    a p-value test; a p-value test's result is the same with the null on or off."""
    rng = np.random.default_rng(5)
    ref, cur = frame(rng, 1800), frame(rng, 300, shift=0.2)
    got = by_column(compute_drift(ref, cur, DATA, OFF))["a"]
    direct = TESTS["wasserstein"].func(ref["a"], cur["a"], 0.1, 30, 0.05, "numeric")
    report_fields = {"importance": got.importance, "weighted_score": got.weighted_score}
    assert got.to_dict() == dataclasses.replace(direct, **report_fields).to_dict()
    assert got.null_threshold is None and "bootstrap" not in got.message
    ks = DriftSettings(numeric_test="ks", categorical_test="chi2")
    with_null = compute_drift(ref, cur, DATA, ks).to_dict()
    ks_off = ks.model_copy(update={"bootstrap": DriftNullSettings(samples=0)})
    assert with_null == compute_drift(ref, cur, DATA, ks_off).to_dict()
    ks_direct = TESTS["ks"].func(ref["a"], cur["a"], 0.05, 30, 0.05, "numeric")
    ks_got = by_column(compute_drift(ref, cur, DATA, ks))["a"]
    assert (ks_got.statistic, ks_got.p_value) == (ks_direct.statistic, ks_direct.p_value)


def test_records_written_before_the_null_still_load():
    rng = np.random.default_rng(6)
    ref, cur = frame(rng, 1800), frame(rng, 300)
    result = compute_drift(ref, cur, DATA, DISTANCES).features[0]
    new = ("null_threshold", "threshold_floor", "null_basis")
    old = {k: v for k, v in result.to_dict().items() if k not in new}
    loaded = FeatureDrift.from_dict(old)
    assert (loaded.null_threshold, loaded.threshold_floor, loaded.null_basis) == (None, None, "")
    assert FeatureDrift.from_dict(result.to_dict()) == result


def test_no_null_for_too_little_data_or_samples_zero():
    one = pd.Series([1.0], name="a")
    assert null_threshold(TESTS["wasserstein"], one, 300, "numeric", NULL) is None
    ref = pd.Series(np.arange(100.0), name="a")
    assert null_threshold(TESTS["wasserstein"], ref, 1, "numeric", NULL) is None
    off = DriftNullSettings(samples=0)
    assert null_threshold(TESTS["wasserstein"], ref, 300, "numeric", off) is None
