"""The built-in models as training entry points (modelwatch.training.entry): each fits
fit.build_pipeline (categorical encoding, then the estimator) on the window."""

from __future__ import annotations

from typing import Any

import pandas as pd

from modelwatch.settings import DataSettings, TrainingSettings


def _fit(model: str, window: pd.DataFrame, data: DataSettings, task: str, seed: int,
         hyperparameters: dict[str, Any]) -> Any:  # fmt: skip
    from modelwatch.training import fit

    training = TrainingSettings(model=model, seed=seed, hyperparameters=hyperparameters)
    x, y = fit.split_xy(window, data)
    return fit.build_pipeline(data, training, task).fit(x, y)


def hist_gradient_boosting(
    window: pd.DataFrame, *, data: DataSettings, task: str, seed: int, **hyperparameters: Any
) -> Any:
    """scikit-learn's HistGradientBoosting (native categorical support)."""
    return _fit("hist_gradient_boosting", window, data, task, seed, hyperparameters)


def random_forest(
    window: pd.DataFrame, *, data: DataSettings, task: str, seed: int, **hyperparameters: Any
) -> Any:
    """A random forest on ordinal-encoded categories."""
    return _fit("random_forest", window, data, task, seed, hyperparameters)


def linear(
    window: pd.DataFrame, *, data: DataSettings, task: str, seed: int, **hyperparameters: Any
) -> Any:
    """Ridge (regression) or logistic regression on one-hot categories and scaled numbers."""
    return _fit("linear", window, data, task, seed, hyperparameters)


def dummy(
    window: pd.DataFrame, *, data: DataSettings, task: str, seed: int, **hyperparameters: Any
) -> Any:
    """A constant model (mean, or the most frequent class): a floor to compare with."""
    return _fit("dummy", window, data, task, seed, hyperparameters)
