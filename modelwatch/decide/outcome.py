"""What a retrain ended in, as a value the monitor flow acts on (never a sentence parsed back)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from modelwatch.decide.promotion import PromotionDecision

RetrainKind = Literal["promoted", "kept", "skipped", "deferred", "failed", "not run"]


@dataclass(frozen=True)
class RetrainOutcome:
    """kind drives tags and alerts; text is what people read (run tag `retrain_outcome`, the
    replay table, the ledger); promotion is the comparison when one was made."""

    kind: RetrainKind
    text: str
    promotion: PromotionDecision | None = None

    @property
    def compared(self) -> bool:
        """A challenger was trained and compared with the champion."""
        return self.promotion is not None

    @property
    def gain(self) -> float | None:
        """The challenger's relative gain over the champion it faced (None: no comparison, or
        no champion to face)."""
        p = self.promotion
        if p is None or p.champion_version is None or p.improvement is None:
            return None
        return float(p.improvement)

    @property
    def quiet(self) -> bool:
        """Nothing went wrong: a skipped or deferred retrain is not an incident."""
        return self.kind in ("promoted", "kept", "skipped", "deferred", "not run")

    @classmethod
    def from_decision(cls, decision: PromotionDecision) -> RetrainOutcome:
        if decision.awaiting_approval:  # the champion stays until a person approves
            return cls(
                "kept",
                f"kept v{decision.champion_version}: v{decision.candidate_version} awaits approval",
                decision,
            )
        if decision.promote:
            return cls("promoted", f"promoted v{decision.candidate_version}", decision)
        return cls("kept", f"kept v{decision.champion_version}", decision)

    @classmethod
    def from_state(cls, name: str, message: str | None) -> RetrainOutcome:
        """From a retrain flow run that ended without a comparison (its final state)."""
        said = message or name
        if name == "Skipped":
            return cls("skipped", f"skipped ({said})")
        if "InsufficientDataError" in said:
            return cls("deferred", "deferred (too little labelled data to compare models)")
        return cls("failed", f"failed: {said}")
