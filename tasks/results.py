"""What the monitor flow's stages return: frozen values passed from one task to the next.

A helper module, not tasks: any task module may import it (tasks never import each other)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modelwatch import drift
from modelwatch.drift import multivariate
from modelwatch.drift.reference import DriftReference
from modelwatch.explain import AttributionDrift
from modelwatch.stores import project, versioning


@dataclass(frozen=True)
class Scored:
    """A batch's predictions (the champion's columns), the shadow version that scored beside it,
    the versions of its files in the data repository, and the champion version that scored it."""

    predictions: pd.DataFrame
    shadow_version: str | None
    versions: dict[str, versioning.DataVersion]
    champion_version: str
    refused_labels: tuple[project.RejectedLabels, ...] = ()


@dataclass(frozen=True)
class Measured:
    """A batch measured against its reference: drift per column and of the whole dataset,
    the HTML report (None when disabled) and what it was compared with."""

    report: drift.DriftReport
    multivariate: tuple[multivariate.MultivariateDrift, ...]
    html: str | None
    reference: DriftReference
    explained: Explained | None = None  # None: explain.enabled is false


@dataclass(frozen=True)
class Explained:
    """The champion's attribution drift on a batch, or why there is none (a model the
    explainers cannot read: the batch goes on without it)."""

    drift: AttributionDrift | None
    error: str | None = None
