"""The promotion checks on groups of the holdout (pure): the challenger may not be worse than the
champion by more than a margin in any segment (data.segments), and the gap of its metric between
the groups of each sensitive column (promotion.fairness) is limited.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from modelwatch.decide.checks import TOLERANCE, Check, verdict
from modelwatch.errors import ConfigError, InsufficientDataError
from modelwatch.performance.metrics import compute_metrics, format_number, format_percent, worsening
from modelwatch.performance.significance import Predictions
from modelwatch.settings import DataSettings, PromotionSettings


@dataclass(frozen=True)
class Groups:
    """The holdout split by a column, with both models' metric on each group."""

    frame: pd.DataFrame
    truth: np.ndarray
    cand: Predictions
    champ: Predictions
    task: str
    data: DataSettings

    def split(self, column: str) -> list[tuple[object, np.ndarray]]:
        values = self.frame[column].reset_index(drop=True)
        groups = values.groupby(values, dropna=False, sort=True).indices
        return [(_plain(v), np.asarray(rows)) for v, rows in groups.items()]

    def metric(self, rows: np.ndarray, metric: str, preds: Predictions) -> float | None:
        """Returns the metric on these rows, or None where it is undefined (e.g. one class)."""
        try:
            value = compute_metrics(
                self.truth[rows],
                preds.labels[rows],
                self.task,
                y_score=None if preds.scores is None else preds.scores[rows],
                positive_label=self.data.positive_label,
            ).get(metric)
        except (InsufficientDataError, ConfigError):
            return None
        return None if value is None or not math.isfinite(value) else float(value)


def _plain(value: object) -> object:
    """Returns a JSON-friendly scalar (numpy scalars unwrapped, NaN as None)."""
    if pd.isna(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def segment_checks(
    groups: Groups, settings: PromotionSettings, data: DataSettings, min_rows: int
) -> list[Check]:
    """Returns one check per segment column: the challenger's settings.metric at most
    settings.segment_margin worse than the champion's in each segment of at least min_rows rows
    (none without a margin)."""
    margin = settings.segment_margin
    if margin is None:
        return []
    if not data.segments:
        return [
            Check(
                "segments",
                True,
                "segments: promotion.segment_margin is set but data.segments is empty: not checked",
                {"margin": margin},
            )
        ]
    return [_segment_check(groups, c, settings.metric, margin, min_rows) for c in data.segments]


def _segment_check(groups: Groups, column: str, metric: str, margin: float, min_rows: int) -> Check:
    entries = []
    for value, rows in groups.split(column):
        entry = {"value": value, "rows": len(rows), "candidate": None, "champion": None}
        entry |= {"worsening": None, "status": "too_small"}
        if len(rows) >= max(min_rows, 2):
            cand = groups.metric(rows, metric, groups.cand)
            champ = groups.metric(rows, metric, groups.champ)
            entry["status"] = "undefined"
            if cand is not None and champ is not None:
                worse = worsening(metric, champ, cand, groups.task)
                ok = worse <= margin + TOLERANCE
                entry |= {"candidate": cand, "champion": champ, "worsening": worse}
                entry["status"] = "pass" if ok else "fail"
        entries.append(entry)
    details = {"metric": metric, "margin": margin, "min_rows": min_rows, "segments": entries}
    checked = [e for e in entries if e["status"] in ("pass", "fail")]
    failed = [e for e in checked if e["status"] == "fail"]
    skipped = _skipped(entries, "segment", min_rows, metric)
    name = f"segments {column}"
    if not checked:
        return Check(name, True, f"{name}: no segment{skipped}: not checked", details)
    if failed:
        listed = ", ".join(f"{column}={e['value']} ({_segment_change(e)})" for e in failed)
        text = (
            f"challenger {metric} worse than the champion by more than {format_percent(margin)} "
            f"in {len(failed)} of {_count(len(checked), 'segment')}: {listed}"
        )
    else:
        worst = max(checked, key=lambda e: e["worsening"])
        text = (
            f"challenger {metric} within {format_percent(margin)} of the champion in "
            f"{_count(len(checked), 'segment')} (weakest {column}={worst['value']}: "
            f"{_segment_change(worst)})"
        )
    passed = not failed
    return Check(name, passed, f"{name}: {text}{skipped} ({verdict(passed)})", details)


def _segment_change(entry: dict) -> str:
    worse, champ = entry["worsening"], entry["champion"]
    fmt = format_number if champ == 0 else format_percent  # worsening is absolute from a 0
    side = "equal" if worse == 0 else f"{fmt(abs(worse))} {'worse' if worse > 0 else 'better'}"
    return f"{side}, {format_number(entry['candidate'])} vs {format_number(champ)}"


def _skipped(entries: list[dict], noun: str, min_rows: int, metric: str) -> str:
    small = sum(e["status"] == "too_small" for e in entries)
    undefined = sum(e["status"] == "undefined" for e in entries)
    parts = [f"{_count(small, noun)} under {min_rows} rows"] if small else []
    parts += [f"{_count(undefined, noun)} with an undefined {metric}"] if undefined else []
    return f"; left out: {', '.join(parts)}" if parts else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def fairness_checks(groups: Groups, settings: PromotionSettings) -> list[Check]:
    """Returns one check per sensitive column: the gap of the challenger's metric between its
    groups (of at least fairness.min_group_rows rows) at most fairness.max_gap."""
    fair = settings.fairness
    metric = fair.metric or settings.metric
    max_gap = fair.max_gap if fair.max_gap is not None else 0.0  # settings require it
    return [_fairness_check(groups, c, metric, max_gap, fair.min_group_rows) for c in fair.columns]


def _fairness_check(
    groups: Groups, column: str, metric: str, max_gap: float, min_rows: int
) -> Check:
    entries = []
    for value, rows in groups.split(column):
        entry = {"value": value, "rows": len(rows), "candidate": None, "champion": None}
        entry["status"] = "too_small"
        if len(rows) >= max(min_rows, 2):
            entry["candidate"] = groups.metric(rows, metric, groups.cand)
            entry["champion"] = groups.metric(rows, metric, groups.champ)
            entry["status"] = "undefined" if entry["candidate"] is None else "measured"
        entries.append(entry)
    measured = [e for e in entries if e["status"] == "measured"]
    champ_values = [e["champion"] for e in measured if e["champion"] is not None]
    champ_gap = max(champ_values) - min(champ_values) if len(champ_values) >= 2 else None
    details = {"metric": metric, "max_gap": max_gap, "min_rows": min_rows, "groups": entries}
    details |= {"gap": None, "champion_gap": champ_gap}
    skipped = _skipped(entries, "group", min_rows, metric)
    name = f"fairness {column}"
    if len(measured) < 2:
        text = f"{name}: fewer than 2 groups with a {metric}{skipped}: not checked"
        return Check(name, True, text, details)
    low = min(measured, key=lambda e: e["candidate"])
    high = max(measured, key=lambda e: e["candidate"])
    gap = high["candidate"] - low["candidate"]
    details["gap"] = gap
    passed = gap <= max_gap + TOLERANCE
    champion = "n/a" if champ_gap is None else format_number(champ_gap)
    return Check(
        name,
        passed,
        f"{name}: challenger {metric} gap {format_number(gap)} between groups "
        f"(lowest {column}={low['value']} {format_number(low['candidate'])}, "
        f"highest {column}={high['value']} {format_number(high['candidate'])}), "
        f"limit {format_number(max_gap)}, champion gap {champion}{skipped} ({verdict(passed)})",
        details,
    )
