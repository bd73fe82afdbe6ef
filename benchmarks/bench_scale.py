"""Large batches on Dask (modelwatch.scale): validation (Great Expectations on every piece) and
drift (every column, exact values) of 1M, 2M, 5M and 10M-row x 50-column Parquet batches
against a 1M-row reference, on a local cluster of 2 worker processes (scale.* defaults).

Data: generated here, seeded, into a temporary folder (no downloads): 40 normal columns (a few
shifted in the batches) and 10 small-integer categorical ones, plus a unique id; batches are
folders of 250,000-row Parquet files. Each batch is written, measured and deleted in turn.

Peak memory: the resident set of this process plus every Dask worker process, sampled every
0.1 s while a batch is validated and drift-checked (psutil), and the largest sum is reported.

    .venv/bin/python benchmarks/bench_scale.py                 # 1M, 2M, 5M, 10M rows
    .venv/bin/python benchmarks/bench_scale.py --rows 1 2      # millions of rows, fewer sizes
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelwatch.scale import drift as scale_drift  # noqa: E402
from modelwatch.scale import validation as scale_validation  # noqa: E402
from modelwatch.scale.cluster import dask_client  # noqa: E402
from modelwatch.scale.parquet import open_parquet  # noqa: E402
from modelwatch.settings import (  # noqa: E402
    DataSettings,
    DriftSettings,
    ScaleSettings,
    ValidationSettings,
)

NUMERIC = [f"n{i:02d}" for i in range(40)]
CATEGORICAL = [f"c{i}" for i in range(10)]
DATA = DataSettings(id="id", target="y", features=NUMERIC + CATEGORICAL, categorical=CATEGORICAL)
VALIDATION = ValidationSettings(max_rows=50_000_000, max_missing_share=0.01, range_margin=0.5)
FILE_ROWS = 250_000
REFERENCE_ROWS = 1_000_000
SHIFTED = 5  # the first columns' means move in the batches: some drift to find
GIB = 2**30


def piece(seed: int, rows: int, start: int, shift: float) -> pd.DataFrame:
    """Returns `rows` seeded rows with ids from `start`."""
    rng = np.random.default_rng(seed)
    numeric = {
        c: rng.normal(shift if i < SHIFTED else 0.0, 1.0 + 0.1 * (i % 3), rows)
        for i, c in enumerate(NUMERIC)
    }
    categorical = {c: rng.integers(0, 3 + i % 4, rows) for i, c in enumerate(CATEGORICAL)}
    return pd.DataFrame({"id": np.arange(start, start + rows), **numeric, **categorical})


def write_batch(folder: Path, rows: int, seed: int, shift: float, start: int) -> Path:
    """Writes a folder of FILE_ROWS-row Parquet files; returns it."""
    folder.mkdir(parents=True)
    for k, first in enumerate(range(0, rows, FILE_ROWS)):
        n = min(FILE_ROWS, rows - first)
        frame = piece(seed * 10_000 + k, n, start + first, shift)
        frame.to_parquet(folder / f"part-{k:05d}.parquet", index=False)
    return folder


class PeakMemory:
    """The largest resident set of this process and its descendants (Dask workers), sampled
    every `every` seconds on a thread while the block runs."""

    def __init__(self, every: float = 0.1) -> None:
        self.every, self.peak, self._stop = every, 0, threading.Event()

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in [me, *me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.every)

    def __enter__(self) -> PeakMemory:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 2, 5, 10], help="millions")
    args = parser.parse_args()
    scale = ScaleSettings()
    drift_settings = DriftSettings()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        reference = pd.concat(
            [piece(k, FILE_ROWS, k * FILE_ROWS, 0.0) for k in range(REFERENCE_ROWS // FILE_ROWS)],
            ignore_index=True,
        )
        print(
            f"reference: {len(reference):,} rows x {reference.shape[1]} columns in memory "
            f"({reference.memory_usage().sum() / GIB:.2f} GiB), "
            f"made in {time.perf_counter() - t0:.1f} s"
        )
        start = time.perf_counter()
        with dask_client(scale) as client:
            print(
                f"local cluster: {scale.workers} worker processes x "
                f"{scale.threads_per_worker} thread, {scale.worker_memory} each, "
                f"started in {time.perf_counter() - start:.1f} s"
            )
            rows_out = []
            for millions in args.rows:
                rows = millions * 1_000_000
                t0 = time.perf_counter()
                folder = write_batch(root / f"batch-{millions}M", rows, millions, 0.2, 10**9)
                made = time.perf_counter() - t0
                batch = open_parquet(str(folder))
                with PeakMemory() as peak:
                    t0 = time.perf_counter()
                    checked = scale_validation.validate_parquet(
                        batch, reference, DATA, VALIDATION, client
                    )
                    t1 = time.perf_counter()
                    report = scale_drift.compute_drift(
                        reference, batch, DATA, drift_settings, client
                    )
                    t2 = time.perf_counter()
                shutil.rmtree(folder)
                rows_out.append((rows, t1 - t0, t2 - t1, t2 - t0, peak.peak / GIB))
                print(
                    f"  {rows:,} rows ({len(batch.files)} files, written in {made:.0f} s): "
                    f"{checked.summary()[:100]}; {report.n_drifted} of "
                    f"{report.n_features_tested} features drifted",
                    flush=True,
                )
    print()
    print(
        "| batch rows | validation (s) | drift (s) | total (s) | s per million rows "
        "| peak RSS, process tree (GiB) |"
    )
    print("|---|---|---|---|---|---|")
    for rows, v, d, total, gib in rows_out:
        print(
            f"| {rows:,} | {v:.1f} | {d:.1f} | {total:.1f} | {total / (rows / 1e6):.1f} "
            f"| {gib:.2f} |"
        )
    first, last = rows_out[0], rows_out[-1]
    if last[0] > first[0]:
        print(
            f"\ntime({last[0] / 1e6:g}M) / time({first[0] / 1e6:g}M) = "
            f"{last[3] / first[3]:.2f} (linear: {last[0] / first[0]:g}); "
            f"peak {max(r[4] for r in rows_out):.2f} GiB (target <= 4)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
