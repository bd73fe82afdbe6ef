"""Decisions: retrain policy, promotion checks, probation (pure)."""
