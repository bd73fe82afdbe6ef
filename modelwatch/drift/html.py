"""A self-contained HTML drift report: the verdict, a table of every column, one plot per feature.

The page has no scripts and no external references: CSS is inline and every plot is an inline SVG
drawn by matplotlib, so the file reads the same offline, in a browser or as an MLflow artifact.
Fields that newer DriftReport/FeatureDrift versions add (importance, weighted_score, effect_size,
p_value_adjusted, dataset_rule, dataset_reason) are read with getattr: it renders with or without.
"""

from __future__ import annotations

import io
import math
import re
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib import rc_context
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from modelwatch.drift.report import DriftReport
    from modelwatch.drift.stattests import FeatureDrift

REF_COLOR, CUR_COLOR = "#4c72b0", "#dd8452"
MAX_CATEGORIES = 20  # more are folded into "other"
MAX_INTEGER_BINS = 40  # integer columns spanning at most this many values get one bin per value
MAX_REF_BINS = 40  # bins over the reference range of a continuous column (at least 10)
MAX_BINS = 160  # beyond this, bins span both ranges instead of keeping the reference width
# Text stays text (a third faster than glyph paths, half the size, searchable); a fixed salt keeps
# the output deterministic (ids are made unique per plot in _svg_markup).
_RC = {"svg.fonttype": "none", "svg.hashsalt": "modelwatch", "font.size": 8.5}
_SVG_METADATA = {"Creator": None, "Date": None, "Format": None, "Type": None}


class _NoPlot(Exception):
    """Internal: a column cannot be plotted; the message says why."""


def render_drift_html(
    report: DriftReport,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    title: str,
    prediction: tuple[pd.Series, pd.Series] | None = None,
    target: tuple[pd.Series, pd.Series] | None = None,
    max_plots: int | None = None,
    multivariate: tuple[Any, ...] = (),
    sections: tuple[str, ...] = (),
) -> str:
    """Returns one self-contained HTML page: verdict, table, then a plot per feature in rank order.

    `multivariate` takes MultivariateDrift results (domain classifier, PCA), shown as a table;
    `sections` are whole <section> elements placed after it (attribution drift).

    `prediction` and `target` are (reference, current) series; each gets its own section when given.
    Features past `max_plots` are listed without a plot. Columns that cannot be plotted (missing,
    empty, NaN-only) get a "no plot: <reason>" line instead; nothing here raises for bad data.
    """
    ranked = rank_features(report)
    roles = _task_entries(report, prediction, target)
    cards = [
        _card(
            str(i),
            f,
            _column(reference, f.column),
            _column(current, f.column),
            skip=None if max_plots is None or i <= max_plots else f"beyond max_plots={max_plots}",
        )
        for i, f in enumerate(ranked, start=1)
    ]
    task_cards = [_card(role, f, *pair, skip=None) for role, f, pair in roles]
    body = [
        _header(report, title),
        "<section><h2>All columns, most important drift first</h2>",
        _table([("feature", f) for f in ranked] + [(role, f) for role, f, _ in roles]),
        *_multivariate_section(multivariate),
        "</section>",
        *sections,
        "<section><h2>Reference vs current, per feature</h2>",
        f'<div class="grid">{"".join(cards)}</div></section>',
    ]
    if task_cards:
        body.append(
            f'<section><h2>Prediction and target</h2><div class="grid">{"".join(task_cards)}'
        )
        body.append("</div></section>")
    return _page(title, "\n".join(body))


def _multivariate_section(results: tuple[Any, ...]) -> list[str]:
    """Returns the rows of the whole-batch (multivariate) drift table, if there are results."""
    if not results:
        return []
    rows = []
    for r in results:
        if r.threshold is not None:
            limit = f"&gt;= {r.threshold:.3g}"
        elif r.upper is not None:
            limit = f"outside [{r.lower:.3g}, {r.upper:.3g}]"
        else:
            limit = "-"
        stat = "-" if r.statistic is None else f"{r.statistic:.4g}"
        verdict = "yes" if r.drifted else "no"
        rows.append(
            f"<tr><td><b>{escape(r.method)}</b></td><td>{escape(r.status)}</td><td>{stat}</td>"
            f"<td>{limit}</td><td>{verdict}</td><td>{escape(r.message)}</td></tr>"
        )
    return [
        "</section><section><h2>Whole-batch drift (multivariate)</h2><table><thead><tr>"
        "<th>method</th><th>status</th><th>statistic</th><th>drift when</th><th>drifted</th>"
        "<th>message</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
    ]


