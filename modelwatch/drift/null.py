"""Distance thresholds that follow the sampling noise: a bootstrap null of each distance on
the reference (pure, seeded).

A distance between two samples of one distribution is not 0: it shrinks as the samples grow.
A fixed threshold (drift.distance_threshold) therefore fires on noise for small batches and
misses real changes for large ones. Here the threshold of a distance test is the larger of the
configured one (the smallest change worth acting on) and the `quantile` of the same distance
between two resamples of the reference, one of the reference's size and one of the batch's:
what the distance looks like when nothing changed, at exactly these sizes.

Why not scipy.stats: bootstrap gives a confidence interval of a statistic of the data at hand,
not the null of a two-sample distance at two given sizes; permutation_test gives that null but
needs the batch pooled with the reference, so every batch pays O(reference + batch) per
resample, where this null depends on the reference and the batch size only.

Cost: it runs for every distance-tested column of every batch, so three cases run on arrays,
all resamples of a column at once, and give the values the test itself would give on the same
resamples:
- Wasserstein and energy distances of a numeric column: both resamples take values of the
  sorted reference, so their ECDFs are cumulative counts over its distinct values
  (scipy.stats.wasserstein_distance and energy_distance integrate the same step functions);
- binned distances of a categorical column, or of a numeric one with at most N_BINS distinct
  values (which the test compares as categories): the category counts of a resample with
  replacement are a multinomial draw from the reference's shares, so they are drawn as such,
  and the distance is taken over the categories seen on either side, as the test's table is.
Other distances (a numeric column cut into decile bins) resample rows and run the test itself.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.spatial.distance
import scipy.stats
from scipy.stats.mstats import hdquantiles

from modelwatch.drift.stattests import EPSILON, N_BINS

if TYPE_CHECKING:
    from modelwatch.drift.stattests import Kind, StatTest
    from modelwatch.settings import DriftNullSettings

BINNED = ("jensenshannon_base2", "psi", "kl", "hellinger")
# the L^p distance between the ECDFs: 1 for Wasserstein-1, 2 for energy (times sqrt(2))
CDF_ORDER = {"wasserstein": 1, "energy": 2}
# cells (resamples x distinct values or draws) per block of the array path: arrays of ~0.8 MB
# stay in cache (1.6x faster than 8 MB blocks at 10k rows, bench_drift_speed) and add little memory
BLOCK_CELLS = 100_000


@dataclass(frozen=True)
class NullThreshold:
    """The null's quantile, the number of resamples it came from and the batch resample's size."""

    value: float
    resamples: int
    rows: int


def generator(seed: int, column: str) -> np.random.Generator:
    """Returns the column's generator: seeded by the settings' seed and a stable hash of the
    name (crc32, not hash(): Python salts str hashes per process), so a rerun draws the same."""
    return np.random.default_rng([seed, zlib.crc32(column.encode())])


def null_distances(
    test: StatTest,
    reference: pd.Series,
    n_current: int,
    kind: Kind,
    settings: DriftNullSettings,
) -> np.ndarray:
    """Returns the test's distance between settings.samples pairs of resamples (with
    replacement) of the reference's non-missing values: min(N, max_rows) rows against
    min(n_current, max_rows) rows. Resamples the test cannot judge (e.g. a constant resample
    of a normalised distance) are left out.
    """
    values = reference.dropna()
    if settings.samples == 0 or values.size < 2 or n_current < 2:
        return np.array([])
    rng = generator(settings.seed, str(reference.name))
    n_ref, n_cur = min(values.size, settings.max_rows), min(n_current, settings.max_rows)
    if test.name in CDF_ORDER and kind == "numeric":
        x = np.sort(values.to_numpy(dtype=float))
        idx = rng.integers(0, x.size, (settings.samples, n_ref + n_cur), dtype=_index_type(x))
        return cdf_null(x, idx, n_ref, CDF_ORDER[test.name])
    if test.name in BINNED:
        as_categories = values if kind == "categorical" else values.astype(float)
        shares = as_categories.value_counts(normalize=True, sort=False).to_numpy(dtype=float)
        if kind == "categorical" or shares.size <= N_BINS:
            ref = rng.multinomial(n_ref, shares, size=settings.samples)
            cur = rng.multinomial(n_cur, shares, size=settings.samples)
            return binned_null(test.name, ref, cur)
    return _resampled_rows(test, values, n_ref, n_cur, kind, rng, settings.samples)


def null_threshold(
    test: StatTest,
    reference: pd.Series,
    n_current: int,
    kind: Kind,
    settings: DriftNullSettings,
) -> NullThreshold | None:
    """Returns the settings.quantile of null_distances (None: no null, e.g. samples 0), the
    Harrell-Davis estimate (scipy.stats.mstats.hdquantiles): a weighted mean of all order
    statistics. numpy.quantile's 0.99 of 200 rests on the two largest distances, and as a
    column keeps its draws batch after batch, a column that drew a short tail keeps a low
    threshold. Measured on a normal column (1,800-row reference, 50-row batches, 100 column
    names): false alarms 1.7 % on average and 6.6 % at worst with numpy.quantile, 1.1 % and
    4.8 % with Harrell-Davis.
    """
    found = null_distances(test, reference, n_current, kind, settings)
    if not found.size:
        return None
    value = float(hdquantiles(found, [settings.quantile])[0])
    return NullThreshold(value, int(found.size), min(n_current, settings.max_rows))


def cdf_null(x: np.ndarray, idx: np.ndarray, n_ref: int, order: int) -> np.ndarray:
    """Returns, per row of idx, the distance between x[idx[:n_ref]] and x[idx[n_ref:]], over the
    reference std of the first (left out when that resample is constant): order 1 the
    Wasserstein-1 distance, order 2 the energy distance. x is sorted.

    Both are integrals of the gap between the two ECDFs, n_ref * n_cur * (F_ref - F_cur): a
    cumulative sum of n_cur per reference draw and -n_ref per batch draw, integers and exact in
    float64. It is summed over x's distinct values (counts, when they are not many more than
    the draws) or over the draws sorted together (sort, for a reference with many more
    distinct values than a resample pair has rows).
    """
    n_cur = idx.shape[1] - n_ref
    distinct, position = np.unique(x, return_inverse=True)
    if distinct.size < 2:
        return np.array([])
    by_counts = distinct.size <= 2 * idx.shape[1]
    rows = max(1, BLOCK_CELLS // (max(distinct.size, idx.shape[1]) if by_counts else idx.shape[1]))
    out = np.empty(idx.shape[0])
    for start in range(0, idx.shape[0], rows):
        block = idx[start : start + rows]
        if by_counts:
            gap, width = _gap_by_counts(block, n_ref, distinct, position, x.size)
        else:
            gap, width = _gap_by_sorting(block, n_ref, x)
        if order == 1:
            raw = (gap * width).sum(axis=1) / (n_ref * n_cur)
        else:
            raw = np.sqrt(2 * (gap**2 * width).sum(axis=1)) / (n_ref * n_cur)
        ref = x[block[:, :n_ref]]
        constant = ref.min(axis=1) == ref.max(axis=1)
        out[start : start + block.shape[0]] = raw / np.where(constant, np.nan, ref.std(axis=1))
    return out[~np.isnan(out)]


def _gap_by_counts(
    block: np.ndarray, n_ref: int, distinct: np.ndarray, position: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Returns |gap| at each distinct value (rows x distinct) and the width to the next one."""
    b, k, n_cur = block.shape[0], distinct.size, block.shape[1] - n_ref
    cells = (block if k == n else position[block]) + (np.arange(b) * k)[:, None]
    weights = np.concatenate([np.full(n_ref, float(n_cur)), np.full(n_cur, -float(n_ref))])
    counts = np.bincount(cells.ravel(), weights=np.tile(weights, b), minlength=b * k)
    # the gap is 0 after the last distinct value: a zero width there keeps the shapes equal
    return np.abs(np.cumsum(counts.reshape(b, k), axis=1)), np.append(np.diff(distinct), 0.0)


