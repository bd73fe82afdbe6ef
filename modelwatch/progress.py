"""Progress of long work (a replay, an incoming folder, training, drift on many columns).

A `Progress` reports `label: k/N (p%) detail, elapsed, about T left` on a logger: inside a flow
run the Prefect logger (so the line shows in the terminal and in the Prefect UI's logs), else the
module logger. Short work stays quiet: a line is written only once `every` seconds have passed
since the last one (every=0: at each step). With `artifact_key` inside a flow run it also keeps
a Prefect progress artifact (the bar in the run's Artifacts tab) up to date.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

log = logging.getLogger(__name__)


def format_seconds(seconds: float) -> str:
    """3.2 -> '3s', 75 -> '1m15s', 3700 -> '1h01m'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


def _run_logger() -> logging.Logger | logging.LoggerAdapter:
    if "prefect.context" not in sys.modules:  # not in a flow run; do not pay for the import
        return log
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        return log
    from prefect import get_run_logger

    return get_run_logger()


class Progress:
    """Counts steps of one piece of work and reports them (see the module docstring)."""

    def __init__(
        self,
        label: str,
        total: int,
        every: float = 5.0,
        artifact_key: str | None = None,
        logger: Any = None,
        clock: Any = time.monotonic,
    ) -> None:
        self.label, self.total, self.every = label, max(int(total), 0), every
        self.done = 0
        self._clock = clock
        self._start = self._last = clock()
        self._logger = logger
        self._reported = False
        self._artifact = None
        if artifact_key and self.total:
            self._artifact = self._create_artifact(artifact_key)

    @property
    def elapsed(self) -> float:
        return self._clock() - self._start

    def line(self, detail: str = "") -> str:
        """The report for the current count."""
        parts = [
            f"{self.label}: {self.done}/{self.total}"
            if self.total
            else f"{self.label}: {self.done}"
        ]
        if self.total:
            parts.append(f"({100 * self.done / self.total:.0f}%)")
        if detail:
            parts.append(detail)
        text = " ".join(parts) + f", {format_seconds(self.elapsed)} elapsed"
        left = self.remaining()
        if left is not None and self.done < self.total:
            text += f", about {format_seconds(left)} left"
        return text

    def remaining(self) -> float | None:
        """Seconds left at the mean pace so far; None before the first step."""
        if not self.done or not self.total:
            return None
        return self.elapsed / self.done * (self.total - self.done)

    def advance(self, steps: int = 1, detail: str = "") -> str | None:
        """Counts steps; returns the line written, if one was due."""
        self.done = min(self.done + steps, self.total) if self.total else self.done + steps
        now = self._clock()
        finished = self.total and self.done >= self.total
        due = now - self._last >= self.every or (finished and self._reported)
        if self.every <= 0:
            due = True
        self._update_artifact()
        if not due:
            return None
        self._last, self._reported = now, True
        text = self.line(detail)
        (self._logger or _run_logger()).info(text)
        return text

    def _create_artifact(self, key: str) -> Any:
        from prefect.context import FlowRunContext

        if FlowRunContext.get() is None:
            return None
        from prefect.artifacts import create_progress_artifact

        try:
            return create_progress_artifact(0.0, key=key, description=f"{self.label} progress")
        except Exception as exc:  # noqa: BLE001 - a progress bar is never worth failing a run
            log.warning("no progress artifact for %s: %s", self.label, exc)
            return None

    def _update_artifact(self) -> None:
        if self._artifact is None:
            return
        from prefect.artifacts import update_progress_artifact

        try:
            update_progress_artifact(self._artifact, 100.0 * self.done / self.total)
        except Exception as exc:  # noqa: BLE001
            log.warning("progress artifact of %s not updated: %s", self.label, exc)
            self._artifact = None
