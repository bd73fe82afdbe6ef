"""Append-only history of the alias moves of one registered model, as JSON Lines.

`<registry_dir>/<model>.aliases.jsonl` holds one record per line. A move is a small transaction:
a `prepared` record is written before any alias changes, then a `committed` (or `aborted`) record
with the same `txn` once it is over (stores.registry does the moving and the recovery). So the
file answers "which version was champion at time T" and shows a transaction a crash interrupted.

Writing: every append rewrites the whole file: the current bytes plus the new line go to a
temporary file in the same folder, which is fsynced and renamed over the old one (`os.replace`,
atomic on POSIX), then the folder is fsynced. A reader therefore sees the old file or the new one
and never a torn line, with no repair step; a line that does not parse means someone else edited
the file, and reading it raises instead of skipping it. The alternative, append + fsync with a
reader that drops a torn last line, writes less, but it needs that repair in every reader and
cannot tell a torn write from a damaged file. A history gains a few lines a week, so rewriting it
costs nothing that matters.

Locking: `lock()` takes `fcntl.flock` on `<model>.aliases.lock`, so two processes cannot
interleave transactions; the kernel drops the lock when its holder dies, even by SIGKILL.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from modelwatch.errors import RegistryError

log = logging.getLogger(__name__)

ACTOR_ENV = "MODELWATCH_ACTOR"
CHAMPION = "champion"

Action = Literal["promote", "rollback", "set"]
State = Literal["prepared", "committed", "aborted"]
ACTIONS = ("promote", "rollback", "set")
STATES = ("prepared", "committed", "aborted")


def current_actor() -> str:
    """Returns who acts: $MODELWATCH_ACTOR, else the login name, else the numeric uid."""
    actor = os.environ.get(ACTOR_ENV, "").strip()
    if actor:
        return actor
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, e.g. an anonymous container user
        return f"uid:{os.getuid()}"


@dataclass(frozen=True)
class AliasRecord:
    """One line of the history. `txn` is the seq of the transaction's `prepared` record.

    previous_before / previous_after: where previous_champion pointed before the move and where
    it points once the move is committed (None: no such alias), so a recovery can finish or undo
    the move from the record alone.
    """

    seq: int
    txn: int
    time: str
    actor: str
    via: str | None
    action: Action
    alias: str
    from_version: str | None
    to_version: str | None
    decision_id: str
    reason: str
    state: State
    previous_before: str | None = None
    previous_after: str | None = None
    note: str = ""
    approval: str = ""  # promotion.approval: approved | rejected | timeout | superseded
    approval_by: str = ""  # the person who answered
    approval_reason: str = ""  # what they said

    @property
    def at(self) -> datetime:
        return datetime.fromisoformat(self.time)

    def to_line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"


class AliasHistory:
    """The alias history of one registered model in a folder (settings.Paths.registry_dir).

    `clock` returns the current time (tz-aware); tests pass a fake one. An instance is for one
    thread: its lock is re-entrant for whoever holds it, so share files, not instances.
    """

    def __init__(
        self, directory: Path, model_name: str, clock: Callable[[], datetime] | None = None
    ) -> None:
        if not model_name or "/" in model_name or model_name.startswith("."):
            raise RegistryError(
                f"model name {model_name!r} cannot name a history file "
                "(no '/', not empty, not starting with '.')"
            )
        self.directory = Path(directory)
        self.model_name = model_name
        self.path = self.directory / f"{model_name}.aliases.jsonl"
        self.lock_path = self.directory / f"{model_name}.aliases.lock"
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock: Any = None

    def records(self) -> list[AliasRecord]:
        """Returns every record, oldest first ([] when there is no history yet).

        Raises:
            RegistryError: a line is not a valid record (the file was edited by hand).
        """
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [self._parse(line, n) for n, line in enumerate(text.splitlines(), 1)]

    def last(self) -> AliasRecord | None:
        """Returns the newest record (None when there is no history yet)."""
        found = self.records()
        return found[-1] if found else None

    def append(
        self,
        *,
        action: Action,
        alias: str,
        from_version: str | None,
        to_version: str | None,
        state: State,
        txn: int | None = None,
        decision_id: str = "",
        reason: str = "",
        actor: str | None = None,
        via: str | None = None,
        previous_before: str | None = None,
        previous_after: str | None = None,
        note: str = "",
        approval: str = "",
        approval_by: str = "",
        approval_reason: str = "",
    ) -> AliasRecord:
        """Appends one record (txn defaults to its own seq: a new transaction); returns it."""
        with self.lock():
            seq = len(self.records()) + 1
            record = AliasRecord(
                seq=seq,
                txn=seq if txn is None else txn,
                time=self._now(),
                actor=actor or current_actor(),
                via=via,
                action=action,
                alias=alias,
                from_version=from_version,
                to_version=to_version,
                decision_id=decision_id,
                reason=reason,
                state=state,
                previous_before=previous_before,
                previous_after=previous_after,
                note=note,
                approval=approval,
                approval_by=approval_by,
                approval_reason=approval_reason,
            )
            self._write(record)
        return record

    def close(
        self,
        prepared: AliasRecord,
        state: Literal["committed", "aborted"],
        *,
        actor: str | None = None,
        via: str | None = None,
        note: str = "",
    ) -> AliasRecord:
        """Appends the committed/aborted record of a prepared transaction; returns it."""
        with self.lock():
            seq = len(self.records()) + 1
            record = replace(
                prepared,
                seq=seq,
                time=self._now(),
                state=state,
                actor=actor or current_actor(),
                via=via,
                note=note,
            )
            self._write(record)
        return record

    def champion_at(self, when: datetime) -> str | None:
        """Returns the committed champion at `when` (None before the first one).

        A move counts from the time of its committed record. A move committed by a recovery
        counts from the recovery: the alias moved somewhere between prepare and recovery.

        Raises:
            ValueError: `when` has no time zone.
        """
        if when.tzinfo is None:
            raise ValueError(f"champion_at needs a time zone-aware datetime (got {when!r})")
        champion = None
        for rec in self.records():
            if rec.state == "committed" and rec.alias == CHAMPION and rec.at <= when:
                champion = rec.to_version
        return champion

    def champion_lineage(self) -> list[str]:
        """Returns the stack of committed champions, oldest first: a promotion pushes the new
        champion, a rollback pops the one it replaced. The last entry is the champion."""
        stack: list[str] = []
        for rec in self.records():
            if rec.state != "committed" or rec.alias != CHAMPION or rec.to_version is None:
                continue
            if rec.action == "rollback" and stack and stack[-1] == rec.from_version:
                stack.pop()
            elif rec.action != "rollback" and rec.from_version and stack[-1:] != [rec.from_version]:
                stack.append(rec.from_version)  # moved before the history began
            if stack[-1:] != [rec.to_version]:
                stack.append(rec.to_version)
        return stack

    @contextmanager
    def lock(self, timeout: float = 60.0) -> Iterator[None]:
        """Holds an exclusive lock on the model's lock file (filelock: re-entrant, released by
        the kernel if its holder dies).

        Raises:
            RegistryError: another process held the lock for longer than `timeout` seconds.
        """
        from filelock import FileLock, Timeout

        if self._lock is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            self._lock = FileLock(str(self.lock_path), thread_local=False)
        try:
            self._lock.acquire(timeout=timeout)
        except Timeout:
            raise RegistryError(
                f"alias history of model {self.model_name!r} is locked by another "
                f"process ({self.lock_path}); waited {timeout:g} s"
            ) from None
        try:
            yield
        finally:
            self._lock.release()

    def _now(self) -> str:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError(f"the history clock must return aware datetimes (got {now!r})")
        return now.astimezone(UTC).isoformat(timespec="microseconds")

    def _write(self, record: AliasRecord) -> None:
        """Old bytes + one line -> temp file -> fsync -> rename over the history -> fsync folder."""
        try:
            old = self.path.read_bytes()
        except FileNotFoundError:
            old = b""
        for stale in self.directory.glob(f".{self.path.name}.*.tmp"):
            stale.unlink()  # left by a writer that died before its rename; never read
        tmp = self.directory / f".{self.path.name}.{os.getpid()}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(old + record.to_line().encode("utf-8"))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _parse(self, line: str, number: int) -> AliasRecord:
        where = f"{self.path}:{number}"
        try:
            raw = json.loads(line)
            record = AliasRecord(**raw)
        except (json.JSONDecodeError, TypeError) as exc:
            raise RegistryError(f"{where}: not an alias history record ({exc})") from None
        if record.action not in ACTIONS or record.state not in STATES or record.seq != number:
            raise RegistryError(
                f"{where}: bad record (seq {record.seq!r}, action {record.action!r}, "
                f"state {record.state!r}); expected seq {number}, action in {ACTIONS}, "
                f"state in {STATES}"
            )
        return record
