"""The champion's feature importances, mapped back to the configured input features."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def feature_importance(model: object, features: list[str]) -> dict[str, float] | None:
    """Returns the fitted model's feature_importances_ per input feature, summing to 1.

    A Pipeline's encoded columns ("cat__season_2", "num__temp") are summed back into their input
    feature. Returns None (equal weights downstream) when the final estimator has no
    feature_importances_ (e.g. histogram gradient boosting, linear models) or the encoded names
    cannot be mapped; permutation importance would be exact but far too slow per batch.
    """
    steps = getattr(model, "steps", None)
    estimator = steps[-1][1] if steps else model
    values = getattr(estimator, "feature_importances_", None)
    if values is None:
        return None
    names = _encoded_names(model, steps, len(values))
    if names is None:
        logger.info("feature importances not mapped to inputs: using equal weights")
        return None
    totals = dict.fromkeys(features, 0.0)
    for name, value in zip(names, np.asarray(values, dtype=float), strict=True):
        source = _source_feature(name, features)
        if source is not None:
            totals[source] += max(value, 0.0)
    total = sum(totals.values())
    return {f: v / total for f, v in totals.items()} if total > 0 else None


def _encoded_names(model: object, steps: list | None, n: int) -> list[str] | None:
    if not steps or len(steps) == 1:
        names = getattr(model if not steps else steps[-1][1], "feature_names_in_", None)
    else:
        try:
            names = model[:-1].get_feature_names_out()  # type: ignore[index]
        except (AttributeError, ValueError, TypeError):
            return None
    if names is None or len(names) != n:
        return None
    return [str(name) for name in names]


def _source_feature(encoded: str, features: list[str]) -> str | None:
    """Returns the input feature an encoded column came from ("cat__season_2" -> "season")."""
    name = encoded.split("__", 1)[1] if "__" in encoded else encoded
    if name in features:
        return name
    matches = [f for f in features if name.startswith(f"{f}_")]
    return max(matches, key=len) if matches else None
