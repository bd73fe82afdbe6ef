"""Explanations of the champion (pure, no Prefect): SHAP values of a sample of rows and the drift of
the mean absolute SHAP value per feature against the reference."""

from modelwatch.explain.attribution import (
    AttributionDrift,
    FeatureAttribution,
    compare_attributions,
)
from modelwatch.explain.shap_values import (
    Explanation,
    explain_model,
    explain_with_settings,
    sample_rows,
)

__all__ = [
    "AttributionDrift",
    "Explanation",
    "FeatureAttribution",
    "compare_attributions",
    "explain_model",
    "explain_with_settings",
    "sample_rows",
]