def rank_features(report: DriftReport) -> list[FeatureDrift]:
    """Returns the features, most important drift first.

    Drifted before not, each by weighted_score (drift times feature importance) when the report
    has it; otherwise tested
    before untested, drifted before not, then by how far the statistic is past its threshold.
    """
    features = list(report.features)
    base = sorted(features, key=lambda f: (f.status != "ok", not f.drifted, -_strength(f)))
    scores = [getattr(f, "weighted_score", None) for f in base]
    if all(s is None for s in scores):
        return base
    order = sorted(
        range(len(base)),
        key=lambda i: (scores[i] is None, not base[i].drifted, -(scores[i] or 0.0), i),
    )
    return [base[i] for i in order]


def _strength(f: FeatureDrift) -> float:
    """Returns a drift strength comparable across tests: > 1 means past the threshold."""
    if f.status != "ok" or f.statistic is None:
        return -math.inf
    if f.p_value is not None and 0 < f.threshold < 1:
        return -math.log10(max(f.p_value, 1e-300)) / -math.log10(f.threshold)
    return f.statistic / f.threshold if f.threshold > 0 else f.statistic


def _task_entries(
    report: DriftReport,
    prediction: tuple[pd.Series, pd.Series] | None,
    target: tuple[pd.Series, pd.Series] | None,
) -> list[tuple[str, Any, tuple[pd.Series, pd.Series]]]:
    entries = []
    for role, pair in (("prediction", prediction), ("target", target)):
        if pair is None:
            continue
        result = getattr(report, role, None) or _Unreported(role, pair[0], pair[1])
        entries.append((role, result, pair))
    return entries


class _Unreported:
    """Stands in for a FeatureDrift when series are given but the report has no result for them."""

    def __init__(self, role: str, reference: pd.Series, current: pd.Series) -> None:
        self.column = str(reference.name if reference.name is not None else role)
        numeric = pd.api.types.is_numeric_dtype(reference) and reference.nunique() > 5
        self.kind = "numeric" if numeric else "categorical"
        self.test, self.statistic, self.p_value, self.threshold = "-", None, None, math.nan
        self.drifted, self.status = False, "not_in_report"
        self.message = f"{role}: the drift report has no {role} result"
        self.ref_rows, self.cur_rows = int(reference.count()), int(current.count())


def _column(frame: pd.DataFrame, column: str) -> pd.Series | None:
    return frame[column] if column in frame.columns else None


# --- page pieces -------------------------------------------------------------------------------


def _header(report: DriftReport, title: str) -> str:
    if report.n_features_tested == 0:
        verdict, css = "Drift not assessed", "na"
    elif report.dataset_drift:
        verdict, css = "Dataset drift detected", "drift"
    else:
        verdict, css = "No dataset drift", "ok"
    untested = [f.column for f in report.features if f.status != "ok"]
    counts = (
        f"{len(report.features)} features: {report.n_features_tested} tested, "
        f"{report.n_drifted} drifted (share {report.drift_share:.2f}; the share rule fires at "
        f"{report.share_threshold:.2f})"
    )
    if untested:
        counts += f", {len(untested)} not tested ({', '.join(untested)})"
    parts = [f"<h1>{escape(title)}</h1>", f'<p class="verdict {css}">{escape(verdict)}</p>']
    reason = getattr(report, "dataset_reason", "")
    if isinstance(reason, str) and reason:
        parts.append(f'<p class="reason">{escape(reason[:1].upper() + reason[1:])}.</p>')
    parts.append(f'<p class="counts">{escape(counts)}.</p>')
    rule = _rule_text(getattr(report, "dataset_rule", None))
    if rule:
        parts.append(f'<p class="rule"><b>Rule that fired:</b> {escape(rule)}</p>')
    return f"<header>{''.join(parts)}</header>"


_RULES = {
    "share": "share: the share of drifted features reached the threshold",
    "bh": "bh: Benjamini-Hochberg across the features' p-value tests flagged a feature",
}


def _rule_text(rule: Any) -> str:
    if rule is None or isinstance(rule, str):
        return _RULES.get(rule, rule) if rule else ""
    for name in ("message", "description", "summary"):
        value = getattr(rule, name, None)
        value = value() if callable(value) else value
        if isinstance(value, str) and value:
            return value
    return str(rule)


# Optional FeatureDrift fields (newer reports), shown when any column has a value.
_EXTRA = {
    "null_threshold": "bootstrap null",
    "p_value_adjusted": "p adj.",
    "effect_size": "effect size",
    "importance": "importance",
    "weighted_score": "weighted score",
}


def _extra_fields(features: list[Any]) -> list[str]:
    return [n for n in _EXTRA if any(getattr(f, n, None) is not None for f in features)]


