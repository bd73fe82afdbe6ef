"""The ledger: the one transactional record of monitoring state.

Which batches were seen and how far each got, the step counter, retrain, promotion and rollback
events, and a few named values live here, in one SQL database (SQLite in the project home by
default, any SQLAlchemy URL, e.g. PostgreSQL, in a server deployment). MLflow,
the data repository and Prefect artifacts are records written *from* it; the flows never query
them to decide. Every read a batch needs is an indexed lookup or a LIMIT query, so its cost does
not grow with the number of past batches.

Ownership: a batch or an event in progress names its owner (pid and process start time). An owner
that no longer runs (killed, crashed) is dead; its work is resumed or marked interrupted by the
next process that touches it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import sqlalchemy as sa

from modelwatch.errors import ModelwatchError

log = logging.getLogger(__name__)

# The stages of one batch, in order. A batch is "already processed" only when it reaches "done".
STAGES = (
    "received",
    "validated",
    "scored",
    "versioned",
    "logged",
    "decided",
    "acted",
    "done",
)
BatchStatus = Literal["pending", "accepted", "rejected", "failed"]
EventKind = Literal["retrain", "promotion", "rollback", "approval"]
T = TypeVar("T")
EventState = Literal["started", "finished", "interrupted"]


class LedgerBusy(ModelwatchError):
    """Another live process holds the batch (or event) this process asked for."""


_meta = sa.MetaData()
batches = sa.Table(
    "batches",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("file_md5", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.String(300), nullable=False),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("owner", sa.String(60)),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("run_id", sa.String(64)),
    sa.Column("data_commit", sa.String(64)),
    sa.Column("champion_version", sa.String(20)),
    sa.Column("shadow_version", sa.String(20)),
    sa.Column("decision", sa.Text),
    sa.Column("outcome", sa.Text),
    sa.Column("violations", sa.Text, nullable=False, default=""),
    sa.Column("metrics", sa.Text, nullable=False, default="{}"),
    sa.Column("evaluated", sa.Boolean, nullable=False, default=False),
    sa.Column("error", sa.Text),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
    sa.UniqueConstraint("model", "step", name="uq_batches_step"),
    sa.Index("ix_batches_model_status_step", "model", "status", "step"),
    sa.Index("ix_batches_model_batch_id", "model", "batch_id"),
)
counters = sa.Table(
    "counters",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)
events = sa.Table(
    "events",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("step", sa.Integer),
    sa.Column("manual", sa.Boolean, nullable=False, default=False),
    sa.Column("reason", sa.Text, nullable=False, default=""),
    sa.Column("owner", sa.String(60)),
    sa.Column("flow_run_id", sa.String(64)),
    sa.Column("detail", sa.Text, nullable=False, default="{}"),
    sa.Column("outcome", sa.Text),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float),
    sa.Index("ix_events_model_kind_state", "model", "kind", "state", "id"),
)
meta = sa.Table(
    "meta",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("key", sa.String(100), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


alert_state = sa.Table(  # one row per model: the incident state and the alert outbox
    "alert_state",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("incidents", sa.Text, nullable=False),
    sa.Column("outbox", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Float, nullable=False),
)

label_files = sa.Table(
    "label_files",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),  # the step of the run that versioned it
    sa.Index("ix_label_files_step", "model", "step"),
)

row_ids = sa.Table(  # which batch (step) delivered each row id, accepted or rejected
    "row_ids",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("row_id", sa.String(120), primary_key=True),
    sa.Column("step", sa.Integer, primary_key=True),
    sa.Column("accepted", sa.Boolean, nullable=False),
)

label_checks = sa.Table(  # what each labels file held when it was taken in
    "label_checks",
    _meta,
    sa.Column("model", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(300), primary_key=True),
    sa.Column("step", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("unknown", sa.Integer, nullable=False),  # ids no batch delivered (yet)
    sa.Column("of_rejected", sa.Integer, nullable=False),  # ids only rejected batches delivered
    sa.Column("kept_apart", sa.Text),  # where the rows of rejected batches were put
    sa.Index("ix_label_checks_step", "model", "step"),
)

ID_CHUNK = 500  # ids per IN (...) query: well under every database's parameter limit


def owner_token(pid: int | None = None) -> str:
    """Returns "pid:start" naming a running process (its start time tells a reused pid apart)."""
    import psutil

    pid = os.getpid() if pid is None else pid
    return f"{pid}:{psutil.Process(pid).create_time():.3f}"


def owner_alive(token: str | None) -> bool:
    """Returns whether the process named by an owner token still runs."""
    import psutil

    if not token:
        return False
    pid_text, _, start = token.partition(":")
    try:
        proc = psutil.Process(int(pid_text))
        return f"{proc.create_time():.3f}" == start and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return False


@dataclass(frozen=True)
class BatchRecord:
    """One batch as the ledger knows it."""

    model: str
    file_md5: str
    batch_id: str
    step: int
    stage: str
    status: str
    owner: str | None
    flow_run_id: str | None
    attempts: int
    run_id: str | None
    data_commit: str | None
    champion_version: str | None
    shadow_version: str | None
    decision: dict[str, Any] | None
    outcome: str | None
    violations: tuple[str, ...]
    metrics: dict[str, float]
    evaluated: bool
    error: str | None
    created_at: float
    updated_at: float

    @property
    def done(self) -> bool:
        return self.stage == "done"

    def reached(self, stage: str) -> bool:
        """Returns whether the batch got at least as far as `stage`."""
        return STAGES.index(self.stage) >= STAGES.index(stage)


@dataclass(frozen=True)
class Claim:
    """The result of claiming a batch: new, resumed after a dead owner, or already done."""

    record: BatchRecord
    kind: Literal["new", "resumed", "done"]


@dataclass(frozen=True)
class Event:
    id: int
    model: str
    kind: str
    state: str
    step: int | None
    manual: bool
    reason: str
    owner: str | None
    flow_run_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    outcome: str | None = None
    started_at: float = 0.0
    finished_at: float | None = None


def _record(row: Any) -> BatchRecord:
    m = dict(row._mapping)  # the columns are named like the fields
    m["decision"] = json.loads(m["decision"]) if m["decision"] else None
    m["violations"] = tuple(v for v in (m["violations"] or "").split(",") if v)
    m["metrics"] = json.loads(m["metrics"] or "{}")
    m["evaluated"] = bool(m["evaluated"])
    return BatchRecord(**m)


def _event(row: Any) -> Event:
    m = dict(row._mapping)
    m["detail"] = json.loads(m["detail"] or "{}")
    m["manual"] = bool(m["manual"])
    return Event(**m)


def _sqlite_begin_immediate(engine: sa.Engine) -> None:
    """SQLite: take the write lock at BEGIN, so read-then-write transactions never interleave
    (pysqlite's own deferred BEGIN would let two claims read the same counter)."""

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves
        dbapi_conn.execute("PRAGMA journal_mode=WAL")
        dbapi_conn.execute("PRAGMA busy_timeout=60000")

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


class Ledger:
    """The monitoring state of every model in one database."""

    def __init__(self, url: str) -> None:
        self.url = url
        is_sqlite = url.startswith("sqlite")
        self.engine = sa.create_engine(
            url,
            connect_args={"timeout": 60} if is_sqlite else {},
            pool_pre_ping=not is_sqlite,
        )
        if is_sqlite:
            _sqlite_begin_immediate(self.engine)
        _meta.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        with self.engine.begin() as conn:
            yield conn

    # -- batches ---------------------------------------------------------------------------

    def claim_batch(
        self, model: str, file_md5: str, batch_id: str, flow_run_id: str | None = None
    ) -> Claim:
        """Claims a batch for this process: allocates its step when it is new, takes it over
        when its earlier owner died, or tells that it is done.

        Raises:
            LedgerBusy: another live process is working on the same content now.
        """
        try:
            return self._claim(model, file_md5, batch_id, flow_run_id)
        except sa.exc.IntegrityError:  # a server database: another process inserted it first
            raise LedgerBusy(
                f"{batch_id}: claimed by another process at the same moment; try again"
            ) from None

    def _ensure_row(self, table: sa.Table, **values: Any) -> None:
        """Inserts a row unless one with its key exists, in its own transaction: the first
        writers of a model may race to create it (on a server database one of them gets a
        unique violation, which only means the row is there), and every later transaction
        can then lock it with FOR UPDATE."""
        key = [table.c[c.name] == values[c.name] for c in table.primary_key.columns]
        with self.engine.connect() as conn:
            if conn.execute(sa.select(*table.primary_key.columns).where(*key)).first():
                return
        try:
            with self._tx() as conn:
                if not conn.execute(sa.select(*table.primary_key.columns).where(*key)).first():
                    conn.execute(table.insert().values(**values))
        except sa.exc.IntegrityError:
            pass  # another process made it first

    def _claim(self, model: str, file_md5: str, batch_id: str, flow_run_id: str | None) -> Claim:
        me, now = owner_token(), time.time()
        self._ensure_row(counters, model=model, name="step", value=0)
        with self._tx() as conn:
            row = conn.execute(
                sa.select(batches).where(batches.c.model == model, batches.c.file_md5 == file_md5)
            ).first()
            if row is not None:
                rec = _record(row)
                if rec.done:
                    return Claim(rec, "done")
                if rec.owner != me and owner_alive(rec.owner):
                    raise LedgerBusy(
                        f"{batch_id}: being processed by process {rec.owner.split(':')[0]} "
                        f"(step {rec.step}, at {rec.stage}); try again when it has finished"
                    )
                conn.execute(
                    batches.update()
                    .where(batches.c.model == model, batches.c.file_md5 == file_md5)
                    .values(
                        owner=me,
                        flow_run_id=flow_run_id,
                        attempts=rec.attempts + 1,
                        updated_at=now,
                    )  # the batch keeps its first name: its files are versioned under it
                )
                return Claim(self._batch(conn, model, file_md5), "resumed")
            step = self._next(conn, model, "step")
            conn.execute(
                batches.insert().values(
                    model=model,
                    file_md5=file_md5,
                    batch_id=batch_id,
                    step=step,
                    stage="received",
                    status="pending",
                    owner=me,
                    flow_run_id=flow_run_id,
                    attempts=1,
                    violations="",
                    metrics="{}",
                    evaluated=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            return Claim(self._batch(conn, model, file_md5), "new")

    def _next(self, conn: sa.Connection, model: str, name: str) -> int:
        value = conn.execute(  # FOR UPDATE: a server database serialises concurrent claims here
            sa.select(counters.c.value)
            .where(counters.c.model == model, counters.c.name == name)
            .with_for_update()
        ).scalar()
        if value is None:
            conn.execute(counters.insert().values(model=model, name=name, value=1))
            return 1
        conn.execute(
            counters.update()
            .where(counters.c.model == model, counters.c.name == name)
            .values(value=value + 1)
        )
        return int(value) + 1

    def _batch(self, conn: sa.Connection, model: str, file_md5: str) -> BatchRecord:
        row = conn.execute(
            sa.select(batches).where(batches.c.model == model, batches.c.file_md5 == file_md5)
        ).one()
        return _record(row)

    def advance(self, model: str, file_md5: str, stage: str, **values: Any) -> BatchRecord:
        """Records that a batch reached `stage` (never moves it back), with what the step wrote
        (run_id, data_commit, champion_version, status, metrics, decision, outcome, ...)."""
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; one of {STAGES}")
        with self._tx() as conn:
            rec = self._batch(conn, model, file_md5)
            if "metrics" in values:  # merged: metrics of earlier stages stay
                values = values | {"metrics": rec.metrics | dict(values["metrics"])}
            update = _encode(values) | {"updated_at": time.time()}
            if STAGES.index(stage) > STAGES.index(rec.stage):
                update["stage"] = stage
            if stage == "done":
                update["owner"] = None
            conn.execute(
                batches.update()
                .where(batches.c.model == model, batches.c.file_md5 == file_md5)
                .values(**update)
            )
            return self._batch(conn, model, file_md5)

    def release(self, model: str, file_md5: str, error: str) -> None:
        """Frees a batch that failed in this process (it stays unfinished, with the error), so
        the next run of the same file resumes it even while this process lives on (serve)."""
        with self._tx() as conn:
            conn.execute(
                batches.update()
                .where(
                    batches.c.model == model,
                    batches.c.file_md5 == file_md5,
                    batches.c.stage != "done",
                )
                .values(owner=None, error=error[:4000], updated_at=time.time())
            )

    def update_batch(self, model: str, step: int, **values: Any) -> None:
        """Updates fields of a batch found by its step (late labels: metrics, evaluated)."""
        with self._tx() as conn:
            row = conn.execute(
                sa.select(batches.c.metrics).where(batches.c.model == model, batches.c.step == step)
            ).first()
            if row is None:
                raise KeyError(f"{model}: no batch at step {step}")
            if "metrics" in values:  # merged, never replaced: earlier metrics stay
                values["metrics"] = json.loads(row.metrics or "{}") | dict(values["metrics"])
            conn.execute(
                batches.update()
                .where(batches.c.model == model, batches.c.step == step)
                .values(**_encode(values), updated_at=time.time())
            )

    def get_batch(self, model: str, file_md5: str) -> BatchRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(batches).where(batches.c.model == model, batches.c.file_md5 == file_md5)
            ).first()
        return _record(row) if row is not None else None

    def batch_by_id(self, model: str, batch_id: str) -> BatchRecord | None:
        """Returns the newest batch with this id (a name can be delivered twice)."""
        return self._one(
            sa.select(batches)
            .where(batches.c.model == model, batches.c.batch_id == batch_id)
            .order_by(batches.c.step.desc())
            .limit(1)
        )

    def batch_at(self, model: str, step: int) -> BatchRecord | None:
        return self._one(sa.select(batches).where(batches.c.model == model, batches.c.step == step))

    def _one(self, query: sa.Select) -> BatchRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return _record(row) if row is not None else None

    def _many(self, query: sa.Select) -> list[BatchRecord]:
        with self.engine.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    def recent_accepted(
        self, model: str, count: int, before_step: int | None = None, evaluated: bool = False
    ) -> list[BatchRecord]:
        """Returns the newest `count` accepted batches (before a step; only evaluated ones when
        asked), oldest first."""
        q = sa.select(batches).where(batches.c.model == model, batches.c.status == "accepted")
        if before_step is not None:
            q = q.where(batches.c.step < before_step)
        if evaluated:
            q = q.where(batches.c.evaluated.is_(True))
        rows = self._many(q.order_by(batches.c.step.desc()).limit(max(count, 0)))
        return rows[::-1]

    def unevaluated(self, model: str, limit: int = 1000) -> list[BatchRecord]:
        """Returns accepted batches whose labels have not all arrived yet, oldest first."""
        return self._many(
            sa.select(batches)
            .where(
                batches.c.model == model,
                batches.c.status == "accepted",
                batches.c.evaluated.is_(False),
            )
            .order_by(batches.c.step)
            .limit(limit)
        )

    def latest_evaluated(
        self, model: str, champion_version: str, before_step: int
    ) -> BatchRecord | None:
        """Returns the newest evaluated batch that this champion version scored."""
        found = self.evaluated_by(model, champion_version, before_step, limit=1)
        return found[0] if found else None

    def evaluated_by(
        self, model: str, champion_version: str, before_step: int, limit: int
    ) -> list[BatchRecord]:
        """Returns the newest `limit` evaluated batches this champion version scored before a
        step, oldest first."""
        rows = self._many(
            sa.select(batches)
            .where(
                batches.c.model == model,
                batches.c.status == "accepted",
                batches.c.evaluated.is_(True),
                batches.c.champion_version == champion_version,
                batches.c.step < before_step,
            )
            .order_by(batches.c.step.desc())
            .limit(max(limit, 0))
        )
        return rows[::-1]

    def first_scored_by(self, model: str, champion_version: str) -> BatchRecord | None:
        """Returns the first accepted batch that this champion version scored."""
        return self._one(
            sa.select(batches)
            .where(
                batches.c.model == model,
                batches.c.status == "accepted",
                batches.c.champion_version == champion_version,
            )
            .order_by(batches.c.step)
            .limit(1)
        )

    def shadowed(
        self, model: str, champion_version: str, shadow_version: str, limit: int
    ) -> list[BatchRecord]:
        """Returns the first `limit` evaluated batches scored by a champion with this shadow."""
        return self._many(
            sa.select(batches)
            .where(
                batches.c.model == model,
                batches.c.evaluated.is_(True),
                batches.c.champion_version == champion_version,
                batches.c.shadow_version == shadow_version,
            )
            .order_by(batches.c.step)
            .limit(limit)
        )

    def last_batch(self, model: str, done_only: bool = True) -> BatchRecord | None:
        q = sa.select(batches).where(batches.c.model == model)
        if done_only:
            q = q.where(batches.c.stage == "done")
        return self._one(q.order_by(batches.c.step.desc()).limit(1))

    def unfinished(self, model: str | None = None) -> list[BatchRecord]:
        """Returns batches not done (whatever their owner), oldest first."""
        q = sa.select(batches).where(batches.c.stage != "done")
        if model is not None:
            q = q.where(batches.c.model == model)
        return self._many(q.order_by(batches.c.step))

    def count_batches(self, model: str) -> int:
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).select_from(batches).where(batches.c.model == model)
                ).scalar()
                or 0
            )

    # -- events: retrain, promotion, rollback ----------------------------------------------

    def start_event(
        self,
        model: str,
        kind: EventKind,
        reason: str,
        step: int | None = None,
        manual: bool = False,
        detail: dict[str, Any] | None = None,
        flow_run_id: str | None = None,
    ) -> Event:
        """Records that an event began (owned by this process); returns it."""
        now = time.time()
        with self._tx() as conn:
            new_id = conn.execute(
                events.insert().values(
                    model=model,
                    kind=kind,
                    state="started",
                    step=step,
                    manual=manual,
                    reason=reason,
                    owner=owner_token(),
                    flow_run_id=flow_run_id,
                    detail=json.dumps(detail or {}, default=str),
                    started_at=now,
                )
            ).inserted_primary_key[0]
            return _event(conn.execute(sa.select(events).where(events.c.id == new_id)).one())

    def update_event(self, event_id: int, detail: dict[str, Any]) -> None:
        """Merges keys into an event's detail (e.g. what a promotion has done so far)."""
        with self._tx() as conn:
            row = conn.execute(sa.select(events.c.detail).where(events.c.id == event_id)).one()
            merged = json.loads(row.detail or "{}") | detail
            conn.execute(
                events.update()
                .where(events.c.id == event_id)
                .values(detail=json.dumps(merged, default=str))
            )

    def finish_event(
        self,
        event_id: int,
        outcome: str,
        state: EventState = "finished",
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Records how an event ended (and merges detail into its detail), in one transaction."""
        with self._tx() as conn:
            values: dict[str, Any] = {"state": state, "outcome": outcome, "owner": None}
            if detail:
                row = conn.execute(sa.select(events.c.detail).where(events.c.id == event_id))
                merged = json.loads(row.one().detail or "{}") | detail
                values["detail"] = json.dumps(merged, default=str)
            conn.execute(
                events.update()
                .where(events.c.id == event_id)
                .values(**values, finished_at=time.time())
            )

    def events_after(self, model: str, kind: str, after_id: int) -> list[Event]:
        """Returns the events of a kind newer than an event id (any state), oldest first."""
        q = sa.select(events).where(
            events.c.model == model, events.c.kind == kind, events.c.id > after_id
        )
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(q.order_by(events.c.id))]

    def get_event(self, event_id: int) -> Event | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
        return _event(row) if row is not None else None

    def claim_event(self, event_id: int, owner: str | None = None) -> bool:
        """Makes this process (or `owner`; None frees it) the owner of a started event whose
        owner is none, dead or this process; returns whether it did (False: a live process
        owns it, or it is finished)."""
        me = owner_token()
        with self._tx() as conn:
            row = conn.execute(
                sa.select(events.c.owner, events.c.state).where(events.c.id == event_id)
            ).first()
            if row is None or row.state != "started":
                return False
            if row.owner not in (None, me) and owner_alive(row.owner):
                return False
            conn.execute(
                events.update()
                .where(events.c.id == event_id)
                .values(owner=me if owner is None else owner)
            )
        return True

    def release_events(self, model: str) -> int:
        """Frees the open events of this process (after an exception: the next run finishes or
        closes them as if the process had died); returns how many."""
        with self._tx() as conn:
            return conn.execute(
                events.update()
                .where(
                    events.c.model == model,
                    events.c.state == "started",
                    events.c.owner == owner_token(),
                )
                .values(owner=None)
            ).rowcount

    def open_events(self, model: str | None = None, kind: str | None = None) -> list[Event]:
        """Returns events still marked started (live or dead owner), oldest first."""
        q = sa.select(events).where(events.c.state == "started")
        if model is not None:
            q = q.where(events.c.model == model)
        if kind is not None:
            q = q.where(events.c.kind == kind)
        with self.engine.connect() as conn:
            return [_event(r) for r in conn.execute(q.order_by(events.c.id))]

    def retrain_steps(self, model: str, since_step: int) -> tuple[int, ...]:
        """Returns the steps of finished retrains at or after a step (manual ones included):
        interrupted retrains count toward neither cooldown nor budget."""
        q = (
            sa.select(events.c.step)
            .where(
                events.c.model == model,
                events.c.kind == "retrain",
                events.c.state == "finished",
                events.c.step.is_not(None),
                events.c.step >= since_step,
            )
            .order_by(events.c.step)
        )
        with self.engine.connect() as conn:
            return tuple(sorted({int(s) for (s,) in conn.execute(q)}))

    def last_challenge_step(self, model: str, before_step: int) -> int | None:
        """Returns the step of the newest finished retrain that compared a challenger with the
        champion (promoted or kept, not skipped, deferred, failed or not run), if any."""
        q = _finished_retrains(model, before_step, events.c.outcome)
        with self.engine.connect() as conn:
            for step, outcome, detail in conn.execute(q):
                kind = json.loads(detail or "{}").get("outcome_kind")
                if kind in ("promoted", "kept") or (
                    kind is None and (outcome or "").startswith(("promoted", "kept"))
                ):
                    return int(step)
        return None

    def challenges(self, model: str, before_step: int, limit: int) -> list[tuple[int, float, bool]]:
        """Returns the newest `limit` finished retrains before a step that compared a
        challenger with a champion and recorded its relative gain, oldest first, as (step,
        gain, promoted). Retrains recorded before gains were kept are left out."""
        q = _finished_retrains(model, before_step)
        found: list[tuple[int, float, bool]] = []
        with self.engine.connect() as conn:
            for step, detail in conn.execute(q):
                raw = json.loads(detail or "{}")
                if raw.get("outcome_kind") in ("promoted", "kept") and "gain" in raw:
                    found.append((int(step), float(raw["gain"]), raw["outcome_kind"] == "promoted"))
                    if len(found) >= limit:
                        break
        return found[::-1]

    def count_accepted(self, model: str, after_step: int, before_step: int) -> int:
        """How many batches were accepted with a step in (after_step, before_step): the age of
        a champion in data it could have seen (rejected batches do not age it)."""
        q = sa.select(sa.func.count()).where(
            batches.c.model == model,
            batches.c.status == "accepted",
            batches.c.step > after_step,
            batches.c.step < before_step,
        )
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)

    def finished_at(self, model: str, kind: str, step: int) -> Event | None:
        """Returns the newest finished event of a kind at a step (what an earlier, killed
        attempt of the same batch already completed)."""
        q = (
            sa.select(events)
            .where(
                events.c.model == model,
                events.c.kind == kind,
                events.c.step == step,
                events.c.state == "finished",
            )
            .order_by(events.c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            row = conn.execute(q).first()
        return _event(row) if row is not None else None

    def last_event(self, model: str, kind: str, state: str | None = None) -> Event | None:
        q = sa.select(events).where(events.c.model == model, events.c.kind == kind)
        if state is not None:
            q = q.where(events.c.state == state)
        with self.engine.connect() as conn:
            row = conn.execute(q.order_by(events.c.id.desc()).limit(1)).first()
        return _event(row) if row is not None else None

    # -- labels files: which run took each in, so a batch reads only those that can label it --

    def add_label_files(self, model: str, names: list[str], step: int) -> None:
        """Records labels files taken in at a step (a file delivered again moves to the newer
        step)."""
        with self._tx() as conn:
            for name in names:
                done = conn.execute(
                    label_files.update()
                    .where(label_files.c.model == model, label_files.c.name == name)
                    .values(step=step)
                ).rowcount
                if not done:
                    conn.execute(label_files.insert().values(model=model, name=name, step=step))

    def label_files_since(self, model: str, step: int) -> list[str]:
        """Returns the labels files taken in at or after a step, by name: labels arrive after
        their batch, so these are all that can hold labels of a batch of that step or later."""
        q = (
            sa.select(label_files.c.name)
            .where(label_files.c.model == model, label_files.c.step >= step)
            .order_by(label_files.c.name)
        )
        with self.engine.connect() as conn:
            return [name for (name,) in conn.execute(q)]

    # -- row ids: which batch delivered each id, so labels can be matched to batches ------

    def add_row_ids(self, model: str, ids: list[str], step: int, accepted: bool) -> None:
        """Records the row ids a batch delivered (replacing what an earlier attempt of the same
        step wrote, so a rerun after a crash records them once)."""
        with self._tx() as conn:
            conn.execute(row_ids.delete().where(row_ids.c.model == model, row_ids.c.step == step))
            rows = [
                {"model": model, "row_id": i, "step": step, "accepted": accepted}
                for i in dict.fromkeys(ids)
            ]
            if rows:
                conn.execute(row_ids.insert(), rows)

    def match_row_ids(self, model: str, ids: list[str]) -> dict[str, bool]:
        """Returns, for each id some batch delivered, whether an accepted batch did (ids no
        batch delivered are absent). Indexed lookups: the cost follows len(ids), not history."""
        found: dict[str, bool] = {}
        unique = list(dict.fromkeys(ids))
        with self.engine.connect() as conn:
            for start in range(0, len(unique), ID_CHUNK):
                chunk = unique[start : start + ID_CHUNK]
                q = sa.select(row_ids.c.row_id, row_ids.c.accepted).where(
                    row_ids.c.model == model, row_ids.c.row_id.in_(chunk)
                )
                for row_id, accepted in conn.execute(q):
                    found[row_id] = found.get(row_id, False) or bool(accepted)
        return found

    def add_label_check(
        self,
        model: str,
        name: str,
        step: int,
        rows: int,
        unknown: int,
        of_rejected: int,
        kept_apart: str | None = None,
    ) -> None:
        """Records what a labels file held when it was taken in (a file delivered again
        replaces its record)."""
        values = {
            "step": step,
            "rows": rows,
            "unknown": unknown,
            "of_rejected": of_rejected,
            "kept_apart": kept_apart,
        }
        with self._tx() as conn:
            done = conn.execute(
                label_checks.update()
                .where(label_checks.c.model == model, label_checks.c.name == name)
                .values(**values)
            ).rowcount
            if not done:
                conn.execute(label_checks.insert().values(model=model, name=name, **values))

    def label_counts(self, model: str, step: int | None = None) -> dict[str, int]:
        """Totals over the labels files taken in (at one step, or all): files, rows, unknown
        ids and rows of rejected batches kept apart."""
        q = sa.select(
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(label_checks.c.rows), 0),
            sa.func.coalesce(sa.func.sum(label_checks.c.unknown), 0),
            sa.func.coalesce(sa.func.sum(label_checks.c.of_rejected), 0),
        ).where(label_checks.c.model == model)
        if step is not None:
            q = q.where(label_checks.c.step == step)
        with self.engine.connect() as conn:
            files, rows, unknown, rejected = conn.execute(q).one()
        return {
            "files": int(files),
            "rows": int(rows),
            "unknown_ids": int(unknown),
            "rejected_batch_rows": int(rejected),
        }

    # -- small named values (timeline run id, which champion the reference belongs to) -------

    # -- incidents and the alert outbox ---------------------------------------------------

    def alerts(self, model: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Returns the model's incident state and its alert outbox (pending deliveries), as
        the JSON-compatible values modelwatch.alerts.delivery reads; none yet: ({}, [])."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(alert_state).where(alert_state.c.model == model)).first()
        if row is None:
            return {}, []
        return json.loads(row.incidents), json.loads(row.outbox)

    def update_alerts(
        self,
        model: str,
        change: Callable[[dict[str, Any], list[dict[str, Any]]], tuple[dict, list, T]],
    ) -> T:
        """Reads the incident state and the outbox, applies change (which returns both, new,
        and a result) and writes them back in one transaction, serialised with every other
        writer (SQLite: BEGIN IMMEDIATE; a server database: the row read FOR UPDATE); returns
        the result. A crash leaves either the old pair or the new one, never half of it."""
        empty = {"incidents": "{}", "outbox": "[]", "updated_at": time.time()}
        self._ensure_row(alert_state, model=model, **empty)
        with self._tx() as conn:
            row = conn.execute(
                sa.select(alert_state).where(alert_state.c.model == model).with_for_update()
            ).first()
            state = (json.loads(row.incidents), json.loads(row.outbox)) if row else ({}, [])
            incidents, outbox, result = change(*state)
            values = {
                "incidents": json.dumps(incidents, sort_keys=True),
                "outbox": json.dumps(outbox, sort_keys=True),
                "updated_at": time.time(),
            }
            if row is None:
                conn.execute(alert_state.insert().values(model=model, **values))
            else:
                conn.execute(
                    alert_state.update().where(alert_state.c.model == model).values(**values)
                )
        return result

    def get_meta(self, model: str, key: str) -> str | None:
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(meta.c.value).where(meta.c.model == model, meta.c.key == key)
            ).scalar()

    def set_meta(self, model: str, key: str, value: str) -> None:
        with self._tx() as conn:
            done = conn.execute(
                meta.update().where(meta.c.model == model, meta.c.key == key).values(value=value)
            ).rowcount
            if not done:
                conn.execute(meta.insert().values(model=model, key=key, value=value))


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    if "metrics" in out:
        out["metrics"] = json.dumps(
            {k: float(v) for k, v in dict(out["metrics"]).items() if v is not None}
        )
    if "decision" in out and out["decision"] is not None:
        out["decision"] = json.dumps(out["decision"], default=str)
    if "violations" in out:
        out["violations"] = ",".join(out["violations"] or ())
    return out


_open: dict[str, Ledger] = {}


def open_ledger(url: str) -> Ledger:
    """Returns the ledger at this URL, creating its tables on first use (one engine per URL and
    process: the connection pool is reused across flows of one process).

    Raises:
        StoreUnavailable: the ledger's database server does not answer, or has no such database.
    """
    ledger = _open.get(url)
    if ledger is None:
        try:
            ledger = _open[url] = Ledger(url)
        except sa.exc.OperationalError as exc:
            from modelwatch.errors import StoreUnavailable
            from modelwatch.settings import redact_url

            cause = str(exc.orig or exc).strip().splitlines()[0]
            hint = (
                " (`modelwatch server deploy` creates a project's ledger database)"
                if "does not exist" in cause
                else ""
            )
            raise StoreUnavailable(f"ledger {redact_url(url)}: {cause}{hint}") from None
    return ledger


@dataclass(frozen=True)
class Intake:
    """A batch claimed for processing: its step and how far an earlier attempt got."""

    batch_id: str
    file_md5: str
    index: int
    kind: str  # new, resumed or done
    record: BatchRecord

    @property
    def done(self) -> bool:
        return self.kind == "done"

    def skipped_message(self, name: str) -> str:
        rec = self.record
        return (
            f"{name}: same content as {rec.batch_id} (step {rec.step}, {rec.status}); "
            "already processed, nothing done"
        )


def _finished_retrains(model: str, before_step: int, *extra: sa.Column) -> sa.Select:
    """Finished retrains of a model before a step, newest first: step, any extra columns, and
    the detail (outcome kind, gain)."""
    return (
        sa.select(events.c.step, *extra, events.c.detail)
        .where(
            events.c.model == model,
            events.c.kind == "retrain",
            events.c.state == "finished",
            events.c.step.is_not(None),
            events.c.step < before_step,
        )
        .order_by(events.c.step.desc(), events.c.id.desc())
    )
