"""adopt: register a model trained elsewhere as the first champion, without retraining it."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from flows.common import DEFAULT_PARAMS, promote_first
from modelwatch import io, names
from modelwatch.errors import ConfigError
from tasks.events import mark_reference
from tasks.project import open_project
from tasks.registry import champion_info
from tasks.tracking import open_timeline
from tasks.training import register_adopted, trainer_spec
from tasks.validation import check_reference_data
from tasks.versioning import set_reference


@flow(name="adopt", flow_run_name="adopt")
def adopt(model_uri: str, reference_path: Path, params_path: Path = DEFAULT_PARAMS) -> str:
    """Registers the MLflow model at model_uri (any version URI, a model of another registered
    model, a run's model) as the first champion of the project: the reference is versioned as
    its data (validation and drift compare batches with it), its baseline is measured on the
    reference's newest labelled share, and the first-model policy (promotion.first_model)
    decides as for a trained one. Later challengers come from training.entry_point (or
    training.model); with neither set, the project only monitors. Returns the version."""
    proj = open_project(params_path)
    open_timeline(proj)
    existing = champion_info(proj)
    if existing is not None and existing.tags.get(names.ADOPTED_FROM) == model_uri:
        mark_reference(proj, existing.version)  # a killed earlier attempt may have stopped here
        get_run_logger().info(
            "%s is already the champion (version %s)", model_uri, existing.version
        )
        return existing.version
    if existing is not None:
        raise ConfigError(
            f"model {proj.model_name} already has a champion (version {existing.version}): "
            "adopt registers the first one"
        )
    reference = io.read_csv_file(Path(reference_path))
    check_reference_data(reference, proj)
    ref = set_reference(proj, reference, f"reference of the adopted model {model_uri}")
    cand = register_adopted(proj, model_uri, reference, ref)
    promote_first(proj, cand, f"adopted from {model_uri}")
    spec = trainer_spec(proj)
    get_run_logger().info(
        "champion %s adopted from %s; challengers: %s",
        cand.version,
        model_uri,
        spec or "none (monitoring only)",
    )
    return cand.version
