"""One pure function per drift test, plus a small name -> test registry.

Every test compares the non-missing values of one column and never raises for bad data: a column
with too few values, infinities, non-numeric values or a degenerate shape gets a non-"ok" status
and a message instead.

Verdicts. A p-value test drifts when p < threshold AND its effect size >= the effect-size floor
(significant and large enough: on large data a tiny, irrelevant shift is always significant).
Effect sizes are all on [0, 1]: the KS statistic (largest gap between the two CDFs) for ks,
anderson_darling and cramervonmises; Cramér's V for chi2; |p_current - p_reference| for z.
A distance test drifts when distance >= threshold; its effect size is the distance itself.

Binned tests (jensenshannon_base2, psi, kl, hellinger) compare frequencies: categories over the
union of both sides for categorical columns and for numeric columns with at most N_BINS distinct
reference values; otherwise N_BINS bins between reference quantiles (deciles), open at both ends
so current values outside the reference range land in the outer bins.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.spatial.distance
import scipy.stats

Kind = Literal["numeric", "categorical"]
Status = Literal[
    "ok",
    "insufficient_data",
    "invalid",
    "constant_reference",
    "constant",
    "high_cardinality",
    "error",
]

N_BINS = 10
# PSI and KL take logarithms of proportions: an empty bin gets this proportion (Evidently's
# choice) before the proportions are renormalised to sum 1. JS and Hellinger need no smoothing.
EPSILON = 1e-4
# scipy.stats.anderson_ksamp interpolates a table: its p-value is clipped to this range.
ANDERSON_P_RANGE = (0.001, 0.25)
W1_BLOCK = 1 << 20  # values of the merged sample per block of wasserstein_1d


@dataclass(frozen=True)
class FeatureDrift:
    """The outcome of one drift test on one column; only status "ok" carries a verdict.

    p_value is the test's own (raw) p-value; p_value_adjusted the Benjamini-Hochberg one across
    the features' p-value tests, when the report computed it. weighted_score is effect_size times
    the feature's importance (normalised to sum 1 over features).
    """

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
    effect_size: float | None = None
    effect_size_floor: float | None = None
    p_value_adjusted: float | None = None
    importance: float | None = None
    weighted_score: float | None = None
    note: str = ""
    # distance tests judged with the bootstrap null (modelwatch.drift.null): its quantile at this
    # batch's size, the configured threshold (the floor), and how the null was drawn; threshold
    # is the larger of the two. None / "" without a null (samples 0, or a p-value test).
    null_threshold: float | None = None
    threshold_floor: float | None = None
    null_basis: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Returns the fields as a JSON-able dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> FeatureDrift:
        """Returns the FeatureDrift that to_dict produced (older records lack newer fields)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})


TestFunc = Callable[..., FeatureDrift]


@dataclass(frozen=True)
class StatTest:
    """A registered drift test: the column kinds it accepts, what it gives, its default threshold.

    func(reference, current, threshold, min_rows, effect_size_floor=0.0, kind=None) -> FeatureDrift
    """

    name: str
    func: TestFunc
    kinds: tuple[Kind, ...]
    gives: Literal["p_value", "distance"]
    default_threshold: float
    label: str


@dataclass(frozen=True)
class _Measure:
    """What a test measured on usable data, before any verdict."""

    statistic: float
    p_value: float | None
    effect_size: float
    ref_rows: int
    cur_rows: int
    note: str = ""


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


def _check_rows(n_ref: int, n_cur: int, column: str, min_rows: int) -> None:
    """Raises _Unusable if either side has fewer than min_rows values (and at least one)."""
    min_rows = max(min_rows, 1)
    for side, n in (("reference", n_ref), ("current", n_cur)):
        if n < min_rows:
            raise _Unusable(
                "insufficient_data",
                f"column {column!r}: not enough data: {n} non-missing {side} values, "
                f"need at least {min_rows}",
            )


def _numeric_pair(
    reference: pd.Series, current: pd.Series, min_rows: int
) -> tuple[np.ndarray, np.ndarray]:
    column = _name(reference, current)
    ref = _numeric_values(reference, column, "reference")
    cur = _numeric_values(current, column, "current")
    _check_rows(ref.size, cur.size, column, min_rows)
    return ref, cur


def _not_constant(ref: np.ndarray, cur: np.ndarray, column: str) -> None:
    """Raises _Unusable when both sides hold one and the same value (rank tests degenerate)."""
    if ref.min() == ref.max() == cur.min() == cur.max():
        raise _Unusable(
            "constant",
            f"column {column!r}: both sides hold the single value {ref[0]:g}; nothing to compare",
        )


