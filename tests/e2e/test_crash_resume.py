"""Exactly once, after any crash: `modelwatch run` is SIGKILLed (its whole process group: the
CLI, a DVC stage, anything it started) at each step boundary of the monitor and retrain flows,
then the same file is run again. Real stores: MLflow SQLite, git+DVC, the ledger; the CLI runs
as a user runs it, in its own session, against this module's Prefect server.

After each rerun: one FINISHED MLflow run for the batch with its artifacts, one data commit,
the decision recorded once, champion and drift reference consistent, a retrain counted once or
not at all, no raw CSV in git, the promotion alert delivered; and the next batch gets the next
step. The kill points are functions of the product, wrapped from outside by
tests/faults/sitecustomize.py: the product carries no fail points of its own.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from modelwatch.stores import recovery, registry, versioning
from modelwatch.stores.project import REFERENCE, WINDOW, open_project
from tests.conftest import cli_env, run_modelwatch
from tests.e2e.test_lifecycle import Life

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# (name, kill point, force a retrain at this batch) in the order the flows pass them
MONITOR_POINTS = [
    ("after validation and scoring", "modelwatch.stores.versioning:track:before", False),
    ("during dvc add", "dvc.stage:Stage.dump:after", False),  # one .dvc file written of two
    ("before the dvc push", "dvc.data_cloud:DataCloud.push:before", False),
    ("before the git commit", "modelwatch.stores.versioning:commit:before", False),
    ("after the git commit", "modelwatch.stores.versioning:commit:after", False),
    ("with the MLflow run open", "modelwatch.stores.tracking:log_json:after", False),
    ("before the alerts", "modelwatch.alerts.incidents:track_incidents:before", False),
]
RETRAIN_POINTS = [
    ("during the DVC train stage", "modelwatch.training.fit:fit_model:before", True),
    ("between alias move and reference move", "modelwatch.stores.registry:promote:after", True),
    ("after the reference move, before the alert", "tasks.events:mark_reference:after", True),
    ("during a webhook call", "modelwatch.alerts.delivery:_post_json:before", True),
]


class Hook:
    """A local webhook receiver (Slack-compatible JSON), counting what it got."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        got = self.texts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # the name http.server calls
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                got.append(body.get("text", ""))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def crash(tmp_path_factory):

    hook = Hook()
    life = Life(
        tmp_path_factory.mktemp("crash"),
        alerts={"webhooks": [{"url": hook.url, "name": "ops", "min_severity": "info"}]},
    )
    life.bootstrap()
    env = cli_env()
    life.env, life.hook, life.next = env, hook, 1
    yield life
    hook.close()


def run_cli(life: Life, k: int, kill: str | None = None, force: bool = False) -> tuple[int, str]:
    """Runs `modelwatch run` on batch k in its own session; returns (exit code, output)."""
    target = life.loaded.paths.incoming_batches / life.batches[k - 1].inputs.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(life.batches[k - 1].inputs.read_bytes())
    args = ["run", target] + (["--force-retrain", "--reason", "crash test"] if force else [])
    return run_modelwatch(life.params, args, life.env, kill)


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def assert_exactly_once(life: Life, k: int) -> None:
    proj = open_project(life.params)
    batch_id = life.batch_id(k)
    rec = proj.ledger.batch_by_id(proj.model_name, batch_id)
    assert rec is not None and rec.done and rec.status == "accepted", rec
    runs = proj.client.search_runs(
        [proj.experiments.monitoring], f"tags.batch_id = '{batch_id}'", max_results=10
    )
    assert [r.info.status for r in runs] == ["FINISHED"], [r.info for r in runs]
    assert runs[0].info.run_id == rec.run_id
    names = {a.path for a in proj.client.list_artifacts(rec.run_id)}
    assert {"drift_report.json", "decision.json", "validation.json"} <= names
    assert runs[0].data.tags["decision"] == life.decisions[k]
    repo = proj.paths.data_repo
    commits = versioning._git(repo, "log", "--format=%s", f"--grep=accept {batch_id} ")
    assert len(commits.splitlines()) == 1, commits
    assert versioning.raw_files_in_git(repo) == []
    champion = registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)
    assert proj.ledger.get_meta(proj.model_name, recovery.REFERENCE_FOR) == champion.version
    window = versioning.read_version(repo, WINDOW, champion.tags["window_tag"])
    assert (repo / REFERENCE).read_bytes() == window
    retrains = [
        e for e in proj.ledger.open_events(proj.model_name) if e.kind in ("retrain", "promotion")
    ]
    assert retrains == []  # nothing left open
    assert proj.ledger.retrain_steps(proj.model_name, rec.step) in ((), (rec.step,))


