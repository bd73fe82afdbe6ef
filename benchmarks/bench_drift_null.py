"""What the bootstrap null of the distance tests (drift.bootstrap) costs per batch: compute_drift
on 8 numeric and 3 categorical columns with the null off (samples 0) and on (200 resamples),
side by side in one run, at two sizes.

    .venv/bin/python benchmarks/bench_drift_null.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelwatch.drift import compute_drift  # noqa: E402
from modelwatch.settings import DataSettings, DriftSettings  # noqa: E402

NUMERIC = [f"n{i}" for i in range(8)]
CATEGORICAL = [f"c{i}" for i in range(3)]
DATA = DataSettings(id="id", target="y", features=NUMERIC + CATEGORICAL, categorical=CATEGORICAL)


def frame(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    numeric = {c: rng.normal(size=rows) for c in NUMERIC}
    categorical = {c: rng.choice(list("abcd"), rows) for c in CATEGORICAL}
    return pd.DataFrame({"id": np.arange(rows), **numeric, **categorical})


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    rng = np.random.default_rng(0)
    print("| reference x batch rows | null off (s) | null on, 200 resamples (s) | drifted off/on |")
    print("|---|---|---|---|")
    for n_ref, n_cur, repeats in ((2000, 300, 5), (100_000, 100_000, 2)):
        ref, cur = frame(rng, n_ref), frame(rng, n_cur)
        off, on = (DriftSettings(bootstrap={"samples": n}) for n in (0, 200))
        t_off = best_of(repeats, lambda s=off, r=ref, c=cur: compute_drift(r, c, DATA, s))
        t_on = best_of(repeats, lambda s=on, r=ref, c=cur: compute_drift(r, c, DATA, s))
        drifted = [compute_drift(ref, cur, DATA, s).n_drifted for s in (off, on)]
        print(f"| {n_ref:,} x {n_cur:,} | {t_off:.3f} | {t_on:.3f} | {drifted[0]} / {drifted[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
