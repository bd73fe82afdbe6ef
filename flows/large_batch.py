"""monitor-large-batch: a Parquet batch (file, folder of partitions, fsspec URL) validated,
scored and drift-checked on Dask: each piece and each column is a task on the flow's
DaskTaskRunner (a local cluster by default, scale.scheduler / MODELWATCH_DASK_SCHEDULER
otherwise)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from prefect import flow, unmapped
from prefect.states import Completed, Failed, State
from prefect_dask import DaskTaskRunner

from flows.common import DEFAULT_PARAMS, run_name, tag_run
from modelwatch import drift, names
from modelwatch.scale.cluster import local_cluster_options
from modelwatch.settings import ScaleSettings, load_settings, scheduler_address
from modelwatch.stores import validation
from tasks.project import open_project
from tasks.registry import load_champion, score_batch
from tasks.scale import (
    batch_id,
    check_piece,
    check_whole,
    column_drift,
    combine_drift,
    combine_validation,
    log_large_batch,
    logged_run,
    open_parquet_batch,
    open_predictions,
    prediction_drift,
    predictions_dir,
    publish_rejection,
    score_piece,
    split_suite,
)
from tasks.validation import quarantine_batch
from tasks.versioning import load_reference


@dataclass(frozen=True)
class LargeBatchResult:
    batch_id: str
    validation: validation.ValidationResult
    drift: drift.DriftReport
    predictions: str  # the Parquet folder of id + prediction (+ scores)


def dask_task_runner(settings: ScaleSettings) -> DaskTaskRunner:
    """Returns the task runner of scale.*: the configured scheduler, or a local cluster."""
    address = scheduler_address(settings)
    if address is not None:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_kwargs=local_cluster_options(settings))


@flow(
    name="monitor-large-batch",
    flow_run_name=lambda: run_name("large", "batch_path"),
    task_runner=DaskTaskRunner(cluster_kwargs=local_cluster_options(ScaleSettings())),
)
def monitor_large_batch(batch_path: str, params_path: Path = DEFAULT_PARAMS):
    """Validates, scores and drift-checks one Parquet batch and logs it as a run of the
    monitoring experiment (batch_kind large); a failing batch ends Failed("Rejected") with its
    report in quarantine (the batch itself stays where it is). A batch whose run finished
    before (same id, same files: ParquetBatch.fingerprint) is not done again; one whose run a
    crash left unfinished is."""
    proj = open_project(params_path)
    settings, data = proj.settings, proj.settings.data
    tag_run(proj.model_name, "large-batch")
    name = batch_id(batch_path)
    batch, unreadable = open_parquet_batch(batch_path, settings.scale)
    fingerprint = batch.fingerprint() if batch is not None else "unreadable"
    done = logged_run(proj, name, fingerprint) if batch is not None else None
    if done is not None:  # a finished run: logged last, after every other step
        tag_run("done-before")
        return Completed(message=f"{name}: done before, MLflow run {done} (not repeated)")
    reference = load_reference(proj)
    checked = unreadable or _validate(batch, reference, proj)
    log_run = partial(
        log_large_batch,
        proj,
        name=name,
        source=batch_path,
        fingerprint=fingerprint,
        checked=checked,
    )
    if not checked.success:
        folder = quarantine_batch(Path(batch_path), checked, proj, name)
        publish_rejection(checked)
        log_run(quarantine=folder)
        tag_run("rejected")
        return Failed(name="Rejected", message=f"{checked.problems()}; report in {folder}")
    model, champion = load_champion(proj)
    out_dir = predictions_dir(proj.paths.home, name)
    pieces = list(batch.pieces)
    written = score_piece.map(
        unmapped(batch),
        pieces,
        range(len(pieces)),
        unmapped(model),
        unmapped(data),
        unmapped(settings.project.task),
        unmapped(out_dir),
    )
    written.result()  # a piece that could not be scored fails the run here
    predictions = open_predictions(out_dir)
    features = column_drift.map(
        [reference[[c]] for c in data.features],
        unmapped(batch),
        data.features,
        unmapped(data),
        unmapped(settings.drift),
    )
    reference_predictions = score_batch(model, reference, proj)[data.prediction]
    predicted = prediction_drift.submit(
        data.prediction, reference_predictions, predictions, settings.drift
    )
    importance = json.loads(champion.tags.get(names.FEATURE_IMPORTANCE, "null"))
    report = combine_drift(features.result(), predicted.result(), data, settings.drift, importance)
    log_run(drift_report=report, predictions=out_dir, champion_version=champion.version)
    tag_run("accepted", *(["drift"] if report.dataset_drift else []))
    return LargeBatchResult(name, checked, report, out_dir)


def _validate(batch, reference, proj) -> validation.ValidationResult:
    """The suite on every piece (mapped tasks), the ids on the whole batch, one verdict."""
    suites = split_suite(reference, proj.settings.data, proj.settings.validation)
    pieces = check_piece.map(unmapped(batch), list(batch.pieces), unmapped(suites[0]))
    whole = check_whole.submit(batch, suites[1], proj.settings.data.id)
    return combine_validation(
        batch,
        suites,
        pieces.result(),
        whole.result(),
        proj.settings.data,
        proj.settings.validation,
        None,
    )


def run_large_batch(batch_path: str, params_path: Path = DEFAULT_PARAMS) -> State:
    """Runs monitor-large-batch on the cluster of params.yaml's scale section; returns its
    final state (the CLI's entry)."""
    runner = dask_task_runner(load_settings(params_path).settings.scale)
    return monitor_large_batch.with_options(task_runner=runner)(
        batch_path, params_path, return_state=True
    )
