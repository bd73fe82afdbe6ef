"""Drift of one column from two Parquet files larger than memory, read in record batches.

Chi-squared is exact (category counts are summed). KS is exact too unless the values that decide
it do not fit in max_refine_values; then the statistic comes with a stated error bound.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.stats

from modelwatch.drift.stattests import FeatureDrift
from modelwatch.errors import SchemaError

Kind = Literal["numeric", "categorical"]
Status = Literal["ok", "insufficient_data", "invalid"]

BATCH_ROWS = 262_144
BINS = 2**16
SAMPLE_ROWS = 2**18
MAX_REFINE_VALUES = 5_000_000
MAX_CATEGORIES = 100_000


@dataclass(frozen=True)
class ParquetDrift(FeatureDrift):
    """One column's drift test on two Parquet files: a FeatureDrift plus how exact it is.

    exact is False only for KS when refinement did not fit: the true statistic is then in
    [statistic, statistic + error_bound] and p_value is computed at statistic (conservative).
    """

    exact: bool = True
    error_bound: float = 0.0


def _open(path: Path, column: str) -> pq.ParquetFile:
    """Returns the open file.

    Raises:
        SchemaError: the file cannot be read or has no such column.
    """
    try:
        # pre_buffer (pyarrow's default) caches every row group read so far: 125 MB on a 96 MB file
        pf = pq.ParquetFile(path, pre_buffer=False)
    except (OSError, pa.ArrowInvalid) as exc:
        raise SchemaError(f"{path}: cannot read as Parquet ({exc})") from exc
    if column not in pf.schema_arrow.names:
        raise SchemaError(f"{path}: no column {column!r} (has {pf.schema_arrow.names})")
    return pf


def _arrays(path: Path, column: str, batch_rows: int) -> Iterator[pa.Array]:
    """Yields the column in record batches of at most batch_rows, dictionaries decoded."""
    for batch in _open(path, column).iter_batches(batch_size=batch_rows, columns=[column]):
        arr = batch.column(0)
        yield arr.dictionary_decode() if pa.types.is_dictionary(arr.type) else arr


def _floats(path: Path, column: str, batch_rows: int) -> Iterator[np.ndarray]:
    """Yields the column's values as float64, missing as NaN.

    Raises:
        SchemaError: the column is not numeric.
    """
    for arr in _arrays(path, column, batch_rows):
        if not (pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type)):
            if not (pa.types.is_boolean(arr.type) or pa.types.is_decimal(arr.type)):
                raise SchemaError(f"{path}: column {column!r} is {arr.type}, KS needs numbers")
        yield pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)


def _rows_note(column: str, n_ref: int, n_cur: int, min_rows: int) -> str | None:
    for side, n in (("reference", n_ref), ("current", n_cur)):
        if n < max(min_rows, 1):
            return f"column {column!r}: {n} non-missing {side} values, need at least {min_rows}"
    return None


def _untested(column, kind, test, threshold, status, message, n_ref, n_cur) -> ParquetDrift:
    return ParquetDrift(
        column, kind, test, None, None, threshold, False, status, message, n_ref, n_cur
    )


def _tested(
    column: str,
    kind: Kind,
    test: str,
    stat: float,
    p: float,
    threshold: float,
    message: str,
    n_ref: int,
    n_cur: int,
    **extra: Any,
) -> ParquetDrift:
    """Returns a result with a verdict: drifted when p < threshold."""
    return ParquetDrift(
        column=column,
        kind=kind,
        test=test,
        statistic=stat,
        p_value=p,
        threshold=threshold,
        drifted=p < threshold,
        status="ok",
        message=message,
        ref_rows=n_ref,
        cur_rows=n_cur,
        **extra,
    )


# --- chi-squared ------------------------------------------------------------------------------


def _category_counts(path: Path, column: str, batch_rows: int) -> Counter:
    """Returns non-missing value -> count (NaN counts as missing; 1 and 1.0 are one key).

    Raises:
        SchemaError: more than MAX_CATEGORIES distinct values (not a categorical column).
    """
    counts: Counter = Counter()
    for arr in _arrays(path, column, batch_rows):
        if pa.types.is_floating(arr.type):
            arr = pc.filter(arr, pc.invert(pc.is_nan(arr)))
        for item in pc.value_counts(arr.drop_null()).to_pylist():
            counts[item["values"]] += item["counts"]
        if len(counts) > MAX_CATEGORIES:
            raise SchemaError(
                f"{path}: column {column!r} has over {MAX_CATEGORIES} distinct values; "
                "chi-squared needs a categorical column"
            )
    return counts


def chi2_from_parquet(
    reference_path: Path,
    current_path: Path,
    column: str,
    *,
    threshold: float = 0.05,
    min_rows: int = 50,
    batch_rows: int = BATCH_ROWS,
) -> ParquetDrift:
    """Returns the chi-squared test of homogeneity on exact category counts; drift when
    p < threshold. Memory grows with the number of categories, not rows.

    Same table as the in-memory test: 2 x k over the categories seen on either side, missing
    values (null or NaN) left out. Reference: scipy.stats.chi2_contingency(correction=False).

    Raises:
        SchemaError: a file is unreadable, lacks the column, or the column is not categorical.
    """
    ref = _category_counts(reference_path, column, batch_rows)
    cur = _category_counts(current_path, column, batch_rows)
    n_ref, n_cur = sum(ref.values()), sum(cur.values())
    note = _rows_note(column, n_ref, n_cur, min_rows)
    if note is not None:
        status: Status = "insufficient_data"
        return _untested(column, "categorical", "chi2", threshold, status, note, n_ref, n_cur)
    keys = list(ref | cur)
    table = np.array([[ref[k] for k in keys], [cur[k] for k in keys]])
    res = scipy.stats.chi2_contingency(table, correction=False)  # one category: 0.0, p 1.0
    stat, p = float(res.statistic), float(res.pvalue)
    verdict = "<" if p < threshold else ">="
    message = (
        f"column {column!r}: chi-squared p-value {p:.3g} {verdict} {threshold:g} "
        f"over {len(keys)} categories ({n_ref} reference, {n_cur} current rows)"
    )
    return _tested(column, "categorical", "chi2", stat, p, threshold, message, n_ref, n_cur)


# --- Kolmogorov-Smirnov -----------------------------------------------------------------------


@dataclass
class _Side:
    """Pass-1 facts about one file's column."""

    n: int = 0
    missing: int = 0
    infinite: int = 0


