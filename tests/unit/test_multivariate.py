"""Multivariate drift: domain classifier and PCA reconstruction error on small frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.metrics import roc_auc_score

from modelwatch.drift import multivariate as mv
from modelwatch.errors import SchemaError

FEATURES = ["a", "b", "c", "cat"]


def frame(rng: np.random.Generator, n: int, shift: float = 0.0, corr: float = 0.8) -> pd.DataFrame:
    """Returns a, b (correlated with a), c numeric and a 3-level categorical."""
    z = rng.normal(size=(n, 3))
    return pd.DataFrame(
        {
            "a": z[:, 0] + shift,
            "b": corr * z[:, 0] + np.sqrt(1 - corr**2) * z[:, 1],
            "c": z[:, 2],
            "cat": rng.choice(["x", "y", "z"], size=n, p=[0.5, 0.3, 0.2]),
        }
    )


def test_domain_classifier_no_drift(rng):
    """Reference: sklearn.metrics.roc_auc_score; same distribution -> AUC within 3 null standard
    deviations of 0.5 (Mann-Whitney: sqrt((n + m + 1) / (12 n m)))."""
    got = mv.domain_classifier_drift(frame(rng, 300), frame(rng, 250), FEATURES, ["cat"])
    assert got.status == "ok" and not got.drifted
    null_sd = np.sqrt((300 + 250 + 1) / (12 * 300 * 250))
    assert abs(got.statistic - 0.5) < 3 * null_sd and got.threshold == 0.55
    assert (got.n_reference, got.n_current) == (300, 250)
    assert set(got.features) == set(FEATURES) and got.dropped == ()


def test_domain_classifier_finds_shift_and_names_the_column(rng):
    """Reference: sklearn.metrics.roc_auc_score of the true log-likelihood ratio, a - 0.8 b (the
    shift (1, 0) times the inverse covariance), is the Bayes ceiling; the classifier gets close
    to it and beats the best single column, because b - 0.8 a moved too."""
    ref, cur = frame(rng, 400), frame(rng, 300, shift=1.0)
    got = mv.domain_classifier_drift(ref, cur, FEATURES, ["cat"])
    y = np.r_[np.zeros(400), np.ones(300)]
    bayes = roc_auc_score(y, np.r_[ref["a"] - 0.8 * ref["b"], cur["a"] - 0.8 * cur["b"]])
    assert got.drifted and bayes - 0.1 < got.statistic <= bayes + 0.02
    assert got.statistic > got.top_features[0][1] + 0.05
    assert got.top_features[0][0] == "a" and got.top_features[0][1] > 0.7
    assert "drift on 4 features" in got.message and ">= 0.55" in got.message


def test_domain_classifier_catches_a_category_only_in_current(rng):
    ref, cur = frame(rng, 300), frame(rng, 300)
    cur.loc[cur.index[:100], "cat"] = "new"
    got = mv.domain_classifier_drift(ref, cur, FEATURES, ["cat"])
    assert got.drifted and got.top_features[0][0] == "cat"


def test_domain_classifier_subsamples_and_handles_imbalance(rng):
    """max_rows caps each side with the seed: the result is reproducible."""
    ref, cur = frame(rng, 900), frame(rng, 120, shift=1.0)
    one = mv.domain_classifier_drift(ref, cur, FEATURES, ["cat"], max_rows=300, seed=3)
    two = mv.domain_classifier_drift(ref, cur, FEATURES, ["cat"], max_rows=300, seed=3)
    assert (one.n_reference, one.n_current) == (300, 120) and one.drifted
    assert one == two and "subsampled from 900 / 120" in one.message


def test_domain_classifier_drops_empty_constant_and_survives_nan_inf(rng):
    ref, cur = frame(rng, 200), frame(rng, 200)
    for df in (ref, cur):
        df["empty"], df["const"], df["mixed"] = np.nan, 7.0, ["1", 2, None, "z"] * 50
    ref.loc[ref.index[:20], "a"] = np.inf
    cur.loc[cur.index[:30], "c"] = np.nan
    features = [*FEATURES, "empty", "const", "mixed"]
    got = mv.domain_classifier_drift(ref, cur, features, ["cat", "mixed"])
    assert got.status == "ok" and got.dropped == ("empty (all missing)", "const (constant)")
    assert "dropped empty (all missing), const (constant)" in got.message
    assert "empty" not in got.features and "mixed" in got.features
    assert np.isinf(ref["a"]).sum() == 20  # inputs untouched
    ref.index, cur.index = [0] * 200, ["k"] * 200  # duplicate labels must not matter
    assert mv.domain_classifier_drift(ref, cur, features, ["cat", "mixed"]) == got


def test_domain_classifier_too_few_rows_or_no_usable_column(rng):
    few = mv.domain_classifier_drift(frame(rng, 49), frame(rng, 300), FEATURES, ["cat"])
    assert few.status == "insufficient_data" and few.statistic is None and not few.drifted
    assert "49 reference and 300 current rows, need 50 per side" in few.message
    blank = pd.DataFrame({"e": [np.nan] * 60})
    none = mv.domain_classifier_drift(blank, blank, ["e"], [])
    assert none.status == "invalid" and "no usable feature columns" in none.message


def test_missing_feature_and_bad_arguments_raise(rng):
    ref = frame(rng, 60)
    with pytest.raises(SchemaError, match=r"current frame: missing feature columns \['a'\]"):
        mv.domain_classifier_drift(ref, ref.drop(columns="a"), FEATURES, ["cat"])
    with pytest.raises(ValueError, match="0.5 < threshold"):
        mv.domain_classifier_drift(ref, ref, FEATURES, ["cat"], threshold=0.4)
    with pytest.raises(ValueError, match="chunks >= 2"):
        mv.pca_reconstruction_drift(ref, ref, FEATURES, ["cat"], chunks=1)


def test_pca_no_drift_and_error_matches_sklearn(rng):
    """Reference: sklearn.decomposition.PCA fit on the standardised, one-hot reference: the
    current's mean squared reconstruction error is recomputed here by hand."""
    ref, cur = frame(rng, 500), frame(rng, 300)
    got = mv.pca_reconstruction_drift(ref, cur, FEATURES, ["cat"])
    assert got.status == "ok" and not got.drifted and got.lower <= got.statistic <= got.upper
    num = ["a", "b", "c"]
    mean, std = ref[num].mean(), ref[num].std(ddof=0)
    x_ref, x_cur = (
        np.hstack([((df[num] - mean) / std).to_numpy(), pd.get_dummies(df["cat"]).to_numpy(float)])
        for df in (ref, cur)
    )
    pca = PCA(n_components=0.9, random_state=0).fit(x_ref)
    want = np.mean((x_cur - pca.inverse_transform(pca.transform(x_cur))) ** 2)
    assert got.statistic == pytest.approx(want, rel=1e-9) and got.n_components == pca.n_components_