@pytest.mark.parametrize(("name", "point", "force"), MONITOR_POINTS + RETRAIN_POINTS)
def test_killed_run_then_rerun_finishes_exactly_once(crash, name, point, force):
    k = crash.next
    crash.next += 1
    if force:  # the holdout needs labelled batches no model was trained on
        for j in range(1, k):
            crash.labels(j)
    code, out = run_cli(crash, k, kill=point, force=force)
    assert code == -9 or code == 137, f"{name}: expected SIGKILL, got {code}\n{out[-3000:]}"
    assert f"fault injection: SIGKILL at {point}" in out
    alerts_before = len(crash.hook.texts)
    code, out = run_cli(crash, k, force=force)
    assert code == 0, out[-3000:]
    assert "Skipped" not in out, out[-2000:]
    proj = open_project(crash.params)
    rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
    assert rec.attempts == 2 and rec.step == k, rec
    crash.decisions = getattr(crash, "decisions", {})
    crash.decisions[k] = proj.client.get_run(rec.run_id).data.tags["decision"]
    assert_exactly_once(crash, k)
    if force and "promoted" in (rec.outcome or ""):
        promoted = [t for t in crash.hook.texts[alerts_before:] if "champion" in t.lower()]
        assert promoted, crash.hook.texts[alerts_before:]
    if k == 1:  # and the same file once more: now it is done
        code, out = run_cli(crash, k)
        assert code == 0 and "Skipped" in out and "already processed" in out, out[-2000:]


def test_the_next_batch_after_the_crashes_gets_the_next_step(crash):
    k = crash.next
    code, out = run_cli(crash, k)
    assert code == 0, out[-3000:]
    proj = open_project(crash.params)
    rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
    assert (rec.step, rec.attempts, rec.status) == (k, 1, "accepted")
    steps = [proj.ledger.batch_at(proj.model_name, s) for s in range(1, k + 1)]
    assert [s.step for s in steps if s is not None] == list(range(1, k + 1))