def _reference_std(ref: np.ndarray, raw: float, column: str, what: str) -> float:
    """Returns the population std of the reference (ddof=0).

    Raises:
        _Unusable: the reference is constant, so a distance cannot be normalised.
    """
    if ref.min() == ref.max():  # exact test: np.std of a constant can be a tiny non-zero float
        raise _Unusable(
            "constant_reference",
            f"column {column!r}: reference is constant ({ref[0]:g}), cannot normalise; "
            f"raw {what} {raw:.3g}",
        )
    return float(np.std(ref))


def _non_missing(reference: pd.Series, current: pd.Series, min_rows: int):
    ref, cur = reference.dropna(), current.dropna()
    _check_rows(len(ref), len(cur), _name(reference, current), min_rows)
    return ref, cur


def _not_all_unique(ref: pd.Series, column: str) -> None:
    """Raises _Unusable when every reference value is distinct: categories would not repeat."""
    n = len(ref)
    if n > 1 and ref.nunique() == n:
        raise _Unusable(
            "high_cardinality",
            f"column {column!r}: all {n} reference values are distinct; a category test needs "
            "repeated values (an id or a continuous column?)",
        )


def contingency_table(ref: pd.Series, cur: pd.Series) -> np.ndarray:
    """Returns the 2 x k counts (reference, current) over the categories seen on either side.

    factorize aligns 1 with 1.0 and skips unused levels of a pandas Categorical.
    """
    codes, categories = pd.factorize(pd.concat([ref, cur], ignore_index=True))
    k, n = len(categories), len(ref)
    return np.vstack([np.bincount(codes[:n], minlength=k), np.bincount(codes[n:], minlength=k)])


def _infer_kind(series: pd.Series) -> Kind:
    dtype = series.dtype
    numeric = pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype)
    return "numeric" if numeric else "categorical"


def binned_counts(reference: pd.Series, current: pd.Series, kind: Kind) -> np.ndarray:
    """Returns the 2 x k counts the binned tests compare (see the module docstring).

    Raises:
        _Unusable: a numeric column holds non-numeric or infinite values.
    """
    if kind == "categorical":
        return contingency_table(reference, current)
    column = _name(reference, current)
    ref = _numeric_values(reference, column, "reference")
    cur = _numeric_values(current, column, "current")
    if np.unique(ref).size <= N_BINS:
        return contingency_table(pd.Series(ref), pd.Series(cur))
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, N_BINS + 1))[1:-1])
    k = edges.size + 1
    return np.vstack(
        [
            np.bincount(np.searchsorted(edges, ref, side="right"), minlength=k),
            np.bincount(np.searchsorted(edges, cur, side="right"), minlength=k),
        ]
    )


def smooth(proportions: np.ndarray) -> np.ndarray:
    """Returns proportions with empty bins set to EPSILON, renormalised to sum 1."""
    p = np.where(proportions == 0, EPSILON, proportions)
    return p / p.sum()


# --- the measures: each returns a _Measure or raises _Unusable ----------------------------------


