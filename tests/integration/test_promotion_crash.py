"""Promotion and rollback are atomic: a process killed at any step leaves the old or the new
champion and a readable history, and recover() closes the interrupted move. Real MLflow SQLite
stores in tmp_path; each kill is a child process, SIGKILLed at a function boundary of the product
by tests/faults/killpoints.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyRegressor

from modelwatch.errors import RegistryError
from modelwatch.settings import Paths
from modelwatch.stores import registry, tracking
from modelwatch.stores.alias_history import AliasHistory

NAME = "crash-test"
ROOT = Path(__file__).resolve().parents[2]

# One launcher process imports mlflow once (~3 s) and forks one child per failpoint; the child
# promotes version 3 over champion 2 (previous 1), or rolls champion 3 back to 2, until its
# failpoint SIGKILLs it. Forking while only the main thread runs is safe; the launcher checks.
LAUNCHER = """
import json, os, sys, threading, traceback
from pathlib import Path

import mlflow.store.model_registry.sqlalchemy_store, mlflow.store.tracking.sqlalchemy_store
from mlflow import MlflowClient
from tests.faults import killpoints
from modelwatch.stores import registry
from modelwatch.stores.alias_history import AliasHistory
from modelwatch.settings import Paths

def child(step, folder, action, name):
    out = os.open(Path(folder) / "child.log", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(out, 1)
    os.dup2(out, 2)
    killpoints.install(POINTS[step], group=False)
    paths = Paths(Path(folder), Path(folder) / "params.yaml", Path(folder) / "home")
    client = MlflowClient(tracking_uri=paths.tracking_uri, registry_uri=paths.tracking_uri)
    history = AliasHistory(paths.registry_dir, name)
    if action == "promote":
        registry.promote(client, name, "3", history=history, reason="better", decision_id="d-9",
                         via="child")
    else:
        registry.rollback(client, name, history=history, reason="worse live", decision_id="d-9",
                          via="child")

if threading.active_count() != 1:
    sys.exit(f"launcher: {threading.enumerate()} running, forking is not safe")
pids = {}
POINTS = json.loads(sys.argv[2])
for step, folder, action, name in json.loads(sys.argv[1]):
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            child(step, folder, action, name)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stderr.flush()
            os._exit(code)
    pids[step] = pid
codes = {s: os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for s, p in pids.items()}
print(json.dumps({s: [pids[s], codes[s]] for s in pids}))
"""

# failpoint -> (aliases found after the kill, last state found, what recover() does, aliases after)
PROMOTE = {"champion": "2", "previous_champion": "1"}
PROMOTED = {"champion": "3", "previous_champion": "2"}
HALF_PROMOTED = {"champion": "2", "previous_champion": "2"}
ROLLBACK = {"champion": "3", "previous_champion": "2"}
ROLLED_BACK = {"champion": "2", "previous_champion": "1"}
HALF_ROLLED_BACK = {"champion": "3", "previous_champion": "1"}
CASES = {
    "promote.after_prepare": (PROMOTE, "prepared", "aborted", PROMOTE),
    "promote.after_previous": (HALF_PROMOTED, "prepared", "aborted", PROMOTE),
    "promote.after_champion": (PROMOTED, "prepared", "committed", PROMOTED),
    "promote.after_commit": (PROMOTED, "committed", None, PROMOTED),
    # killed inside the history write, after the temp file and before the rename
    "history.before_replace.prepared": (PROMOTE, "committed", None, PROMOTE),
    "history.before_replace.committed": (PROMOTED, "prepared", "committed", PROMOTED),
    "rollback.after_prepare": (ROLLBACK, "prepared", "aborted", ROLLBACK),
    "rollback.after_previous": (HALF_ROLLED_BACK, "prepared", "aborted", ROLLBACK),
    "rollback.after_champion": (ROLLED_BACK, "prepared", "committed", ROLLED_BACK),
    "rollback.after_commit": (ROLLED_BACK, "committed", None, ROLLED_BACK),
}


# each failpoint as a function boundary of the product, killed from outside (tests/faults)
REGISTRY, HISTORY = "modelwatch.stores.registry", "modelwatch.stores.alias_history"
SET_ALIAS = "mlflow.tracking.client:MlflowClient.set_registered_model_alias:after"
POINTS = {
    "promote.after_prepare": f"{HISTORY}:AliasHistory.append:after",
    "promote.after_previous": f"{REGISTRY}:_point:after",
    "promote.after_champion": f"{SET_ALIAS}:2",  # previous_champion first, then champion
    "promote.after_commit": f"{HISTORY}:AliasHistory.close:after",
    # inside the history write, after the temp file and before the rename
    "history.before_replace.prepared": f"{HISTORY}:os.replace:before:1",
    "history.before_replace.committed": f"{HISTORY}:os.replace:before:2",
    "rollback.after_prepare": f"{HISTORY}:AliasHistory.append:after",
    "rollback.after_previous": f"{REGISTRY}:_point:after",
    "rollback.after_champion": f"{SET_ALIAS}:2",
    "rollback.after_commit": f"{HISTORY}:AliasHistory.close:after",
}


def make_paths(folder: Path) -> Paths:
    return Paths(folder, folder / "params.yaml", folder / "home")


def open_client(paths: Paths):
    """A client on one store, without touching mlflow's process-wide URIs."""
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=paths.tracking_uri, registry_uri=paths.tracking_uri)


