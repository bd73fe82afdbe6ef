"""Detection quality of the dataset-drift verdict: false alarms on stationary streams, power on a
small shift; modelwatch beside Evidently 0.7's defaults on the same batches, in one run.

Usage:
    bash benchmarks/envs/setup.sh                    # once: Evidently's own venv (pandas 2)
    .venv/bin/python benchmarks/bench_drift_quality.py [--trials 100] [--max-batches 150]
    .venv/bin/python benchmarks/bench_drift_quality.py --no-evidently

Streams:
- acs: US Census employment, Massachusetts (negative control): reference 5,000 random rows of
  2015, batches of 1,000 rows of 2016-2018 in year order (rows shuffled within each year).
- bike-shuffled: bike-sharing hours in random order (time destroyed, so stationary): reference the
  first 1,000 rows, batches of 168 rows (a week of hours).
- power: 15 standard-normal features, reference and batch 1,000 rows each, features 0 and 1
  shifted by 0.2 standard deviations; a fresh draw per trial.
Targets (issue 3): false-alarm rate <= 5 % on the stationary streams; power >= 90 %.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVIDENTLY_PY = ROOT / "benchmarks/.venvs/evidently/bin/python"
ACS = ROOT / "data/demo/acs_employment_ma/employment_MA.csv.gz"
ACS_CATEGORICAL = [
    "SCHL",
    "MAR",
    "RELP",
    "DIS",
    "ESP",
    "CIT",
    "MIG",
    "MIL",
    "ANC",
    "NATIVITY",
    "DEAR",
    "DEYE",
    "DREM",
    "SEX",
    "RAC1P",
]

EVIDENTLY_WORKER = r"""
import json, sys
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
spec = json.loads(sys.argv[1])
definition = DataDefinition(numerical_columns=spec["numeric"],
                            categorical_columns=spec["categorical"])
out = []
for ref_path, cur_path in spec["pairs"]:
    ref = Dataset.from_pandas(pd.read_parquet(ref_path), data_definition=definition)
    cur = Dataset.from_pandas(pd.read_parquet(cur_path), data_definition=definition)
    snap = Report([DataDriftPreset()]).run(cur, ref)
    row = {"drifted": []}
    for metric in snap.dict()["metrics"]:
        name, value, config = metric["metric_name"], metric["value"], metric["config"]
        if name.startswith("DriftedColumnsCount"):
            row["share"], row["count"] = float(value["share"]), int(value["count"])
        elif name.startswith("ValueDrift"):
            is_p = "p_value" in config["method"]
            hit = value < config["threshold"] if is_p else value >= config["threshold"]
            if hit:
                row["drifted"].append(config["column"])
    out.append(row)
