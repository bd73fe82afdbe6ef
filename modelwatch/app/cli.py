"""The `modelwatch` command. Heavy imports live inside the commands so --help stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

from modelwatch.errors import ModelwatchError

EPILOG = """examples:
  modelwatch demo                                  # bootstrap + replay the bundled year of batches
  modelwatch run incoming/batch-042.csv            # monitor one batch
  modelwatch run big/2026-11/                      # a Parquet batch (file, folder, URL): Dask
  modelwatch collect                               # prediction-log windows -> monitor batches
  modelwatch retrain --reason "new pricing policy"  # manual retrain, promoted only if better
  modelwatch rollback --reason "complaints since v7" # previous_champion becomes champion again
  modelwatch history --at 2026-11-20T12:00         # which version was champion then
  modelwatch decision batch-014-2011-04-30         # the retrain decision record of a batch
  modelwatch status                                # champion, last batch, last decision
  modelwatch approve 7 --reason "checked the card" # promote v7 (promotion.approval: required)
  modelwatch serve-model --port 8300               # the champion over HTTP: POST /predict
  modelwatch doctor                                # find and repair what a crash left behind
  modelwatch server start                          # server mode: Prefect + MLflow on PostgreSQL
  modelwatch --params params.bank.yaml server deploy  # a project's deployments in the work pool
