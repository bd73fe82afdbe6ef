"""The model card of a registered version (pure): the data it was trained on, how it scored, why
it was promoted or not, and where it may be used; as JSON (card_dict) and markdown."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from modelwatch.decide.promotion import PromotionDecision
from modelwatch.performance.metrics import format_number
from modelwatch.settings import DataSettings, TrainingSettings


@dataclass(frozen=True)
class WindowProfile:
    """A training window: its version, size, time span and the range of each numeric feature."""

    tag: str
    md5: str
    commit: str
    rows: int
    start: str | None = None
    end: str | None = None
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict; from_dict reads it back."""
        return asdict(self) | {"ranges": {k: list(v) for k, v in self.ranges.items()}}

    @classmethod
    def from_dict(cls, raw: Mapping) -> WindowProfile:
        """Returns the profile that to_dict wrote."""
        ranges = {k: (float(low), float(high)) for k, (low, high) in raw["ranges"].items()}
        return cls(**{**raw, "rows": int(raw["rows"]), "ranges": ranges})


def profile_window(
    frame: pd.DataFrame, data: DataSettings, *, tag: str, md5: str, commit: str
) -> WindowProfile:
    """Returns the window's row count, its data.timestamp span and each numeric feature's range."""
    columns = [c for c in data.numeric if c in frame.columns]
    numeric = frame[columns].apply(pd.to_numeric, errors="coerce")
    ranges = {c: (float(v.min()), float(v.max())) for c, v in numeric.items() if v.notna().any()}
    stamps = pd.Series()
    if data.timestamp and data.timestamp in frame.columns:
        stamps = pd.to_datetime(frame[data.timestamp], errors="coerce").dropna()
    span = [_stamp(stamps.min()), _stamp(stamps.max())] if len(stamps) else [None, None]
    return WindowProfile(tag, md5, commit, len(frame), *span, ranges=ranges)


def _stamp(value: pd.Timestamp) -> str:
    return value.date().isoformat() if value == value.normalize() else value.isoformat()


def card_dict(
    *,
    name: str,
    task: str,
    data: DataSettings,
    training: TrainingSettings,
    window: WindowProfile | None,
    cv_metrics: Mapping[str, float],
    decision: PromotionDecision,
    importance: Mapping[str, float],
    on_holdout: bool,
    outcome: str | None = None,
    explanation: Mapping | None = None,
) -> dict:
    """Returns the model card of decision.candidate_version as a JSON-compatible dict.

    on_holdout says whether the decision's metrics come from a holdout (a first model without
    one is judged on its cross-validated metrics); outcome is what the registry did with it.
    """
    champ = None if decision.champion_metrics is None else _finite(decision.champion_metrics)
    holdout = {"challenger": _finite(decision.candidate_metrics), "champion": champ}
    holdout = holdout | {"champion_version": decision.champion_version} if on_holdout else None
    checks = [{"name": c.name, "passed": c.passed, "sentence": c.sentence} for c in decision.checks]
    return {
        "model": {"name": name, "version": decision.candidate_version, "task": task},
        "training": training.model_dump(),
        "data": data.model_dump(),
        "training_window": None if window is None else window.to_dict(),
        "metrics": {"cross_validated": _finite(cv_metrics), "holdout": holdout},
        "segments": _segments(decision),
        "promotion": {
            "verdict": decision.summary().split(": ", 1)[0],
            "promote": decision.promote,
            "outcome": outcome,
            "decision_id": decision.decision_id,
            "metric": decision.metric,
            "checks": checks,
        },
        "feature_importance": dict(sorted(_finite(importance).items(), key=lambda kv: -kv[1])),
        "global_explanation": _explanation(explanation),
        "intended_use": (
            f"Predicts {data.target!r} ({task}) for one row of the {len(data.features)} features "
            f"listed above, identified by {data.id!r}. It is retrained on the newest labelled data "
            "and becomes the served model only through modelwatch's retrain and promotion policy "
            "(params.yaml: retrain, promotion); serve the version that the registry alias "
            "'champion' points to."
        ),
        "limitations": _limitations(window, on_holdout),
    }


def render_model_card(**inputs: Any) -> str:
    """Returns the model card as markdown; takes the keyword arguments of card_dict."""
    return card_markdown(card_dict(**inputs))