def store_copy(built: Paths, folder: Path) -> tuple[Paths, object]:
    paths = make_paths(folder)
    paths.home.mkdir(parents=True)
    shutil.copyfile(built.mlflow_db, paths.mlflow_db)
    return paths, open_client(paths)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Paths:
    """A store with three tiny DummyRegressor versions 1, 2, 3 of NAME, built once."""
    base = tmp_path_factory.mktemp("crash-store")
    paths = make_paths(base)
    x = pd.DataFrame({"temp": np.arange(6.0)})
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        mp.setenv("MLFLOW_TRACKING_URI", paths.tracking_uri)
        mp.setenv("MLFLOW_REGISTRY_URI", paths.tracking_uri)
        client = tracking.configure(paths)
        experiments = tracking.ensure_experiments(client, "c", paths.artifact_root)
        for constant in (1.0, 2.0, 3.0):
            model = DummyRegressor(strategy="constant", constant=constant).fit(x, x["temp"])
            with tracking.run(experiments.training, f"dummy-{constant}", {}):
                tracking.log_sklearn_model(model, x, NAME)
        import mlflow

        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)
    return paths


@dataclass(frozen=True)
class Crash:
    folder: Path  # project folder of the store the child worked on, left as the kill left it
    returncode: int
    pid: int
    stderr: str  # the child's stdout and stderr

    def copy_to(self, folder: Path) -> tuple[Paths, object, AliasHistory]:
        """A private copy of the crashed store (tests must not change the shared one)."""
        shutil.copytree(self.folder / "home", folder / "home")
        paths = make_paths(folder)
        return paths, open_client(paths), AliasHistory(paths.registry_dir, NAME)


