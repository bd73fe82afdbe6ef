"""`modelwatch doctor`: find and repair what a killed process can leave behind.

Each check reads the ledger (and the stores it names), repairs what is safe to repair, and says
what it did. What only a rerun can finish (a batch stopped mid-way) is named with the command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from modelwatch.stores import ledger as ledger_mod
from modelwatch.stores import recovery, versioning
from modelwatch.stores.project import Project
from modelwatch.stores.recovery import Repair

log = logging.getLogger(__name__)

EPHEMERAL_APP = "prefect.server.api.server:create_app"


def diagnose(proj: Project, prefect: bool = True) -> list[Repair]:
    """Runs every check and repair; returns what was found and done (empty: all well)."""
    found = recovery.recover(proj)
    found += unfinished_batches(proj, prefect=prefect)
    found += running_mlflow_runs(proj)
    found += data_repository(proj)
    found += orphaned_servers(proj.paths.prefect_home)
    if prefect:
        found += stale_concurrency_slot(proj)
    return found


def unfinished_batches(proj: Project, prefect: bool = True) -> list[Repair]:
    """Batches whose process died mid-way: their MLflow run is marked KILLED and their Prefect
    flow run Crashed; the batch itself is finished by running the same file again."""
    out = []
    for rec in proj.ledger.unfinished(proj.model_name):
        if ledger_mod.owner_alive(rec.owner):
            continue
        actions = []
        if rec.run_id and _kill_mlflow_run(proj, rec.run_id):
            actions.append(f"MLflow run {rec.run_id} marked KILLED")
        if prefect and rec.flow_run_id and _crash_flow_run(rec.flow_run_id, rec.batch_id):
            actions.append(f"Prefect flow run {rec.flow_run_id} marked Crashed")
        actions.append(
            f"run the same file again to finish it (`modelwatch run {rec.batch_id}.csv`): it "
            f"resumes at step {rec.step}"
        )
        out.append(
            Repair(
                f"batch {rec.batch_id} (step {rec.step}) stopped at '{rec.stage}'",
                "; ".join(actions),
            )
        )
    return out


def running_mlflow_runs(proj: Project) -> list[Repair]:
    """MLflow runs still RUNNING that no live process of this project owns: marked KILLED."""
    live_runs = {
        r.run_id for r in proj.ledger.unfinished(proj.model_name) if ledger_mod.owner_alive(r.owner)
    }
    training_live = any(
        ledger_mod.owner_alive(e.owner) for e in proj.ledger.open_events(proj.model_name)
    )
    out = []
    for exp in (proj.experiments.monitoring, proj.experiments.training):
        if exp == proj.experiments.training and training_live:
            continue
        for run in proj.client.search_runs([exp], "attributes.status = 'RUNNING'", max_results=500):
            if run.info.run_id in live_runs:
                continue
            proj.client.set_terminated(run.info.run_id, status="KILLED")
            out.append(
                Repair(
                    f"MLflow run {run.info.run_id} ({run.info.run_name}) left RUNNING",
                    "marked KILLED (its process is gone)",
                )
            )
    return out


def _kill_mlflow_run(proj: Project, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        run = proj.client.get_run(run_id)
    except MlflowException:
        return False
    if run.info.status != "RUNNING":
        return False
    proj.client.set_terminated(run_id, status="KILLED")
    return True


def _crash_flow_run(flow_run_id: str, batch_id: str) -> bool:
    from prefect import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            run = client.read_flow_run(flow_run_id)
            if run.state is None or run.state.is_final():
                return False
            client.set_flow_run_state(
                flow_run_id,
                Crashed(message=f"{batch_id}: its process died (found by modelwatch doctor)"),
                force=True,
            )
            return True
    except Exception as exc:  # noqa: BLE001 - Prefect unreachable: said, not fatal
        log.warning("flow run %s: could not be marked Crashed: %s", flow_run_id, exc)
        return False


def data_repository(proj: Project) -> list[Repair]:
    """Stale DVC/git locks, data files committed to git instead of DVC, and versions the DVC
    remote lacks (`dvc push --all-tags`)."""
    root = proj.paths.data_repo
    out = []
    with versioning.locked(root, timeout=30):
        for path in versioning.clear_stale_locks(root):
            out.append(Repair(f"stale lock {path}", "removed"))
        raw = versioning.raw_files_in_git(root)
        if raw:
            versioning.move_to_dvc(root, raw, "doctor: data files tracked by DVC, not git")
            out.append(
                Repair(
                    f"{len(raw)} data file(s) committed to git: {', '.join(raw[:5])}",
                    "moved to DVC",
                )
            )
        pushed = versioning.push_all_tags(root)
        if pushed:
            out.append(Repair(f"{pushed} version(s) missing from the DVC remote", "pushed"))
    return out


def orphaned_servers(prefect_home: Path) -> list[Repair]:
    """Temporary Prefect servers of this project whose parent process died: stopped."""
    return [
        Repair(f"temporary Prefect server (pid {pid}) outlived its process", "stopped")
        for pid in stop_orphaned_servers(prefect_home)
    ]


def stop_orphaned_servers(prefect_home: Path) -> list[int]:
    """Stops the temporary Prefect servers started for this PREFECT_HOME whose parent is no
    longer a process of this project (killed with SIGKILL, its server lives on); returns pids."""
    import psutil

    home = str(prefect_home)
    stopped = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if EPHEMERAL_APP not in (proc.info["cmdline"] or []):
                continue
            env = proc.environ()
            if env.get("PREFECT__SERVER_EPHEMERAL") != "1" or env.get("PREFECT_HOME") != home:
                continue
            parent = proc.parent()
            if parent is not None and parent.environ().get("PREFECT_HOME") == home:
                continue  # its process still runs
            proc.terminate()
            try:
                proc.wait(5)
            except psutil.TimeoutExpired:
                proc.kill()
            stopped.append(proc.pid)
            log.warning("stopped temporary Prefect server pid %d: its process died", proc.pid)
        except psutil.Error:
            continue
    return stopped


def stale_concurrency_slot(proj: Project) -> list[Repair]:
    """A `promotion-<model>` slot taken while no live process retrains, promotes or rolls
    back: released."""
    from prefect import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectNotFound

    if any(ledger_mod.owner_alive(e.owner) for e in proj.ledger.open_events(proj.model_name)):
        return []
    name = f"promotion-{proj.model_name}"
    with get_client(sync_client=True) as client:
        try:
            limit = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            return []
        if limit.active_slots == 0:
            return []
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active_slots=0))
    return [
        Repair(
            f"concurrency limit {name}: {limit.active_slots} slot(s) taken by no live process",
            "released",
        )
    ]
