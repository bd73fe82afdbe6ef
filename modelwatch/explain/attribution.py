"""Attribution drift: how each feature's mean absolute SHAP value on a batch differs from the
same on the reference (computed once per champion version)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

from modelwatch import names


@dataclass(frozen=True)
class FeatureAttribution:
    """One feature's mean |SHAP| on the reference and the batch, and the change (batch minus
    reference; relative: divided by the reference's, None when that is 0)."""

    feature: str
    reference: float
    current: float
    change: float
    relative_change: float | None
    rank: int


@dataclass(frozen=True)
class AttributionDrift:
    """Per-feature attribution change, ranked by absolute change (largest first)."""

    features: tuple[FeatureAttribution, ...]
    method: str  # how the batch's SHAP values were computed: tree | exact | permutation
    output: str  # what was explained: prediction, or P(class=...)
    rows: int  # batch rows explained
    reference_rows: int
    champion_version: str

    def summary(self) -> str:
        """Returns one line naming the features whose attribution changed most."""
        if not self.features:
            return "attribution drift: no features"
        top = ", ".join(
            f"{f.feature} {f.reference:.3g} -> {f.current:.3g}" for f in self.features[:3]
        )
        return f"attribution drift (mean |SHAP| of {self.output}, {self.method}): {top}"

    def metrics(self) -> dict[str, float]:
        """Returns MLflow metrics: attribution.<feature> (the batch's mean |SHAP|) and
        attribution_drift.<feature> (its change against the reference)."""
        out = {names.attribution(f.feature): f.current for f in self.features}
        return out | {names.attribution(f.feature, drift=True): f.change for f in self.features}

    def to_rows(self) -> list[dict]:
        """Returns one table row per feature, in rank order."""
        return [asdict(f) for f in self.features]

    def to_dict(self) -> dict:
        """Returns a JSON-compatible dict."""
        head = {k: v for k, v in asdict(self).items() if k != "features"}
        return head | {"features": self.to_rows()}


def compare_attributions(
    reference: Mapping[str, float],
    current: Mapping[str, float],
    *,
    method: str,
    output: str,
    rows: int,
    reference_rows: int,
    champion_version: str,
) -> AttributionDrift:
    """Returns the attribution drift of every feature of `current`, ranked by |change| (ties:
    by feature name).

    Raises:
        ValueError: a feature of `current` has no reference attribution.
    """
    missing = sorted(set(current) - set(reference))
    if missing:
        raise ValueError(f"attribution drift: no reference attribution for {missing}")
    changes = []
    for name, value in current.items():
        ref = float(reference[name])
        change = float(value) - ref
        relative = change / ref if ref > 0 and math.isfinite(ref) else None
        changes.append((name, ref, float(value), change, relative))
    changes.sort(key=lambda c: (-abs(c[3]), c[0]))
    features = tuple(
        FeatureAttribution(n, r, c, d, rel, rank)
        for rank, (n, r, c, d, rel) in enumerate(changes, start=1)
    )
    return AttributionDrift(features, method, output, rows, reference_rows, champion_version)
