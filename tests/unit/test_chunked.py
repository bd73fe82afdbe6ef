"""Drift from Parquet files read in batches: modelwatch.drift.chunked against scipy in memory."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scipy.stats

from modelwatch.drift import chunked, stattests
from modelwatch.errors import SchemaError


def write(path, values, row_group_size: int = 4000):
    """Writes one column "x" as Parquet in several row groups; returns the path."""
    pq.write_table(pa.table({"x": values}), path, row_group_size=row_group_size)
    return path


@pytest.fixture
def files(tmp_path):
    def make(ref, cur, **kw):
        ref_path, cur_path = tmp_path / "ref.parquet", tmp_path / "cur.parquet"
        return write(ref_path, ref, **kw), write(cur_path, cur, **kw)

    return make


@pytest.mark.parametrize("shift", [0.0, 0.04, 0.5])
@pytest.mark.parametrize("bins", [2**16, 256, 8])
def test_ks_streamed_is_exact(files, rng, shift, bins):
    """Reference: scipy.stats.ks_2samp (auto = asymptotic p above 10,000 rows a side).

    Few bins force the refinement pass; the statistic and p-value must still be equal."""
    ref, cur = rng.normal(0, 1, 24_000), rng.normal(shift, 1, 12_000)
    ref[::97] = np.nan
    got = chunked.ks_from_parquet(*files(ref, cur), "x", bins=bins, batch_rows=3000)
    want = scipy.stats.ks_2samp(ref[~np.isnan(ref)], cur)
    assert got.exact and got.error_bound == 0.0
    assert got.statistic == pytest.approx(want.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
    assert got.drifted == (want.pvalue < 0.05) and got.drifted == (shift > 0)
    assert (got.ref_rows, got.cur_rows) == (ref.size - np.isnan(ref).sum(), cur.size)


@pytest.mark.parametrize("bins", [256, 32])
def test_ks_without_refinement_stays_within_its_bound(files, rng, bins):
    """Reference: scipy.stats.ks_2samp. With refinement off the true D lies in
    [statistic, statistic + error_bound], the bound is about one bin's share, and the p-value
    (at the lower end) is never smaller than scipy's."""
    ref, cur = rng.normal(0, 1, 24_000), rng.normal(0.05, 1.2, 16_000)
    got = chunked.ks_from_parquet(*files(ref, cur), "x", bins=bins, max_refine_values=0)
    want = scipy.stats.ks_2samp(ref, cur)
    assert not got.exact and got.error_bound > 0
    assert got.statistic <= want.statistic <= got.statistic + got.error_bound
    pooled_share = 1 / (bins - 1)  # quantile cuts of a pooled sample: each bin ~ this share
    assert got.error_bound <= 1.3 * pooled_share * (ref.size + cur.size) / cur.size
    assert got.p_value >= want.pvalue


def test_ks_ties_on_few_values_are_exact_without_refinement(files, rng):
    """Reference: scipy.stats.ks_2samp. Integer-valued data: one value per bin, no pass 3."""
    ref = rng.integers(0, 5, 20_000).astype(float)
    cur = rng.integers(0, 6, 15_000).astype(float)
    got = chunked.ks_from_parquet(*files(ref, cur), "x", max_refine_values=0)
    want = scipy.stats.ks_2samp(ref, cur)
    assert got.exact and got.statistic == pytest.approx(want.statistic, abs=1e-12)


def test_ks_small_files_match_in_memory_test(files, rng):
    """Reference: scipy.stats.ks_2samp (exact p) and stattests.ks_test, up to 10,000 rows."""
    ref, cur = rng.normal(0, 1, 600), rng.normal(0.3, 1, 400)
    got = chunked.ks_from_parquet(*files(ref, cur, row_group_size=128), "x")
    want = scipy.stats.ks_2samp(ref, cur)
    mem = stattests.ks_test(pd.Series(ref, name="x"), pd.Series(cur, name="x"), 0.05, 50)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9) == mem.p_value
    assert got.statistic == mem.statistic and got.drifted and mem.drifted


def test_ks_edge_cases_give_a_status_not_a_crash(files, rng):
    """All-missing, too few values and infinities: status and message, never a verdict."""
    empty = chunked.ks_from_parquet(*files(np.full(100, np.nan), rng.normal(size=100)), "x")
    assert empty.status == "insufficient_data" and not empty.drifted
    assert "0 non-missing reference values, need at least 50" in empty.message
    few = chunked.ks_from_parquet(*files(rng.normal(size=20), rng.normal(size=100)), "x")
    assert few.status == "insufficient_data" and few.statistic is None
    inf = np.r_[rng.normal(size=99), np.inf]
    bad = chunked.ks_from_parquet(*files(rng.normal(size=100), inf), "x")
    assert bad.status == "invalid"
    assert "0 reference and 1 current values are infinite" in bad.message
    same = chunked.ks_from_parquet(*files(np.ones(20_000), np.ones(12_000)), "x")
    assert same.status == "ok" and same.statistic == 0.0 and same.p_value == 1.0