"""


def _existing_file(value: str) -> Path:
    path = Path(value)
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path.resolve()


def _batch_source(value: str) -> Path | str:
    """A batch: an existing CSV or Parquet file, a folder of Parquet files, or a URL (any
    fsspec protocol, read as Parquet)."""
    if "://" in value and not value.startswith("file://"):
        return value
    path = Path(value.removeprefix("file://"))
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{value}: no such file")
    return path.resolve()


def _is_large(batch: Path | str) -> bool:
    """Whether a batch goes through modelwatch.scale (Parquet on Dask): a URL, a folder, or a
    *.parquet / *.parq / *.pq file; any other file stays on the in-memory CSV path."""
    if isinstance(batch, str):
        return True
    return batch.is_dir() or batch.suffix.lower() in (".parquet", ".parq", ".pq")


def _positive_int(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _port(value: str) -> int:
    number = _positive_int(value)
    if number > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 1-65535, got {value!r}")
    return number


def _reason(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("the reason must not be blank")
    return value


def _version(value: str) -> str:
    number = value.strip().lower().removeprefix("v")
    if not number.isdigit():
        raise argparse.ArgumentTypeError(f"expected a model version such as 7 or v7, got {value!r}")
    return number


def _timestamp(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2026-11-20T12:00, got {value!r}"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelwatch",
        description="Monitor, retrain and safely promote a tabular model.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--params", type=_existing_file, default=None, help="params file (default: ./params.yaml)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="bootstrap and replay the bundled batches, print a table")
    demo.add_argument(
        "--max-batches",
        type=_positive_int,
        default=None,
        help="replay only the first N batches (default: demo.max_batches)",
    )
    run = sub.add_parser("run", help="run monitor-batch on one batch file")
    run.add_argument("batch", type=_batch_source, help="a CSV file, or Parquet (file, folder, URL)")
    run.add_argument("--force-retrain", action="store_true", help="retrain after this batch")
    run.add_argument("--reason", type=_reason, default=None, help="why (with --force-retrain)")
    collect = sub.add_parser(
        "collect", help="turn every closed window of the prediction log into a monitored batch"
    )
    collect.add_argument(
        "--now", type=_timestamp, default=None, help="judge windows closed as of this time (UTC)"
    )
    boot = sub.add_parser("bootstrap", help="train the first champion on a reference file")
    boot.add_argument("reference", type=_existing_file)
    adopt = sub.add_parser(
        "adopt", help="register a model trained elsewhere (an MLflow model URI) as the champion"
    )
    adopt.add_argument("model_uri", help="e.g. models:/their-model/3 or runs:/<run id>/model")
    adopt.add_argument(
        "--reference", type=_existing_file, required=True, help="labelled data it is measured on"
    )
    check = sub.add_parser(
        "check-params",
        help="check the params file against a reference CSV before bootstrap (exit 1 on findings)",
    )
    check.add_argument("reference", type=_existing_file)
    retrain = sub.add_parser("retrain", help="retrain by hand; promoted only if better")
    retrain.add_argument("--reason", type=_reason, required=True, help="why (recorded in MLflow)")
    retrain.add_argument(
        "--force", action="store_true", help="retrain even without new labelled data"
    )
    retrain.add_argument(
        "--window", type=_positive_int, default=None, help="train on N labelled batches"
    )
    back = sub.add_parser("rollback", help="make previous_champion the champion again")
    back.add_argument("--reason", type=_reason, required=True, help="why (recorded)")
    hist = sub.add_parser("history", help="the alias history: who moved which alias, when")
    hist.add_argument(
        "--at", type=_timestamp, default=None, help="print only the champion at this time (UTC)"
    )
    dec = sub.add_parser("decision", help="print the retrain decision record of a batch")
    dec.add_argument("batch_id")
    pend = sub.add_parser(
        "approvals", help="list promotions waiting for approval (promotion.approval: required)"
    )
    pend.add_argument("--wait", type=_positive_int, default=None, help=argparse.SUPPRESS)
    for verb, what in (("approve", "promote"), ("reject", "keep the champion, not promote")):
        ans = sub.add_parser(verb, help=f"answer a pending approval: {what} the version")
        ans.add_argument("version", type=_version, help="the challenger's version, e.g. 7 or v7")
        ans.add_argument("--reason", type=_reason, required=True, help="why (recorded)")
        ans.add_argument(
            "--by", type=_reason, default=None, help="who decides (default: $MODELWATCH_ACTOR "
            "or the login name)",
        )  # fmt: skip
    sub.add_parser("table", help="print the per-batch table from the MLflow store")
    sub.add_parser("status", help="champion, last batch, last decision, open incidents")
    sub.add_parser(
        "doctor",
        help="find and repair what a killed run left: unfinished batches, RUNNING runs, stale "
        "locks, orphaned servers, data files in git, versions missing from the DVC remote",
    )
    srv = sub.add_parser("serve", help="serve the monitor (cron), retrain and rollback deployments")
    srv.add_argument("--prefect-port", type=_positive_int, default=4200)
    model = sub.add_parser(
        "serve-model",
        help="serve the champion over HTTP (POST /predict), hot-reloaded when the alias moves",
        description="The scoring service: POST /predict or /invocations (JSON as MLflow's "
        "dataframe_records / dataframe_split, or text/csv), GET /health, /ready, /metrics. "
        "Stops gracefully on SIGTERM or Ctrl-C. Defaults from params.yaml serving.*",
    )
    model.add_argument("--host", default=None, help="listen address (default: serving.host)")
    model.add_argument("--port", type=_port, default=None, help="default: serving.port")
    ui = sub.add_parser("ui", help="start the Prefect UI and the MLflow UI on the project stores")
    ui.add_argument("--prefect-port", type=_positive_int, default=4200)
    ui.add_argument("--mlflow-port", type=_positive_int, default=5000)
    _server_parser(sub)
    return parser


def _server_parser(sub: argparse._SubParsersAction) -> None:
    server = sub.add_parser(
        "server",
        help="server mode: Prefect and MLflow servers on PostgreSQL, a work pool and workers",
        description="Server mode. PostgreSQL: MODELWATCH_PG_URL "
        "(default postgresql://postgres@127.0.0.1:5432). `start` runs until Ctrl-C and writes "
        "DIR/env, the client environment; source it (`set -a; . DIR/env; set +a`) before "
        "`deploy`, `status`, `worker` or any other modelwatch command.",
    )
    action = server.add_subparsers(dest="server_command", required=True)
    start = action.add_parser("start", help="start the servers, the work pool and its workers")
    start.add_argument("--prefect-port", type=_positive_int, default=4200)
    start.add_argument("--mlflow-port", type=_positive_int, default=5000)
    start.add_argument("--host", default="127.0.0.1", help="listen address (0.0.0.0: all)")
    start.add_argument("--workers", type=_positive_int, default=1)
    start.add_argument(
        "--db-prefix",
        default="modelwatch",
        type=_db_prefix,
        help="databases <prefix>_prefect, <prefix>_mlflow, <prefix>_ledger_<project>",
    )
    action.add_parser("deploy", help="register this project's deployments in the work pool")
    action.add_parser("status", help="the servers and every project deployed on them")
    action.add_parser("worker", help="one more worker for the pool (with DIR/env)")
    for parser in action.choices.values():
        parser.add_argument(
            "--dir", type=Path, default=None, help="server folder (default: .modelwatch-server "
            "beside the params file)",
        )  # fmt: skip
        parser.add_argument("--pool", default="modelwatch", help="work pool name")


def _db_prefix(value: str) -> str:
    import re

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,30}", value):
        raise argparse.ArgumentTypeError(f"expected [a-z_][a-z0-9_]* (max 31), got {value!r}")
    return value


def configure_environment(params: Path) -> Path:
    """Points Prefect at the project home and gives the Prefect and MLflow clients (and a
    temporary Prefect server) the project's credentials, before prefect is imported; returns
    the home.

    Raises:
        ConfigError: the credentials file is readable by others or not valid.
    """
    from modelwatch.app import credentials
    from modelwatch.settings import load_settings

    paths = load_settings(params).paths
    creds, _ = credentials.load_or_create(paths.home)
    for name, value in credentials.client_env(creds).items():
        os.environ.setdefault(name, value)
    # the temporary server of a run (no PREFECT_API_URL) listens on a loopback port while the
    # run lasts: auth string (above), CSRF tokens, and no browser origin (it serves no UI)
    os.environ.setdefault("PREFECT_SERVER_CSRF_PROTECTION_ENABLED", "true")
    os.environ.setdefault("PREFECT_SERVER_CORS_ALLOWED_ORIGINS", "")
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "modelwatch")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # modelwatch never unpickles a model (stores.integrity): nor may MLflow, in any process
    os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    os.environ.setdefault("DO_NOT_TRACK", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    if paths.mode == "server" or os.environ.get("PREFECT_API_URL"):
        from modelwatch.app.production import CLIENT_RETRIES

        for name, value in CLIENT_RETRIES.items():
            os.environ.setdefault(name, value)
    paths.prefect_home.mkdir(parents=True, exist_ok=True)
    from modelwatch.app.doctor import stop_orphaned_servers

    for pid in stop_orphaned_servers(Path(os.environ["PREFECT_HOME"])):
        sys.stderr.write(
            f"modelwatch: stopped temporary Prefect server pid {pid}: the run that "
            "started it was killed\n"
        )
    return paths.home


PREFECT_UNREACHABLE = "Failed to reach API at"  # prefect.client: the API did not answer


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "run" and args.force_retrain and not args.reason:
        parser.error("run --force-retrain needs --reason (why the model must be retrained)")
    if args.command == "run" and args.force_retrain and _is_large(args.batch):
        parser.error(
            "run --force-retrain: not for Parquet batches (monitor-large-batch does not retrain)"
        )
    params = args.params or Path("params.yaml").resolve()
    try:
        home = configure_environment(params)
        return _dispatch(args, params, home)
    except ModelwatchError as exc:
        sys.stderr.write(f"modelwatch: error: {exc}\n")
        return 1
    except RuntimeError as exc:
        if not str(exc).startswith(PREFECT_UNREACHABLE):
            raise
        # Prefect's client raises this before a flow run exists: nothing was claimed or moved
        api = os.environ.get("PREFECT_API_URL", "the Prefect API")
        sys.stderr.write(
            f"modelwatch: error: Prefect server {api} did not answer ({exc}); nothing was "
            "run and every input stays where it is: start the server or fix PREFECT_API_URL, "
            "then run the command again\n"
        )
        return 1
    except Exception as exc:
        if not _lost_prefect(exc):
            raise
        _exit_prefect_lost(exc)
    except KeyboardInterrupt:
        return 130


def _lost_prefect(exc: BaseException) -> bool:
    """Whether exc is the Prefect client's transport failure (after its retries): the API went
    away while a flow ran and the engine could not record the run's state."""
    import httpx

    return isinstance(exc, httpx.TransportError)