def _table(rows: list[tuple[str, Any]]) -> str:
    """Returns the table of every column; each row's message goes on a line of its own."""
    extra = _extra_fields([f for _, f in rows])
    heads = ["#", "column", "kind", "status", "test", "statistic", "p-value", "threshold"]
    heads += [*(_EXTRA[e] for e in extra), "drifted", "rows ref / cur"]
    out = ["<table><thead><tr>", *(f"<th>{escape(h)}</th>" for h in heads), "</tr></thead>"]
    for i, (role, f) in enumerate(rows, start=1):
        cells = [str(i) if role == "feature" else role, f.column, f.kind, f.status, f.test]
        cells += [_num(f.statistic), _num(f.p_value), _num(f.threshold)]
        cells += [_num(getattr(f, e, None)) for e in extra]
        cells += ["yes" if f.drifted else "no", f"{f.ref_rows} / {f.cur_rows}"]
        out.append(f'<tbody class="{_state(f)}"><tr>')
        for head, cell in zip(heads, cells, strict=True):
            out.append(f'<td class="{_CELL_CLASS.get(head, "num")}">{escape(cell)}</td>')
        note = getattr(f, "note", "")
        message = f.message if note in f.message else f"{f.message} {note}"
        out.append(f'</tr><tr class="msg"><td></td><td colspan="{len(heads) - 1}">')
        out.append(f"{escape(message)}</td></tr></tbody>")
    out.append("</table>")
    return "".join(out)


_CELL_CLASS = {"status": "status", "drifted": "flag", "column": "name", "kind": "", "test": ""}


def _state(f: Any) -> str:
    return "untested" if f.status != "ok" else ("drifted" if f.drifted else "stable")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        return str(value)
    return f"{value:.3g}"


def _card(
    label: str, f: Any, reference: pd.Series | None, current: pd.Series | None, skip: str | None
) -> str:
    state = _state(f)
    badge = {"untested": f.status, "drifted": "drifted", "stable": "no drift"}[state]
    stats = [f.test, f"statistic {_num(f.statistic)}"]
    if f.p_value is not None:
        stats.append(f"p {_num(f.p_value)}")
    stats.append(f"threshold {_num(f.threshold)}")
    stats += [f"{_EXTRA[e]} {_num(getattr(f, e))}" for e in _extra_fields([f])]
    stats.append(f"rows {f.ref_rows} / {f.cur_rows}")
    try:
        if skip:
            raise _NoPlot(skip)
        svg, note = _plot_svg(f.column, f.kind, reference, current, uid=f"p{label}")
        figure = f"<figure>{svg}</figure>" + (f'<p class="note">{escape(note)}</p>' if note else "")
    except _NoPlot as reason:
        figure = f'<p class="noplot">no plot: {escape(str(reason))}</p>'
    message = "" if state != "untested" else f'<p class="note">{escape(f.message)}</p>'
    return (
        f'<article class="card {state}"><h3><span class="rank">{escape(label)}</span> '
        f'{escape(f.column)} <span class="badge">{escape(badge)}</span></h3>'
        f'<p class="stats">{escape(" · ".join(stats))}</p>{message}{figure}</article>'
    )


# --- plots -------------------------------------------------------------------------------------


def _plot_svg(
    name: str, kind: str, reference: pd.Series | None, current: pd.Series | None, uid: str = "p"
) -> tuple[str, str]:
    """Returns inline SVG markup of reference vs current and a note on what the plot leaves out.

    Numeric: overlaid histograms (share of rows per bin, i.e. density on equal bins) on bins shared
    by both sides and sized from the reference range. Categorical: side-by-side bars of each
    category's share. Raises _NoPlot (internal) when a side is missing or has no values.
    """
    if reference is None or current is None:
        raise _NoPlot(f"column not in the {'reference' if reference is None else 'current'} data")
    for side, series in (("reference", reference), ("current", current)):
        if series.count() == 0:
            raise _NoPlot(f"no non-missing {side} values")
    draw = _numeric_plot if kind == "numeric" else _categorical_plot
    with rc_context(_RC):
        fig = Figure(figsize=(5.6, 2.4))
        note = draw(fig, name, reference, current)
        return _svg_markup(fig, uid), note


def _finite(series: pd.Series) -> tuple[np.ndarray, int]:
    """Returns the finite values as floats and how many non-missing values were not finite."""
    values = series.dropna()
    if not pd.api.types.is_numeric_dtype(values.dtype):
        values = pd.to_numeric(values, errors="coerce")
    array = values.to_numpy(dtype=float, na_value=np.nan)
    finite = array[np.isfinite(array)]
    return finite, int(series.count()) - finite.size


