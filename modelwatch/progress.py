"""Progress of long work (a replay, an incoming folder, training, drift on many columns).

A `Progress` reports `label: k/N (p%) detail, elapsed, about T left`: to `on_line(text)` when
given (the core functions that report progress take it as `on_progress`, and the tasks pass the
Prefect run logger's `info`, so the line shows in the run's logs), else on the logger given, else
on the module logger (PREFECT_LOGGING_EXTRA_LOGGERS=modelwatch puts that in the Prefect run's logs
too). Short work stays quiet: a line is written only once `every` seconds have passed since the
last one (every=0: at each step). `on_update(percent)` is called at each step: tasks/progress.py
passes one that keeps a Prefect progress artifact up to date. Nothing here imports Prefect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
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


class Progress:
    """Counts steps of one piece of work and reports them (see the module docstring)."""

    def __init__(
        self,
        label: str,
        total: int,
        every: float = 5.0,
        logger: Any = None,
        clock: Any = time.monotonic,
        on_update: Callable[[float], None] | None = None,
        on_line: Callable[[str], None] | None = None,
    ) -> None:
        self.label, self.total, self.every = label, max(int(total), 0), every
        self.done = 0
        self._clock = clock
        self._start = self._last = clock()
        self._logger = logger
        self._reported = False
        self._on_update = on_update
        self._on_line = on_line

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
        if self._on_update is not None and self.total:
            self._on_update(100.0 * self.done / self.total)
        if not due:
            return None
        self._last, self._reported = now, True
        text = self.line(detail)
        if self._on_line is not None:
            self._on_line(text)
        else:
            (self._logger or log).info(text)
        return text
