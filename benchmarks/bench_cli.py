"""How fast the command line answers, side by side in one run, each in a fresh process.

Usage: .venv/bin/python benchmarks/bench_cli.py [--repeat 10]

`modelwatch --help` and `modelwatch <command> --help` must answer in under half a second: the CLI
keeps Prefect, MLflow, pandas and scikit-learn off that path. The rows beside them show what
that saves: a bare interpreter, and importing each heavy package the real commands need.
Prints median, min and max wall seconds per row.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

ROWS = [
    ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"]),
    ("modelwatch --help", [str(BIN / "modelwatch"), "--help"]),
    ("modelwatch retrain --help", [str(BIN / "modelwatch"), "retrain", "--help"]),
    ("modelwatch serve --help", [str(BIN / "modelwatch"), "serve", "--help"]),
    ("import pandas", [sys.executable, "-c", "import pandas"]),
    ("import sklearn.ensemble", [sys.executable, "-c", "import sklearn.ensemble"]),
    ("import mlflow", [sys.executable, "-c", "import mlflow"]),
    ("import prefect", [sys.executable, "-c", "import prefect"]),
]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    print(f"each row: {args.repeat} fresh processes (cwd {ROOT})\n")
    print(f"{'command':<38} {'median s':>9} {'min s':>7} {'max s':>7}")
    for label, cmd in ROWS:
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
        print(f"{label:<38} {statistics.median(times):>9.3f} {min(times):>7.3f} {max(times):>7.3f}")


if __name__ == "__main__":
    main()
