"""SHAP values of a fitted model on a sample of rows, per input feature.

Every value is interventional SHAP against a background sample (rows of the reference): the
attribution of feature j is its Shapley value in the game v(S) = mean over background rows b of
f(x_S, b_rest). f is the model's prediction (regression) or the positive class's predicted
probability (classification, not the log-odds: the same unit on every path and every model).

Two paths compute it:
- tree: a scikit-learn pipeline whose last step is a forest or a decision tree: shap's
  interventional TreeExplainer on the transformed features, then the columns that come from one
  input feature summed back to it (exact for one-to-one encoders such as the built-in
  OrdinalEncoder/passthrough). The result is checked against the model's own output
  (additivity, 1e-6); a miss falls back to the next path. It misses more often than not: shap
  0.51's interventional sums were off by 5-9% of the output for forests on the bike data at
  every depth tried (6-12), while small forests matched shap's Exact explainer to 1e-8 (shap's
  interventional TreeSHAP on deep trees, shap/shap#3267).
- model-agnostic: exact Shapley values from every coalition (up to `exact_max_features`
  features), else antithetic permutation sampling (`permutations` orders per row; exact for
  additive models and pairwise interactions), over the model's own prediction function on the
  raw input frame, vectorized in modelwatch.explain.coalitions (why not shap's own Exact and
  Permutation explainers: measured there, 7-12x slower per batch plus 10-18 s of numba
  compilation per process). HistGradientBoosting always takes this path: shap 0.51 ignores its
  native categorical splits, and its interventional sums missed the model's output from 6
  boosting iterations on (measured, README "Explanations").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

Method = Literal["tree", "exact", "permutation"]
ADDITIVITY_TOLERANCE = 1e-6  # |base + sum(values) - model output|, relative to 1 + |output|
_TREE_MODELS = (
    "RandomForestRegressor",
    "RandomForestClassifier",
    "ExtraTreesRegressor",
    "ExtraTreesClassifier",
    "DecisionTreeRegressor",
    "DecisionTreeClassifier",
)


@dataclass(frozen=True)
class Explanation:
    """SHAP values of `rows` rows: values[i, j] is feature j's attribution in row i; each row's
    values plus base_value add up to the model's output for it."""

    features: tuple[str, ...]
    values: np.ndarray
    base_value: float
    output: str  # what is explained, e.g. "prediction" or "P(class=1)"
    method: Method
    data: pd.DataFrame  # the explained rows (input features), for plots

    @property
    def rows(self) -> int:
        return int(self.values.shape[0])

    def mean_abs(self) -> dict[str, float]:
        """Returns each feature's mean absolute SHAP value over the explained rows."""
        means = np.abs(self.values).mean(axis=0) if self.rows else np.zeros(len(self.features))
        return {f: float(v) for f, v in zip(self.features, means, strict=True)}


class _NotExact(Exception):
    """Internal: the tree path does not apply to this model or missed additivity; says why."""


