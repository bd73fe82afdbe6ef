"""SHAP values (modelwatch.explain) against the shap package's own model-agnostic output, and
attribution drift on a planted change.

References: shap.explainers.Exact run directly on the whole pipeline with an Independent masker
over the same background (interventional SHAP); for linear models also the closed form
phi_j = sum over the columns c of input j of coef_c * (x_c - mean of the background's x_c)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelwatch.explain import compare_attributions, explain_model, sample_rows
from modelwatch.settings import DataSettings, TrainingSettings
from modelwatch.training import fit

FEATURES = ["region", "x1", "x2", "x3"]
DATA = DataSettings(id="id", target="y", features=FEATURES, categorical=["region"])


def _frame(rng: np.random.Generator, rows: int, x2_scale: float = 1.0) -> pd.DataFrame:
    region = rng.choice(["north", "south", "east"], rows)
    x1, x2, x3 = rng.normal(size=rows), rng.normal(size=rows) * x2_scale, rng.normal(size=rows)
    y = 2 * x1 + x2 + np.where(region == "south", 1.5, 0.0) + 0.2 * x3 * x1
    return pd.DataFrame({"region": region, "x1": x1, "x2": x2, "x3": x3, "y": y})


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(7)
    train = _frame(rng, 300)
    return train, train.iloc[:25], _frame(rng, 12)  # training rows, background, rows to explain


def _fit(train: pd.DataFrame, model: str, task: str, **hyper):
    training = TrainingSettings(model=model, seed=0, hyperparameters=hyper)
    y = train["y"] if task == "regression" else (train["y"] > 0.5).astype(int)
    return fit.build_pipeline(DATA, training, task).fit(train[FEATURES], y)


def _shap_exact(pipe, rows: pd.DataFrame, background: pd.DataFrame, task: str) -> np.ndarray:
    """shap's Exact explainer on the whole pipeline (the reference)."""
    import shap

    cats = pd.unique(pd.concat([background["region"], rows["region"]]))

    def f(z):  # region travels as its code: shap's maskers compare values numerically
        frame = pd.DataFrame(z, columns=FEATURES)
        frame["region"] = cats[frame["region"].to_numpy().astype(int)]
        frame = frame.astype({"region": background["region"].dtype})
        return pipe.predict(frame) if task == "regression" else pipe.predict_proba(frame)[:, 1]

    def codes(frame):
        return (
            frame[FEATURES]
            .assign(region=pd.Categorical(frame["region"], cats).codes)
            .to_numpy(dtype=float)
        )

    masker = shap.maskers.Independent(codes(background), max_samples=len(background))
    return shap.explainers.Exact(f, masker)(codes(rows), silent=True).values


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_tree_path_matches_shap_exact_on_the_pipeline(frames, task):
    """Reference: shap.explainers.Exact on the whole pipeline, same background (interventional)."""
    train, background, rows = frames
    pipe = _fit(train, "random_forest", task, n_estimators=15, max_depth=5)
    got = explain_model(pipe, rows, background, FEATURES, task)
    assert got.method == "tree"
    want = _shap_exact(pipe, rows, background, task)
    np.testing.assert_allclose(got.values, want, atol=1e-6)
    out = pipe.predict(rows[FEATURES]) if task == "regression" else pipe.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(got.base_value + got.values.sum(axis=1), out, atol=1e-6)
    assert got.output == ("prediction" if task == "regression" else "P(class=1)")


def _linear_closed_form(pipe, rows: pd.DataFrame, background: pd.DataFrame) -> np.ndarray:
    """Interventional SHAP of a linear model, grouped back to the inputs (closed form)."""
    encode, model = pipe[:-1], pipe[-1]
    xt, bt = encode.transform(rows[FEATURES]), encode.transform(background[FEATURES])
    xt, bt = np.asarray(xt.toarray() if hasattr(xt, "toarray") else xt), np.asarray(bt)
    per_column = np.ravel(model.coef_) * (xt - bt.mean(axis=0))
    ct = encode[-1] if hasattr(encode, "steps") else encode
    out = np.zeros((len(rows), len(FEATURES)))
    for name, transformer, columns in ct.transformers_:
        span = ct.output_indices_[name]
        sizes = [len(c) for c in transformer.categories_] if name == "cat" else [1] * len(columns)
        start = span.start
        for col, size in zip(columns, sizes, strict=True):
            out[:, FEATURES.index(col)] += per_column[:, start : start + size].sum(axis=1)
            start += size
    return out


@pytest.mark.parametrize("max_exact", [8, 1])  # Exact, then Permutation (exact when additive)
def test_model_agnostic_path_on_a_linear_model(frames, max_exact):
    """Reference: the closed form of interventional SHAP for a linear model (Ridge on one-hot
    and scaled columns), and additivity against model.predict."""
    train, background, rows = frames
    pipe = _fit(train, "linear", "regression")
    got = explain_model(
        pipe, rows, background, FEATURES, "regression", exact_max_features=max_exact
    )
    assert got.method == ("exact" if max_exact == 8 else "permutation")
    np.testing.assert_allclose(got.values, _linear_closed_form(pipe, rows, background), atol=1e-6)
    out = pipe.predict(rows[FEATURES])
    np.testing.assert_allclose(got.base_value + got.values.sum(axis=1), out, atol=1e-6)


