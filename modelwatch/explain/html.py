"""The attribution-drift section of the HTML drift report: a bar chart of mean |SHAP| per
feature (reference beside batch) and the ranked table. Inline SVG, like the rest of the page."""

from __future__ import annotations

from html import escape

import numpy as np
from matplotlib import rc_context
from matplotlib.figure import Figure

from modelwatch.drift.html import _RC, CUR_COLOR, REF_COLOR, _svg_markup
from modelwatch.explain.attribution import AttributionDrift

MAX_BARS = 20  # the features whose attribution changed most


def attribution_section(drift: AttributionDrift) -> str:
    """Returns the <section> of the drift report on attribution drift."""
    head = (
        "<section><h2>Attribution drift (SHAP)</h2>"
        f'<p class="counts">Mean |SHAP value| of {escape(drift.output)} per feature: '
        f"{drift.rows} batch rows against {drift.reference_rows} reference rows "
        f"(champion version {escape(drift.champion_version)}, {escape(drift.method)} explainer). "
        "Ranked by the absolute change; a feature whose attribution grew drives the model's "
        "answers more than it did on the reference.</p>"
    )
    return head + f"<figure>{_chart(drift)}</figure>{_table(drift)}</section>"


def _chart(drift: AttributionDrift) -> str:
    shown = drift.features[:MAX_BARS][::-1]  # largest change on top
    height = 1.0 + 0.32 * len(shown)
    with rc_context(_RC):
        fig = Figure(figsize=(8.5, height))
        fig.subplots_adjust(left=0.22, right=0.97, top=1 - 0.45 / height, bottom=0.5 / height)
        ax = fig.add_subplot()
        y = np.arange(len(shown))
        ax.barh(y + 0.2, [f.reference for f in shown], 0.4, color=REF_COLOR, label="reference")
        ax.barh(y - 0.2, [f.current for f in shown], 0.4, color=CUR_COLOR, label="batch")
        ax.set_yticks(y, [f.feature for f in shown])
        ax.set_xlabel(f"mean |SHAP| ({drift.output})")
        ax.spines[["top", "right"]].set_visible(False)
        ax.legend(frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1.0, 1.0))
        return _svg_markup(fig, "attribution")


def _table(drift: AttributionDrift) -> str:
    heads = ["#", "feature", "reference", "batch", "change", "relative change"]
    out = ["<table><thead><tr>", *(f"<th>{h}</th>" for h in heads), "</tr></thead><tbody>"]
    for f in drift.features:
        rel = "-" if f.relative_change is None else f"{f.relative_change:+.1%}"
        cells = [str(f.rank), f.feature, f"{f.reference:.4g}", f"{f.current:.4g}"]
        cells += [f"{f.change:+.4g}", rel]
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
    return "".join(out) + "</tbody></table>"
