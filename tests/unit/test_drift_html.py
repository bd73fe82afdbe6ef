"""Unit tests for modelwatch.drift.html: a self-contained page, a plot per feature in rank order."""

import re
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from modelwatch.drift import compute_drift
from modelwatch.drift.html import _edges, rank_features, render_drift_html
from modelwatch.settings import DataSettings, DriftSettings

SVG_NAMESPACES = (
    'xmlns="http://www.w3.org/2000/svg"',
    'xmlns:xlink="http://www.w3.org/1999/xlink"',
)
CARD = re.compile(
    r'<article class="card (\w+)"><h3><span class="rank">([^<]*)</span> ([^<]*) <span'
)


def _frames(rng: np.random.Generator, n: int = 400) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns reference and current frames: 'big' shifts a lot, 'small' a little, 'same' not."""

    def frame(shift: float, p: list[float]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "same": rng.normal(0, 1, n),
                "small": rng.normal(shift * 0.3, 1, n),
                "big": rng.normal(shift * 3, 1, n),
                "cat": rng.choice(["x", "y", "z"], size=n, p=p),
                "y": rng.normal(0, 1, n),
            }
        )

    return frame(0.0, [0.5, 0.3, 0.2]), frame(1.0, [0.2, 0.3, 0.5])


def _report(reference: pd.DataFrame, current: pd.DataFrame, features: list[str], cats=()):
    data = DataSettings(id="id", target="y", features=features, categorical=list(cats))
    return compute_drift(reference, current, data, DriftSettings())


def _cards(page: str) -> list[tuple[str, str, str]]:
    """Returns (state, label, column) per card, in page order."""
    return CARD.findall(page)


def test_page_is_self_contained(rng):
    ref, cur = _frames(rng)
    report = _report(ref, cur, ["same", "small", "big", "cat"], cats=["cat"])
    page = render_drift_html(report, ref, cur, title="t", prediction=(ref["y"], cur["y"]))
    assert page.count("<svg") == 5
    stripped = page
    for namespace in SVG_NAMESPACES:
        stripped = stripped.replace(namespace, "")
    assert "http://" not in stripped and "https://" not in stripped
    assert not re.search(r"<script|<link|<img|<iframe|@import|\bsrc=", page, flags=re.I)
    assert re.findall(r"url\((.)", page) == ["#"] * len(re.findall(r"url\(", page))
    assert "<!DOCTYPE svg" not in page and "<?xml" not in page


def test_one_plot_per_feature_in_ranked_order(rng):
    ref, cur = _frames(rng)
    report = _report(ref, cur, ["same", "small", "big", "cat"], cats=["cat"])
    page = render_drift_html(report, ref, cur, title="t")
    cards = _cards(page)
    assert [c[2] for c in cards] == [f.column for f in rank_features(report)]
    assert [c[1] for c in cards] == ["1", "2", "3", "4"]
    assert cards[0][2] == "big" and cards[-1][2] == "same"
    assert cards[0][0] == "drifted" and cards[-1][0] == "stable"
    sections = page.split('<article class="card')[1:]
    assert [s.count("<svg") for s in sections] == [1, 1, 1, 1]


def test_weighted_score_decides_the_order_when_present():
    def feature(column: str, drifted: bool, score: float | None) -> SimpleNamespace:
        return SimpleNamespace(
            column=column, kind="numeric", test="ks", statistic=0.5,
            p_value=0.01 if drifted else 0.5, threshold=0.05, drifted=drifted,
            status="ok" if score is not None else "invalid",
            message=f"column {column!r}", ref_rows=50, cur_rows=50, importance=0.1,
            weighted_score=score,
        )  # fmt: skip

    features = (feature("a", True, 0.1), feature("b", False, None), feature("c", True, 0.7))
    report = SimpleNamespace(
        features=features, prediction=None, target=None, n_features_tested=2, n_drifted=2,
        drift_share=1.0, dataset_drift=True, share_threshold=0.5,
        dataset_rule="Benjamini-Hochberg: 2 of 2 p-values below 0.01",
    )  # fmt: skip
    frame = pd.DataFrame({"a": np.arange(50.0), "b": np.arange(50.0), "c": np.arange(50.0)})
    page = render_drift_html(report, frame, frame, title="t")
    assert [c[2] for c in _cards(page)] == ["c", "a", "b"]
    assert "<th>weighted score</th>" in page and '<td class="num">0.7</td>' in page
    assert "Benjamini-Hochberg: 2 of 2 p-values below 0.01" in page


def test_without_weighted_scores_drifted_features_come_first_by_strength():
    def feature(column: str, test: str, stat: float, p: float | None, thr: float, status="ok"):
        drifted = status == "ok" and (p < thr if p is not None else stat >= thr)
        return SimpleNamespace(
            column=column, kind="numeric", test=test, statistic=stat, p_value=p, threshold=thr,
            drifted=drifted, status=status, message="m", ref_rows=50, cur_rows=50,
        )  # fmt: skip

    report = SimpleNamespace(
        features=(
            feature("calm", "ks", 0.1, 0.6, 0.05),
            feature("bad", "ks", None, None, 0.05, status="invalid"),
            feature("chi_mild", "chi2", 900.0, 0.01, 0.05),  # big statistic, weak evidence
            feature("ks_strong", "ks", 0.4, 1e-12, 0.05),
            feature("w_far", "wasserstein", 0.5, None, 0.1),  # 5 times its threshold
        ),
        prediction=None, target=None, n_features_tested=4, n_drifted=3, drift_share=0.75,
        dataset_drift=True, share_threshold=0.5,
    )  # fmt: skip
    got = [f.column for f in rank_features(report)]
    assert got == ["ks_strong", "w_far", "chi_mild", "calm", "bad"]


def test_escapes_column_names_and_title(rng):
    name = "<b>x</b>"
    ref = pd.DataFrame({name: rng.normal(0, 1, 100), "y": 0.0})
    cur = pd.DataFrame({name: rng.normal(2, 1, 100), "y": 0.0})
    report = _report(ref, cur, [name])
    page = render_drift_html(report, ref, cur, title="<script>alert(1)</script> & co")
    assert name not in page and "<script" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; &amp; co</title>" in page


def test_nan_only_constant_and_missing_columns_render(rng):
    n = 100
    ref = pd.DataFrame(
        {"nan": rng.normal(0, 1, n), "const": 3.0, "gone": 1.0, "ok": rng.normal(0, 1, n)}
    )
    cur = pd.DataFrame({"nan": np.full(n, np.nan), "const": 3.0, "ok": rng.normal(0, 1, n)})
    report = _report(ref, cur, ["nan", "const", "gone", "ok"])
    page = render_drift_html(report, ref, cur, title="t")
    cards = {column: state for state, _, column in _cards(page)}
    assert cards["nan"] == "untested" and cards["gone"] == "untested"
    assert "no plot: no non-missing current values" in page
    assert "no plot: column not in the current data" in page
    assert page.count("<svg") == 2  # const (one bar on each side) and ok
    assert page.count('<tbody class="untested">') == sum(f.status != "ok" for f in report.features)


def test_empty_current_frame_renders(rng):
    ref = pd.DataFrame({"a": rng.normal(0, 1, 60), "y": 0.0})
    cur = ref.iloc[:0]
    report = _report(ref, cur, ["a"])
    page = render_drift_html(report, ref, cur, title="t")
    assert "no plot: no non-missing current values" in page and "<svg" not in page
    assert "Drift not assessed" in page


def test_prediction_and_target_sections_only_when_given(rng):
    ref, cur = _frames(rng)
    report = _report(ref, cur, ["same", "big"])
    plain = render_drift_html(report, ref, cur, title="t")
    assert "Prediction and target" not in plain
    page = render_drift_html(
        report, ref, cur, title="t", prediction=(ref["big"].rename("pred"), cur["big"])
    )
    cards = _cards(page)
    assert "<h2>Prediction and target</h2>" in page
    assert cards[-1][1:] == ("prediction", "pred") and page.count("<svg") == 3
    assert "the drift report has no prediction result" in page


def test_max_plots_lists_the_rest_without_plots(rng):
    ref, cur = _frames(rng)
    report = _report(ref, cur, ["same", "small", "big"])
    page = render_drift_html(report, ref, cur, title="t", max_plots=1)
    assert page.count("<svg") == 1 and page.count("no plot: beyond max_plots=1") == 2
    assert len(_cards(page)) == 3


def test_categorical_plot_marks_new_and_folds_rare_categories(rng):
    ref = pd.DataFrame({"c": rng.choice([f"k{i}" for i in range(30)], 600), "y": 0.0})
    cur = pd.DataFrame({"c": rng.choice([f"k{i}" for i in range(25)] + ["new"], 600), "y": 0.0})
    report = _report(ref, cur, ["c"], cats=["c"])
    page = render_drift_html(report, ref, cur, title="t")
    assert "smaller categories folded into &#x27;other&#x27;" in page
    assert "* not in the reference: 1 category" in page


@pytest.mark.parametrize(
    ("ref", "cur", "want"),
    [
        ([0, 1, 2, 3], [2, 5], np.arange(-0.5, 6.0)),  # integers: one bin per value, both ranges
        ([1.0, 1.0, 1.0], [1.0], np.array([0.5, 1.5])),  # constant reference
        (np.linspace(0, 1, 100), [1.25], np.linspace(0, 1.3, 14)),  # reference width, extended
        (np.linspace(0, 1, 100), [1000.5], np.linspace(0, 1000.5, 41)),  # too far: span both
    ],
)
def test_edges_are_shared_and_cover_both_sides(ref, cur, want):
    got = _edges(np.asarray(ref, dtype=float), np.asarray(cur, dtype=float))
    np.testing.assert_allclose(got, want, atol=1e-12)


def test_multivariate_results_get_their_own_table(rng):
    """The whole-batch results (domain classifier, PCA) are shown with their verdicts."""
    from modelwatch.drift import multivariate

    ref = pd.DataFrame({"a": rng.normal(0, 1, 300), "b": rng.normal(0, 1, 300)})
    cur = pd.DataFrame({"a": rng.normal(1.5, 1, 200), "b": rng.normal(0, 1, 200)})
    data = DataSettings(id="id", target="y", features=["a", "b"])
    report = compute_drift(ref, cur, data, DriftSettings(numeric_test="ks"))
    results = (
        multivariate.domain_classifier_drift(ref, cur, ["a", "b"], []),
        multivariate.pca_reconstruction_drift(ref, cur, ["a", "b"], []),
    )
    page = render_drift_html(report, ref, cur, title="t", multivariate=results)
    assert "Whole-batch drift (multivariate)" in page
    assert "<b>domain_classifier</b>" in page and "<b>pca_reconstruction</b>" in page
    assert f"{results[0].statistic:.4g}" in page
    assert results[0].drifted is True


def test_distance_rows_show_the_applied_threshold_the_null_and_the_note_once(rng):
    ref, cur = _frames(rng, n=1200)
    cur = cur.iloc[:60]  # a small batch: the null is above 0.1 for the numerics
    data = DataSettings(id="id", target="y", features=["same", "cat"], categorical=["cat"])
    settings = DriftSettings(numeric_test="wasserstein", categorical_test="jensenshannon_base2")
    report = compute_drift(ref, cur, data, settings)
    same = next(f for f in report.features if f.column == "same")
    assert same.threshold == same.null_threshold > 0.1
    page = render_drift_html(report, ref, cur, title="t")
    assert "<th>bootstrap null</th>" in page
    assert (
        f"threshold {same.threshold:.3g}" in page and f"bootstrap null {same.threshold:.3g}" in page
    )
    cat = next(f for f in report.features if f.column == "cat")
    assert cat.note == "over 3 bins" and page.count("over 3 bins") == 1
