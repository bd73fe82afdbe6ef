"""SHAP values of the champion on a sample of the batch, and their drift against the reference."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from modelwatch import explain, names
from modelwatch.settings import Settings
from modelwatch.stores.project import Project
from tasks.results import Explained


def explain_rows(model: Any, rows: pd.DataFrame, reference: pd.DataFrame, settings: Settings):
    """SHAP values of `rows` against a seeded background sample of `reference` (explain.*)."""
    cfg = settings.explain
    background = explain.sample_rows(reference, cfg.background_rows, cfg.seed)
    return explain.explain_with_settings(model, rows, background, settings)


def reference_attribution(
    proj: Project, model: Any, version: str, reference: pd.DataFrame
) -> dict[str, Any]:
    """Returns the champion version's mean |SHAP| on a sample of its reference: read from the
    ledger, computed and stored there the first time (once per version; a rerun after a kill
    computes the same seeded values again)."""
    key = names.attribution_reference(version)
    stored = proj.ledger.get_meta(proj.model_name, key)
    if stored is not None:
        return json.loads(stored)
    cfg = proj.settings.explain
    rows = explain.sample_rows(reference, cfg.sample_rows, cfg.seed)
    found = explain_rows(model, rows, reference, proj.settings)
    value = {"values": found.mean_abs(), "rows": found.rows, "method": found.method}
    proj.ledger.set_meta(proj.model_name, key, json.dumps(value))
    return value


@task(cache_policy=NO_CACHE)
def explain_batch(
    proj: Project, model: Any, version: str, reference: pd.DataFrame, batch: pd.DataFrame
) -> Explained | None:
    """The champion's attribution drift on a sample of the batch (None when explain.enabled is
    false). A model the explainers cannot read gives a warning and an error, never a failure."""
    cfg = proj.settings.explain
    if not cfg.enabled:
        return None
    logger = get_run_logger()
    try:
        ref = reference_attribution(proj, model, version, reference)
        found = explain_rows(model, explain.sample_rows(batch, cfg.sample_rows, cfg.seed),
                             reference, proj.settings)  # fmt: skip
        drift = explain.compare_attributions(
            ref["values"],
            found.mean_abs(),
            method=found.method,
            output=found.output,
            rows=found.rows,
            reference_rows=int(ref["rows"]),
            champion_version=version,
        )
    except Exception as exc:  # an exotic user model: the batch goes on without SHAP values
        error = f"no SHAP values for version {version}: {type(exc).__name__}: {exc}"
        logger.warning("explain: %s", error)
        return Explained(None, error)
    logger.info("%s", drift.summary())
    create_table_artifact(
        key="attribution-drift", table=drift.to_rows(), description=drift.summary()[:500]
    )
    return Explained(drift)