print(json.dumps(out))
"""


def acs_stream(max_batches: int, seed: int) -> tuple[pd.DataFrame, list[pd.DataFrame], list, list]:
    df = pd.read_csv(ACS)
    features = ["AGEP", *ACS_CATEGORICAL]
    reference = df[df.year == 2015].sample(5000, random_state=seed)[features]
    # The file's row order is not random within a year (it groups households, e.g. rows of
    # group-quarters residents sit together), so consecutive rows are not a stationary stream;
    # rows are shuffled within each year, and the years stay in time order.
    later = (
        df[df.year > 2015]
        .groupby("year", group_keys=False)
        .apply(lambda g: g.sample(frac=1.0, random_state=seed))[features]
        .reset_index(drop=True)
    )
    batches = [later.iloc[i : i + 1000] for i in range(0, len(later) - 999, 1000)][:max_batches]
    return reference.reset_index(drop=True), batches, ["AGEP"], ACS_CATEGORICAL


def bike_stream(max_batches: int, seed: int) -> tuple[pd.DataFrame, list[pd.DataFrame], list, list]:
    import yaml

    data = yaml.safe_load((ROOT / "params.yaml").read_text())["data"]
    features, categorical = data["features"], data["categorical"]
    df = pd.read_csv(ROOT / "data/demo/bike_sharing/hour.csv")[features]
    df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    reference, rest = df.iloc[:1000], df.iloc[1000:].reset_index(drop=True)
    batches = [rest.iloc[i : i + 168] for i in range(0, len(rest) - 167, 168)][:max_batches]
    return reference, batches, [c for c in features if c not in categorical], categorical


def power_pairs(trials: int, seed: int) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    cols = [f"x{i}" for i in range(15)]
    pairs = []
    for _ in range(trials):
        ref = pd.DataFrame(rng.normal(0, 1, (1000, 15)), columns=cols)
        cur = pd.DataFrame(rng.normal(0, 1, (1000, 15)), columns=cols)
        cur[["x0", "x1"]] += 0.2
        pairs.append((ref, cur))
    return pairs


def run_modelwatch(pairs, numeric: list[str], categorical: list[str]) -> list[dict]:
    from modelwatch.drift import compute_drift
    from modelwatch.settings import DataSettings, DriftSettings

    data = DataSettings(
        id="_id", target="_target", features=numeric + categorical, categorical=categorical
    )
    settings = DriftSettings()
    out = []
    for ref, cur in pairs:
        report = compute_drift(ref, cur, data, settings)
        out.append(
            {
                "dataset_drift": report.dataset_drift,
                "share": report.drift_share,
                "drifted": report.drifted_features(),
                "rule": getattr(report, "dataset_rule", None),
            }
        )
    return out


def run_evidently(pairs, numeric: list[str], categorical: list[str], tmp: Path) -> list[dict]:
    tmp.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (ref, cur) in enumerate(pairs):
        rp, cp = tmp / f"ref{i}.parquet", tmp / f"cur{i}.parquet"
        ref.to_parquet(rp)
        cur.to_parquet(cp)
        paths.append([str(rp), str(cp)])
    spec = json.dumps({"numeric": numeric, "categorical": categorical, "pairs": paths})
    proc = subprocess.run(
        [str(EVIDENTLY_PY), "-c", EVIDENTLY_WORKER, spec],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = json.loads(proc.stdout.strip().splitlines()[-1])
    for row in rows:
        row["dataset_drift"] = row["share"] >= 0.5  # Evidently's default drift_share
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--max-batches", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-evidently", action="store_true")
    parser.add_argument(
        "--evidently-max", type=int, default=40, help="batches per stream for Evidently (slow)"
    )
    args = parser.parse_args()
    engines = ["modelwatch"] + (
        [] if args.no_evidently or not EVIDENTLY_PY.exists() else ["evidently"]
    )
    tmp = Path(tempfile.mkdtemp(prefix="mw-quality-"))
    streams = {}
    for name, build in (("acs", acs_stream), ("bike-shuffled", bike_stream)):
        ref, batches, num, cat = build(args.max_batches, args.seed)
        streams[name] = ([(ref, b) for b in batches], num, cat)
    streams["power"] = (power_pairs(args.trials, args.seed), [f"x{i}" for i in range(15)], [])

    print(
        f"{'stream':14s} {'engine':11s} {'batches':>7s} {'dataset drift':>13s} "
        f"{'shifted cols found':>18s} {'seconds':>8s}"
    )
    for name, (pairs, num, cat) in streams.items():
        for engine in engines:
            t0 = time.perf_counter()
            if engine == "modelwatch":
                rows = run_modelwatch(pairs, num, cat)
            else:
                step = max(1, len(pairs) // args.evidently_max)  # spread over the stream
                rows = run_evidently(
                    pairs[::step][: args.evidently_max], num, cat, tmp / f"{name}-{engine}"
                )
            secs = time.perf_counter() - t0
            rate = np.mean([r["dataset_drift"] for r in rows])
            found = ""
            if name == "power":
                both = np.mean([{"x0", "x1"} <= set(r["drifted"]) for r in rows])
                found = f"{both:.0%} both"
            print(f"{name:14s} {engine:11s} {len(rows):7d} {rate:13.1%} {found:>18s} {secs:8.1f}")
    print("targets: false alarms <= 5 % on acs and bike-shuffled; power >= 90 %")


if __name__ == "__main__":
    main()
