"""The prediction log read back: closed windows, their monitor batch and their system health (pure).

The scoring service writes `<log_dir>/window=<START>/rows-<ns>-<pid>.parquet` (one row per
scored input row) and `requests-<ns>-<pid>.parquet` (one row per HTTP request, failed ones too);
see README "The prediction log". A window is closed `close_after_seconds` after its end; each
closed window becomes one monitor batch (the project's batch columns), the answers the model
really gave (`served`), and its system health.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from modelwatch.settings import DataSettings, ServingSettings, SystemHealthSettings

WINDOW_FORMAT = "%Y%m%dT%H%M%SZ"
_FOLDER = re.compile(r"^window=(\d{8}T\d{6}Z)$")
REQUEST_ID, ROW, RECEIVED_AT, MODEL_VERSION = "request_id", "row", "received_at", "model_version"
SHADOW_VERSION = "shadow_version"
SHADOW_PREFIX = "shadow."  # modelwatch.decide.probation.SHADOW_PREFIX (kept import-light here)
REQUEST_COLUMNS = (REQUEST_ID, RECEIVED_AT, "status", "latency_ms", "rows")
WindowKind = Literal["hourly", "daily"]


def window_length(kind: WindowKind) -> timedelta:
    """Returns the length of one window: an hour or a day."""
    return timedelta(hours=1) if kind == "hourly" else timedelta(days=1)


def collect_cron(serving: ServingSettings) -> str:
    """The collect schedule (cron, UTC): minute m of every hour (hourly windows) or 00:m every
    day (daily), m = close_after_seconds rounded up to minutes (at most 59: the next run
    collects a window that was not closed yet)."""
    minute = min(59, -(-int(serving.close_after_seconds) // 60))
    return f"{minute} * * * *" if serving.window == "hourly" else f"{minute} 0 * * *"


def window_start(moment: datetime, kind: WindowKind) -> datetime:
    """Returns the UTC start of the window a moment falls in."""
    at = moment.astimezone(UTC)
    at = at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if kind == "daily" else at


@dataclass(frozen=True)
class LogWindow:
    """One window folder of the prediction log and its part files (name order)."""

    start: datetime
    end: datetime
    folder: Path
    rows_files: tuple[Path, ...]
    requests_files: tuple[Path, ...]

    @property
    def label(self) -> str:
        """The START of the folder name, e.g. 20261205T210000Z."""
        return f"{self.start:{WINDOW_FORMAT}}"

    @property
    def batch_name(self) -> str:
        """The monitor batch's file name (its stem is the batch id): window-<START>.csv."""
        return f"window-{self.label}.csv"

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


def closed_windows(
    log_dir: Path, kind: WindowKind, close_after_seconds: float, now: datetime
) -> list[LogWindow]:
    """Returns the windows of the log whose end + close_after_seconds <= now, oldest first.
    Folders whose name is not `window=<START>` are not windows and are left alone."""
    out = []
    length = window_length(kind)
    for folder in sorted(log_dir.glob("window=*")) if log_dir.is_dir() else []:
        match = _FOLDER.match(folder.name)
        if not match or not folder.is_dir():
            continue
        start = datetime.strptime(match.group(1), WINDOW_FORMAT).replace(tzinfo=UTC)
        end = start + length
        if end + timedelta(seconds=close_after_seconds) > now:
            continue
        rows = tuple(sorted(folder.glob("rows-*.parquet")))
        requests = tuple(sorted(folder.glob("requests-*.parquet")))
        out.append(LogWindow(start, end, folder, rows, requests))
    return out


@dataclass(frozen=True)
class PartProblem:
    """A part file that could not be used, and why."""

    path: Path
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.message}"


def read_parts(
    files: Sequence[Path], required: Sequence[str]
) -> tuple[pd.DataFrame | None, list[PartProblem]]:
    """Returns the part files' rows in file order (None when no file was usable) and the files
    that were unreadable or lack a required column."""
    import pyarrow

    frames, problems = [], []
    for path in files:
        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pyarrow.ArrowException) as exc:
            reason = " ".join(str(exc).split())[:300]
            problems.append(PartProblem(path, f"not a readable Parquet file: {reason}"))
            continue
        missing = [c for c in required if c not in frame.columns]
        if missing:
            problems.append(PartProblem(path, f"columns {missing} are missing"))
            continue
        frames.append(frame)
    if not frames:
        return None, problems
    return pd.concat(frames, ignore_index=True), problems


def row_columns(data: DataSettings) -> list[str]:
    """The columns a rows file must carry for a monitor batch."""
    return [REQUEST_ID, ROW, data.id, RECEIVED_AT, MODEL_VERSION, *data.features, data.prediction]