def _exit_prefect_lost(exc: BaseException) -> None:
    """Prints what happened and exits 1 at once. The flow already released its ledger claim (a
    crash leaves one the next run takes over, its owner gone), so the batch runs again in full
    next time. os._exit skips Prefect's delivery of the queued events at exit: the server is
    gone, and each event would wait 7 s for it (minutes in all)."""
    api = os.environ.get("PREFECT_API_URL", "the Prefect API")
    sys.stderr.write(
        f"modelwatch: error: Prefect server {api} stopped answering during the run ({exc}); "
        "what the run finished is in the ledger and the input stays where it is: run the "
        "command again once the server answers, it finishes the batch once (or says it is "
        "done)\n"
    )
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def _dispatch(args: argparse.Namespace, params: Path, home: Path) -> int:
    from modelwatch.app import status

    if args.command == "demo":
        from flows.replay import replay

        rows = replay(params_path=params, max_batches=args.max_batches)
        _out(status.render_table(rows))
        _out(status.champion_summary(params))
        _out(_ui_hint(params, home))
        return 0
    if args.command == "run" and _is_large(args.batch):
        from flows.large_batch import run_large_batch

        state = run_large_batch(str(args.batch), params)
        _out(_state_line(str(args.batch), state))
        return exit_code(state)
    if args.command == "run":
        from flows.monitor import monitor_batch

        state = monitor_batch(
            batch_path=args.batch,
            params_path=params,
            force_retrain=args.force_retrain,
            retrain_reason=args.reason,
            return_state=True,
        )
        _out(_state_line(args.batch.name, state))
        return exit_code(state)
    if args.command == "collect":
        from flows.predictions import collect_predictions

        state = collect_predictions(params_path=params, now=args.now, return_state=True)
        rows = state.result(raise_on_failure=False) if state.is_completed() else []
        for row in rows if isinstance(rows, list) else []:
            _out(f"window {row['window']}: {row['state']}: {row['message']}".rstrip(": "))
        _out(_state_line("collect-predictions", state))
        return 0 if state.is_completed() else 1
    if args.command == "check-params":
        return _check_params(params, args.reference)
    if args.command == "bootstrap":
        from flows.bootstrap import bootstrap

        _out(f"champion: version {bootstrap(reference_path=args.reference, params_path=params)}")
        return 0
    if args.command == "adopt":
        from flows.adopt import adopt

        version = adopt(model_uri=args.model_uri, reference_path=args.reference,
                        params_path=params)  # fmt: skip
        _out(f"champion: version {version} (adopted from {args.model_uri})")
        return 0
    if args.command == "retrain":
        from flows.retrain import retrain

        state = retrain(
            reason=args.reason,
            params_path=params,
            force=args.force,
            window_batches=args.window,
            return_state=True,
        )
        if state.name == "Skipped" or not state.is_completed():
            _out(_state_line("retrain", state))
            return 0 if state.is_completed() else 1
        _out(state.result().summary())
        return 0
    if args.command == "rollback":
        from flows.rollback import rollback

        before, after = rollback(reason=args.reason, params_path=params)
        _out(f"champion: version {before} -> version {after} (rolled back)")
        return 0
    if args.command == "history":
        _out(status.alias_history(params, args.at))
        return 0
    if args.command == "decision":
        _out(status.decision_record(params, args.batch_id))
        return 0
    if args.command == "status":
        _out(status.status(params))
        return 0
    if args.command == "doctor":
        from modelwatch.app.doctor import diagnose
        from modelwatch.stores.project import open_project

        found = diagnose(open_project(params))
        for repair in found:
            _out(f"- {repair.line()}")
        _out(f"doctor: {len(found)} finding(s)" if found else "doctor: nothing to repair")
        return 0
    if args.command in ("approvals", "approve", "reject"):
        return _approvals(args, params)
    if args.command == "table":
        _out(status.render_table(status.batch_table(params)))
        return 0
    if args.command == "serve-model":
        # one OpenMP thread per scoring call: requests are scored concurrently by the server's
        # threads, and a pool per call only oversubscribes the cores (set before sklearn loads)
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        from modelwatch.serving import app

        return app.run(params, args.host, args.port)
    if args.command == "server":
        from modelwatch.app import production_cli

        return production_cli.dispatch(args, params)
    from modelwatch.app import servers

    if args.command == "serve":
        return servers.run_deployments(params, home, args.prefect_port)
    return servers.serve(params, home, args.prefect_port, args.mlflow_port)


