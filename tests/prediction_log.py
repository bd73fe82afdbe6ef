"""Test helper: writes prediction-log part files exactly as the agreed format says (the scoring
service writes them in production): `<log_dir>/window=<START>/rows-<ns>-<pid>.parquet` and
`requests-<ns>-<pid>.parquet`, each written to a temporary name then os.replace'd."""

from __future__ import annotations

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

_NS = itertools.count(1_700_000_000_000_000_000, 1000)


def window_folder(log_dir: Path, start: datetime) -> Path:
    return Path(log_dir) / f"window={start.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def _write(frame: pd.DataFrame, folder: Path, kind: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{kind}-{next(_NS)}-{os.getpid()}.parquet"
    tmp = folder / f".{path.name}.tmp"
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    return path


def write_requests(
    log_dir: Path,
    start: datetime,
    inputs: pd.DataFrame,
    predictions: np.ndarray,
    *,
    id_column: str,
    prediction: str,
    rows_per_request: int,
    latencies_ms: np.ndarray,
    model_version: str = "1",
    send_ids: bool = True,
    failed: list[tuple[int, float]] = (),
    request_prefix: str = "req",
    shadow: np.ndarray | None = None,
    shadow_version: str = "2",
) -> tuple[Path | None, Path]:
    """Writes one rows file and one requests file for successful requests of rows_per_request
    rows each (request k received at start + k seconds, latency latencies_ms[k]), plus failed
    requests (status, latency_ms) without rows. send_ids False: the rows carry the log's own id
    f"{request_id}:{row}". shadow: the shadow model's answer per row (NaN: not shadow-scored).
    Returns the paths (rows None when there are no rows)."""
    folder = window_folder(log_dir, start)
    n_requests = -(-len(inputs) // rows_per_request) if len(inputs) else 0
    rows, requests = [], []
    for k in range(n_requests):
        rid = f"{request_prefix}-{start:%H%M}-{k:04d}"
        at = pd.Timestamp(start + timedelta(seconds=k + 1))
        part = inputs.iloc[k * rows_per_request : (k + 1) * rows_per_request].copy()
        pos = np.arange(len(part), dtype="int64")
        part.insert(0, "row", pos)
        part.insert(0, "request_id", rid)
        if not send_ids:
            part[id_column] = [f"{rid}:{r}" for r in pos]
        part["received_at"] = at
        part["model_version"] = model_version
        part[prediction] = predictions[k * rows_per_request : (k + 1) * rows_per_request]
        answers = (
            np.full(len(part), np.nan)
            if shadow is None
            else np.asarray(shadow[k * rows_per_request : (k + 1) * rows_per_request], float)
        )
        part["shadow_version"] = [None if np.isnan(a) else shadow_version for a in answers]
        part[f"shadow.{prediction}"] = answers
        rows.append(part)
        requests.append(
            {"request_id": rid, "received_at": at, "status": 200,
             "latency_ms": float(latencies_ms[k]), "rows": len(part),
             "model_version": model_version, "shadow": False, "error": None, "format": "json"}
        )  # fmt: skip
    for j, (status, latency) in enumerate(failed):
        at = pd.Timestamp(start + timedelta(seconds=n_requests + j + 1))
        requests.append(
            {"request_id": f"{request_prefix}-bad-{j}", "received_at": at, "status": status,
             "latency_ms": float(latency), "rows": 0, "model_version": None, "shadow": False,
             "error": f"status {status}", "format": "json"}
        )  # fmt: skip
    req = pd.DataFrame(requests).astype(
        {"status": "int64", "latency_ms": "float64", "rows": "int64"}
    )
    req["received_at"] = pd.to_datetime(req["received_at"], utc=True)
    rows_path = None
    if rows:
        frame = pd.concat(rows, ignore_index=True)
        frame["received_at"] = pd.to_datetime(frame["received_at"], utc=True)
        rows_path = _write(frame, folder, "rows")
    return rows_path, _write(req, folder, "requests")
