"""Probation after a promotion: the new champion against the previous one, scored in shadow (pure).

After a promotion, monitoring scores every batch with both the new champion and the previous
champion (shadow). Once `probation.batches` of those batches have labels, both are scored on the
same pooled rows; when the new champion is worse by more than `probation.tolerance` (relative,
direction-aware), it is rolled back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd

from modelwatch.errors import InsufficientDataError
from modelwatch.performance.metrics import compute_metrics, format_number, format_percent, worsening
from modelwatch.settings import DataSettings, ProbationSettings

SHADOW_PREFIX = "shadow."

Status = Literal["pending", "passed", "failed"]


@dataclass(frozen=True)
class ProbationVerdict:
    """Where a probation stands, on which numbers, as a sentence."""

    status: Status
    champion_version: str
    previous_version: str
    batches: int
    needed: int
    metric: str
    champion_score: float | None
    previous_score: float | None
    worsening: float | None
    reason: str

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict."""
        return asdict(self)


def shadow_columns(scored: pd.DataFrame, data: DataSettings) -> pd.DataFrame:
    """Returns the shadow model's scored columns renamed with the shadow prefix (id kept)."""
    renamed = {c: f"{SHADOW_PREFIX}{c}" for c in scored.columns if c != data.id}
    return scored.rename(columns=renamed)


def judge(
    rows: pd.DataFrame,
    batches: int,
    settings: ProbationSettings,
    data: DataSettings,
    task: str,
    metric: str,
    *,
    champion_version: str,
    previous_version: str,
    score_column: str | None = None,
) -> ProbationVerdict:
    """Returns the probation verdict from the labelled rows of the batches seen on probation.

    `rows` holds data.target, the champion's data.prediction (and score_column) and the shadow's
    columns with SHADOW_PREFIX. With fewer than settings.batches labelled batches the verdict is
    pending.

    Raises:
        InsufficientDataError, SchemaError: see compute_metrics.
    """
    base = dict(
        champion_version=champion_version,
        previous_version=previous_version,
        batches=batches,
        needed=settings.batches,
        metric=metric,
    )
    if batches < settings.batches:
        return ProbationVerdict(
            "pending",
            **base,
            champion_score=None,
            previous_score=None,
            worsening=None,
            reason=(
                f"probation of version {champion_version}: {batches} of {settings.batches} "
                "labelled batches so far"
            ),
        )

    def score(prefix: str) -> float:
        return _metric_on(rows, prefix, data, task, metric, score_column, "probation")

    champ, prev = score(""), score(SHADOW_PREFIX)
    worse = worsening(metric, prev, champ, task)
    failed = worse > settings.tolerance
    amount = format_number(abs(worse)) if prev == 0 else format_percent(abs(worse))
    side = "worse" if worse > 0 else "better" if worse < 0 else "as good"
    verdict = "fails probation: roll back" if failed else "passes probation"
    return ProbationVerdict(
        "failed" if failed else "passed",
        **base,
        champion_score=champ,
        previous_score=prev,
        worsening=worse,
        reason=(
            f"version {champion_version} {verdict}: {metric} {format_number(champ)} vs "
            f"{format_number(prev)} for version {previous_version} (shadow) on the same "
            f"{len(rows)} rows of {batches} labelled batches, {amount} {side} "
            f"(tolerance {format_percent(settings.tolerance)})"
        ),
    )


def _metric_on(
    rows: pd.DataFrame,
    prefix: str,
    data: DataSettings,
    task: str,
    metric: str,
    score_column: str | None,
    what: str,
) -> float:
    """The metric of the answers under a column prefix ("" the champion's, SHADOW_PREFIX the
    shadow's) against the labels of the same rows.

    Raises:
        InsufficientDataError: the metric is undefined on these rows.
    """
    values = compute_metrics(
        rows[data.target],
        rows[f"{prefix}{data.prediction}"],
        task,
        y_score=rows[f"{prefix}{score_column}"] if score_column else None,
        positive_label=data.positive_label,
    )
    if metric not in values:
        raise InsufficientDataError(f"{what}: {metric} is undefined on these {len(rows)} rows")
    return values[metric]


@dataclass(frozen=True)
class LiveShadow:
    """A model scored in shadow on live traffic against the champion, on the same labelled rows."""

    shadow_version: str
    champion_version: str
    metric: str
    rows: int
    batches: int
    champion_score: float
    shadow_score: float

    def sentence(self) -> str:
        return (
            f"in shadow: version {self.shadow_version} {self.metric} "
            f"{format_number(self.shadow_score)} vs {format_number(self.champion_score)} for "
            f"champion {self.champion_version} on the same {self.rows} labelled production rows "
            f"of {self.batches} batch(es)"
        )

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict."""
        return asdict(self) | {"sentence": self.sentence()}


def live_shadow(
    rows: pd.DataFrame,
    batches: int,
    data: DataSettings,
    task: str,
    metric: str,
    *,
    champion_version: str,
    shadow_version: str,
    score_column: str | None = None,
) -> LiveShadow | None:
    """Returns the shadow's and the champion's metric on the labelled rows the shadow scored
    (the scoring service scores a share of its rows in shadow); None when it scored none.

    Raises:
        InsufficientDataError, SchemaError: see compute_metrics.
    """
    scored = rows[rows[f"{SHADOW_PREFIX}{data.prediction}"].notna()] if len(rows) else rows
    if len(scored) == 0:
        return None
    return LiveShadow(
        shadow_version,
        champion_version,
        metric,
        len(scored),
        batches,
        _metric_on(scored, "", data, task, metric, score_column, "live shadow"),
        _metric_on(scored, SHADOW_PREFIX, data, task, metric, score_column, "live shadow"),
    )
