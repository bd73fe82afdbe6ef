"""A custom training entry point: feature engineering in a ColumnTransformer (one-hot
categories, B-splines of the numbers, quantile-knot splines of the skewed counts) and a
logistic regression: a pipeline modelwatch does not ship. modelwatch calls `train` for every
model it fits (each validation fit and the final one); params.yaml names it as
training.entry_point, and its types beyond modelwatch's allow-list as training.trusted_types.

The contract (README, Bring your own model): the window of labelled rows in, a fitted
scikit-learn-compatible estimator out; the keyword arguments are those the function declares,
and training.hyperparameters arrive as the remaining keywords.
"""

from __future__ import annotations

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer

SKEWED = ["V6", "V13", "V14", "V15"]  # balance, contacts, days since last contact, earlier contacts


def train(
    window: pd.DataFrame,
    *,
    target: str,
    features: list[str],
    categorical: list[str],
    seed: int,
    C: float = 1.0,
    n_knots: int = 5,
) -> Pipeline:
    """Fits one-hot + splines + logistic regression on the window's features."""
    numeric = [c for c in features if c not in categorical]
    smooth = [c for c in numeric if c not in SKEWED]
    skewed = [c for c in numeric if c in SKEWED]
    encode = ColumnTransformer(
        [
            ("categories", OneHotEncoder(handle_unknown="ignore"), categorical),
            ("splines", SplineTransformer(n_knots=n_knots, degree=3), smooth),
            ("skewed", SplineTransformer(n_knots=n_knots, degree=1, knots="quantile"), skewed),
        ]
    )
    model = Pipeline(
        [
            ("encode", encode),
            ("model", LogisticRegression(C=C, max_iter=2000, random_state=seed)),
        ]
    )
    return model.fit(window[features], window[target])
