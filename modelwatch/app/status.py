"""The end-of-replay table: one row per batch, read back from the MLflow store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from modelwatch import names
from modelwatch.settings import Paths, load_settings, redact_url
from modelwatch.stores import history, registry, tracking

COLUMNS = ["batch", "rows", "validation", "drift_share", "error", "decision", "champion"]


def batch_table(params_path: Path | str) -> list[dict]:
    """Returns one row per processed batch (history.batch_table) for a params file."""
    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    exps = tracking.ensure_experiments(
        client, loaded.settings.tracking.experiment, loaded.paths.experiment_artifact_root
    )
    return history.batch_table(client, exps.monitoring, loaded.settings.retrain.performance_metric)


def render_table(rows: list[dict]) -> str:
    """Returns the rows as an aligned plain-text table."""
    widths = {c: max([len(c)] + [len(str(r[c])) for r in rows]) for c in COLUMNS}
    lines = [
        "  ".join(c.ljust(widths[c]) for c in COLUMNS),
        "  ".join("-" * widths[c] for c in COLUMNS),
    ]
    lines += ["  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS) for r in rows]
    return "\n".join(lines)


def champion_summary(params_path: Path | str) -> str:
    """Returns a line naming the registered model and its aliases."""
    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    name = loaded.settings.project.model_name
    found = registry.aliases(client, name)
    return f"model {name}: " + ", ".join(f"{k}=v{v}" for k, v in sorted(found.items()))


def alias_history(params_path: Path | str, at: datetime | None = None) -> str:
    """Returns the alias history as lines (time, action, alias from -> to, who, why), or, with
    `at`, which version was champion at that time."""
    from modelwatch.stores import alias_history as ah

    loaded = load_settings(params_path)
    name = loaded.settings.project.model_name
    hist = ah.AliasHistory(loaded.paths.registry_dir, name)
    if at is not None:
        version = hist.champion_at(at)
        when = at.isoformat()
        return (
            f"{name}: no champion at {when}"
            if version is None
            else f"{name}: champion at {when} was version {version}"
        )
    lines = []
    for r in hist.records():
        lines.append(
            f"{r.time}  {r.state:9}  {r.action:8}  {r.alias}: "
            f"{r.from_version or '-'} -> {r.to_version or '-'}  by {r.actor}"
            + (f" via {r.via}" if r.via else "")
            + (f"  decision {r.decision_id}" if r.decision_id else "")
            + (f"  ({r.reason})" if r.reason else "")
            + (
                f"  approval: {r.approval} by {r.approval_by}: {r.approval_reason}"
                if r.approval
                else ""
            )
        )
    return "\n".join(lines) or f"{name}: no alias moves recorded yet"


def decision_record(params_path: Path | str, batch_id: str) -> str:
    """Returns the retrain decision record of a batch (JSON), found by its batch id.

    Raises:
        ModelwatchError: no monitoring run has this batch id.
    """
    import json

    import mlflow.artifacts

    from modelwatch.errors import ModelwatchError

    loaded = load_settings(params_path)
    client = tracking.configure(loaded.paths)
    exps = tracking.ensure_experiments(
        client, loaded.settings.tracking.experiment, loaded.paths.experiment_artifact_root
    )
    run = history.find_by_batch_id(client, exps.monitoring, batch_id)
    if run is None:
        raise ModelwatchError(f"no monitoring run for batch id {batch_id!r}")
    if run.status == history.REJECTED:
        return json.dumps(
            {
                names.BATCH_ID: batch_id,
                "decision": "rejected",
                "quarantine": run.tags.get(names.QUARANTINE),
            },
            indent=2,
            ensure_ascii=False,
        )
    record = mlflow.artifacts.load_dict(f"runs:/{run.run_id}/decision.json")
    record["mlflow_run_id"] = run.run_id
    if run.tags.get(names.RETRAIN_OUTCOME):
        record["retrain_outcome"] = run.tags[names.RETRAIN_OUTCOME]
    return json.dumps(record, indent=2, sort_keys=True, ensure_ascii=False)


def status(params_path: Path | str) -> str:
    """Returns the operator's summary: the champion and since when, the last batch with its drift
    and performance, the last decision, open incidents and the last alias move."""

    from modelwatch.stores import alias_history as ah

    loaded = load_settings(params_path)
    settings, paths = loaded.settings, loaded.paths
    name = settings.project.model_name
    client = tracking.configure(paths)
    exps = tracking.ensure_experiments(
        client, settings.tracking.experiment, paths.experiment_artifact_root
    )
    lines = [f"model {name} ({settings.project.task}), home {paths.home}", *stores_lines(paths)]
    found = registry.aliases(client, name)
    hist = ah.AliasHistory(paths.registry_dir, name)
    moves = [r for r in hist.records() if r.alias == registry.CHAMPION and r.state == "committed"]
    if registry.CHAMPION not in found:
        lines.append("champion: none yet (run `modelwatch bootstrap` or `modelwatch demo`)")
    else:
        since = f" since {moves[-1].time} ({moves[-1].action})" if moves else ""
        others = ", ".join(f"{k}=v{v}" for k, v in sorted(found.items()) if k != "champion")
        lines.append(f"champion: v{found['champion']}{since}" + (f"; {others}" if others else ""))
    runs = history.batch_runs(client, exps.monitoring)
    metric = settings.retrain.performance_metric
    if not runs:
        lines.append("last batch: none processed yet")
    else:
        last = runs[-1]
        drift = last.metrics.get(names.DRIFT_SHARE)
        lines.append(
            f"last batch: {last.batch_id} (step {last.index}, {last.status})"
            + (f", drift share {drift:.2f}" if drift is not None else "")
            + (f", dataset drift {last.tags.get('dataset_drift')}" if drift is not None else "")
        )
        realized = [b for b in runs if names.performance(metric) in b.metrics]
        if realized:
            b = realized[-1]
            lines.append(
                f"last realized {metric}: {b.metrics[f'performance.{metric}']:.4g} on {b.batch_id}"
                f" (scored by v{b.champion_version})"
            )
        estimated = {k: v for k, v in last.metrics.items() if k.startswith("estimated.")}
        if estimated:
            lines.append(
                "estimated before labels: "
                + ", ".join(f"{k.split('.', 1)[1]} {v:.3f}" for k, v in sorted(estimated.items()))
            )
        decision = last.tags.get(names.DECISION, "")
        if last.tags.get(names.RETRAIN_OUTCOME):
            decision = f"retrain -> {last.tags['retrain_outcome']}"
        severity = last.tags.get(names.DECISION_SEVERITY, "")
        lines.append(f"last decision: {decision}" + (f" ({severity})" if severity else ""))
    lines += _ledger_lines(paths.ledger_url, name)
    lines.append(f"next scheduled run: {_next_scheduled_run(paths, name)}")
    return "\n".join(lines)


def stores_lines(paths: Paths) -> list[str]:
    """The mode (embedded or server) and the address of each store, passwords hidden."""
    import os

    prefect = os.environ.get("PREFECT_API_URL")
    return [
        f"mode: {paths.mode}",
        f"  tracking: {redact_url(paths.tracking_uri)}",
        f"  ledger:   {redact_url(paths.ledger_url)}",
        "  prefect:  "
        + (
            redact_url(prefect)
            if prefect
            else "a temporary server per command (no PREFECT_API_URL)"
        ),
    ]


def _ledger_lines(url: str, name: str) -> list[str]:
    """What the ledger knows is unfinished: batches stopped mid-way, events still open."""
    from modelwatch.stores import ledger

    led = ledger.open_ledger(url)
    out = [f"ledger: {url.split('://')[0]}, {led.count_batches(name)} batch(es)"]
    state, outbox = led.alerts(name)
    if state:
        open_ = state.get("open", {})
        out.append(
            "open incidents: "
            + (", ".join(f"{k} ({v['severity']})" for k, v in sorted(open_.items())) or "none")
        )
    out += _outbox_lines(outbox)
    labels = led.label_counts(name)
    if labels["files"]:
        out.append(
            f"labels: {labels['files']} file(s), {labels['rows']} row(s) taken in; "
            f"{labels['unknown_ids']} id(s) matched no batch; "
            f"{labels['rejected_batch_rows']} row(s) of rejected batches kept apart"
        )
    for rec in led.unfinished(name):
        who = "running" if ledger.owner_alive(rec.owner) else "interrupted"
        out.append(
            f"unfinished batch: {rec.batch_id} (step {rec.step}, at '{rec.stage}', {who})"
            + (f": {rec.error}" if rec.error else "")
        )
    for event in led.open_events(name):
        if event.kind == "approval":
            from modelwatch.app.approvals import describe

            out.append(describe(event) + f"; `modelwatch approve|reject {_cand(event)} --reason`")
            continue
        who = "running" if ledger.owner_alive(event.owner) else "interrupted"
        out.append(f"open {event.kind}: step {event.step} ({who}); `modelwatch doctor` closes it")
    return out


def _cand(event) -> str:
    return str(event.detail.get("candidate"))


def _outbox_lines(outbox: list[dict]) -> list[str]:
    from modelwatch.alerts import delivery

    pending = [delivery.Pending.from_dict(p) for p in outbox]
    if not pending:
        return []
    shown = "; ".join(f"{p.webhook}: {p.alert.title} ({p.reason})" for p in pending[:3])
    more = f"; and {len(pending) - 3} more" if len(pending) > 3 else ""
    return [f"undelivered alerts: {len(pending)}, retried with the next batch: {shown}{more}"]


def _next_scheduled_run(paths, model: str, api: str | None = None) -> str:
    """Asks the Prefect server `modelwatch serve` uses (PREFECT_API_URL, else the default
    127.0.0.1:4200) for the monitor deployment's next scheduled run, over its REST API, with the
    project's auth string (PREFECT_API_AUTH_STRING) and a CSRF token. The deployment is
    monitor-incoming/monitor under `modelwatch serve`, monitor-incoming/<model> in server mode
    (`modelwatch server deploy`)."""
    import os
    import urllib.error

    from modelwatch.app import prefect_rest

    api = (api or os.environ.get("PREFECT_API_URL") or "http://127.0.0.1:4200/api").rstrip("/")
    deployment = model if paths.mode == "server" else "monitor"
    body = {
        "flows": {"name": {"any_": ["monitor-incoming"]}},
        "deployments": {"name": {"any_": [deployment]}},
        "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
        "sort": "EXPECTED_START_TIME_ASC",
        "limit": 1,
    }
    try:
        runs = prefect_rest.call(api, "/flow_runs/filter", body, timeout=3)
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return f"unknown: the Prefect server at {api} refused the credentials ({exc.code})"
        return f"unknown: the Prefect server at {api} answered {exc.code}"
    except OSError:
        return f"unknown: no Prefect server at {api} (`modelwatch serve` starts one)"
    if not runs:
        return "none scheduled (the monitor deployment is not served, or paused)"
    return f"{runs[0]['expected_start_time']} ({runs[0]['name']}, monitor-incoming/{deployment})"
