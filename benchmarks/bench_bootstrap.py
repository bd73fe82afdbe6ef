"""modelwatch's bootstrap intervals beside scipy.stats.bootstrap, same data, same seed.

Why modelwatch keeps its own resampling (modelwatch.performance.resampling) instead of calling
scipy.stats.bootstrap: the intervals are the same (scipy draws the same resample indices from
numpy.random.default_rng(seed); tests/unit/test_resampling.py checks equality), but scipy
calls the statistic once per metric, and a metric numpy cannot vectorise along an axis (ROC
AUC, precision, recall, F1 of scikit-learn) once per resample, while modelwatch computes every
metric of every resample at once from the resample counts. This prints both, side by side.

    .venv/bin/python benchmarks/bench_bootstrap.py [--sizes 1000 10000 100000] [--samples 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy import stats
from sklearn import metrics as skm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from modelwatch.performance.resampling import bootstrap_intervals  # noqa: E402
from modelwatch.settings import BootstrapSettings  # noqa: E402


def _axis_stat(fn):
    return lambda *a, axis=-1: fn(*a, axis=axis)


# numpy statistics scipy can vectorise (one call for all resamples)
VECTORISED = {
    "mae": _axis_stat(lambda y, p, axis: np.mean(np.abs(y - p), axis=axis)),
    "rmse": _axis_stat(lambda y, p, axis: np.sqrt(np.mean((y - p) ** 2, axis=axis))),
    "r2": _axis_stat(
        lambda y, p, axis: (
            1
            - np.sum((y - p) ** 2, axis=axis)
            / np.sum((y - np.mean(y, axis=axis, keepdims=True)) ** 2, axis=axis)
        )
    ),
    "accuracy": _axis_stat(lambda y, p, s, axis: np.mean(y == p, axis=axis)),
}
# scikit-learn statistics scipy calls once per resample
PER_RESAMPLE = {
    "precision": lambda y, p, s: skm.precision_score(y, p, zero_division=0),
    "recall": lambda y, p, s: skm.recall_score(y, p, zero_division=0),
    "f1": lambda y, p, s: skm.f1_score(y, p, zero_division=0),
    "roc_auc": lambda y, p, s: skm.roc_auc_score(y, s),
}


def data(task: str, n: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    if task == "regression":
        y = rng.gamma(2.0, 50.0, n)
        return y, y + rng.normal(0, 25, n)
    y = (rng.uniform(size=n) < 0.3).astype(int)
    score = np.clip(0.35 * y + rng.uniform(0, 0.65, n), 0, 1)
    return y, (score > 0.5).astype(int), score


def run(task: str, n: int, samples: int) -> list[str]:
    arrays = data(task, n)
    settings = BootstrapSettings(samples=samples, confidence=0.95, seed=3)
    extra = {} if task == "regression" else {"y_score": arrays[2], "positive_label": 1}
    start = time.perf_counter()
    ours = bootstrap_intervals(arrays[0], arrays[1], task, settings=settings, **extra)
    ours_s = time.perf_counter() - start
    names = ["mae", "rmse", "r2"] if task == "regression" else ["accuracy", *PER_RESAMPLE]
    scipy_s, worst = 0.0, 0.0
    for name in names:
        vectorised = name in VECTORISED
        statistic = VECTORISED[name] if vectorised else PER_RESAMPLE[name]
        start = time.perf_counter()
        ci = stats.bootstrap(
            arrays,
            statistic,
            paired=True,
            vectorized=vectorised,
            n_resamples=samples,
            confidence_level=0.95,
            method="percentile",
            rng=np.random.default_rng(3),
        ).confidence_interval
        scipy_s += time.perf_counter() - start
        worst = max(worst, abs(ci.low - ours[name][0]), abs(ci.high - ours[name][1]))
    return [
        task,
        f"{n:,}",
        str(samples),
        ", ".join(names),
        f"{ours_s:.3f}",
        f"{scipy_s:.3f}",
        f"{scipy_s / ours_s:.1f}x",
        f"{worst:.1e}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args()
    head = ["task", "rows", "resamples", "metrics", "modelwatch s", "scipy s", "scipy/mw",
            "max |diff| of bounds"]  # fmt: skip
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for n in args.sizes:
        for task in ("regression", "classification"):
            print("| " + " | ".join(run(task, n, args.samples)) + " |", flush=True)


if __name__ == "__main__":
    main()
