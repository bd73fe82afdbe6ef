"""The prediction log writer: what the service was asked and answered, as Parquet part files.

Records are buffered in memory and written at most every `serving.flush_seconds` (a timer
thread) and at shutdown, one `rows-<unix_ns>-<pid>.parquet` and one
`requests-<unix_ns>-<pid>.parquet` per UTC window (`<log_dir>/window=%Y%m%dT%H%M%SZ/`) that has
records. A file is written under a temporary name (`.<name>.partial`) in the same folder, synced,
then renamed (os.replace): a reader never sees half a file. A kill -9 loses at most the records
of the last flush_seconds. A write that fails keeps its records for the next flush.

The format is the contract with the reader (modelwatch predlog); README "Prediction log".
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd

log = logging.getLogger(__name__)

WINDOW_FORMAT = "%Y%m%dT%H%M%SZ"
REQUEST_COLUMNS = (
    "request_id",
    "received_at",
    "status",
    "latency_ms",
    "rows",
    "model_version",
    "shadow",
    "error",
    "format",
)


def window_start(when: datetime, window: Literal["hourly", "daily"]) -> datetime:
    """Returns the UTC start of the window a time falls in."""
    start = when.replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if window == "daily" else start


def window_folder(log_dir: Path, start: datetime) -> Path:
    """Returns <log_dir>/window=<START> (START as %Y%m%dT%H%M%SZ)."""
    return log_dir / f"window={start.strftime(WINDOW_FORMAT)}"


@dataclass(frozen=True)
class RequestRecord:
    """One scoring request, failed ones included (requests files)."""

    request_id: str
    received_at: datetime
    status: int
    latency_ms: float
    rows: int
    model_version: str | None
    shadow: bool
    error: str | None
    format: str | None


class PredictionLog:
    """Buffers rows and request records and writes them as Parquet part files per window."""

    def __init__(
        self,
        log_dir: Path,
        window: Literal["hourly", "daily"],
        flush_seconds: float,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        self.log_dir, self.window, self.flush_seconds = log_dir, window, flush_seconds
        self._rows: list[pd.DataFrame] = []
        self._requests: list[RequestRecord] = []
        self._unwritten: list[tuple[Path, pd.DataFrame]] = []  # files a flush could not write
        self._lock = threading.Lock()  # the buffers
        self._write_lock = threading.Lock()  # one flush at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_failure = on_failure

    def add(self, request: RequestRecord, rows: pd.DataFrame | None = None) -> None:
        """Buffers one request's record and its scored rows (columns of the rows files)."""
        with self._lock:
            self._requests.append(request)
            if rows is not None and len(rows):
                self._rows.append(rows)

    def start(self) -> None:
        """Removes the temporary files a killed service left, then starts the timer thread
        that flushes every flush_seconds."""
        for partial in remove_orphaned_partials(self.log_dir):
            log.warning("prediction log: removed %s (its writer was killed mid-write)", partial)
        self._thread = threading.Thread(target=self._run, name="predlog-flush", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stops the timer and writes what is buffered."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            self.flush()

    def flush(self) -> list[Path]:
        """Writes the buffered records; returns the files written. A file that could not be
        written keeps its records (the very same file is tried again at the next flush, so no
        record is written twice) and the failure is reported."""
        with self._write_lock:
            with self._lock:
                rows, requests = self._rows, self._requests
                self._rows, self._requests = [], []
            if requests or rows:
                self._unwritten += self._parts(rows, requests)
            written, failed = [], []
            for path, frame in self._unwritten:
                try:
                    written.append(_write_parquet(frame, path))
                except Exception as exc:  # disk full, permissions: keep the records, say so
                    log.error("prediction log: %s not written: %s", path, exc)
                    failed.append((path, frame))
                    if self._on_failure:
                        self._on_failure(exc)
            self._unwritten = failed
            return written

    def _parts(
        self, rows: list[pd.DataFrame], requests: list[RequestRecord]
    ) -> list[tuple[Path, pd.DataFrame]]:
        """The files of one flush: per kind and window, named by the flush's time and the pid."""
        stamp, pid = time.time_ns(), os.getpid()
        frames = {
            "requests": pd.DataFrame([vars(r) for r in requests], columns=list(REQUEST_COLUMNS))
        }
        frames["requests"] = _request_types(frames["requests"])
        if rows:
            frames["rows"] = pd.concat(rows, ignore_index=True)
        parts = []
        for kind, frame in frames.items():
            if frame.empty:
                continue
            starts = frame["received_at"].map(lambda t: window_start(t, self.window))
            for start, part in frame.groupby(starts, sort=True):
                folder = window_folder(self.log_dir, start)
                parts.append((folder / f"{kind}-{stamp}-{pid}.parquet", part))
        return parts


def _request_types(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(
        {
            "request_id": "str",
            "status": "int64",
            "latency_ms": "float64",
            "rows": "int64",
            "shadow": "bool",
            "model_version": "object",
            "error": "object",
            "format": "object",
        }
    )


def _write_parquet(frame: pd.DataFrame, path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    table = _arrow_table(frame.reset_index(drop=True))
    # text is `string` in every file: pandas' str columns come as large_string, and a text
    # column null in every record of a file (no error, no shadow) as null
    text = (pa.types.is_null, pa.types.is_large_string)
    schema = pa.schema(
        [f.with_type(pa.string()) if any(t(f.type) for t in text) else f for f in table.schema]
    )
    table = table.cast(schema)
    with open(partial, "wb") as handle:
        pq.write_table(table, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)
    return path


def _arrow_table(frame: pd.DataFrame):
    """The frame as an Arrow table; UTC times converted here, since pyarrow's own conversion
    reads Series.values, which pandas 3.1 deprecates for tz-aware columns."""
    import pyarrow as pa

    arrays = []
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):
            naive = column.dt.tz_convert("UTC").dt.tz_convert(None).to_numpy()
            arrays.append(pa.array(naive, type=pa.timestamp("us", tz="UTC")))
        else:
            arrays.append(pa.Array.from_pandas(column))
    return pa.Table.from_arrays(arrays, names=[str(c) for c in frame.columns])


def remove_orphaned_partials(log_dir: Path) -> list[Path]:
    """Removes the `.<name>.partial` files whose writing process no longer runs (a kill -9
    during a flush); their records were lost with the process's buffer. Returns them."""
    import psutil

    removed = []
    for partial in log_dir.glob("window=*/.*.partial"):
        pid = partial.name.removesuffix(".parquet.partial").rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not psutil.pid_exists(int(pid)):
            partial.unlink(missing_ok=True)
            removed.append(partial)
    return removed
