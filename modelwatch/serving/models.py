"""The models the service scores with: the `champion` alias (and the `challenger`, in shadow),
loaded through the project's integrity checks and reloaded when an alias moves.

A reload builds the new model completely (files verified against the ledger's digest, skops
with modelwatch's allow-list, signature read from the verified MLmodel) and only then replaces
one reference; a request reads the reference once, so it finishes on the model it started
with. A version that fails to load is logged and counted; the old model keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from modelwatch.errors import ModelwatchError
from modelwatch.serving.schema import Column, signature_columns
from modelwatch.stores import integrity, registry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Served:
    """A loaded model version and its input signature."""

    version: str
    model: Any
    columns: list[Column]


def load_version(
    client: Any, ledger: Any, name: str, version: str, trusted: Sequence[str]
) -> Served:
    """Returns a registered version loaded after its integrity checks, with its signature.

    Raises:
        ModelIntegrityError: the version failed a check or has no input signature.
    """
    model, files = integrity.load_verified_files(client, ledger, name, version, trusted)
    columns = signature_columns(files.get("MLmodel", b""), f"model {name} version {version}")
    return Served(version, model, columns)


@dataclass
class Slot:
    """Where one alias's model lives; `served` is replaced whole, never changed in place."""

    alias: str
    served: Served | None = None


class ModelWatcher:
    """Polls the registry for the champion and challenger aliases and keeps both loaded."""

    def __init__(
        self,
        client: Any,
        ledger: Any,
        name: str,
        trusted: Sequence[str],
        every: float,
        on_event: Callable[[str, str, str], None],
    ) -> None:
        self.client, self.ledger, self.name, self.trusted = client, ledger, name, trusted
        self.every, self._on_event = every, on_event
        self.champion = Slot(registry.CHAMPION)
        self.challenger = Slot(registry.CHALLENGER)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Checks the aliases once now, then every `every` seconds in a background thread."""
        self.check()
        self._thread = threading.Thread(target=self._run, name="alias-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.check()

    def check(self) -> None:
        """Loads whichever alias moved; a failure keeps the model that serves now."""
        for slot in (self.champion, self.challenger):
            try:
                self._refresh(slot)
            except Exception as exc:  # the registry or the store unreachable: keep serving
                log.error("%s %s: alias check failed: %s", self.name, slot.alias, exc)
                self._on_event("failure", slot.alias, str(exc))

    def _refresh(self, slot: Slot) -> None:
        info = registry.get_alias(self.client, self.name, slot.alias)
        current = slot.served.version if slot.served else None
        if info is None:
            if current is not None and slot.alias == registry.CHALLENGER:
                log.info("%s: challenger alias removed; shadow scoring stops", self.name)
                slot.served = None
            return
        if info.version == current:
            return
        try:
            served = load_version(self.client, self.ledger, self.name, info.version, self.trusted)
        except ModelwatchError as exc:
            log.error(
                "%s %s: version %s not loaded (version %s keeps serving): %s",
                self.name,
                slot.alias,
                info.version,
                current,
                exc,
            )
            self._on_event("failure", slot.alias, str(exc))
            return
        slot.served = served  # one reference swap: requests in flight keep their model
        was = f"was version {current}" if current else "first load"
        log.info("%s %s: serving version %s (%s)", self.name, slot.alias, info.version, was)
        self._on_event("reload", slot.alias, info.version)
