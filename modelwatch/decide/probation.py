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
        values = compute_metrics(
            rows[data.target],
            rows[f"{prefix}{data.prediction}"],
            task,
            y_score=rows[f"{prefix}{score_column}"] if score_column else None,
            positive_label=data.positive_label,
        )
        if metric not in values:
            raise InsufficientDataError(
                f"probation: {metric} is undefined on these {len(rows)} rows"
            )
        return values[metric]

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
