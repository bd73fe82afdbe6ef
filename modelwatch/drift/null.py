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
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from modelwatch.drift.stattests import (
    hellinger_distance,
    jensenshannon_distance,
    kl_divergence,
    psi,
    wasserstein_1d,
)

if TYPE_CHECKING:
    from modelwatch.drift.stattests import Kind, StatTest
    from modelwatch.settings import DriftNullSettings


BINNED = {
    "jensenshannon_base2": jensenshannon_distance,
    "psi": psi,
    "kl": kl_divergence,
    "hellinger": hellinger_distance,
}


def null_distances(
    test: StatTest,
    reference: pd.Series,
    n_current: int,
    kind: Kind,
    settings: DriftNullSettings,
) -> np.ndarray:
    """Returns the test's distance between settings.samples pairs of resamples (with
    replacement) of the reference's non-missing values: min(N, max_rows) rows against
    min(n_current, max_rows) rows. The generator is seeded with settings.seed and the column's
    name, so a rerun draws the same resamples. Resamples the test cannot judge are left out.

    Two cases run on arrays (each resample costs microseconds, not a pandas round trip): the
    normalised Wasserstein distance of a numeric column, and the binned distances of a
    categorical column, whose resampled category counts are drawn as multinomial counts from
    the reference's shares (the same distribution as counting resampled rows).
    """
    values = reference.dropna()
    if settings.samples == 0 or values.size < 2 or n_current < 2:
        return np.array([])
    name = str(reference.name)
    rng = np.random.default_rng([settings.seed, zlib.crc32(name.encode())])
    n_ref, n_cur = min(values.size, settings.max_rows), min(n_current, settings.max_rows)
    if test.name == "wasserstein" and kind == "numeric":
        return _wasserstein_null(values.to_numpy(dtype=float), n_ref, n_cur, rng, settings)
    if test.name in BINNED and kind == "categorical":
        shares = values.value_counts(normalize=True).to_numpy(dtype=float)
        ref = rng.multinomial(n_ref, shares, size=settings.samples) / n_ref
        cur = rng.multinomial(n_cur, shares, size=settings.samples) / n_cur
        distance = BINNED[test.name]
        return np.array([distance(r, c) for r, c in zip(ref, cur, strict=True)])
    arr = values.to_numpy()
    out = []
    for _ in range(settings.samples):
        ref = pd.Series(arr[rng.integers(0, arr.size, n_ref)], name=name)
        cur = pd.Series(arr[rng.integers(0, arr.size, n_cur)], name=name)
        result = test.func(ref, cur, np.inf, 2, 0.0, kind)
        if result.status == "ok" and result.statistic is not None:
            out.append(result.statistic)
    return np.asarray(out, dtype=float)


def _wasserstein_null(
    arr: np.ndarray, n_ref: int, n_cur: int, rng: np.random.Generator, settings: DriftNullSettings
) -> np.ndarray:
    out = []
    for _ in range(settings.samples):
        ref = arr[rng.integers(0, arr.size, n_ref)]
        cur = arr[rng.integers(0, arr.size, n_cur)]
        sd = float(np.std(ref))
        if sd > 0:
            out.append(wasserstein_1d(ref, cur) / sd)
    return np.asarray(out, dtype=float)


def null_threshold(
    test: StatTest,
    reference: pd.Series,
    n_current: int,
    kind: Kind,
    settings: DriftNullSettings,
) -> float | None:
    """Returns the settings.quantile of null_distances (None: no null, e.g. samples 0)."""
    found = null_distances(test, reference, n_current, kind, settings)
    return float(np.quantile(found, settings.quantile)) if found.size else None