def test_ks_rejects_missing_column_and_text(tmp_path, rng):
    ref = write(tmp_path / "ref.parquet", rng.normal(size=100))
    cur = tmp_path / "cur.parquet"
    pq.write_table(pa.table({"x": ["a"] * 100}), cur)
    with pytest.raises(SchemaError, match=r"cur.parquet: column 'x' is string, KS needs numbers"):
        chunked.ks_from_parquet(ref, cur, "x")
    with pytest.raises(SchemaError, match=r"ref.parquet: no column 'y'"):
        chunked.ks_from_parquet(ref, cur, "y")
    with pytest.raises(SchemaError, match=r"nope.parquet: cannot read as Parquet"):
        chunked.ks_from_parquet(tmp_path / "nope.parquet", cur, "x")
    assert ref.exists() and cur.exists()


def categories(rng, n: int, p) -> np.ndarray:
    return rng.choice(np.array(["a", "b", "c", "d", "e"])[: len(p)], size=n, p=p)


@pytest.mark.parametrize(
    ("p_ref", "p_cur", "drift"),
    [
        ([0.4, 0.3, 0.2, 0.1], [0.4, 0.3, 0.2, 0.1], False),
        ([0.4, 0.3, 0.2, 0.1], [0.3, 0.3, 0.2, 0.1, 0.1], True),  # new category "e"
    ],
)
def test_chi2_streamed_equals_in_memory(tmp_path, rng, p_ref, p_cur, drift):
    """Reference: scipy.stats.chi2_contingency(correction=False) on pd.crosstab, and the
    in-memory stattests.chi2_test: same statistic and p-value to 1e-9."""
    ref = pd.Series(categories(rng, 9000, p_ref), dtype=object, name="x")
    cur = pd.Series(categories(rng, 5000, p_cur), dtype=object, name="x")
    ref[::50] = None
    pq.write_table(pa.table({"x": ref}), tmp_path / "r.parquet", row_group_size=1000)
    as_dictionary = pa.table({"x": pa.array(cur).dictionary_encode()})
    pq.write_table(as_dictionary, tmp_path / "c.parquet", row_group_size=700)
    got = chunked.chi2_from_parquet(tmp_path / "r.parquet", tmp_path / "c.parquet", "x")
    both = pd.concat([ref.dropna(), cur], keys=["ref", "cur"]).reset_index(level=0)
    table = pd.crosstab(both["level_0"], both["x"]).to_numpy()
    want = scipy.stats.chi2_contingency(table, correction=False)
    mem = stattests.chi2_test(ref, cur, 0.05, 50)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-9)
    assert got.p_value == pytest.approx(want.pvalue, rel=1e-9, abs=1e-300)
    assert got.p_value == pytest.approx(mem.p_value, rel=1e-9, abs=1e-300)
    assert got.drifted == drift == mem.drifted
    assert (got.ref_rows, got.cur_rows) == (ref.count(), 5000)


def test_chi2_numbers_and_nan_and_one_category(files):
    """Reference: scipy.stats.chi2_contingency. 1 and 1.0 are one category, NaN is missing."""
    got = chunked.chi2_from_parquet(
        *files(np.r_[np.ones(60), np.zeros(40), np.nan], np.r_[np.ones(30), np.zeros(70)]), "x"
    )
    want = scipy.stats.chi2_contingency([[60, 40], [30, 70]], correction=False)
    assert got.statistic == pytest.approx(want.statistic, rel=1e-12) and got.ref_rows == 100
    one = chunked.chi2_from_parquet(*files(np.ones(60), np.ones(80)), "x")
    assert one.status == "ok" and one.p_value == 1.0 and not one.drifted
    none = chunked.chi2_from_parquet(*files(np.full(60, np.nan), np.ones(80)), "x")
    assert none.status == "insufficient_data" and "0 non-missing reference" in none.message


def test_column_drift_dispatches_by_kind(files, rng):
    paths = files(rng.normal(size=200), rng.normal(size=200))
    assert chunked.column_drift_from_parquet(*paths, "x", "numeric").test == "ks"
    assert chunked.column_drift_from_parquet(*paths, "x", "categorical").test == "chi2"