def test_pca_detects_broken_correlation_that_marginals_miss(rng):
    """Same marginals, a-b correlation gone: PCA error rises above the reference spread."""
    ref, cur = frame(rng, 500), frame(rng, 300, corr=0.0)
    cur["b"] = rng.normal(size=300)
    got = mv.pca_reconstruction_drift(ref, cur, ["a", "b", "c"], [])
    assert got.drifted and got.statistic > got.upper
    assert "outside" in got.message and got.to_dict()["upper"] == got.upper


def test_pca_false_alarms_are_rare(rng):
    """Out-of-fold reference errors + bootstrap chunks: stationary batches seldom alarm."""
    alarms = [
        mv.pca_reconstruction_drift(frame(rng, 300), frame(rng, 250), FEATURES, ["cat"], seed=s)
        for s in range(20)
    ]
    assert sum(a.drifted for a in alarms) <= 2


def test_pca_edge_cases(rng):
    ref, cur = frame(rng, 200), frame(rng, 200)
    ref["late"], cur["late"] = np.nan, rng.normal(size=200)  # no reference values to scale by
    ref["const"], cur["const"] = 1.0, 1.0
    got = mv.pca_reconstruction_drift(ref, cur, [*FEATURES, "late", "const"], ["cat"])
    assert got.status == "ok"
    assert got.dropped == ("const (constant)", "late (no reference values)")
    one = mv.pca_reconstruction_drift(ref, cur, ["c"], [])
    assert one.status == "invalid" and "keeps all 1 dimensions" in one.message
    few = mv.pca_reconstruction_drift(ref.head(10), cur, FEATURES, ["cat"])
    assert few.status == "insufficient_data"


def test_result_round_trips_through_dict(rng):
    got = mv.domain_classifier_drift(frame(rng, 100), frame(rng, 100), FEATURES, ["cat"])
    assert mv.MultivariateDrift.from_dict(got.to_dict()) == got
