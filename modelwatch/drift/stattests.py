"""One pure function per drift test, plus a small name -> test registry.

Every test compares the non-missing values of one column and never raises for bad data: a column
with too few values, infinities or non-numeric values gets a non-"ok" status and a message instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.stats

Kind = Literal["numeric", "categorical"]
Status = Literal["ok", "insufficient_data", "invalid", "constant_reference"]


@dataclass(frozen=True)
class FeatureDrift:
    """The outcome of one drift test on one column; only status "ok" carries a verdict."""

    column: str
    kind: Kind
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    status: Status
    message: str
    ref_rows: int
    cur_rows: int

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureDrift:
        """Returns the FeatureDrift that to_dict produced."""
        return cls(**raw)


TestFunc = Callable[[pd.Series, pd.Series, float, int], FeatureDrift]


@dataclass(frozen=True)
class StatTest:
    """A registered drift test: what it accepts and whether it gives a p-value or a distance."""

    name: str
    func: TestFunc
    kinds: tuple[Kind, ...]
    gives: Literal["p_value", "distance"]


class _Unusable(Exception):
    """Internal: a column cannot be tested; carries the status and message to report."""

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


def _name(reference: pd.Series, current: pd.Series) -> str:
    return str(reference.name if reference.name is not None else current.name)


def _numeric_values(series: pd.Series, column: str, side: str) -> np.ndarray:
    """Returns the non-missing values as floats.

    Raises:
        _Unusable: a value is not a number or is infinite.
    """
    values = series.dropna()
    if not pd.api.types.is_numeric_dtype(values.dtype):
        coerced = pd.to_numeric(values, errors="coerce")
        bad = values[coerced.isna()]
        if len(bad):
            examples = ", ".join(repr(v) for v in bad.unique()[:3])
            raise _Unusable(
                "invalid",
                f"column {column!r}: {len(bad)} non-numeric {side} values "
                f"(e.g. {examples}); a numeric test needs numbers",
            )
        values = coerced
    array = values.to_numpy(dtype=float, na_value=np.nan)
    array = array[~np.isnan(array)]
    n_inf = int(np.isinf(array).sum())
    if n_inf:
        raise _Unusable(
            "invalid",
            f"column {column!r}: {n_inf} infinite {side} values; "
            "a numeric test needs finite numbers",
        )
    return array


def _vs(value: float, threshold: float) -> str:
    """Returns e.g. "0.012 < 0.05": the comparison that decided the verdict."""
    return f"{value:.3g} {'<' if value < threshold else '>='} {threshold:g}"


def _check_rows(n_ref: int, n_cur: int, column: str, min_rows: int) -> None:
    """Raises _Unusable if either side has fewer than min_rows values (and at least one)."""
    min_rows = max(min_rows, 1)
    for side, n in (("reference", n_ref), ("current", n_cur)):
        if n < min_rows:
            raise _Unusable(
                "insufficient_data",
                f"column {column!r}: {n} non-missing {side} values, need at least {min_rows}",
            )


def untested(
    column: str,
    kind: Kind,
    test: str,
    threshold: float,
    status: Status,
    message: str,
    ref_rows: int = 0,
    cur_rows: int = 0,
) -> FeatureDrift:
    """Returns the result for a column the test could not run on (never drifted)."""
    return FeatureDrift(
        column=column,
        kind=kind,
        test=test,
        statistic=None,
        p_value=None,
        threshold=threshold,
        drifted=False,
        status=status,
        message=message,
        ref_rows=ref_rows,
        cur_rows=cur_rows,
    )


def _untested(
    err: _Unusable,
    kind: Kind,
    test: str,
    threshold: float,
    reference: pd.Series,
    current: pd.Series,
) -> FeatureDrift:
    column = _name(reference, current)
    rows = int(reference.count()), int(current.count())
    return untested(column, kind, test, threshold, err.status, str(err), *rows)


def _numeric_pair(
    reference: pd.Series, current: pd.Series, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    column = _name(reference, current)
    ref = _numeric_values(reference, column, "reference")
    cur = _numeric_values(current, column, "current")
    _check_rows(ref.size, cur.size, column, min_rows)
    return ref, cur


def ks_test(
    reference: pd.Series, current: pd.Series, threshold: float, min_rows: int
) -> FeatureDrift:
    """Returns a two-sample Kolmogorov-Smirnov test; drift when p < threshold.

    Reference: scipy.stats.ks_2samp (two-sided, default method).
    """
    try:
        ref, cur = _numeric_pair(reference, current, min_rows)
    except _Unusable as err:
        return _untested(err, "numeric", "ks", threshold, reference, current)
    res = scipy.stats.ks_2samp(ref, cur)
    p = float(res.pvalue)
    column = _name(reference, current)
    return FeatureDrift(
        column=column,
        kind="numeric",
        test="ks",
        statistic=float(res.statistic),
        p_value=p,
        threshold=threshold,
        drifted=p < threshold,
        status="ok",
        message=f"column {column!r}: KS p-value {_vs(p, threshold)}",
        ref_rows=ref.size,
        cur_rows=cur.size,
    )


def wasserstein_test(
    reference: pd.Series, current: pd.Series, threshold: float, min_rows: int
) -> FeatureDrift:
    """Returns the Wasserstein-1 distance over the reference std; drift when >= threshold.

    The std is the population one (ddof=0). A constant reference gets status "constant_reference".
    Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref).
    """
    try:
        ref, cur = _numeric_pair(reference, current, min_rows)
    except _Unusable as err:
        return _untested(err, "numeric", "wasserstein", threshold, reference, current)
    column = _name(reference, current)
    raw = float(scipy.stats.wasserstein_distance(ref, cur))
    if ref.min() == ref.max():  # exact test: np.std of a constant can be a tiny non-zero float
        message = (
            f"column {column!r}: reference is constant ({ref[0]:g}), cannot normalise; "
            f"raw distance {raw:.3g}"
        )
        return untested(
            column,
            "numeric",
            "wasserstein",
            threshold,
            "constant_reference",
            message,
            ref.size,
            cur.size,
        )
    distance = raw / float(np.std(ref))
    return FeatureDrift(
        column=column,
        kind="numeric",
        test="wasserstein",
        statistic=distance,
        p_value=None,
        threshold=threshold,
        drifted=distance >= threshold,
        status="ok",
        message=f"column {column!r}: normalised Wasserstein distance {_vs(distance, threshold)}",
        ref_rows=ref.size,
        cur_rows=cur.size,
    )


def _contingency_table(ref: pd.Series, cur: pd.Series) -> np.ndarray:
    """Returns the 2 x k counts over the categories observed on either side.

    factorize aligns 1 with 1.0 and skips unused levels of a pandas Categorical.
    """
    codes, categories = pd.factorize(pd.concat([ref, cur], ignore_index=True))
    k, n = len(categories), len(ref)
    return np.vstack([np.bincount(codes[:n], minlength=k), np.bincount(codes[n:], minlength=k)])


def chi2_test(
    reference: pd.Series, current: pd.Series, threshold: float, min_rows: int
) -> FeatureDrift:
    """Returns a chi-squared test of homogeneity of category counts; drift when p < threshold.

    The table is 2 x k (reference, current) by the union of observed categories, so a category
    seen on one side only counts as evidence of drift. Not a goodness-of-fit test.
    Reference: scipy.stats.chi2_contingency(table, correction=False).
    """
    column = _name(reference, current)
    ref, cur = reference.dropna(), current.dropna()
    try:
        _check_rows(len(ref), len(cur), column, min_rows)
    except _Unusable as err:
        return _untested(err, "categorical", "chi2", threshold, reference, current)
    table = _contingency_table(ref, cur)
    res = scipy.stats.chi2_contingency(table, correction=False)
    p = float(res.pvalue)
    return FeatureDrift(
        column=column,
        kind="categorical",
        test="chi2",
        statistic=float(res.statistic),
        p_value=p,
        threshold=threshold,
        drifted=p < threshold,
        status="ok",
        message=f"column {column!r}: chi-squared p-value {_vs(p, threshold)} "
        f"over {table.shape[1]} categories",
        ref_rows=len(ref),
        cur_rows=len(cur),
    )


TESTS: dict[str, StatTest] = {
    "ks": StatTest("ks", ks_test, ("numeric",), "p_value"),
    "wasserstein": StatTest("wasserstein", wasserstein_test, ("numeric",), "distance"),
    "chi2": StatTest("chi2", chi2_test, ("categorical",), "p_value"),
}