def _edges(ref: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Returns equal-width bin edges shared by both sides.

    The bin width comes from the reference range (one bin per value for integer columns); the bins
    are extended at that width to cover the current values, unless that takes more than MAX_BINS,
    in which case MAX_REF_BINS bins span both ranges (e.g. a column now in percent, not share).
    """
    lo, hi = float(ref.min()), float(ref.max())
    span_lo, span_hi = min(lo, float(cur.min())), max(hi, float(cur.max()))
    integers = bool(np.all(ref == np.round(ref)) and np.all(cur == np.round(cur)))
    if integers and span_hi - span_lo < MAX_INTEGER_BINS:
        return np.arange(span_lo - 0.5, span_hi + 1.0)  # no aliasing on hour, month...
    if hi > lo:
        width = (hi - lo) / int(np.clip(np.sqrt(ref.size), 10, MAX_REF_BINS))
    else:
        width = max(abs(lo) * 0.1, 1.0)
        lo, hi = lo - width / 2, hi + width / 2
    below = math.ceil((lo - span_lo) / width - 1e-9)
    above = math.ceil((span_hi - hi) / width - 1e-9)
    n = round((hi - lo) / width)
    if n + below + above > MAX_BINS:
        return np.linspace(span_lo, span_hi, MAX_REF_BINS + 1)
    return lo + width * np.arange(-below, n + above + 1)


def _numeric_plot(fig: Figure, name: str, reference: pd.Series, current: pd.Series) -> str:
    ref, ref_bad = _finite(reference)
    cur, cur_bad = _finite(current)
    for side, values in (("reference", ref), ("current", cur)):
        if values.size == 0:
            raise _NoPlot(f"no finite numeric {side} values")
    edges = _edges(ref, cur)
    ax = _axes(fig, bottom=0.2)
    # Share of rows per bin: the bins are equal and shared, so this is the density up to a factor
    # and reads directly ("12 % of current rows have hr = 8").
    for values, color, side, alpha in (
        (ref, REF_COLOR, "reference", 0.4),
        (cur, CUR_COLOR, "current", 0.2),
    ):
        share = np.histogram(values, bins=edges)[0] / values.size
        face = (*to_rgb(color), alpha)
        label = f"{side} (n={values.size})"
        ax.stairs(share, edges, fill=True, facecolor=face, edgecolor=color, lw=1.5, label=label)
    _style(ax, name, "share of rows per bin")
    notes = []
    outside = int(((cur < ref.min()) | (cur > ref.max())).sum())
    if outside:
        notes.append(
            f"{outside} of {cur.size} current values ({outside / cur.size:.0%}) outside the "
            f"reference range {ref.min():.3g} to {ref.max():.3g}"
        )
    for side, bad in (("reference", ref_bad), ("current", cur_bad)):
        if bad:
            notes.append(f"{bad} non-numeric or infinite {side} values not shown")
    return "; ".join(notes)


def _category_shares(reference: pd.Series, current: pd.Series) -> tuple[pd.DataFrame, list[str]]:
    """Returns each category's share of non-missing rows per side (columns "reference",
    "current", "new") in plotting order, and notes on what was folded or is new."""
    shares = pd.concat(
        [reference.value_counts(normalize=True), current.value_counts(normalize=True)], axis=1
    ).fillna(0.0)
    shares.columns = ["reference", "current"]
    shares["new"] = shares["reference"] == 0
    numbers = all(isinstance(c, int | float | np.number) for c in shares.index)
    if numbers and not any(isinstance(c, bool | np.bool_) for c in shares.index):
        shares = shares.sort_index()
    else:
        shares = shares.sort_values(["reference", "current"], ascending=False)
    n_new = int(shares["new"].sum())
    notes = (
        [f"* not in the reference: {n_new} categor{'y' if n_new == 1 else 'ies'}"] if n_new else []
    )
    if len(shares) > MAX_CATEGORIES:
        # New categories first, then the largest on either side; the rest become one bar.
        priority = shares.assign(top=shares[["reference", "current"]].max(axis=1))
        priority = priority.sort_values(["new", "top"], ascending=False, kind="stable")
        keep = set(priority.index[: MAX_CATEGORIES - 1])
        rest = shares.loc[[i for i in shares.index if i not in keep]]
        shares = shares.loc[[i for i in shares.index if i in keep]]
        other = rest[["reference", "current"]].sum()
        shares.loc[f"other ({len(rest)})"] = [other["reference"], other["current"], False]
        notes.append(f"{len(rest)} smaller categories folded into 'other'")
    return shares, notes


def _categorical_plot(fig: Figure, name: str, reference: pd.Series, current: pd.Series) -> str:
    shares, notes = _category_shares(reference, current)
    labels = [
        _short(c) + ("*" if new else "") for c, new in zip(shares.index, shares["new"], strict=True)
    ]
    x = np.arange(len(shares))
    rotate = len(labels) > 8 or max(len(s) for s in labels) > 6
    ax = _axes(fig, bottom=0.4 if rotate else 0.2)
    for offset, side, color in ((-0.2, "reference", REF_COLOR), (0.2, "current", CUR_COLOR)):
        n = int((reference if side == "reference" else current).count())
        ax.bar(x + offset, shares[side], width=0.4, color=color, label=f"{side} (n={n})")
    ax.set_xticks(x, labels, rotation=35 if rotate else 0, ha="right" if rotate else "center")
    _style(ax, name, "share of rows")
    missing = [
        f"{int(s.isna().sum())} missing {side} values not counted"
        for side, s in (("reference", reference), ("current", current))
        if s.isna().any()
    ]
    return "; ".join(notes + missing)


def _short(value: Any, limit: int = 18) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _axes(fig: Figure, bottom: float) -> Any:
    """Returns axes with fixed margins (constrained layout would double the drawing time)."""
    fig.subplots_adjust(left=0.13, right=0.98, top=0.86, bottom=bottom)
    return fig.add_subplot()


def _style(ax: Any, name: str, ylabel: str) -> None:
    ax.set_xlabel(_short(name, 60))
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(
        frameon=False, ncols=2, loc="lower right", bbox_to_anchor=(1.0, 1.0), borderaxespad=0.2
    )


_ID_REF = re.compile(r'(id="|url\(#|href="#)([^")]+)')


def _svg_markup(fig: Figure, uid: str) -> str:
    """Returns the <svg> element only: no XML prolog, DOCTYPE or metadata (they hold URLs), ids
    prefixed so several plots can share one page, and no fixed size (CSS scales it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata=_SVG_METADATA)
    text = buf.getvalue().decode("utf-8")
    text = text[text.index("<svg") :]
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    text = _ID_REF.sub(lambda m: f"{m[1]}{uid}-{m[2]}", text)
    return re.sub(r'^<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px;
color:#1f2328;max-width:1400px}
h1{font-size:22px;margin:0 0 8px}h2{font-size:17px;margin:28px 0 10px}
h3{font-size:14px;margin:0 0 4px;display:flex;gap:8px;align-items:center}
.verdict{font-size:17px;font-weight:600;padding:6px 12px;border-radius:6px;display:inline-block;
margin:4px 0}
.verdict.drift{background:#fde2e1;color:#8b1a13}.verdict.ok{background:#dff3e3;color:#14532d}
.verdict.na{background:#fff4d6;color:#7a4d00}
.reason{font-size:15px;margin:6px 0}.counts,.rule{margin:4px 0;font-size:14px;color:#3d444d}
table{border-collapse:collapse;font-size:12.5px;width:100%}
th{background:#f3f5f7;white-space:nowrap;text-align:left;padding:5px 8px;
border-bottom:1px solid #d8dee4}
td{padding:3px 8px;text-align:left;vertical-align:top;white-space:nowrap}
td.name{font-weight:600}tr.msg td{color:#57606a;font-size:11.5px;white-space:normal;
padding-top:0;border-bottom:1px solid #d8dee4}
tbody.drifted td.flag{color:#a40e26;font-weight:700}
tbody.untested{background:#fff3cd}tbody.untested td.status{color:#7a4d00;font-weight:700}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:14px}
.card{border:1px solid #d8dee4;border-left:5px solid #8c959f;border-radius:6px;padding:10px 12px}
.card.drifted{border-left-color:#cf222e}.card.stable{border-left-color:#2da44e}
.card.untested{border-left-color:#d4a72c;background:#fffcf2}
.rank{background:#eaeef2;border-radius:10px;padding:1px 8px;font-size:12px}
.badge{font-size:12px;font-weight:600}.card.drifted .badge{color:#a40e26}
.card.stable .badge{color:#1a7f37}.card.untested .badge{color:#7a4d00}
.stats{font-size:12px;color:#57606a;margin:0 0 4px}.note{font-size:12px;color:#6e4b00;margin:2px 0}
.noplot{font-size:13px;color:#7a4d00;font-style:italic;margin:8px 0}
figure{margin:0}figure svg{width:100%;height:auto;display:block}
"""


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
