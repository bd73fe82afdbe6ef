"""Drift statistics: pure functions, no orchestration or tracking imports."""

from modelwatch.drift.report import DriftReport, compute_drift, compute_series_drift
from modelwatch.drift.stattests import FeatureDrift

__all__ = ["DriftReport", "FeatureDrift", "compute_drift", "compute_series_drift"]