def _approvals(args: argparse.Namespace, params: Path) -> int:
    from modelwatch.app import approvals

    if args.command == "approvals" and args.wait is not None:
        _out(approvals.wait(params, args.wait))
    elif args.command == "approvals":
        _out(approvals.list_pending(params))
    else:
        from modelwatch.stores.alias_history import current_actor

        by = args.by or current_actor()
        _out(approvals.answer(params, args.version, args.command, args.reason, by))
    return 0


def _check_params(params: Path, reference: Path) -> int:
    """Prints what in the reference would reject good batches or break training."""
    from modelwatch import io
    from modelwatch.settings import load_settings
    from modelwatch.stores.validation import check_reference

    settings = load_settings(params).settings
    frame = io.read_csv_file(reference)
    found = check_reference(frame, settings.data, settings.validation, settings.project.task)
    for line in found:
        _out(f"- {line}")
    where = f"{params.name} with {reference.name} ({len(frame)} rows)"
    _out(f"{where}: {len(found)} finding(s)" if found else f"{where}: nothing found")
    return 1 if found else 0


def _ui_hint(params: Path, home: Path) -> str:
    from modelwatch.app.credentials import credentials_path

    return (
        f"\nStores are under {home}. To look at them:\n"
        f"  make ui          # or: modelwatch --params {params} ui\n"
        f"  Prefect UI: http://127.0.0.1:4200   MLflow UI: http://127.0.0.1:5000\n"
        f"  log in with the credentials in {credentials_path(home)} (`make ui` prints them once)"
    )


def exit_code(state: object) -> int:
    """The exit code of `modelwatch run`: 0 accepted or skipped (same content as a batch done
    before), 2 rejected (quarantined), 1 anything else (the flow failed: a crash)."""
    if state.is_completed():
        return 0
    return 2 if state.name == "Rejected" else 1


def _state_line(subject: str, state: object) -> str:
    """Returns "subject: StateName: message" for a Prefect flow run's final state."""
    return f"{subject}: {state.name}: {state.message or ''}".rstrip(": ")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