def _scan(path: Path, column: str, batch_rows: int, rate: float, rng: np.random.Generator):
    """Returns the side's counts and a Bernoulli(rate) sample of its finite values."""
    side, sample = _Side(), []
    for values in _floats(path, column, batch_rows):
        nan, inf = np.isnan(values), np.isinf(values)
        side.missing += int(nan.sum())
        side.infinite += int(inf.sum())
        finite = values[~(nan | inf)]
        side.n += finite.size
        sample.append(finite if rate >= 1 else finite[rng.random(finite.size) < rate])
    return side, np.concatenate(sample) if sample else np.empty(0)


def _edges(sample: np.ndarray, bins: int) -> np.ndarray:
    """Returns at most `bins` increasing cut points at quantiles of the pooled sample (order
    statistics: np.quantile with 65,536 levels spends seconds in partition)."""
    distinct = np.unique(sample)
    if distinct.size <= bins:
        return distinct
    ordered = np.sort(sample)
    return np.unique(ordered[np.linspace(0, ordered.size - 1, bins).round().astype(np.int64)])


def _histogram(path: Path, column: str, batch_rows: int, edges: np.ndarray, lo, hi) -> np.ndarray:
    """Returns counts per bin (edges[i-1], edges[i]] (bin len(edges) is above the last edge) and
    updates lo / hi, the smallest and largest value seen per bin, in place."""
    counts = np.zeros(edges.size + 1, dtype=np.int64)
    for values in _floats(path, column, batch_rows):
        values = values[np.isfinite(values)]
        idx = np.searchsorted(edges, values, side="left")
        counts += np.bincount(idx, minlength=counts.size)
        np.minimum.at(lo, idx, values)
        np.maximum.at(hi, idx, values)
    return counts