def test_hist_gradient_boosting_goes_model_agnostic_and_adds_up(frames):
    """HGB with native categorical splits: shap's tree path would be wrong, so the Exact
    explainer runs. Reference: shap.explainers.Exact on the pipeline; additivity (predict_proba)."""
    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "classification", max_iter=20)
    got = explain_model(pipe, rows, background, FEATURES, "classification")
    assert got.method == "exact"
    np.testing.assert_allclose(
        got.values, _shap_exact(pipe, rows, background, "classification"), atol=1e-9
    )
    proba = pipe.predict_proba(rows[FEATURES])[:, 1]
    np.testing.assert_allclose(got.base_value + got.values.sum(axis=1), proba, atol=1e-6)


def test_permutation_path_is_exact_for_pairwise_interactions(frames):
    """Antithetic permutations are exact when no effect involves more than two features:
    HistGradientBoosting with depth-2 trees (each leaf is reached by at most two splits).
    Reference: shap.explainers.Exact on the pipeline, same background (1e-9)."""
    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "regression", max_iter=30, max_depth=2)
    got = explain_model(
        pipe, rows, background, FEATURES, "regression", exact_max_features=1, permutations=2
    )
    assert got.method == "permutation"
    want = _shap_exact(pipe, rows, background, "regression")
    np.testing.assert_allclose(got.values, want, atol=1e-9)


def test_permutation_estimate_converges_to_the_exact_values(frames):
    """Depth-5 trees carry three- and four-way interactions, where the permutation estimate is
    only an estimate: its error against shap.explainers.Exact (the reference) shrinks as the
    number of permutations grows, and every estimate adds up to the model's output."""
    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "classification", max_iter=40, max_depth=5)
    want = _shap_exact(pipe, rows, background, "classification")
    proba = pipe.predict_proba(rows[FEATURES])[:, 1]
    errors = {}
    for permutations in (1, 200):
        got = explain_model(
            pipe, rows, background, FEATURES, "classification",
            exact_max_features=1, permutations=permutations,
        )  # fmt: skip
        np.testing.assert_allclose(got.base_value + got.values.sum(axis=1), proba, atol=1e-9)
        errors[permutations] = float(np.abs(got.values - want).max())
    assert errors[1] > 1e-4  # the game really has higher-order interactions
    assert errors[200] < errors[1] / 4
    assert errors[200] < 0.03 * float(np.abs(want).max())


def test_permutation_path_is_seeded(frames):
    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "regression", max_iter=20, max_depth=5)

    def run(seed: int) -> np.ndarray:
        return explain_model(
            pipe, rows, background, FEATURES, "regression",
            exact_max_features=1, permutations=1, seed=seed,
        ).values  # fmt: skip

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.allclose(run(3), run(4))


def test_coalition_values_do_not_depend_on_the_chunk_size(frames, monkeypatch):
    """The model is called in chunks of MAX_MODEL_ROWS rows; chunks of 10 coalitions (168 do not
    divide into them) give the same exact values as one call."""
    from modelwatch.explain import coalitions

    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "regression", max_iter=20)
    whole = explain_model(pipe, rows, background, FEATURES, "regression").values
    monkeypatch.setattr(coalitions, "MAX_MODEL_ROWS", 10 * len(background))
    np.testing.assert_allclose(
        explain_model(pipe, rows, background, FEATURES, "regression").values, whole, atol=1e-12
    )


def test_attribution_drift_ranks_the_planted_feature_first(frames):
    """x2's spread triples in the batch, so its effect on the model's output triples; the
    other features keep their distribution. Reference values: mean |SHAP| on each side."""
    train, background, _ = frames
    pipe = _fit(train, "random_forest", "regression", n_estimators=15, max_depth=6)
    rng = np.random.default_rng(11)
    reference = explain_model(pipe, sample_rows(train, 150, 0), background, FEATURES, "regression")
    same = explain_model(pipe, _frame(rng, 150), background, FEATURES, "regression")
    shifted = explain_model(
        pipe, _frame(rng, 150, x2_scale=3.0), background, FEATURES, "regression"
    )
    drift = compare_attributions(
        reference.mean_abs(),
        shifted.mean_abs(),
        method="tree",
        output="prediction",
        rows=150,
        reference_rows=150,
        champion_version="1",
    )
    top = drift.features[0]
    assert top.feature == "x2" and top.rank == 1
    assert top.change == pytest.approx(top.current - top.reference)
    assert top.relative_change > 0.3
    assert drift.metrics()["attribution_drift.x2"] == top.change
    calm = compare_attributions(
        reference.mean_abs(),
        same.mean_abs(),
        method="tree",
        output="prediction",
        rows=150,
        reference_rows=150,
        champion_version="1",
    )
    assert max(abs(f.change) for f in calm.features) < top.change / 2


