"""Does a batch cost more when many came before it? Replays N batches through the real
monitor-batch flow (one process, its temporary Prefect server, MLflow SQLite, git+DVC, the
ledger) and compares the wall time per batch of the first 50 with the last 50.

Usage: .venv/bin/python benchmarks/bench_history.py [--batches 500] [--out benchmarks/output]

The stream is the bike-sharing demo's 52 weekly batches, cycled: each pass shuffles the rows
of every batch (new content, same distribution, so validation accepts it) and labels arrive
one batch late, as in the demo. No retrain rule is on (each threshold null): this measures
the batch a scheduled run pays every week, not the occasional retrain.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # a table, not 500 batches of logs


def write_params(folder: Path) -> Path:
    import yaml

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["demo"]["source"] = str(ROOT / raw["demo"]["source"])
    raw["project"]["home"] = str(folder / "home")
    for rule in (  # no rule fires: every batch is the weekly batch without a retrain
        "max_drift_share",
        "max_drift_share_increase",
        "max_performance_drop",
        "max_performance_drop_abs",
        "performance_limit",
        "max_model_age_batches",
    ):
        raw["retrain"][rule] = None
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=500)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "output")
    args = parser.parse_args()

    import pandas as pd

    from flows.bootstrap import bootstrap
    from flows.monitor import monitor_batch
    from modelwatch.settings import load_settings
    from modelwatch.streams import demo

    folder = Path(tempfile.mkdtemp(prefix="mw-history-"))
    params = write_params(folder)
    loaded = load_settings(params)
    s, paths = loaded.settings, loaded.paths
    plan = demo.prepare_demo(paths.resolve(s.demo.source), s.data, s.demo, folder / "demo")
    good = [b for b in plan.batches if b.labels is not None]
    bootstrap(reference_path=plan.reference, params_path=params)
    inbox, labels_in = paths.incoming_batches, paths.incoming_labels
    inbox.mkdir(parents=True, exist_ok=True)
    labels_in.mkdir(parents=True, exist_ok=True)
    times: list[float] = []
    previous = None
    for i in range(args.batches):
        source = good[i % len(good)]
        frame = pd.read_csv(source.inputs)
        if i >= len(good):  # a later pass: same rows, new order, new file content
            frame = frame.sample(frac=1.0, random_state=i).reset_index(drop=True)
        target = inbox / f"b{i + 1:04d}-{source.inputs.name}"
        frame.to_csv(target, index=False)
        if previous is not None:  # the previous batch's labels arrive with this one
            pd.read_csv(previous.labels).to_csv(labels_in / f"labels-{i:04d}.csv", index=False)
        previous = source
        t0 = time.perf_counter()
        state = monitor_batch(batch_path=target, params_path=params, return_state=True)
        times.append(time.perf_counter() - t0)
        if not state.is_completed():
            raise SystemExit(f"batch {i + 1}: {state.name}: {state.message}")
        if (i + 1) % 25 == 0:
            print(
                f"{i + 1:4d} batches, last 25: {statistics.mean(times[-25:]):.2f} s/batch",
                flush=True,
            )

    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "history_times.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("batch", "seconds"), *enumerate(times, start=1)])
    n = min(50, len(times) // 2)
    first, last = times[:n], times[-n:]
    print()
    print(f"| batches | mean s/batch | median s/batch |  ({len(times)} batches, no retrain)")
    print("|---|---|---|")
    print(f"| 1-{n} | {statistics.mean(first):.2f} | {statistics.median(first):.2f} |")
    lo = len(times) - n + 1
    print(f"| {lo}-{len(times)} | {statistics.mean(last):.2f} | {statistics.median(last):.2f} |")
    ratio = statistics.median(last) / statistics.median(first)
    print(f"\nratio of medians (last / first): {ratio:.2f}  (target: <= 1.2)")
    print(f"per-batch times: {args.out / 'history_times.csv'}; stores in {folder}")


if __name__ == "__main__":
    main()