def _in_bins(path: Path, column: str, batch_rows: int, edges: np.ndarray, keep: np.ndarray):
    """Returns the sorted finite values that fall in the bins where keep is True."""
    parts = []
    for values in _floats(path, column, batch_rows):
        values = values[np.isfinite(values)]
        parts.append(values[keep[np.searchsorted(edges, values, side="left")]])
    return np.sort(np.concatenate(parts)) if parts else np.empty(0)


def _ks_p_value(d: float, n: int, m: int) -> float:
    """Returns ks_2samp's asymptotic two-sided p-value (its method for more than 10,000 rows)."""
    en = float(n) * float(m) / (float(n) + float(m))
    return float(np.clip(scipy.stats.kstwo.sf(d, np.round(en)), 0.0, 1.0))


def _refined_d(edges, h_ref, h_cur, keep, ref_vals, cur_vals) -> float:
    """Returns max |F_ref - F_cur| over all values in the kept bins, using the bin counts below."""
    n, m = h_ref.sum(), h_cur.sum()
    before_ref, before_cur = np.cumsum(h_ref) - h_ref, np.cumsum(h_cur) - h_cur
    kept_ref, kept_cur = h_ref * keep, h_cur * keep
    kept_before_ref, kept_before_cur = (
        np.cumsum(kept_ref) - kept_ref,
        np.cumsum(kept_cur) - kept_cur,
    )
    points = np.concatenate([ref_vals, cur_vals])
    i = np.searchsorted(edges, points, side="left")
    below_ref = before_ref[i] + np.searchsorted(ref_vals, points, side="right") - kept_before_ref[i]
    below_cur = before_cur[i] + np.searchsorted(cur_vals, points, side="right") - kept_before_cur[i]
    return float(np.max(np.abs(below_ref / n - below_cur / m))) if points.size else 0.0


def _binned_ks(paths, column, batch_rows, sample, bins, max_refine_values):
    """Returns (statistic, error_bound): exact (bound 0) when the deciding bins were refined."""
    edges = _edges(sample, bins)
    lo, hi = np.full(edges.size + 1, np.inf), np.full(edges.size + 1, -np.inf)
    h_ref, h_cur = (_histogram(p, column, batch_rows, edges, lo, hi) for p in paths)
    a, b = np.cumsum(h_ref) / h_ref.sum(), np.cumsum(h_cur) / h_cur.sum()
    a_prev, b_prev = np.r_[0.0, a[:-1]], np.r_[0.0, b[:-1]]
    d_low = float(np.max(np.abs(a - b)))
    bound = np.maximum(a - b_prev, b - a_prev)
    # a bin with one distinct value only steps at it: its edge values already give the exact sup
    keep = (lo < hi) & (bound > d_low)
    if not keep.any():
        return d_low, 0.0
    if (h_ref + h_cur)[keep].sum() > max_refine_values:
        return d_low, float(bound[keep].max()) - d_low
    ref_vals, cur_vals = (_in_bins(p, column, batch_rows, edges, keep) for p in paths)
    return max(d_low, _refined_d(edges, h_ref, h_cur, keep, ref_vals, cur_vals)), 0.0


