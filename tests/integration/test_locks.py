"""File locks on a real file system: a second holder waits, then gives up with a clear answer
(flock locks belong to an open file description, so a second os.open in this process contends
exactly as another process would)."""

from __future__ import annotations

import fcntl
import os

import pytest

from modelwatch.alerts import delivery
from modelwatch.errors import RegistryError
from modelwatch.stores.alias_history import AliasHistory


@pytest.fixture
def held(tmp_path):
    """Opens and locks a file; yields a function that holds the same lock for a given path."""
    fds = []

    def hold(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)

    yield hold
    for fd in fds:
        os.close(fd)


def test_outbox_lock_yields_false_when_another_holder_keeps_it(tmp_path, held):
    outbox = tmp_path / "m.alert-outbox.json"
    with delivery.outbox_lock(outbox, timeout=1) as locked:
        assert locked
    held(tmp_path / "m.alert-outbox.json.lock")
    with delivery.outbox_lock(outbox, timeout=0.2) as locked:
        assert locked is False


def test_alias_history_lock_says_who_waits_for_what(tmp_path, held):
    history = AliasHistory(tmp_path, "m")
    with history.lock(timeout=1):
        pass
    held(history.lock_path)
    with pytest.raises(RegistryError, match=r"alias history of model 'm' is locked by another"):
        with history.lock(timeout=0.2):
            pass