def _ks(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    ref, cur = _numeric_pair(reference, current, min_rows)
    res = scipy.stats.ks_2samp(ref, cur)
    d = float(res.statistic)
    return _Measure(d, float(res.pvalue), d, ref.size, cur.size)


def _anderson(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    ref, cur = _numeric_pair(reference, current, min_rows)
    _not_constant(ref, cur, _name(reference, current))
    res = scipy.stats.anderson_ksamp([ref, cur], variant="midrank")
    p = float(res.pvalue)
    low, high = ANDERSON_P_RANGE
    note = f"p-value clipped to [{low:g}, {high:g}] by scipy" if p <= low or p >= high else ""
    d = float(scipy.stats.ks_2samp(ref, cur).statistic)
    return _Measure(float(res.statistic), p, d, ref.size, cur.size, note)


def _cramervonmises(
    reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind
) -> _Measure:
    ref, cur = _numeric_pair(reference, current, min_rows)
    _not_constant(ref, cur, _name(reference, current))  # scipy gives p = 0.04 for two constants
    res = scipy.stats.cramervonmises_2samp(ref, cur)
    d = float(scipy.stats.ks_2samp(ref, cur).statistic)
    return _Measure(float(res.statistic), float(res.pvalue), d, ref.size, cur.size)


def _chi2(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    ref, cur = _non_missing(reference, current, min_rows)
    _not_all_unique(ref, _name(reference, current))
    table = contingency_table(ref, cur)
    res = scipy.stats.chi2_contingency(table, correction=False)
    chi2 = float(res.statistic)
    cramers_v = float(np.sqrt(chi2 / table.sum())) if table.shape[1] > 1 else 0.0
    note = f"over {table.shape[1]} categories"
    return _Measure(chi2, float(res.pvalue), cramers_v, len(ref), len(cur), note)


def _z(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    column = _name(reference, current)
    ref, cur = _non_missing(reference, current, min_rows)
    codes, categories = pd.factorize(pd.concat([ref, cur], ignore_index=True), sort=True)
    if len(categories) > 2:
        raise _Unusable(
            "invalid",
            f"column {column!r}: the z-test needs a binary column, found {len(categories)} "
            f"values (e.g. {', '.join(repr(c) for c in categories[:3])})",
        )
    # "success" is the larger of the two values (1 of 0/1, True of bools)
    n1, n2 = len(ref), len(cur)
    x1, x2 = int((codes[:n1] == 1).sum()), int((codes[n1:] == 1).sum())
    z, p, diff = two_proportion_z(x1, n1, x2, n2)
    return _Measure(z, p, abs(diff), n1, n2)


def two_proportion_z(x1: int, n1: int, x2: int, n2: int) -> tuple[float, float, float]:
    """Returns (z, two-sided p, p2 - p1) of the pooled two-proportion z-test.

    z = (p2 - p1) / sqrt(p (1 - p) (1/n1 + 1/n2)) with p = (x1 + x2) / (n1 + n2); the same
    proportion on both sides of a one-valued column gives z = 0, p = 1.
    """
    p1, p2 = x1 / n1, x2 / n2
    pooled = (x1 + x2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0, p2 - p1
    z = (p2 - p1) / se
    return float(z), float(2 * scipy.stats.norm.sf(abs(z))), p2 - p1


def _wasserstein(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    ref, cur = _numeric_pair(reference, current, min_rows)
    raw = wasserstein_1d(ref, cur)
    d = raw / _reference_std(ref, raw, _name(reference, current), "distance")
    return _Measure(d, None, d, ref.size, cur.size)


def wasserstein_1d(u: np.ndarray, v: np.ndarray) -> float:
    """Returns the first Wasserstein distance of two samples: the L1 distance of their ECDFs.

    Same value as scipy.stats.wasserstein_distance (unweighted), computed from two sorted
    arrays: merging two sorted runs with a stable sort is linear, where scipy sorts the
    concatenation from scratch and argsorts twice (about half the time at 1M rows).
    """
    u, v = np.sort(u), np.sort(v)
    both = np.sort(np.concatenate([u, v]), kind="stable")
    total = 0.0
    # in blocks: the four temporaries of one block are cache-sized, not four copies of both
    # (the Dask path tests 10M-row columns in 1.5 GiB workers)
    for start in range(0, both.size - 1, W1_BLOCK):
        edges = both[start : start + W1_BLOCK + 1]
        cu = np.searchsorted(u, edges[:-1], "right") / u.size
        cv = np.searchsorted(v, edges[:-1], "right") / v.size
        total += float(np.dot(np.abs(cu - cv), np.diff(edges)))
    return total


def _energy(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
    ref, cur = _numeric_pair(reference, current, min_rows)
    raw = float(scipy.stats.energy_distance(ref, cur))
    d = raw / _reference_std(ref, raw, _name(reference, current), "energy distance")
    return _Measure(d, None, d, ref.size, cur.size)


def _binned(
    distance: Callable[[np.ndarray, np.ndarray], float],
) -> Callable[[pd.Series, pd.Series, int, Kind], _Measure]:
    """Returns a measure comparing reference and current frequencies with distance(ref, cur)."""

    def measure(reference: pd.Series, current: pd.Series, min_rows: int, kind: Kind) -> _Measure:
        ref, cur = _non_missing(reference, current, min_rows)
        if kind == "categorical":
            _not_all_unique(ref, _name(reference, current))
        table = binned_counts(ref, cur, kind)
        p_ref, p_cur = table[0] / table[0].sum(), table[1] / table[1].sum()
        d = float(distance(p_ref, p_cur))
        return _Measure(d, None, d, len(ref), len(cur), f"over {table.shape[1]} bins")

    return measure


def jensenshannon_distance(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Returns the Jensen-Shannon distance with log base 2 (in [0, 1])."""
    return float(scipy.spatial.distance.jensenshannon(p_ref, p_cur, base=2))


def psi(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Returns the population stability index sum((cur - ref) ln(cur / ref)), smoothed."""
    r, c = smooth(p_ref), smooth(p_cur)
    return float(np.sum((c - r) * np.log(c / r)))


def kl_divergence(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Returns KL(reference || current) in nats on smoothed proportions (Evidently's direction)."""
    return float(scipy.stats.entropy(smooth(p_ref), smooth(p_cur)))


def hellinger_distance(p_ref: np.ndarray, p_cur: np.ndarray) -> float:
    """Returns sqrt(1 - sum(sqrt(ref * cur))), in [0, 1]."""
    return float(np.sqrt(max(0.0, 1.0 - np.sum(np.sqrt(p_ref * p_cur)))))


# --- verdicts -----------------------------------------------------------------------------------


def _vs(value: float, threshold: float, digits: str = "g") -> str:
    """Returns e.g. "0.012 < 0.05": the comparison that decided the verdict (a configured
    threshold as given; a computed one, a bootstrap null's quantile, with digits ".3g")."""
    return f"{value:.3g} {'<' if value < threshold else '>='} {threshold:{digits}}"


def _distance_vs(stat: float, result: FeatureDrift) -> str:
    """Returns the comparison of a distance and which threshold applied, e.g. "0.12 < 0.134
    (bootstrap null, 0.99 quantile of 200 resamples at 300 rows; floor 0.1)"."""
    null, floor, basis = result.null_threshold, result.threshold_floor, result.null_basis
    if null is None or floor is None:
        return _vs(stat, result.threshold)
    if null > floor:
        return f"{_vs(stat, result.threshold, '.3g')} (bootstrap null, {basis}; floor {floor:g})"
    return f"{_vs(stat, result.threshold)} (floor; bootstrap null {null:.3g}, {basis})"


def decide(result: FeatureDrift, adjusted: bool = False) -> FeatureDrift:
    """Returns result with drifted and message set from its threshold, floor and p-value.

    adjusted: judge the Benjamini-Hochberg p-value (p_value_adjusted) instead of the raw one.
    """
    if result.status != "ok" or result.statistic is None:
        return result
    test = TESTS[result.test]
    head = f"column {result.column!r}: {test.label}"
    why = ""
    p = result.p_value_adjusted if adjusted else result.p_value
    if p is None or result.effect_size is None:  # a distance test
        drifted = result.statistic >= result.threshold
        text = f"{head} {_distance_vs(result.statistic, result)}"
    else:
        floor = result.effect_size_floor or 0.0
        significant, large = p < result.threshold, result.effect_size >= floor
        drifted = significant and large
        text = (
            f"{head} {'BH-adjusted p-value' if adjusted else 'p-value'} {_vs(p, result.threshold)}"
        )
        if adjusted:
            text += f" (raw {result.p_value:.3g})"
        text += f", effect size {_vs(result.effect_size, floor)}"
        if significant and not large:
            why = "significant but below the effect-size floor"
    message = "; ".join(filter(None, [text, why, result.note]))
    return dataclasses.replace(result, drifted=drifted, message=message)


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


def _evaluate(
    name: str,
    measure: Callable[[pd.Series, pd.Series, int, Kind], _Measure],
    reference: pd.Series,
    current: pd.Series,
    threshold: float,
    min_rows: int,
    effect_size_floor: float,
    kind: Kind | None,
) -> FeatureDrift:
    column = _name(reference, current)
    kind = kind or _infer_kind(reference)
    try:
        m = measure(reference, current, min_rows, kind)
    except _Unusable as err:
        rows = int(reference.count()), int(current.count())
        return untested(column, kind, name, threshold, err.status, str(err), *rows)
    gives_p = m.p_value is not None
    result = FeatureDrift(
        column=column,
        kind=kind,
        test=name,
        statistic=m.statistic,
        p_value=m.p_value,
        threshold=threshold,
        drifted=False,
        status="ok",
        message="",
        ref_rows=m.ref_rows,
        cur_rows=m.cur_rows,
        effect_size=m.effect_size,
        effect_size_floor=effect_size_floor if gives_p else None,
        note=m.note,
    )
    return decide(result)


def _test_function(name: str, measure: Callable, doc: str) -> TestFunc:
    def run(
        reference: pd.Series,
        current: pd.Series,
        threshold: float,
        min_rows: int,
        effect_size_floor: float = 0.0,
        kind: Kind | None = None,
    ) -> FeatureDrift:
        return _evaluate(
            name, measure, reference, current, threshold, min_rows, effect_size_floor, kind
        )

    run.__name__ = f"{name}_test"
    run.__doc__ = doc
    return run


ks_test = _test_function(
    "ks", _ks, "Returns a two-sample KS test. Reference: scipy.stats.ks_2samp (two-sided)."
)
chi2_test = _test_function(
    "chi2",
    _chi2,
    "Returns a chi-squared test of homogeneity on the 2 x k reference-by-current table over the "
    "union of categories (not a goodness-of-fit test); effect size Cramér's V. "
    "Reference: scipy.stats.chi2_contingency(table, correction=False).",
)
z_test = _test_function(
    "z",
    _z,
    "Returns a pooled two-proportion z-test of a binary column; effect size |p2 - p1|. "
    "Reference: 2 * scipy.stats.norm.sf(|z|); z**2 equals the 2 x 2 chi-squared statistic.",
)
anderson_darling_test = _test_function(
    "anderson_darling",
    _anderson,
    "Returns the k-sample Anderson-Darling test (midrank). Its p-value is interpolated from a "
    "table and clipped to [0.001, 0.25]. Reference: scipy.stats.anderson_ksamp.",
)
cramervonmises_test = _test_function(
    "cramervonmises",
    _cramervonmises,
    "Returns the two-sample Cramér-von Mises test. Reference: scipy.stats.cramervonmises_2samp.",
)
wasserstein_test = _test_function(
    "wasserstein",
    _wasserstein,
    "Returns the Wasserstein-1 distance over the reference std (ddof=0). "
    "Reference: scipy.stats.wasserstein_distance(ref, cur) / numpy.std(ref).",
)
energy_test = _test_function(
    "energy",
    _energy,
    "Returns the energy distance over the reference std (ddof=0). "
    "Reference: scipy.stats.energy_distance(ref, cur) / numpy.std(ref).",
)
jensenshannon_test = _test_function(
    "jensenshannon_base2",
    _binned(jensenshannon_distance),
    "Returns the Jensen-Shannon distance, log base 2, of binned frequencies. "
    "Reference: scipy.spatial.distance.jensenshannon(p_ref, p_cur, base=2).",
)
psi_test = _test_function(
    "psi",
    _binned(psi),
    "Returns the population stability index of binned, smoothed frequencies.",
)
kl_test = _test_function(
    "kl",
    _binned(kl_divergence),
    "Returns KL(reference || current) in nats of binned, smoothed frequencies. "
    "Reference: scipy.stats.entropy(p_ref, p_cur).",
)
hellinger_test = _test_function(
    "hellinger",
    _binned(hellinger_distance),
    "Returns the Hellinger distance of binned frequencies.",
)

_BOTH: tuple[Kind, ...] = ("numeric", "categorical")
_NUM: tuple[Kind, ...] = ("numeric",)

TESTS: dict[str, StatTest] = {
    t.name: t
    for t in [
        StatTest("ks", ks_test, _NUM, "p_value", 0.05, "KS"),
        StatTest("chi2", chi2_test, _BOTH, "p_value", 0.05, "chi-squared"),
        StatTest("z", z_test, _BOTH, "p_value", 0.05, "two-proportion z-test"),
        StatTest(
            "anderson_darling", anderson_darling_test, _NUM, "p_value", 0.05, "Anderson-Darling"
        ),
        StatTest("cramervonmises", cramervonmises_test, _NUM, "p_value", 0.05, "Cramér-von Mises"),
        StatTest(
            "wasserstein",
            wasserstein_test,
            _NUM,
            "distance",
            0.1,
            "normalised Wasserstein distance",
        ),
        StatTest("energy", energy_test, _NUM, "distance", 0.1, "normalised energy distance"),
        StatTest(
            "jensenshannon_base2",
            jensenshannon_test,
            _BOTH,
            "distance",
            0.1,
            "Jensen-Shannon distance (base 2)",
        ),
        StatTest("psi", psi_test, _BOTH, "distance", 0.1, "PSI"),
        StatTest("kl", kl_test, _BOTH, "distance", 0.1, "KL divergence (nats)"),
        StatTest("hellinger", hellinger_test, _BOTH, "distance", 0.1, "Hellinger distance"),
    ]
}
