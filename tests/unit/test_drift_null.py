"""Distance thresholds that follow the sampling noise (modelwatch.drift.null): the bootstrap
null against scipy's own distances, false alarms on stationary data at every batch size, power
on real shifts, determinism, and the switch that turns it off."""

import zlib

import numpy as np
import pandas as pd
import pytest
import scipy.spatial.distance
import scipy.stats

from modelwatch.drift import compute_drift
from modelwatch.drift.null import null_distances, null_threshold
from modelwatch.drift.stattests import TESTS, FeatureDrift, binned_counts
from modelwatch.settings import DataSettings, DriftNullSettings, DriftSettings

DATA = DataSettings(id="id", target="y", features=["a", "skew", "cat"], categorical=["cat"])
NULL = DriftNullSettings(samples=200, quantile=0.99, seed=0)
DISTANCES = DriftSettings(numeric_test="wasserstein", categorical_test="jensenshannon_base2")


def frame(rng: np.random.Generator, rows: int, shift: float = 0.0, share: float = 0.5):
    return pd.DataFrame(
        {
            "id": np.arange(rows),
            "a": rng.normal(shift, 1.0, rows),
            "skew": rng.exponential(1.0, rows),
            "cat": rng.choice(["x", "y", "z"], rows, p=[share, (1 - share) / 2, (1 - share) / 2]),
        }
    )


def draws(values: np.ndarray, name: str, n_ref: int, n_cur: int, samples: int):
    """The resamples null_distances draws: the same generator, seeded the same way."""
    rng = np.random.default_rng([0, zlib.crc32(name.encode())])
    for _ in range(samples):
        yield (
            values[rng.integers(0, values.size, n_ref)],
            values[rng.integers(0, values.size, n_cur)],
        )