def ks_from_parquet(
    reference_path: Path,
    current_path: Path,
    column: str,
    *,
    threshold: float = 0.05,
    min_rows: int = 50,
    batch_rows: int = BATCH_ROWS,
    bins: int = BINS,
    sample_rows: int = SAMPLE_ROWS,
    max_refine_values: int = MAX_REFINE_VALUES,
    seed: int = 0,
) -> ParquetDrift:
    """Returns the two-sample Kolmogorov-Smirnov test on non-missing values; drift when
    p < threshold. Memory: O(batch_rows + sample_rows + bins + max_refine_values).

    Up to 10,000 rows a side the values are loaded and scipy.stats.ks_2samp is called (exact p).
    Larger files take three passes: (1) counts and a seeded sample of about sample_rows values
    pooled from both files; (2) per-file counts in at most `bins` bins cut at the sample's
    quantiles, with each bin's min and max; (3) the values of the bins that can still hold the
    supremum, re-read and merged. The ECDFs are exact at the cut points, so
    D_low = max |F_ref - F_cur| over the cut points is attained; inside bin i the gap is at most
    max(A_i - B_(i-1), B_i - A_(i-1)) (A, B: ECDFs at the cuts). Bins with one distinct value or
    whose bound is <= D_low cannot raise it; the rest are refined in pass 3, giving D exactly
    (the same counts over n and m as ks_2samp). If they hold more than max_refine_values values,
    pass 3 is skipped: statistic = D_low, exact False and error_bound = max bound - D_low, which is
    at most the largest share of either file in one unrefined bin (about 1/bins each with the
    default quantile cuts). p_value: kstwo.sf(D, round(n m / (n + m))), what ks_2samp computes
    above 10,000 rows a side; at D_low it is conservative (never smaller than the true one).
    Infinite values make the column "invalid", as in the in-memory test.
    Reference: scipy.stats.ks_2samp.

    Raises:
        SchemaError: a file is unreadable, lacks the column, or the column is not numeric.
    """
    paths = (Path(reference_path), Path(current_path))
    total = sum(_open(p, column).metadata.num_rows for p in paths)
    small = max(_open(p, column).metadata.num_rows for p in paths) <= 10_000
    rng = np.random.default_rng(seed)
    rate = 1.0 if small else min(1.0, sample_rows / max(total, 1))
    (ref, ref_sample), (cur, cur_sample) = (_scan(p, column, batch_rows, rate, rng) for p in paths)
    note = _rows_note(column, ref.n, cur.n, min_rows)
    status: Status = "insufficient_data"
    if ref.infinite or cur.infinite:
        infinite = f"{ref.infinite} reference and {cur.infinite} current"
        note = f"column {column!r}: {infinite} values are infinite"
        status = "invalid"
    if note is not None:
        return _untested(column, "numeric", "ks", threshold, status, note, ref.n, cur.n)
    if small:
        res = scipy.stats.ks_2samp(ref_sample, cur_sample)
        d, bound, p = float(res.statistic), 0.0, float(res.pvalue)
    else:
        sample = np.concatenate([ref_sample, cur_sample])
        d, bound = _binned_ks(paths, column, batch_rows, sample, bins, max_refine_values)
        p = _ks_p_value(d, ref.n, cur.n)
    how = "exact" if bound == 0 else f"within +{bound:.2g}"
    verdict = "<" if p < threshold else ">="
    message = (
        f"column {column!r}: KS p-value {p:.3g} {verdict} {threshold:g} (D {d:.4g}, {how}; "
        f"{ref.n} reference, {cur.n} current rows, {ref.missing + cur.missing} missing skipped)"
    )
    return _tested(
        column,
        "numeric",
        "ks",
        d,
        p,
        threshold,
        message,
        ref.n,
        cur.n,
        exact=bound == 0,
        error_bound=bound,
    )


def column_drift_from_parquet(
    reference_path: Path, current_path: Path, column: str, kind: Kind, **options: Any
) -> ParquetDrift:
    """Returns ks_from_parquet for numeric columns, chi2_from_parquet for categorical ones.

    Raises:
        SchemaError: as the test it calls.
    """
    test = ks_from_parquet if kind == "numeric" else chi2_from_parquet
    return test(reference_path, current_path, column, **options)