@pytest.fixture(scope="module")
def crashed(built, tmp_path_factory) -> dict[str, Crash]:
    """Every failpoint, each in its own store copy and its own (forked) child process."""
    cases = []
    for step in CASES:
        folder = tmp_path_factory.mktemp(step.replace(".", "-"))
        paths, client = store_copy(built, folder)
        history = AliasHistory(paths.registry_dir, NAME)
        action = "rollback" if step.startswith("rollback") else "promote"
        for version in ("1", "2", "3") if action == "rollback" else ("1", "2"):
            registry.promote(client, NAME, version, history=history, reason=f"set up {version}")
        cases.append((step, str(folder), action, NAME))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "MODELWATCH_"))}
    env |= {"MLFLOW_DISABLE_TELEMETRY": "true", "PYTHONPATH": str(ROOT)}
    launcher = subprocess.run(
        [sys.executable, "-c", LAUNCHER, json.dumps(cases), json.dumps(POINTS)],
        cwd=tmp_path_factory.mktemp("launcher"),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert launcher.returncode == 0, launcher.stderr
    children = json.loads(launcher.stdout.splitlines()[-1])
    return {
        step: Crash(Path(folder), children[step][1], children[step][0], _log(folder))
        for step, folder, _, _ in cases
    }


def _log(folder: str) -> str:
    return (Path(folder) / "child.log").read_text()


@pytest.mark.parametrize("step", list(CASES))
def test_kill_at_each_step_leaves_a_champion_and_recover_closes_the_move(crashed, step, tmp_path):
    crash = crashed[step]
    found, found_state, recovered, final = CASES[step]
    assert crash.returncode == -signal.SIGKILL, crash.stderr
    assert f"fault injection: SIGKILL at {POINTS[step]}" in crash.stderr
    assert f"(pid {crash.pid})" in crash.stderr

    paths, client, history = crash.copy_to(tmp_path)
    for line in history.path.read_text().splitlines():
        json.loads(line)  # every line on disk is a whole record
    assert registry.aliases(client, NAME) == found
    assert history.last().state == found_state
    with history.lock(timeout=1):  # the kernel released the dead child's lock
        pass

    assert registry.recover(client, NAME, history) == recovered
    assert registry.aliases(client, NAME) == final
    last = history.last()
    assert last.state in ("committed", "aborted")
    if last.state == "committed":
        assert (last.to_version, last.previous_after) == (
            final["champion"],
            final[registry.PREVIOUS],
        )
    else:
        assert (last.from_version, last.previous_before) == (
            final["champion"],
            final[registry.PREVIOUS],
        )
    if recovered is not None:
        assert (last.via, last.decision_id) == (None, "d-9")  # recovered by this process
        assert last.note == (
            f"recovered: 'champion' found at version {found['champion']} (the move to "
            f"{last.to_version} had {'' if recovered == 'committed' else 'not '}happened)"
        )
    assert history.champion_at(datetime.now(UTC)) == final["champion"]
    assert_each_move_closed_once(history)
    assert registry.recover(client, NAME, history) is None  # nothing left to do


def assert_each_move_closed_once(history: AliasHistory) -> None:
    """Records come as (prepared, committed|aborted) pairs of the same txn and fields."""
    records = history.records()
    assert len(records) % 2 == 0
    for prepared, closed in zip(records[::2], records[1::2], strict=True):
        assert prepared.state == "prepared" and closed.state in ("committed", "aborted")
        assert closed.txn == prepared.txn == prepared.seq
        fields = ("action", "alias", "from_version", "to_version", "reason", "decision_id")
        assert [getattr(closed, f) for f in fields] == [getattr(prepared, f) for f in fields]


def test_kill_before_rename_leaves_a_temp_file_nobody_reads(crashed, tmp_path):
    """Killed between temp file and rename: the history is the one before; the stray temp file
    is never read and goes with the next write."""
    paths, client, history = crashed["history.before_replace.prepared"].copy_to(tmp_path)
    assert len(list(paths.registry_dir.glob(".*.tmp"))) == 1
    assert [r.to_version for r in history.records()] == ["1", "1", "2", "2"]
    assert registry.promote(client, NAME, "3", history=history, reason="again") == "2"
    assert list(paths.registry_dir.glob(".*.tmp")) == []
    assert registry.aliases(client, NAME) == PROMOTED


def test_the_next_move_recovers_first(crashed, tmp_path):
    """No explicit recover(): the next rollback undoes the interrupted one, then runs."""
    _, client, history = crashed["rollback.after_previous"].copy_to(tmp_path)
    assert registry.aliases(client, NAME) == HALF_ROLLED_BACK
    assert registry.rollback(client, NAME, history=history, reason="again") == ("3", "2")
    assert registry.aliases(client, NAME) == ROLLED_BACK
    tail = [(r.action, r.state, r.reason) for r in history.records()[-4:]]
    assert tail == [
        ("rollback", "prepared", "worse live"),
        ("rollback", "aborted", "worse live"),
        ("rollback", "prepared", "again"),
        ("rollback", "committed", "again"),
    ]


class Clock:
    """One minute later at each call, from 2026-01-01 00:00 UTC."""

    start = datetime(2026, 1, 1, tzinfo=UTC)

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return self.at(self.calls)

    @classmethod
    def at(cls, minutes: float) -> datetime:
        return cls.start + timedelta(minutes=minutes)


@pytest.fixture(scope="module")
def sequence(built, tmp_path_factory):
    """promote 1 (records at minutes 1, 2), promote 2 (3, 4), rollback (5, 6), promote 3 (7, 8)."""
    paths, client = store_copy(built, tmp_path_factory.mktemp("sequence"))
    history = AliasHistory(paths.registry_dir, NAME, clock=Clock())
    registry.promote(client, NAME, "1", history=history, reason="first")
    registry.promote(client, NAME, "2", history=history, reason="better")
    registry.rollback(client, NAME, history=history, reason="worse live")
    registry.promote(client, NAME, "3", history=history, reason="better again")
    return client, history


@pytest.mark.parametrize(
    ("minutes", "champion"),
    [
        (0, None),
        (1, None),  # promote 1 prepared, not committed
        (2, "1"),
        (3.5, "1"),
        (4, "2"),
        (5, "2"),  # rollback prepared
        (6, "1"),
        (7, "1"),
        (8, "3"),
        (60 * 24 * 365, "3"),
    ],
)
def test_champion_at(sequence, minutes, champion):
    """A move counts from its committed record (minutes 2, 4, 6, 8), not from prepare."""
    _, history = sequence
    assert history.champion_at(Clock.at(minutes)) == champion
    plus_2 = timezone(timedelta(hours=2))  # the same instant in another zone
    assert history.champion_at(Clock.at(minutes).astimezone(plus_2)) == champion


def test_sequence_aliases_and_lineage(sequence):
    client, history = sequence
    assert registry.aliases(client, NAME) == {"champion": "3", "previous_champion": "1"}
    assert history.champion_lineage() == ["1", "3"]
    closed = [(r.action, r.from_version, r.to_version) for r in history.records()[1::2]]
    assert closed == [
        ("promote", None, "1"),
        ("promote", "1", "2"),
        ("rollback", "2", "1"),
        ("promote", "1", "3"),
    ]
    with pytest.raises(ValueError, match="needs a time zone-aware datetime"):
        history.champion_at(datetime(2026, 1, 1))


def test_rollback_twice_walks_back_the_lineage(built, tmp_path):
    paths, client = store_copy(built, tmp_path)
    history = AliasHistory(paths.registry_dir, NAME)
    for version in ("1", "2", "3"):
        registry.promote(client, NAME, version, history=history)
    assert registry.rollback(client, NAME, history=history, reason="3 is worse") == ("3", "2")
    assert registry.aliases(client, NAME) == {"champion": "2", "previous_champion": "1"}
    assert registry.rollback(client, NAME, history=history, reason="2 is worse") == ("2", "1")
    assert registry.aliases(client, NAME) == {"champion": "1"}
    last = history.last()
    assert (last.action, last.state, last.reason) == ("rollback", "committed", "2 is worse")


@pytest.mark.parametrize(
    ("promoted", "reason", "message"),
    [
        (
            ["1"],
            "worse",
            f"^model '{NAME}' has no 'previous_champion' alias to roll back to "
            r"\(champion is version 1\)$",
        ),
        ([], "worse", f"^model '{NAME}' has no 'champion' alias: nothing to roll back$"),
        (["1", "2"], "  ", f"^rollback of model '{NAME}' needs a reason \\(got '  '\\)$"),
        (["1", "2"], "", f"^rollback of model '{NAME}' needs a reason \\(got ''\\)$"),
    ],
)
def test_rollback_refuses_and_changes_nothing(built, tmp_path, promoted, reason, message):
    paths, client = store_copy(built, tmp_path)
    history = AliasHistory(paths.registry_dir, NAME)
    for version in promoted:
        registry.promote(client, NAME, version, history=history)
    before_aliases, before_history = registry.aliases(client, NAME), history.records()
    with pytest.raises(RegistryError, match=message):
        registry.rollback(client, NAME, history=history, reason=reason)
    assert registry.aliases(client, NAME) == before_aliases
    assert history.records() == before_history


def test_a_second_holder_cannot_take_the_lock(tmp_path):
    """flock is per open file, so a second AliasHistory on the same file behaves like a second
    process (the crash tests show that a killed holder releases it)."""
    first, second = AliasHistory(tmp_path, NAME), AliasHistory(tmp_path, NAME)
    with first.lock():
        with pytest.raises(RegistryError, match=f"^alias history of model '{NAME}' is locked by"):
            with second.lock(timeout=0.2):
                pass
        with first.lock():  # re-entrant for its holder
            first.append(
                action="set", alias="x", from_version=None, to_version="1", state="prepared"
            )
    with second.lock(timeout=0.2):
        assert [r.to_version for r in second.records()] == ["1"]


def test_edited_history_is_an_error_not_skipped(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELWATCH_ACTOR", "carol")
    history = AliasHistory(tmp_path, NAME)
    history.append(action="set", alias="x", from_version=None, to_version="1", state="prepared")
    assert history.last().actor == "carol"
    with history.path.open("a") as fh:
        fh.write('{"seq": 2, "trunc')
    with pytest.raises(RegistryError, match=f"^{re.escape(str(history.path))}:2: not an alias"):
        history.records()
