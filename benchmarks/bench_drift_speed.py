"""Drift speed and memory: modelwatch, Evidently 0.7, NannyML and a numpy/scipy floor, side by side.

Usage:
    bash benchmarks/envs/setup.sh                      # once: Evidently and NannyML venvs
    .venv/bin/python benchmarks/bench_drift_speed.py   # 10k, 100k, 1M rows x 50 features
    .venv/bin/python benchmarks/bench_drift_speed.py --sizes 10000 --repeat 1

For each size the same synthetic reference and current frames (N rows each; 40 numeric and 10
categorical columns, 10 of them shifted in current) are written once to Parquet. Each engine then
runs in a fresh subprocess of its own interpreter (Evidently and NannyML need pandas 2, so they
live in benchmarks/.venvs/), which loads the files, resets its peak-RSS counter and times only the
drift computation (best of --repeat). The parent also records each worker's total wall time.
Prints a table and the issue's three targets; writes JSON to benchmarks/output/.

This file is also the worker (`--worker ENGINE DIR`), so it imports only the standard library at
module level: the comparison venvs have no modelwatch.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "benchmarks" / ".venvs"
OUTPUT = ROOT / "benchmarks" / "output"
# modelwatch runs three times: with default settings ("auto": normalised Wasserstein /
# Jensen-Shannon at these sizes, like Evidently, each distance's threshold from its bootstrap
# null), the same without the null (drift.bootstrap.samples 0: the statistics alone, what the
# floor and Evidently compute), and with KS / chi-squared forced; each has a floor that computes
# the same statistics in plain numpy/scipy.
ENGINES = (
    "modelwatch",
    "modelwatch-nonull",
    "modelwatch-ks",
    "floor-wd",
    "floor-ks",
    "evidently",
    "nannyml",
)
FLOOR_OF = {"modelwatch": "floor-wd", "modelwatch-nonull": "floor-wd", "modelwatch-ks": "floor-ks"}
N_NUMERIC, N_CATEGORICAL, N_LEVELS = 40, 10, 10
DRIFTED_NUMERIC = ("num_00", "num_05", "num_10", "num_15", "num_20", "num_25", "num_30", "num_35")
DRIFTED_CATEGORICAL = ("cat_00", "cat_05")
# Same thread budget for every engine: the machine is small and shared, and none of the
# engines' drift code is BLAS-bound.
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
# The engines phone home unless told not to; only PyPI is reachable on our machines.
QUIET_ENV = {
    "DO_NOT_TRACK": "1",
    "EVIDENTLY_DISABLE_TELEMETRY": "1",
    "NML_DISABLE_USAGE_LOGGING": "1",
}


# ----------------------------------------------------------------------------- data


def make_frames(n: int, seed: int) -> tuple[Any, Any]:
    """Returns (reference, current): n rows each, 40 numeric and 10 categorical columns.

    Numeric columns cycle through normal, log-normal, uniform and Poisson (integer, with ties);
    categorical columns have 10 levels with Dirichlet probabilities and pandas "category" dtype.
    DRIFTED_NUMERIC get a 0.1-0.45 sd shift in current, DRIFTED_CATEGORICAL re-drawn probabilities.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    levels = [f"level_{k}" for k in range(N_LEVELS)]

    def numeric(i: int, shift: float) -> np.ndarray:
        kind = i % 4
        if kind == 0:
            return rng.normal(shift, 1.0, n)
        if kind == 1:
            return rng.lognormal(0.2 * shift, 0.5, n)
        if kind == 2:
            return rng.uniform(0.0, 1.0, n) + 0.29 * shift  # sd of U(0,1) is 0.29
        return rng.poisson(5.0 + 2.24 * shift, n).astype(np.float64)  # sd of Poisson(5) is 2.24

    probs = [rng.dirichlet(np.full(N_LEVELS, 2.0)) for _ in range(N_CATEGORICAL)]
    frames = []
    for side in ("reference", "current"):
        cols: dict[str, Any] = {}
        for i in range(N_NUMERIC):
            name = f"num_{i:02d}"
            shift = 0.1 + 0.05 * (i // 5) if side == "current" and name in DRIFTED_NUMERIC else 0.0
            cols[name] = numeric(i, shift)
        for j in range(N_CATEGORICAL):
            name = f"cat_{j:02d}"
            p = probs[j]
            if side == "current" and name in DRIFTED_CATEGORICAL:
                p = 0.8 * p + 0.2 * rng.dirichlet(np.full(N_LEVELS, 2.0))
            codes = rng.choice(N_LEVELS, size=n, p=p).astype(np.int8)
            cols[name] = pd.Categorical.from_codes(codes, categories=levels)
        frames.append(pd.DataFrame(cols))
    return frames[0], frames[1]


def column_spec() -> dict[str, list[str]]:
    """Returns the numeric and categorical column names of make_frames."""
    return {
        "numeric": [f"num_{i:02d}" for i in range(N_NUMERIC)],
        "categorical": [f"cat_{j:02d}" for j in range(N_CATEGORICAL)],
    }


def frame_bytes(*frames: Any) -> int:
    """Returns the in-memory size of the frames (pandas memory_usage, deep)."""
    return int(sum(f.memory_usage(deep=True).sum() for f in frames))


# ----------------------------------------------------------------------------- engines
# Each builder takes (reference, current, spec) and returns (run, summarise): run() does the
# timed drift computation, summarise(result) reads the verdicts outside the timing.

Engine = tuple[Callable[[], Any], Callable[[Any], dict[str, Any]]]


def build_modelwatch(
    ref: Any, cur: Any, spec: dict[str, list[str]], options: dict[str, Any] | None = None
) -> Engine:
    """modelwatch.drift.compute_drift with default DriftSettings, or with these changed."""
    sys.path.insert(0, str(ROOT))
    from modelwatch.drift import compute_drift
    from modelwatch.settings import DataSettings, DriftSettings

    features = spec["numeric"] + spec["categorical"]
    data = DataSettings(
        id="row_id", target="target", features=features, categorical=spec["categorical"]
    )
    settings = DriftSettings(**(options or {}))

    def run() -> Any:
        return compute_drift(ref, cur, data, settings)

    def summarise(report: Any) -> dict[str, Any]:
        return {
            "n_drifted": int(report.n_drifted),
            "drifted": report.drifted_features(),
            "tests": sorted({f.test for f in report.features}),
            "statuses": sorted({f.status for f in report.features}),
        }

    return run, summarise


def build_modelwatch_nonull(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    return build_modelwatch(ref, cur, spec, {"bootstrap": {"samples": 0}})


def build_modelwatch_ks(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    return build_modelwatch(ref, cur, spec, {"numeric_test": "ks", "categorical_test": "chi2"})


def _ks_floor(a: Any, b: Any) -> tuple[float, float]:
    """Two-sided two-sample KS statistic by sort + searchsorted, and scipy's asymptotic p-value
    (scipy.stats.ks_2samp, method="asymp": kstwo.sf(D, round(n1*n2/(n1+n2))))."""
    import numpy as np
    import scipy.stats

    a, b = np.sort(a), np.sort(b)
    both = np.concatenate([a, b])
    cdf_a = np.searchsorted(a, both, side="right") / a.size
    cdf_b = np.searchsorted(b, both, side="right") / b.size
    d = float(np.max(np.abs(cdf_a - cdf_b)))
    m, n = sorted([float(a.size), float(b.size)], reverse=True)
    return d, float(scipy.stats.kstwo.sf(d, np.round(m * n / (m + n))))


def _chi2_floor(ref_codes: Any, cur_codes: Any, k: int) -> tuple[float, float]:
    """Chi-squared test of homogeneity on the 2 x k table of bincounts (empty levels dropped);
    scipy.stats.chi2_contingency without continuity correction."""
    import numpy as np
    import scipy.stats

    table = np.vstack([np.bincount(ref_codes, minlength=k), np.bincount(cur_codes, minlength=k)])
    table = table[:, table.sum(axis=0) > 0].astype(np.float64)
    expected = table.sum(axis=1, keepdims=True) * table.sum(axis=0) / table.sum()
    stat = float(((table - expected) ** 2 / expected).sum())
    return stat, float(scipy.stats.chi2.sf(stat, table.shape[1] - 1))


def _wasserstein_floor(a: Any, b: Any) -> float:
    """Wasserstein-1 distance by sort + searchsorted (as scipy.stats.wasserstein_distance),
    divided by the reference's population standard deviation (Evidently's "normed")."""
    import numpy as np

    a, b = np.sort(a), np.sort(b)
    both = np.sort(np.concatenate([a, b]))
    deltas = np.diff(both)
    cdf_a = np.searchsorted(a, both[:-1], side="right") / a.size
    cdf_b = np.searchsorted(b, both[:-1], side="right") / b.size
    return float(np.sum(np.abs(cdf_a - cdf_b) * deltas) / np.std(a))


def _js_floor(ref_codes: Any, cur_codes: Any, k: int) -> float:
    """Jensen-Shannon distance (base 2) of the bincount proportions, as
    scipy.spatial.distance.jensenshannon(p, q, base=2)."""
    import numpy as np

    p = np.bincount(ref_codes, minlength=k) / ref_codes.size
    q = np.bincount(cur_codes, minlength=k) / cur_codes.size
    m = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_p = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
        kl_q = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
    return float(np.sqrt(max((kl_p + kl_q) / 2, 0.0)))


def _build_floor(ref: Any, cur: Any, spec: dict[str, list[str]], tests: str) -> Engine:
    """tests "ks": KS p-value and chi-squared p-value, drift at p < 0.05; "wd": normalised
    Wasserstein and Jensen-Shannon distance, drift at >= 0.1."""
    import numpy as np
    import pandas as pd
    import scipy.stats  # noqa: F401  (imported here, not in the timed run)

    def codes(col: str) -> tuple[Any, Any, int]:
        r, c = ref[col], cur[col]
        if isinstance(r.dtype, pd.CategoricalDtype) and r.cat.categories.equals(c.cat.categories):
            return r.cat.codes.to_numpy(), c.cat.codes.to_numpy(), len(r.cat.categories)
        both, uniques = pd.factorize(pd.concat([r, c], ignore_index=True))
        return both[: len(r)], both[len(r) :], len(uniques)

    def run() -> dict[str, float]:
        out = {}
        for col in spec["numeric"]:
            a, b = ref[col].to_numpy(np.float64), cur[col].to_numpy(np.float64)
            a, b = a[~np.isnan(a)], b[~np.isnan(b)]
            out[col] = _ks_floor(a, b)[1] if tests == "ks" else _wasserstein_floor(a, b)
        for col in spec["categorical"]:
            r, c, k = codes(col)
            r, c = r[r >= 0], c[c >= 0]
            out[col] = _chi2_floor(r, c, k)[1] if tests == "ks" else _js_floor(r, c, k)
        return out

    def summarise(values: dict[str, float]) -> dict[str, Any]:
        if tests == "ks":
            drifted = [c for c, v in values.items() if v < 0.05]
            names = ["chi2", "ks"]
        else:
            drifted = [c for c, v in values.items() if v >= 0.1]
            names = ["jensen_shannon", "wasserstein"]
        return {"n_drifted": len(drifted), "drifted": drifted, "tests": names}

    return run, summarise


def build_floor_ks(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    return _build_floor(ref, cur, spec, "ks")


def build_floor_wd(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    return _build_floor(ref, cur, spec, "wd")


def build_evidently(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(
        numerical_columns=spec["numeric"], categorical_columns=spec["categorical"]
    )

    def run() -> Any:
        current = Dataset.from_pandas(cur, data_definition=definition)
        reference = Dataset.from_pandas(ref, data_definition=definition)
        return Report([DataDriftPreset()]).run(current, reference)

    def summarise(snapshot: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        methods = set()
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if config["type"].endswith("DriftedColumnsCount"):
                out["n_drifted"] = int(metric["value"]["count"])
            elif config["type"].endswith("ValueDrift"):
                methods.add(config["method"])
        return {**out, "tests": sorted(methods)}

    return run, summarise


def build_nannyml(ref: Any, cur: Any, spec: dict[str, list[str]]) -> Engine:
    import nannyml as nml

    columns = spec["numeric"] + spec["categorical"]

    def run() -> Any:
        calc = nml.UnivariateDriftCalculator(
            column_names=columns,
            treat_as_categorical=spec["categorical"],
            continuous_methods=["kolmogorov_smirnov"],
            categorical_methods=["chi2"],
            chunk_size=len(cur),  # one chunk = the whole current set
        )
        calc.fit(ref)
        return calc.calculate(cur)

    def summarise(result: Any) -> dict[str, Any]:
        df = result.filter(period="analysis").to_df()
        drifted = [c for c in columns if bool(df[c].xs("alert", axis=1, level=-1).any().any())]
        return {"n_drifted": len(drifted), "drifted": drifted, "tests": ["chi2", "ks (binned)"]}

    return run, summarise


BUILDERS = {
    "modelwatch": build_modelwatch,
    "modelwatch-nonull": build_modelwatch_nonull,
    "modelwatch-ks": build_modelwatch_ks,
    "floor-wd": build_floor_wd,
    "floor-ks": build_floor_ks,
    "evidently": build_evidently,
    "nannyml": build_nannyml,
}


# ----------------------------------------------------------------------------- worker


def _status_mb(field: str) -> float:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+) kB", text).group(1)) / 1024


def _reset_peak() -> bool:
    """Resets VmHWM to the current RSS (Linux >= 4.0); returns False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def worker(engine: str, data_dir: Path, repeat: int, out: Path) -> None:
    """Loads the Parquet pair, times the engine's drift computation, writes JSON to out.

    A warm-up run on 1,000 generated rows first imports the engine and fills its lazy caches, so
    neither lands in the timed runs nor in the memory attributed to the data.
    """
    t_start = time.perf_counter()
    import pandas as pd

    builder = BUILDERS[engine]
    spec = json.loads((data_dir / "spec.json").read_text())
    t0 = time.perf_counter()
    run, _ = builder(*make_frames(1_000, seed=12345), spec)
    run()
    warmup_s = time.perf_counter() - t0
    del run
    gc.collect()
    rss_base = _status_mb("VmRSS")
    t0 = time.perf_counter()
    ref = pd.read_parquet(data_dir / "reference.parquet")
    cur = pd.read_parquet(data_dir / "current.parquet")
    load_s = time.perf_counter() - t0
    run, summarise = builder(ref, cur, spec)
    gc.collect()
    rss_ready = _status_mb("VmRSS")
    peak_load = _status_mb("VmHWM")  # whole process so far: imports, warm-up, Parquet decoding
    reset = _reset_peak()
    times, summary = [], {}
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - t0)
        summary = summarise(result)
        del result
        gc.collect()
    peak = _status_mb("VmHWM")
    data_mb = frame_bytes(ref, cur) / 2**20
    versions = {"pandas": pd.__version__, "python": platform.python_version()}
    if engine in ("evidently", "nannyml"):
        versions[engine] = __import__(engine).__version__
    extra = peak - rss_ready
    result_row = {
        "engine": engine,
        "seconds": min(times),
        "all_seconds": times,
        "warmup_s": warmup_s,
        "load_s": load_s,
        "worker_s": time.perf_counter() - t_start,
        "rss_base_mb": rss_base,  # interpreter + libraries + engine, before the data
        "rss_loaded_mb": rss_ready - rss_base,  # the data as loaded (incl. allocator slack)
        "peak_load_mb": peak_load,
        "peak_compute_mb": peak,  # whole process, highest RSS during the timed runs
        "peak_reset": reset,
        "extra_mb": extra,  # working memory of the drift computation on top of the loaded data
        "data_mb": data_mb,
        # Peak memory the drift computation needs, in units of the data it is given.
        "mem_ratio": (data_mb + extra) / data_mb,
        "versions": versions,
        **summary,
    }
    out.write_text(json.dumps(result_row))


# ----------------------------------------------------------------------------- parent


def _python_for(engine: str) -> Path | None:
    if engine.startswith(("modelwatch", "floor")):
        return Path(sys.executable)
    exe = VENVS / engine / "bin" / "python"
    return exe if exe.exists() else None


def run_engine(engine: str, data_dir: Path, repeat: int, timeout: float) -> dict[str, Any]:
    """Runs one worker subprocess; returns its JSON plus the worker's total wall time."""
    exe = _python_for(engine)
    if exe is None:
        return {"engine": engine, "error": "no venv: run bash benchmarks/envs/setup.sh"}
    out = data_dir / f"result-{engine}.json"
    out.unlink(missing_ok=True)
    cmd = [
        str(exe),
        str(Path(__file__).resolve()),
        "--worker",
        engine,
        str(data_dir),
        "--repeat",
        str(repeat),
        "--out",
        str(out),
    ]
    env = {**os.environ, **THREAD_ENV, **QUIET_ENV}
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"engine": engine, "error": f"timed out after {timeout:.0f} s"}
    total = time.perf_counter() - t0
    if proc.returncode != 0 or not out.exists():
        tail = output.decode(errors="replace").strip().splitlines()[-5:]
        return {"engine": engine, "error": f"exit {proc.returncode}: " + " | ".join(tail)}
    result = json.loads(out.read_text())
    result["total_s"] = total
    return result


def run_size(n: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    """Generates one size, writes it to Parquet once, runs every engine; returns their rows."""
    t0 = time.perf_counter()
    ref, cur = make_frames(n, args.seed)
    data_mb = frame_bytes(ref, cur) / 2**20
    with tempfile.TemporaryDirectory(prefix="mw-drift-bench-") as tmp:
        data_dir = Path(tmp)
        ref.to_parquet(data_dir / "reference.parquet")
        cur.to_parquet(data_dir / "current.parquet")
        (data_dir / "spec.json").write_text(json.dumps(column_spec()))
        del ref, cur
        gc.collect()
        print(
            f"\n{n:,} rows x 50 columns per side: {data_mb:.1f} MB in memory, "
            f"generated + written in {time.perf_counter() - t0:.1f} s",
            flush=True,
        )
        repeat = args.repeat or (3 if n <= 100_000 else 1)
        rows = []
        for engine in args.engines:
            row = run_engine(engine, data_dir, repeat, args.timeout)
            row.update(size=n, repeat=repeat)
            rows.append(row)
            if "error" in row:
                print(f"  {engine:17s} ERROR {row['error']}", flush=True)
            else:
                print(
                    f"  {engine:17s} {row['seconds']:8.3f} s  (total {row['total_s']:.1f} s, "
                    f"drifted {row.get('n_drifted')}, tests {row.get('tests')})",
                    flush=True,
                )
    return rows


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(rows: list[dict[str, Any]]) -> list[str]:
    """Prints the side-by-side table and the target lines; returns the target lines."""
    head = (
        f"{'rows':>9s}  {'engine':17s} {'seconds':>9s} {'total s':>8s} {'peak MB':>8s} "
        f"{'extra MB':>8s} {'data MB':>8s} {'mem/data':>8s} {'x modelwatch':>12s}  drifted"
    )
    print("\n" + head + "\n" + "-" * len(head))
    verdicts = []
    for n in sorted({r["size"] for r in rows}):
        group = {r["engine"]: r for r in rows if r["size"] == n}
        mw = group.get("modelwatch", {}).get("seconds")
        for engine, r in group.items():
            if "error" in r:
                print(f"{n:>9,d}  {engine:17s} ERROR {r['error'][:80]}")
                continue
            ratio = r["seconds"] / mw if mw else None
            print(
                f"{n:>9,d}  {engine:17s} {r['seconds']:9.3f} {r['total_s']:8.1f} "
                f"{r['peak_compute_mb']:8.0f} {r['extra_mb']:8.0f} {r['data_mb']:8.1f} "
                f"{r['mem_ratio']:8.2f} {_fmt(ratio, '12.2f')}  "
                f"{r.get('n_drifted')}"
            )
        verdicts += _verdicts(n, group)
    print()
    for line in verdicts:
        print(line)
    return verdicts


def _verdicts(n: int, group: dict[str, dict[str, Any]]) -> list[str]:
    ok = {k: v for k, v in group.items() if "error" not in v}
    if "modelwatch" not in ok:
        return [f"{n:>9,d} rows: modelwatch did not run"]
    mw, lines = ok["modelwatch"], []
    if "evidently" in ok:
        x = ok["evidently"]["seconds"] / mw["seconds"]
        lines.append(
            f"{n:>9,d} rows: modelwatch vs Evidently: {x:.1f}x faster (target >= 10x)"
            f"{'' if x >= 10 else '  MISSED'}"
        )
    for name, floor in FLOOR_OF.items():
        if name in ok and floor in ok:
            y = ok[name]["seconds"] / ok[floor]["seconds"]
            tests = "/".join(ok[name].get("tests", []))
            lines.append(
                f"{n:>9,d} rows: {name} vs floor: {y:.2f} (target <= 1.5; {floor}, {tests})"
                f"{'' if y <= 1.5 else '  MISSED'}"
            )
    for name in FLOOR_OF:
        if name in ok:
            z = ok[name]["mem_ratio"]
            lines.append(
                f"{n:>9,d} rows: {name} peak memory / data size: {z:.2f} (target <= 2)"
                f"{'' if z <= 2 else '  MISSED'}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="rows per side (reference and current each)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=0,
        help="timed runs per engine, best kept (default: 3 up to 100k rows, else 1)",
    )
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per worker")
    parser.add_argument("--worker", metavar="ENGINE", choices=ENGINES, help=argparse.SUPPRESS)
    parser.add_argument("data_dir", nargs="?", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.data_dir, max(args.repeat, 1), args.out)
        return

    started = datetime.now(UTC)
    print(
        f"drift speed: sizes {args.sizes}, engines {args.engines}, {os.cpu_count()} CPUs, "
        f"threads pinned to 1, started {started:%Y-%m-%d %H:%M} UTC"
    )
    rows = [row for n in args.sizes for row in run_size(n, args)]
    verdicts = print_table(rows)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"drift_speed_{started:%Y%m%dT%H%M%S}.json"
    path.write_text(
        json.dumps(
            {
                "started": started.isoformat(),
                "command": " ".join(sys.argv),
                "cpus": os.cpu_count(),
                "threads": THREAD_ENV,
                "rows": rows,
                "verdicts": verdicts,
            },
            indent=2,
        )
    )
    print(f"\nresults: {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