def _gap_by_sorting(block: np.ndarray, n_ref: int, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns |gap| after each draw of the pair sorted together (rows x draws - 1) and the
    width to the next draw; the lowest bit of a sort key says which side drew it."""
    n_cur = block.shape[1] - n_ref
    keys = (block if x.size < 2**30 else block.astype(np.int64)) << 1
    keys[:, n_ref:] |= 1
    keys.sort(axis=1)
    gap = np.abs(np.cumsum(np.where(keys[:, :-1] & 1, -n_ref, n_cur), axis=1))
    return gap, np.diff(x[keys >> 1], axis=1)


def binned_null(name: str, ref_counts: np.ndarray, cur_counts: np.ndarray) -> np.ndarray:
    """Returns the binned distance `name` (stattests' definition) of each row pair of counts,
    over the categories either row saw, as the test's reference-by-current table has them."""
    seen = (ref_counts + cur_counts) > 0
    p = ref_counts / ref_counts.sum(axis=1, keepdims=True)
    q = cur_counts / cur_counts.sum(axis=1, keepdims=True)
    if name == "jensenshannon_base2":  # unseen categories add 0 (rel_entr(0, 0) = 0)
        return scipy.spatial.distance.jensenshannon(p, q, base=2, axis=1)
    if name == "hellinger":
        return np.sqrt(np.maximum(0.0, 1.0 - np.sqrt(p * q).sum(axis=1)))
    r, c = _smooth(p, seen), _smooth(q, seen)
    if name == "kl":
        return scipy.stats.entropy(r, c, axis=1)
    ratio = np.divide(c, r, out=np.ones_like(c), where=seen)
    return ((c - r) * np.log(ratio)).sum(axis=1)


def _smooth(proportions: np.ndarray, seen: np.ndarray) -> np.ndarray:
    """stattests.smooth per row, over the seen categories only (the others stay 0)."""
    p = np.where(seen, np.where(proportions == 0, EPSILON, proportions), 0.0)
    return p / p.sum(axis=1, keepdims=True)


def _index_type(x: np.ndarray) -> type:
    return np.int32 if x.size < 2**31 else np.int64


def _resampled_rows(
    test: StatTest,
    values: pd.Series,
    n_ref: int,
    n_cur: int,
    kind: Kind,
    rng: np.random.Generator,
    samples: int,
) -> np.ndarray:
    """Returns the test's statistic on resampled rows (the path for any other distance)."""
    arr, name = values.to_numpy(), str(values.name)
    out = []
    for _ in range(samples):
        ref = pd.Series(arr[rng.integers(0, arr.size, n_ref)], name=name)
        cur = pd.Series(arr[rng.integers(0, arr.size, n_cur)], name=name)
        result = test.func(ref, cur, np.inf, 2, 0.0, kind)
        if result.status == "ok" and result.statistic is not None:
            out.append(result.statistic)
    return np.asarray(out, dtype=float)
