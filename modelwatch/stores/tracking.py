"""MLflow tracking adapter: experiments, monitoring runs, training runs, logged models."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelwatch import names
from modelwatch.errors import StoreUnavailable
from modelwatch.settings import Paths, redact_url

log = logging.getLogger(__name__)

PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "pandas==3.1.1", "numpy==2.4.6", "scipy==1.17.1"]


@dataclass(frozen=True)
class Experiments:
    monitoring: str
    training: str


def configure(paths: Paths) -> Any:
    """Points MLflow at the project's tracking store (SQLite in the home, or an MLflow server in
    server mode); returns an MlflowClient."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"  # stores.integrity loads models
    import mlflow
    from mlflow import MlflowClient

    paths.home.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(paths.tracking_uri)
    mlflow.set_registry_uri(paths.tracking_uri)
    return MlflowClient(tracking_uri=paths.tracking_uri, registry_uri=paths.tracking_uri)


def ensure_experiments(client: Any, name: str, artifact_root: Path | None) -> Experiments:
    """Creates (once) the monitoring and training experiments with explicit artifact locations
    (artifact_root None: the tracking server's proxied artifact store decides).

    Raises:
        StoreUnavailable: the tracking server did not answer (after the MLflow client's retries).
    """
    from mlflow.exceptions import MlflowException

    try:
        return _ensure_experiments(client, name, artifact_root)
    except MlflowException as exc:
        raise_if_unavailable(client, exc)
        raise


def raise_if_unavailable(client: Any, exc: Exception) -> None:
    """Raises StoreUnavailable when exc is a transport failure of the MLflow client (the server
    did not answer after its retries), so that a caller reading "not found" from an
    MlflowException never mistakes a server that is down for a missing model or alias.

    Raises:
        StoreUnavailable: exc says the tracking server did not answer.
    """
    if "API request to" not in str(exc):  # not a transport failure: a real answer
        return
    import re

    uri = redact_url(client.tracking_uri)
    cause = re.search(r"\[Errno -?\d+\][^'\")]*", str(exc))
    retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "7")
    raise StoreUnavailable(
        f"MLflow tracking server {uri} did not answer after {retries} retries "
        f"(MLFLOW_HTTP_REQUEST_MAX_RETRIES): {cause.group(0) if cause else str(exc)[:200]}"
    ) from exc


def _ensure_experiments(client: Any, name: str, artifact_root: Path | None) -> Experiments:
    ids = []
    for suffix in ("monitoring", "training"):
        full = f"{name}-{suffix}"
        exp = client.get_experiment_by_name(full)
        if exp is None:
            location = None if artifact_root is None else (artifact_root / full).as_uri()
            # MLflow 3's UI opens GenAI (traces) views unless told these are model runs
            kind = {"mlflow.experimentKind": "custom_model_development"}
            ids.append(client.create_experiment(full, artifact_location=location, tags=kind))
        else:
            ids.append(exp.experiment_id)
    return Experiments(*ids)


@contextmanager
def run(experiment_id: str, run_name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """Starts an MLflow run (fluent API, so log_model and log_input attach to it); yields its id."""
    import mlflow

    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=dict(tags)) as r:
        yield r.info.run_id


@contextmanager
def resume(run_id: str) -> Iterator[str]:
    """Re-opens a finished run to add late results (e.g. metrics once labels arrive)."""
    import mlflow

    with mlflow.start_run(run_id=run_id) as r:
        yield r.info.run_id


def log_metrics(metrics: Mapping[str, float], step: int) -> None:
    """Logs finite metrics of the active run in one call, at a step (the batch index)."""
    import math

    import mlflow

    clean = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}
    if clean:
        mlflow.log_metrics(clean, step=step)