def test_wasserstein_null_equals_scipys_distance_on_the_same_resamples():
    """Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref)."""
    ref = pd.Series(np.random.default_rng(1).normal(size=800), name="a")
    got = null_distances(TESTS["wasserstein"], ref, 150, "numeric", NULL)
    want = [
        scipy.stats.wasserstein_distance(r, c) / np.std(r)
        for r, c in draws(ref.to_numpy(), "a", 800, 150, 200)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert null_threshold(TESTS["wasserstein"], ref, 150, "numeric", NULL) == pytest.approx(
        np.quantile(want, 0.99), rel=1e-12
    )


def test_jensenshannon_null_equals_scipys_distance_on_the_same_counts():
    """Reference: scipy.spatial.distance.jensenshannon(p_ref, p_cur, base=2) on multinomial
    counts from the reference's shares, drawn by the same generator."""
    values = np.random.default_rng(2).choice(["x", "y", "z"], 600, p=[0.6, 0.3, 0.1])
    ref = pd.Series(values, name="cat")
    got = null_distances(TESTS["jensenshannon_base2"], ref, 100, "categorical", NULL)
    rng = np.random.default_rng([0, zlib.crc32(b"cat")])
    shares = ref.value_counts(normalize=True).to_numpy()
    r = rng.multinomial(600, shares, size=200) / 600
    c = rng.multinomial(100, shares, size=200) / 100
    want = [scipy.spatial.distance.jensenshannon(p, q, base=2) for p, q in zip(r, c, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_counting_resampled_rows_gives_the_same_null_as_multinomial_counts():
    """Reference: the generic path (resample rows, run the test itself) against the fast one;
    same distribution, so the 0.9 quantiles of 2,000 draws agree within 10 %."""
    values = np.random.default_rng(8).choice(["x", "y", "z", "w"], 900, p=[0.4, 0.3, 0.2, 0.1])
    ref = pd.Series(values, name="cat")
    many = DriftNullSettings(samples=2000)
    fast = null_distances(TESTS["jensenshannon_base2"], ref, 120, "categorical", many)
    rows = ref.to_numpy()
    rng = np.random.default_rng(9)
    slow = []
    for _ in range(2000):
        r = pd.Series(rows[rng.integers(0, 900, 900)])
        c = pd.Series(rows[rng.integers(0, 900, 120)])
        table = binned_counts(r, c, "categorical")
        slow.append(
            scipy.spatial.distance.jensenshannon(
                table[0] / table[0].sum(), table[1] / table[1].sum(), base=2
            )
        )
    assert np.quantile(fast, 0.9) == pytest.approx(np.quantile(slow, 0.9), rel=0.1)


@pytest.mark.parametrize("rows", [50, 300, 5000])
def test_a_stationary_stream_does_not_drift_at_any_batch_size(rows):
    rng = np.random.default_rng(rows)
    ref = frame(rng, 1800)
    fixed = DISTANCES.model_copy(update={"bootstrap": DriftNullSettings(samples=0)})
    flagged, flagged_fixed, cells = 0, 0, 0
    for _ in range(25):
        cur = frame(rng, rows)
        flagged += sum(f.drifted for f in compute_drift(ref, cur, DATA, DISTANCES).features)
        flagged_fixed += sum(f.drifted for f in compute_drift(ref, cur, DATA, fixed).features)
        cells += len(DATA.features)
    assert flagged / cells <= 0.05
    if rows <= 300:  # the fixed 0.1 fires on noise at small sizes; the null removes it
        assert flagged_fixed / cells >= 0.1
        assert flagged < flagged_fixed


def test_real_shifts_are_still_found_at_300_rows():
    rng = np.random.default_rng(7)
    ref = frame(rng, 1800)
    shifted = compute_drift(ref, frame(rng, 300, shift=0.5), DATA, DISTANCES)
    found = {f.column: f for f in shifted.features}
    assert found["a"].drifted and found["a"].null_threshold is not None
    assert "bootstrap null: 0.99 quantile" in found["a"].message
    moved = compute_drift(ref, frame(rng, 300, share=0.3), DATA, DISTANCES)
    moved = {f.column: f for f in moved.features}
    assert moved["cat"].drifted and not moved["a"].drifted


def test_the_threshold_is_the_larger_of_the_floor_and_the_null():
    rng = np.random.default_rng(3)
    ref, cur = frame(rng, 1800), frame(rng, 5000)
    big = {f.column: f for f in compute_drift(ref, cur, DATA, DISTANCES).features}
    assert big["a"].null_threshold < 0.1 and big["a"].threshold == 0.1  # large batch: the floor
    small = {f.column: f for f in compute_drift(ref, frame(rng, 50), DATA, DISTANCES).features}
    assert small["a"].threshold == small["a"].null_threshold > 0.1  # small batch: the noise


def test_the_null_is_the_same_on_a_rerun_and_differs_by_column():
    ref = pd.Series(np.random.default_rng(4).normal(size=900), name="a")
    first = null_threshold(TESTS["wasserstein"], ref, 200, "numeric", NULL)
    assert first == null_threshold(TESTS["wasserstein"], ref, 200, "numeric", NULL)
    other = null_threshold(TESTS["wasserstein"], ref.rename("b"), 200, "numeric", NULL)
    assert other != first and other == pytest.approx(first, rel=0.3)


def test_samples_zero_gives_todays_results():
    rng = np.random.default_rng(5)
    ref, cur = frame(rng, 1800), frame(rng, 300, shift=0.2)
    off = DISTANCES.model_copy(update={"bootstrap": DriftNullSettings(samples=0)})
    got = {f.column: f for f in compute_drift(ref, cur, DATA, off).features}
    direct = TESTS["wasserstein"].func(ref["a"], cur["a"], 0.1, 30, 0.05, "numeric")
    assert got["a"].statistic == direct.statistic and got["a"].threshold == 0.1
    assert got["a"].null_threshold is None and "bootstrap" not in got["a"].message


def test_records_written_before_the_null_still_load():
    rng = np.random.default_rng(6)
    ref, cur = frame(rng, 1800), frame(rng, 300)
    result = compute_drift(ref, cur, DATA, DISTANCES).features[0]
    old = {k: v for k, v in result.to_dict().items() if k != "null_threshold"}
    assert FeatureDrift.from_dict(old).null_threshold is None
    assert FeatureDrift.from_dict(result.to_dict()) == result
