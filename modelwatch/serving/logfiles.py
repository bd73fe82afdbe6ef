"""A closed window of the prediction log turned into files: the monitor batch, what the model
answered, and the system health; unusable part files moved to the log's quarantine.

Everything here can be redone: the same part files always give the same batch file (so the
ledger's claim by content finds it again after a kill), and a part file moved to quarantine is
found there again with its reason."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modelwatch import io
from modelwatch.serving import windows
from modelwatch.settings import DataSettings

log = logging.getLogger(__name__)

REASON_SUFFIX = ".reason.txt"


@dataclass(frozen=True)
class WindowFiles:
    """What a closed window became: the batch (None: no usable rows), the served answers
    (beside the batch), the health file, and every part file set aside (with its reason)."""

    window: windows.LogWindow
    batch_path: Path | None
    served_path: Path | None
    health_path: Path
    health: windows.SystemHealth
    set_aside: tuple[str, ...]


def batches_dir(log_dir: Path) -> Path:
    return log_dir / "batches"


def served_dir(log_dir: Path) -> Path:
    return log_dir / "served"


def quarantine_dir(log_dir: Path, window: windows.LogWindow) -> Path:
    return log_dir / "quarantine" / window.folder.name


def collected_dir(log_dir: Path) -> Path:
    return log_dir / "collected"


def materialize_window(log_dir: Path, window: windows.LogWindow, data: DataSettings) -> WindowFiles:
    """Writes the window's batch CSV (`batches/window-<START>.csv`), its served answers
    (`served/window-<START>.parquet`) and its health (`batches/window-<START>.health.json`),
    each atomically. Part files that cannot be read or lack a column are moved to
    `quarantine/window=<START>/` with a `<name>.reason.txt`, and the rest of the window is used."""
    rows, bad_rows = windows.read_parts(window.rows_files, windows.row_columns(data))
    requests, bad_requests = windows.read_parts(window.requests_files, windows.REQUEST_COLUMNS)
    for problem in [*bad_rows, *bad_requests]:
        _quarantine_part(log_dir, window, problem)
    set_aside = _set_aside(log_dir, window)
    health = windows.system_health(requests, window, set_aside)
    stem = window.batch_name.removesuffix(".csv")
    health_path = io.write_text(
        json.dumps(health.to_dict(), indent=1), batches_dir(log_dir) / f"{stem}.health.json"
    )
    if rows is None or len(rows) == 0:
        return WindowFiles(window, None, None, health_path, health, set_aside)
    batch, served = windows.build_batch(rows, data)
    served_path = served_dir(log_dir) / f"{stem}.parquet"
    with io.atomic_target(served_path) as tmp:
        served.to_parquet(tmp, index=False)
    batch_path = io.write_csv(batch, batches_dir(log_dir) / window.batch_name)
    return WindowFiles(window, batch_path, served_path, health_path, health, set_aside)


def _quarantine_part(
    log_dir: Path, window: windows.LogWindow, problem: windows.PartProblem
) -> None:
    """Moves one part file aside, its reason written first (a kill between leaves the file in
    place with a reason beside it; the next run moves it)."""
    folder = quarantine_dir(log_dir, window)
    folder.mkdir(parents=True, exist_ok=True)
    io.write_text(problem.line() + "\n", folder / f"{problem.path.name}{REASON_SUFFIX}")
    os.replace(problem.path, folder / problem.path.name)
    log.warning("prediction log: %s; moved to %s", problem.line(), folder)


def _set_aside(log_dir: Path, window: windows.LogWindow) -> tuple[str, ...]:
    """The reasons of every part file of this window in quarantine (this run's and earlier)."""
    folder = quarantine_dir(log_dir, window)
    if not folder.is_dir():
        return ()
    return tuple(p.read_text().strip() for p in sorted(folder.glob(f"*{REASON_SUFFIX}")))


def read_health(path: Path) -> windows.SystemHealth:
    """Reads a health file written by materialize_window."""
    return windows.SystemHealth.from_dict(json.loads(Path(path).read_text()))


def read_served(path: Path) -> pd.DataFrame:
    """Reads the served answers of a window written by materialize_window."""
    return pd.read_parquet(path)


def retire_window(log_dir: Path, window: windows.LogWindow) -> Path:
    """Moves a collected window's folder to `collected/` (merging a part file that arrived
    after collection into it, with a warning: those rows were not monitored)."""
    dest = collected_dir(log_dir) / window.folder.name
    dest.mkdir(parents=True, exist_ok=True)
    for part in sorted(window.folder.iterdir()):
        os.replace(part, dest / part.name)  # names are unique (ns + pid): nothing is replaced
    window.folder.rmdir()
    return dest


def late_parts(window: windows.LogWindow) -> list[Path]:
    """Part files in a window folder that was already collected (written after it closed)."""
    return sorted(p for p in window.folder.glob("*.parquet"))


def served_ids(
    log_dir: Path, data: DataSettings, request_ids: list[str]
) -> dict[tuple[str, int], object]:
    """Returns (request_id, row) -> the row's id, for these request ids, from the served answers
    of every collected window (one read per window file, filtered on request_id)."""
    found: dict[tuple[str, int], object] = {}
    wanted = sorted(set(request_ids))
    if not wanted:
        return found
    for path in sorted(served_dir(log_dir).glob("*.parquet")):
        part = pd.read_parquet(
            path,
            columns=[windows.REQUEST_ID, windows.ROW, data.id],
            filters=[(windows.REQUEST_ID, "in", wanted)],
        )
        for rid, row, value in part.itertuples(index=False, name=None):
            found[(str(rid), int(row))] = value.item() if hasattr(value, "item") else value
    return found