def test_attribution_drift_needs_every_reference_feature():
    with pytest.raises(ValueError, match=r"no reference attribution for \['x9'\]"):
        compare_attributions(
            {"x1": 1.0},
            {"x1": 1.0, "x9": 2.0},
            method="tree",
            output="prediction",
            rows=1,
            reference_rows=1,
            champion_version="1",
        )


def test_explain_names_missing_features(frames):
    train, background, rows = frames
    pipe = _fit(train, "random_forest", "regression", n_estimators=5)
    with pytest.raises(ValueError, match=r"rows lack the features \['x3'\]"):
        explain_model(pipe, rows.drop(columns="x3"), background, FEATURES, "regression")


def test_a_bad_explain_setting_names_the_key(tmp_path):
    from modelwatch.errors import ConfigError
    from modelwatch.settings import load_settings
    from tests.conftest import write_params

    params = write_params("params.yaml", tmp_path, explain={"sample_rows": 0})
    with pytest.raises(ConfigError, match=r"params.yaml: explain.sample_rows: .*\(got 0\)"):
        load_settings(params)
    params = write_params("params.yaml", tmp_path, explain={"rows": 10})
    with pytest.raises(ConfigError, match=r"explain.rows: .*unknown key|explain.rows: Extra"):
        load_settings(params)
    assert params.exists()


@pytest.mark.parametrize("max_exact", [8, 1])
def test_a_feature_that_cannot_matter_gets_exactly_zero(frames, max_exact):
    """x3 has one value in the explained rows and the background alike, so no coalition changes
    with it: its Shapley value is 0 on both paths, not the 1e-16 that summing differences of the
    same predictions computed in different calls leaves, so attribution drift gives it no
    relative change (the bike report showed +169 % on 1e-16 before)."""
    train, background, rows = frames
    pipe = _fit(train, "hist_gradient_boosting", "regression", max_iter=30)
    background, rows = background.assign(x3=0.25), rows.assign(x3=0.25)
    got = explain_model(pipe, rows, background, FEATURES, "regression",
                        exact_max_features=max_exact)  # fmt: skip
    assert (got.values[:, FEATURES.index("x3")] == 0.0).all()
    np.testing.assert_allclose(
        got.base_value + got.values.sum(axis=1), pipe.predict(rows[FEATURES]), atol=1e-9
    )
    drift = compare_attributions(
        got.mean_abs(), got.mean_abs(), method=got.method, output=got.output, rows=12,
        reference_rows=12, champion_version="1",
    )  # fmt: skip
    assert next(f for f in drift.features if f.feature == "x3").relative_change is None


def test_attribution_drift_on_a_planted_stream():
    """Data not tuned for: modelwatch.streams.planted. Its covariate and stationary streams with
    one seed share every draw; only x3 differs from batch 15 on (moved inside its old range, the
    relation unchanged), and the reference, hence the champion (HistGradientBoosting), is the
    same. So the difference between the two streams' attribution drift at batch 15 isolates the
    planted change from the sampling noise of 50 explained rows (README, Explanations: noise).
    Reference values: mean |SHAP| on each side (default explain sizes)."""
    from modelwatch.streams.planted import CATEGORICAL, NUMERIC, make_stream

    features = NUMERIC + CATEGORICAL
    data = DataSettings(id="row_id", target="target", features=features, categorical=CATEGORICAL)
    training = TrainingSettings(model="hist_gradient_boosting", seed=0)
    shifted = make_stream("covariate", batches=16, seed=3)
    calm = make_stream("stationary", batches=16, seed=3)
    pd.testing.assert_frame_equal(shifted.reference, calm.reference)
    reference = shifted.reference
    pipe = fit.build_pipeline(data, training, "regression").fit(
        reference[features], reference["target"]
    )
    background = sample_rows(reference, 25, 0)

    def mean_abs(frame: pd.DataFrame) -> dict[str, float]:
        rows = sample_rows(frame, 50, 0)
        return explain_model(pipe, rows, background, features, "regression").mean_abs()

    def changes(stream) -> dict[str, float]:
        drift = compare_attributions(
            mean_abs(reference), mean_abs(stream.batches[15]),
            method="permutation", output="prediction", rows=50, reference_rows=50,
            champion_version="1",
        )  # fmt: skip
        return {f.feature: f.change for f in drift.features}

    moved, control = changes(shifted), changes(calm)
    planted = {f: moved[f] - control[f] for f in features}
    others = [abs(v) for f, v in planted.items() if f != "x3"]
    assert abs(planted["x3"]) > 0.05 and abs(planted["x3"]) > 5 * max(others), planted
