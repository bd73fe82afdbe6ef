"""Turning a closed prediction-log window into its monitor batch: read every part file, build the
batch and the served answers, compute the system health, write the three files
(modelwatch.serving.logfiles.materialize_window, what collect-predictions runs before
monitor-batch). Prints wall time per window size; nothing is asserted."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelwatch.serving import logfiles, windows  # noqa: E402
from modelwatch.settings import load_settings  # noqa: E402
from tests.prediction_log import write_requests  # noqa: E402

START = datetime(2026, 12, 5, 9, tzinfo=UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--per-request", type=int, default=10)
    parser.add_argument("--parts", type=int, default=20, help="part files (flushes) per window")
    args = parser.parse_args()
    data = load_settings(Path(__file__).resolve().parents[1] / "params.yaml").settings.data
    rng = np.random.default_rng(0)
    print(f"{'rows':>8} {'requests':>9} {'parts':>6} {'seconds':>8} {'rows/s':>10}")  # noqa: T201
    for n in args.rows:
        with tempfile.TemporaryDirectory() as tmp:
            log_dir = Path(tmp) / "predictions"
            frame = pd.DataFrame({c: rng.random(n) for c in data.features})
            frame.insert(0, data.id, np.arange(n))
            frame.insert(1, data.timestamp, "2011-02-01")
            chunk = -(-n // args.parts)
            for p in range(args.parts):
                part = frame.iloc[p * chunk : (p + 1) * chunk]
                requests = -(-len(part) // args.per_request)
                write_requests(
                    log_dir, START, part, rng.random(len(part)), id_column=data.id,
                    prediction=data.prediction, rows_per_request=args.per_request,
                    latencies_ms=rng.lognormal(3, 0.5, requests), request_prefix=f"p{p}",
                )  # fmt: skip
            (window,) = windows.closed_windows(log_dir, "hourly", 60, START + timedelta(hours=2))
            began = time.perf_counter()
            files = logfiles.materialize_window(log_dir, window, data)
            took = time.perf_counter() - began
            print(  # noqa: T201
                f"{n:>8} {files.health.requests:>9} {args.parts:>6} {took:>8.2f} {n / took:>10.0f}"
            )


if __name__ == "__main__":
    main()