def start_cli(life: Life, k: int) -> subprocess.Popen:
    target = life.loaded.paths.incoming_batches / life.batches[k - 1].inputs.name
    target.write_bytes(life.batches[k - 1].inputs.read_bytes())
    cmd = [Path(sys.executable).parent / "modelwatch", "--params", life.params, "run", target]
    return subprocess.Popen(
        [str(a) for a in cmd],
        env=life.env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def test_three_runs_at_once_get_distinct_steps_and_commit_only_their_own_files(crash):
    first = crash.next
    crash.next += 3
    procs = [start_cli(crash, k) for k in range(first, first + 3)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], "\n".join(o[-1500:] for o in outs)
    proj = open_project(crash.params)
    repo = proj.paths.data_repo
    steps = []
    for k in range(first, first + 3):
        batch_id = crash.batch_id(k)
        rec = proj.ledger.batch_by_id(proj.model_name, batch_id)
        assert rec.done and rec.status == "accepted"
        steps.append(rec.step)
        files = versioning._git(repo, "show", "--name-only", "--format=", rec.data_commit)
        foreign = [
            f
            for f in files.splitlines()
            if f.startswith(("data/batches/", "data/predictions/"))
            and not f.endswith(".gitignore")
            and batch_id not in f
        ]
        assert foreign == [], f"{batch_id}'s commit holds other batches' files: {foreign}"
        runs = proj.client.search_runs(
            [proj.experiments.monitoring], f"tags.batch_id = '{batch_id}'", max_results=10
        )
        assert len(runs) == 1 and runs[0].data.tags["batch_index"] == str(rec.step)
    assert sorted(steps) == list(range(first, first + 3))
    assert versioning.raw_files_in_git(repo) == []


def test_doctor_repairs_what_a_kill_leaves_when_nothing_reruns(crash):
    from modelwatch.app.doctor import diagnose

    k = crash.next
    crash.next += 1
    code, out = run_cli(crash, k, kill="modelwatch.stores.tracking:log_json:after")
    assert code in (-9, 137), out[-2000:]
    proj = open_project(crash.params)
    rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
    assert proj.client.get_run(rec.run_id).info.status == "RUNNING"
    repo = proj.paths.data_repo  # and what the old `git add -A` could leave: a CSV in git
    stray = repo / "data" / "labels" / "stray.csv"
    stray.write_text("instant,cnt\n1,2\n")
    versioning._git(repo, "add", "--", "data/labels/stray.csv")
    versioning._git(repo, "commit", "-q", "-m", "stray csv")
    lines = [r.line() for r in diagnose(proj, prefect=False)]
    text = "\n".join(lines)
    assert f"MLflow run {rec.run_id} marked KILLED" in text, text
    assert f"batch {crash.batch_id(k)} (step {rec.step}) stopped at" in text, text
    assert "run the same file again" in text
    assert "1 data file(s) committed to git: data/labels/stray.csv: moved to DVC" in text
    assert proj.client.get_run(rec.run_id).info.status == "KILLED"
    assert versioning.raw_files_in_git(repo) == []
    assert diagnose(proj, prefect=False) == [] or all(
        "stopped at" in r.line() for r in diagnose(proj, prefect=False)
    )
    code, out = run_cli(crash, k)  # the rerun finishes it, the killed run is replaced
    assert code == 0, out[-2000:]
    runs = proj.client.search_runs(
        [proj.experiments.monitoring], f"tags.batch_id = '{crash.batch_id(k)}'", max_results=10
    )
    assert [r.info.status for r in runs] == ["FINISHED"]


def test_doctor_finishes_a_promotion_killed_half_way_when_nothing_reruns(crash):
    from modelwatch.app.doctor import diagnose

    k = crash.next
    crash.next += 1
    for j in range(1, k):
        crash.labels(j)
    code, out = run_cli(crash, k, kill="modelwatch.stores.registry:promote:after", force=True)
    assert code in (-9, 137), out[-2000:]
    proj = open_project(crash.params)
    (event,) = proj.ledger.open_events(proj.model_name, "promotion")
    candidate = str(event.detail["candidate"])
    text = "\n".join(r.line() for r in diagnose(proj, prefect=False))
    assert f"promotion of v{candidate} interrupted" in text, text
    assert f"finished: champion v{candidate}, reference moved" in text
    champion = registry.get_alias(proj.client, proj.model_name, registry.CHAMPION)
    assert champion.version == candidate
    repo = proj.paths.data_repo
    window = versioning.read_version(repo, WINDOW, champion.tags["window_tag"])
    assert (repo / REFERENCE).read_bytes() == window
    assert proj.ledger.open_events(proj.model_name) == []  # the retrain it concluded too
    code, out = run_cli(crash, k, force=True)  # the batch then finishes without a 2nd retrain
    assert code == 0, out[-2000:]
    rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
    assert rec.done and rec.outcome.startswith(f"promoted v{candidate}"), rec
    assert registry.get_alias(proj.client, proj.model_name, registry.CHAMPION).version == candidate


def test_a_store_locked_for_30_s_mid_run_fails_or_waits_and_the_rerun_finishes_once(crash):
    """Another process takes an exclusive lock on mlflow.db for 30 s once the batch is
    versioned: the run either waits it out or fails cleanly; the same file again then ends with
    exactly one accepted run, one commit, one decision."""
    import sqlite3
    import time

    k = crash.next
    crash.next += 1
    proj = open_project(crash.params)
    held = threading.Event()

    def lock_when_versioned() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
            if rec is not None and rec.reached("versioned"):
                break
            time.sleep(0.05)
        conn = sqlite3.connect(proj.paths.mlflow_db, timeout=60, isolation_level=None)
        conn.execute("BEGIN EXCLUSIVE")
        held.set()
        time.sleep(30)
        conn.execute("COMMIT")
        conn.close()

    locker = threading.Thread(target=lock_when_versioned, daemon=True)
    locker.start()
    code, out = run_cli(crash, k)
    locker.join(120)
    assert held.is_set(), "the lock was never taken: the run did not reach 'versioned'"
    assert code in (0, 1), out[-3000:]  # waited it out, or the flow run failed (a crash: 1)
    if code == 1:
        rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
        assert not rec.done and rec.owner is None and rec.error, rec  # released, with why
        code, out = run_cli(crash, k)
        assert code == 0, out[-3000:]
    crash.decisions = getattr(crash, "decisions", {})
    rec = proj.ledger.batch_by_id(proj.model_name, crash.batch_id(k))
    crash.decisions[k] = proj.client.get_run(rec.run_id).data.tags["decision"]
    assert_exactly_once(crash, k)