def card_markdown(card: Mapping) -> str:
    """Returns the markdown of a card that card_dict built."""
    model, train, data, promo = card["model"], card["training"], card["data"], card["promotion"]
    hyper = ", ".join(f"{k}={v}" for k, v in train["hyperparameters"].items()) or "defaults"
    stamp = f"; timestamp `{data['timestamp']}`" if data["timestamp"] else ""
    out = [f"# Model card: {model['name']} version {model['version']}", ""]
    out += [f"- Task: {model['task']}", f"- Estimator: {train['model']} (seed {train['seed']})"]
    out += [f"- Hyperparameters: {hyper}", "", "## Data", ""]
    out += [f"- Target `{data['target']}`; id `{data['id']}`{stamp}"]
    out += [f"- Features ({len(data['features'])}): {', '.join(data['features'])}"]
    out += [f"- Categorical: {', '.join(data['categorical']) or 'none'}"]
    out += [f"- Segments: {', '.join(data['segments']) or 'none'}", "", "## Training window", ""]
    out += _window_lines(card["training_window"])
    out += ["", "## Metrics", "", "Cross-validated on the training window:", ""]
    out += _table(["metric", "value"], card["metrics"]["cross_validated"].items())
    out += ["", *_holdout_lines(card["metrics"]["holdout"]), "", "## Segments (holdout)", ""]
    keys = ["rows", "metric", "challenger", "champion", "status"]
    seg = [[f"{s['column']}={s['value']}"] + [s[k] for k in keys] for s in card["segments"]]
    out += _table(["segment", *keys], seg) if seg else ["Not compared (no segment check ran)."]
    outcome = f", {promo['outcome']}" if promo["outcome"] else ""
    outcome += f" (decision {promo['decision_id']})" if promo["decision_id"] else ""
    out += ["", "## Promotion", "", f"**{promo['verdict']}**{outcome}", ""]
    out += [f"- {c['sentence']}" for c in promo["checks"]]
    out += ["", "## Feature importance (permutation, on the training window)", ""]
    importance = card["feature_importance"].items()
    out += _table(["feature", "importance"], importance) if importance else ["Not recorded."]
    out += _explanation_lines(card.get("global_explanation"))
    out += ["", "## Intended use", "", card["intended_use"], "", "## Limitations", ""]
    return "\n".join(out + [f"- {line}" for line in card["limitations"]]) + "\n"


def _explanation(raw: Mapping | None) -> dict | None:
    if raw is None:
        return None
    ranked = dict(sorted(_finite(raw["mean_abs_shap"]).items(), key=lambda kv: -kv[1]))
    return {k: raw[k] for k in ("method", "output", "rows", "plots")} | {"mean_abs_shap": ranked}


def _explanation_lines(found: Mapping | None) -> list[str]:
    """The global-explanation section: the mean |SHAP| table and the plots (artifacts of the
    same run, so the relative links resolve beside model_card.md)."""
    if found is None:
        return []
    out = ["", "## Global explanation (SHAP, on the training window)", ""]
    out += [f"Mean |SHAP| of {found['output']} on {found['rows']} rows ({found['method']}).", ""]
    out += _table(["feature", "mean |SHAP|"], found["mean_abs_shap"].items())
    return out + [""] + [f"![{name}]({name})" for name in found["plots"]]


def _window_lines(win: Mapping | None) -> list[str]:
    if win is None:
        return ["Not recorded."]
    span = f", {win['start']} to {win['end']}" if win["start"] else ""
    lineage = f"DVC md5 `{win['md5']}`, data commit `{win['commit']}`"
    return [f"- `{win['tag']}`: {win['rows']} rows{span}", f"- {lineage}"]


def _holdout_lines(holdout: Mapping | None) -> list[str]:
    if holdout is None:
        return ["No holdout: a first model is judged on its cross-validated metrics."]
    cand, champ = holdout["challenger"], holdout["champion"] or {}
    version = holdout["champion_version"]
    head = ["metric", "challenger"] + ([f"champion v{version}"] if version else [])
    rows = [[k, v] + ([champ.get(k)] if version else []) for k, v in cand.items()]
    return ["On the holdout (labelled data not used for training):", "", *_table(head, rows)]


def _segments(decision: PromotionDecision) -> list[dict]:
    """Returns each segment of the segment checks: rows, both models' metric, its status."""
    out = []
    for check in decision.checks:
        if check.name.startswith("segments ") and "segments" in check.details:
            column, metric = check.name.split(" ", 1)[1], check.details["metric"]
            out += [
                {"column": column, "value": e["value"], "rows": e["rows"], "metric": metric}
                | {"challenger": e["candidate"], "champion": e["champion"], "status": e["status"]}
                for e in check.details["segments"]
            ]
    return out


def _limitations(window: WindowProfile | None, on_holdout: bool) -> list[str]:
    out = []
    if window is not None and window.ranges:
        ranges = ", ".join(f"{k} {_num(lo)} to {_num(hi)}" for k, (lo, hi) in window.ranges.items())
        out.append(f"Not to be used outside the feature ranges of its training window: {ranges}.")
    if window is not None and window.start:
        out.append(f"Trained on data from {window.start} to {window.end}; later data may differ.")
    if not on_holdout:
        out.append("Judged on cross-validated metrics only: there was no holdout to compare on.")
    return out


def _finite(metrics: Mapping[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}


def _num(value: object) -> str:
    if value is None:
        return "n/a"
    return format_number(value) if isinstance(value, float | int) else str(value)


def _table(head: list[str], rows: Iterable[Sequence]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(_num(c) for c in row) + " |" for row in rows]
