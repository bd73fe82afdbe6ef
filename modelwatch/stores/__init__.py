"""Adapters to the stores: MLflow, DVC+git, Great Expectations, the ledger."""
