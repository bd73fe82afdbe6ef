"""The global explanation of a model version for its model card: a bar chart of mean |SHAP| per
feature and shap's beeswarm (summary) plot, as PNG bytes."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from modelwatch.explain.shap_values import Explanation

PLOTS = {"bar": "explanation_bar.png", "beeswarm": "explanation_beeswarm.png"}


def global_plots(found: Explanation, max_display: int = 20) -> dict[str, bytes]:
    """Returns {artifact file name: PNG} for the bar chart and the beeswarm plot
    (shap.plots.bar and shap.plots.beeswarm on the explained rows; text columns coloured by
    their category codes)."""
    import matplotlib

    matplotlib.use("Agg")  # no display: shap draws with pyplot
    import matplotlib.pyplot as plt
    import shap

    data = found.data.copy()
    for column in data.columns:
        if not pd.api.types.is_numeric_dtype(data[column]):
            data[column] = pd.Categorical(data[column]).codes.astype(float)
    explanation = shap.Explanation(
        values=found.values,
        base_values=np.full(found.rows, found.base_value),
        data=data.to_numpy(dtype=float),
        feature_names=list(found.features),
    )
    out = {}
    for kind, draw in (("bar", shap.plots.bar), ("beeswarm", shap.plots.beeswarm)):
        plt.figure()
        draw(explanation, max_display=max_display, show=False)
        plt.gcf().suptitle(f"SHAP of {found.output}, {found.rows} rows ({found.method})")
        buf = io.BytesIO()
        plt.gcf().savefig(buf, format="png", dpi=100, bbox_inches="tight")
        plt.close("all")
        out[PLOTS[kind]] = buf.getvalue()
    return out