def log_json(payload: Mapping[str, Any], artifact_file: str) -> None:
    import mlflow

    mlflow.log_dict(dict(payload), artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    import mlflow

    mlflow.log_text(text, artifact_file)


def log_bytes(data: bytes, artifact_file: str) -> None:
    """Logs a binary artifact (a PNG) of the active run under its file name."""
    import tempfile
    from pathlib import Path

    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / artifact_file
        path.write_bytes(data)
        mlflow.log_artifact(str(path))


def set_tags(tags: Mapping[str, object]) -> None:
    import mlflow

    mlflow.set_tags({k: str(v) for k, v in tags.items() if v is not None})


def log_dataset(
    frame: pd.DataFrame, name: str, source: str, context: str, md5: str, targets: str | None = None
) -> None:
    """Records dataset lineage (name, digest, DVC md5) as an MLflow run input."""
    import warnings

    import mlflow

    with warnings.catch_warnings():
        # MLflow cannot tell which local source class a plain path is; the path is still recorded.
        warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
        # see log_sklearn_model: the integer-column schema hint does not apply here
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        ds = mlflow.data.from_pandas(frame, source=source, name=name, targets=targets)
        mlflow.log_input(ds, context=context, tags={"dvc_md5": md5})


class _ServingCheckRefused(logging.Filter):
    """Drops MLflow's warning that it could not check the input example by loading the model:
    its loader (rightly) refuses with MLFLOW_ALLOW_PICKLE_DESERIALIZATION=false, and modelwatch
    loads models only through stores.integrity. Any other failure of that check still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        return not (
            text.startswith("Failed to validate serving input example")
            and "MLFLOW_ALLOW_PICKLE_DESERIALIZATION" in text
        )


@contextmanager
def _without_serving_check_warning() -> Iterator[None]:
    logger = logging.getLogger("mlflow.models.model")
    refused = _ServingCheckRefused()
    logger.addFilter(refused)
    try:
        yield
    finally:
        logger.removeFilter(refused)


def log_sklearn_model(
    model: Any, example: pd.DataFrame, registered_name: str, extra_trusted: Sequence[str] = ()
) -> tuple[str, str]:
    """Logs a fitted pipeline (skops, signature, input example) and registers it; the MLmodel
    lists the types skops needs, all of them on the allow-list (stores.integrity).

    Returns:
        The model URI and the new registered version.

    Raises:
        ModelIntegrityError: the model holds a type outside the allow-list (training.trusted).
    """
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    from modelwatch.training import trusted as allow

    allow.check_saveable(model, extra_trusted)
    trusted = allow.needed_types(model)
    with warnings.catch_warnings(), _without_serving_check_warning():
        # The hint says integer inputs cannot carry NaN; validation rejects missing values before
        # scoring and modelwatch loads the sklearn flavour, so the pyfunc schema is not enforced.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(example, model.predict(example)),
            input_example=example.head(3),
            pip_requirements=PIP_REQUIREMENTS,
            skops_trusted_types=trusted,
            registered_model_name=registered_name,
        )
    return info.model_uri, str(info.registered_model_version)


TIMELINE_NOTE = (
    "Monitoring metrics over time: one point per batch at step = batch index (drift share, "
    "drifted features, estimated and realized performance, label coverage, champion version). "
    "Open *Model metrics* for the line charts; each batch's own run has the full detail."
)


def timeline_metrics(metrics: Mapping[str, float | None]) -> dict[str, float]:
    """The metrics worth a line over time: everything but per-feature drift and per-segment
    breakdowns (those stay in each batch's run)."""
    return {
        k: v
        for k, v in metrics.items()
        if v is not None and not k.startswith("drift.") and k.count(".") <= 2
    }


def timeline_run(client: Any, experiment_id: str, model_name: str) -> str:
    """Returns the id of the monitoring experiment's timeline run, creating it once."""
    found = find_runs(client, experiment_id, f"tags.`{names.TIMELINE}` = 'true'")
    if found:
        return min(found, key=lambda r: r.info.start_time).info.run_id
    run = client.create_run(
        experiment_id,
        run_name=f"{model_name}-timeline",
        tags={names.TIMELINE: "true", names.NOTE: TIMELINE_NOTE},
    )
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def log_timeline(
    client: Any,
    run_id: str,
    metrics: Mapping[str, float | None],
    step: int,
) -> None:
    """Adds a batch's monitoring metrics to the timeline run at step = batch index, so the
    MLflow UI draws each one as a line over batches (a run per batch gives only single points)."""
    import math
    import time

    from mlflow.entities import Metric

    chosen = timeline_metrics(metrics)
    stamp = int(time.time() * 1000)
    points = [
        Metric(k, float(v), stamp, step) for k, v in chosen.items() if math.isfinite(float(v))
    ]
    if not points:
        return
    try:
        client.log_batch(run_id, metrics=points)
    except Exception as exc:  # noqa: BLE001 - a chart's points never fail a batch
        log.warning("timeline run: %d point(s) at step %d not logged: %s", len(points), step, exc)


def quoted(value: str) -> str:
    """A string literal for an MLflow search filter. Its grammar has no escape inside a
    literal, but takes either quote: 'it''s' finds nothing, "it's" does. A value holding both
    quotes is said with each quote as the one-character wildcard of LIKE: use
    `filter_condition`, which picks LIKE then, and compare exactly afterwards."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "_").replace('"', "_") + "'"


def filter_condition(key: str, value: str) -> str:
    """`key = 'value'` for an MLflow search, or `key LIKE ...` when the value holds both
    quotes (the caller then keeps the exact matches)."""
    both = "'" in value and '"' in value
    return f"{key} {'LIKE' if both else '='} {quoted(value)}"


def find_runs(
    client: Any, experiment_id: str, filter_string: str, page_size: int = 1000
) -> list[Any]:
    """Returns every run of an experiment matching an MLflow filter, newest first (page by page:
    one search answers at most 1000 runs)."""
    found: list[Any] = []
    token = None
    while True:
        page = client.search_runs(
            [experiment_id],
            filter_string=filter_string,
            order_by=["attributes.start_time DESC"],
            max_results=page_size,
            page_token=token,
        )
        found.extend(page)
        token = page.token
        if not token:
            # a run created between two pages shifts the later ones: keep each run once
            unique = {r.info.run_id: r for r in reversed(found)}
            return sorted(unique.values(), key=lambda r: r.info.start_time or 0, reverse=True)


def drift_metrics(report: Any) -> dict[str, float]:
    """A drift report's per-column numbers as MLflow metric names (drift.<kind>.<column>):
    p-values, statistics, adjusted p-values, effect sizes and importance-weighted scores."""
    out: dict[str, float] = {}
    entries = list(report.features) + [e for e in (report.prediction, report.target) if e]
    for entry in entries:
        if entry.status != "ok":
            continue
        name = entry.column
        if entry.p_value is not None:
            out[names.drift("p_value", name)] = entry.p_value
        if entry.statistic is not None:
            out[names.drift("statistic", name)] = entry.statistic
        if entry.p_value_adjusted is not None:
            out[names.drift("p_value_adjusted", name)] = entry.p_value_adjusted
        if entry.effect_size is not None:
            out[names.drift("effect_size", name)] = entry.effect_size
        if entry.weighted_score is not None:
            out[names.drift("weighted_score", name)] = entry.weighted_score
    return out