def build_batch(rows: pd.DataFrame, data: DataSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Returns the monitor batch (id, timestamp, features: the project's batch columns) and what
    the model answered for each row (id, prediction, score columns, model version, request id and
    row, shadow columns), both ordered by (received_at, request_id, row) so that the same part
    files always give the same batch file. A row without the timestamp column (or with it empty)
    gets its `received_at` (UTC, ISO 8601)."""
    ordered = rows.sort_values([RECEIVED_AT, REQUEST_ID, ROW], kind="stable").reset_index(drop=True)
    received = pd.to_datetime(ordered[RECEIVED_AT], utc=True)
    batch = pd.DataFrame({data.id: ordered[data.id]})
    if data.timestamp:
        stamped = received.dt.strftime("%Y-%m-%dT%H:%M:%S")
        if data.timestamp in ordered.columns:
            given = ordered[data.timestamp].astype(object)
            stamped = given.where(given.notna(), stamped)
        batch[data.timestamp] = stamped
    for column in data.features:
        batch[column] = ordered[column]
    served_columns = [
        c
        for c in ordered.columns
        if c in (data.prediction, MODEL_VERSION, REQUEST_ID, ROW, SHADOW_VERSION)
        or c.startswith("prediction_score")
        or c.startswith(SHADOW_PREFIX)
    ]
    served = ordered[[data.id, *[c for c in served_columns if c != data.id]]].copy()
    return batch, served


@dataclass(frozen=True)
class SystemHealth:
    """A window's system health, from its requests files (latencies are server-side, ms)."""

    window: str
    seconds: float
    requests: int
    rows: int
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    latency_p99_ms: float | None
    throughput_rps: float
    rows_per_second: float
    error_rate: float | None
    client_error_rate: float | None
    unreadable_files: tuple[str, ...] = field(default=())

    def to_metrics(self) -> dict[str, float | None]:
        """Returns the MLflow metrics: system.latency_p50_ms ... system.client_error_rate."""
        return {
            "system.latency_p50_ms": self.latency_p50_ms,
            "system.latency_p95_ms": self.latency_p95_ms,
            "system.latency_p99_ms": self.latency_p99_ms,
            "system.requests": float(self.requests),
            "system.rows": float(self.rows),
            "system.throughput_rps": self.throughput_rps,
            "system.rows_per_second": self.rows_per_second,
            "system.error_rate": self.error_rate,
            "system.client_error_rate": self.client_error_rate,
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict) -> SystemHealth:
        return cls(**{**raw, "unreadable_files": tuple(raw.get("unreadable_files") or ())})

    def summary(self) -> str:
        if not self.requests:
            return f"window {self.window}: no requests"
        return (
            f"window {self.window}: {self.requests} requests, {self.rows} rows, latency p50 "
            f"{self.latency_p50_ms:.1f} / p95 {self.latency_p95_ms:.1f} / p99 "
            f"{self.latency_p99_ms:.1f} ms, {self.throughput_rps:.3g} req/s, server errors "
            f"{self.error_rate:.1%}, client errors {self.client_error_rate:.1%}"
        )


def system_health(
    requests: pd.DataFrame | None, window: LogWindow, unreadable: Sequence[str] = ()
) -> SystemHealth:
    """Returns the window's request count, latency percentiles (numpy.percentile, linear
    interpolation, every request counted, failed ones too), throughput over the whole window
    (requests/s and rows/s) and the shares of 5xx (error_rate) and 4xx (client_error_rate)
    answers. Percentiles and rates are None without requests."""
    seconds = window.seconds
    if requests is None or len(requests) == 0:
        return SystemHealth(window.label, seconds, 0, 0, None, None, None, 0.0, 0.0, None, None,
                            tuple(unreadable))  # fmt: skip
    latency = pd.to_numeric(requests["latency_ms"], errors="coerce").dropna().to_numpy(float)
    p50, p95, p99 = (
        (float(v) for v in np.percentile(latency, [50, 95, 99])) if latency.size else (None,) * 3
    )
    status = pd.to_numeric(requests["status"], errors="coerce")
    n = len(requests)
    rows = int(pd.to_numeric(requests["rows"], errors="coerce").fillna(0).sum())
    return SystemHealth(
        window=window.label,
        seconds=seconds,
        requests=n,
        rows=rows,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        latency_p99_ms=p99,
        throughput_rps=n / seconds,
        rows_per_second=rows / seconds,
        error_rate=float((status >= 500).sum() / n),
        client_error_rate=float(((status >= 400) & (status < 500)).sum() / n),
        unreadable_files=tuple(unreadable),
    )


def health_problems(health: SystemHealth, settings: SystemHealthSettings) -> list[str]:
    """Returns one sentence per threshold of system_health the window crossed (none: healthy)."""
    out = []
    checks = [
        ("p95", health.latency_p95_ms, settings.max_latency_p95_ms),
        ("p99", health.latency_p99_ms, settings.max_latency_p99_ms),
    ]
    for what, value, limit in checks:
        if limit is not None and value is not None and value > limit:
            key = f"max_latency_{what}_ms"
            out.append(f"latency {what} {value:.1f} ms > {limit:g} ms (system_health.{key})")
    rates = [
        ("server error rate", health.error_rate, settings.max_error_rate, "max_error_rate"),
        ("client error rate", health.client_error_rate, settings.max_client_error_rate,
         "max_client_error_rate"),
    ]  # fmt: skip
    for what, value, limit, key in rates:
        if limit is not None and value is not None and value > limit:
            out.append(f"{what} {value:.1%} > {limit:.1%} (system_health.{key})")
    if settings.min_requests is not None and health.requests < settings.min_requests:
        out.append(
            f"{health.requests} requests < {settings.min_requests} (system_health.min_requests)"
        )
    return out