def sample_rows(frame: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """Returns `rows` rows drawn without replacement with `seed` (all rows, in order, if fewer)."""
    if len(frame) <= rows:
        return frame
    return frame.sample(n=rows, random_state=seed).sort_index()


def model_output(
    model: Any, frame: pd.DataFrame, task: str, positive_label: object = None
) -> tuple[np.ndarray, str]:
    """Returns what is explained for each row (the prediction, or the positive class's
    probability) and its name."""
    if task == "regression":
        return np.asarray(model.predict(frame), dtype=float), "prediction"
    from modelwatch.training.fit import positive_index

    classes = list(model.classes_)
    pos = positive_index(classes, positive_label)
    return np.asarray(model.predict_proba(frame)[:, pos], dtype=float), f"P(class={classes[pos]})"


def explain_model(
    model: Any,
    rows: pd.DataFrame,
    background: pd.DataFrame,
    features: Sequence[str],
    task: str,
    *,
    positive_label: object = None,
    seed: int = 0,
    exact_max_features: int = 8,
    permutations: int = 10,
) -> Explanation:
    """Returns the interventional SHAP values of `rows` (tree path when it applies and is exact,
    else model-agnostic; see the module docstring).

    Raises:
        ValueError: no rows, no background rows, or a feature missing from either frame.
    """
    features = list(features)
    for name, frame in (("rows", rows), ("background", background)):
        missing = [f for f in features if f not in frame.columns]
        if missing:
            raise ValueError(f"explain: {name} lack the features {missing}")
        if frame.empty:
            raise ValueError(f"explain: no {name} to explain with")
    from threadpoolctl import threadpool_limits

    x, bg = rows[features], background[features]
    # one OpenMP/BLAS thread, as in the training stage: on a small shared machine
    # HistGradientBoosting's thread per core oversubscribes it (same calls, measured 0.9 s with
    # one thread against 5.1 s with two on 2 busy cores; benchmarks/README.md)
    with threadpool_limits(limits=1):
        out, name = model_output(model, x, task, positive_label)
        try:
            return _tree(model, x, bg, out, name, task, positive_label)
        except _NotExact as exc:
            log.info("explain: %s; using the model-agnostic explainer", exc)
        return _agnostic(model, x, bg, out, name, task, positive_label, seed,
                         exact_max_features, permutations)  # fmt: skip


def explain_with_settings(
    model: Any, rows: pd.DataFrame, background: pd.DataFrame, settings: Any
) -> Explanation:
    """explain_model with a project's settings: its features, task and positive label, and the
    explain.* seed and explainer sizes (the monitor and retrain tasks, the benchmark and the
    report screenshot all explain the same way)."""
    cfg = settings.explain
    return explain_model(
        model,
        rows,
        background,
        settings.data.features,
        settings.project.task,
        positive_label=settings.data.positive_label,
        seed=cfg.seed,
        exact_max_features=cfg.exact_max_features,
        permutations=cfg.permutations,
    )


def _tree(
    model: Any, x: pd.DataFrame, bg: pd.DataFrame, out: np.ndarray, name: str, task: str,
    positive_label: object,
) -> Explanation:  # fmt: skip
    """The tree path: TreeExplainer on the transformed features, grouped back to the inputs."""
    from sklearn.pipeline import Pipeline

    estimator, pre = model, None
    if isinstance(model, Pipeline):
        estimator, pre = model.steps[-1][1], (model[:-1] if len(model.steps) > 1 else None)
    kind = type(estimator).__name__
    if kind not in _TREE_MODELS:
        raise _NotExact(f"{kind} is not a tree model shap's interventional TreeExplainer reads")
    xt, bt = (x, bg) if pre is None else (pre.transform(x), pre.transform(bg))
    xt, bt = np.asarray(xt, dtype=float), np.asarray(bt, dtype=float)
    groups = _groups(pre, list(x.columns), xt.shape[1])
    import shap

    explainer = shap.TreeExplainer(estimator, data=bt, feature_perturbation="interventional")
    values = np.asarray(explainer.shap_values(xt, check_additivity=False), dtype=float)
    base = np.ravel(explainer.expected_value)
    if task == "classification":  # a forest's raw output is the class probability
        from modelwatch.training.fit import positive_index

        pos = positive_index(list(estimator.classes_), positive_label)
        values, base = values[..., pos], base[pos]
    grouped = values @ groups
    _check_additivity(grouped, float(np.ravel(base)[0]), out, kind)
    return Explanation(tuple(x.columns), grouped, float(np.ravel(base)[0]), name, "tree", x)


def _groups(pre: Any, features: list[str], width: int) -> np.ndarray:
    """Returns the (transformed columns x input features) 0/1 matrix that sums each transformed
    column back to the input feature it comes from.

    Raises:
        _NotExact: the preprocessing's columns cannot be traced to input features.
    """
    from sklearn.compose import ColumnTransformer

    matrix = np.zeros((width, len(features)))
    if pre is None:
        return np.eye(width, len(features))
    steps = [s for _, s in pre.steps] if hasattr(pre, "steps") else [pre]
    if len(steps) != 1 or not isinstance(steps[0], ColumnTransformer):
        raise _NotExact("the preprocessing is not a single ColumnTransformer")
    ct = steps[0]
    for name, transformer, columns in ct.transformers_:
        span = ct.output_indices_[name]
        cols = [features[c] if isinstance(c, int | np.integer) else c for c in np.ravel(columns)]
        out = span.stop - span.start
        if out == 0:
            continue
        if out == len(cols):
            sizes = [1] * len(cols)
        elif hasattr(transformer, "categories_") and getattr(transformer, "drop", None) is None:
            sizes = [len(c) for c in transformer.categories_]
        else:
            raise _NotExact(f"cannot trace the columns of transformer {name!r} to its inputs")
        if sum(sizes) != out:
            raise _NotExact(f"transformer {name!r}: {out} columns for {len(cols)} inputs")
        start = span.start
        for col, size in zip(cols, sizes, strict=True):
            matrix[start : start + size, features.index(col)] = 1.0
            start += size
    return matrix


def _check_additivity(values: np.ndarray, base: float, out: np.ndarray, kind: str) -> None:
    error = np.abs(base + values.sum(axis=1) - out) / (1.0 + np.abs(out))
    if error.size and float(error.max()) > ADDITIVITY_TOLERANCE:
        raise _NotExact(f"TreeExplainer on {kind} missed additivity by {float(error.max()):.2g}")


def _agnostic(
    model: Any, x: pd.DataFrame, bg: pd.DataFrame, out: np.ndarray, name: str, task: str,
    positive_label: object, seed: int, exact_max_features: int, permutations: int,
) -> Explanation:  # fmt: skip
    """The model-agnostic path: interventional Shapley values of the model's own prediction
    function, every coalition value computed in a few large vectorized model calls (see
    modelwatch.explain.coalitions for why not shap's explainers)."""
    from modelwatch.explain import coalitions

    columns, dtypes = list(x.columns), bg.dtypes.to_dict()
    # coalitions are built on a numeric matrix: non-numeric columns travel as category codes
    codes = {c: pd.unique(pd.concat([bg[c], x[c]]).dropna()) for c in columns if _is_text(bg[c])}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = frame.copy()
        for c, cats in codes.items():
            out[c] = pd.Categorical(frame[c], categories=cats).codes.astype(float)
            out.loc[frame[c].isna(), c] = np.nan
        return out.to_numpy(dtype=float)

    def predict(z: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(z, columns=columns)
        for c, cats in codes.items():
            values = frame[c].to_numpy()
            ok = np.isfinite(values)
            decoded = np.full(len(values), None, dtype=object)
            decoded[ok] = cats[values[ok].astype(int)]
            frame[c] = decoded
        return model_output(model, frame.astype(dtypes), task, positive_label)[0]

    game = coalitions.Game(predict, encode(x), encode(bg), full=out)
    if len(columns) <= exact_max_features:
        values, method = coalitions.exact_shapley(game), "exact"
    else:
        rng = np.random.default_rng(seed)
        values, method = coalitions.permutation_shapley(game, permutations, rng), "permutation"
    return Explanation(tuple(columns), values, game.base, name, method, x)  # type: ignore[arg-type]


def _is_text(series: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series))
