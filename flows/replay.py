"""replay: the demo. Bootstrap on the reference period, then feed weekly batches in time order."""

from __future__ import annotations

import shutil
from pathlib import Path

from prefect import flow
from prefect.artifacts import create_table_artifact

from flows.bootstrap import bootstrap
from flows.common import DEFAULT_PARAMS
from flows.monitor import monitor_batch
from modelwatch.settings import load_settings
from modelwatch.streams import demo
from tasks.progress import flow_progress
from tasks.project import open_project
from tasks.tracking import summarize_batches


@flow(name="replay", flow_run_name="replay")
def replay(params_path: Path = DEFAULT_PARAMS, max_batches: int | None = None) -> list[dict]:
    """Returns one summary row per batch (also published as a Prefect table artifact)."""
    loaded = load_settings(params_path)
    settings, paths = loaded.settings, loaded.paths
    if settings.demo is None:
        raise ValueError(f"{paths.params_file}: no demo section; replay needs one")
    plan = demo.prepare_demo(
        paths.resolve(settings.demo.source), settings.data, settings.demo, paths.home / "demo"
    )
    bootstrap(reference_path=plan.reference, params_path=params_path)
    batches = [b for b in plan.batches if max_batches is None or b.index <= max_batches]
    progress = flow_progress("replay", len(batches), artifact_key="replay-progress")
    delivered: set[str] = set()
    for batch in batches:
        for due in plan.labels_due(batch.index):
            if due.batch_id not in delivered:
                shutil.copy(due.labels, paths.incoming_labels / due.labels.name)
                delivered.add(due.batch_id)
        target = paths.incoming_batches / batch.inputs.name
        shutil.copy(batch.inputs, target)
        state = monitor_batch(batch_path=target, params_path=params_path, return_state=True)
        if target.exists():  # processed: out of the drop folder, as monitor-incoming does
            done = paths.incoming / "processed"
            done.mkdir(parents=True, exist_ok=True)
            shutil.move(str(target), done / target.name)
        progress.advance(detail=f"{batch.batch_id} {state.name} {state.message or ''}".strip())
    rows = summarize_batches(open_project(params_path))
    create_table_artifact(key="replay-summary", table=rows, description="one row per batch")
    return rows
