"""Where a monitored batch spends its time: each step of monitor-batch, side by side, in one run.

Usage: .venv/bin/python benchmarks/bench_batch_costs.py [--repeat 5]

Runs the core steps on real demo data (bike sharing: a 4-week reference, weekly batches) against
real backends in a temporary folder: Great Expectations, scipy drift, scikit-learn scoring and
training, git+DVC versioning, MLflow SQLite logging. Prints median and min per step (seconds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    t0 = time.perf_counter()
    from modelwatch import drift, io
    from modelwatch.settings import Paths, load_settings
    from modelwatch.stores import tracking, validation, versioning
    from modelwatch.streams import demo
    from modelwatch.training import fit, scoring

    import_s = time.perf_counter() - t0
    loaded = load_settings(ROOT / "params.yaml")
    s = loaded.settings
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-"))
    plan = demo.prepare_demo(ROOT / s.demo.source, s.data, s.demo, tmp / "demo")
    reference = io.read_csv_file(plan.reference)
    batch_path = plan.batches[10].inputs
    batch = io.read_csv_file(batch_path)
    model = fit.fit_model(reference, s.data, s.training, s.project.task).pipeline
    preds = scoring.score_frame(model, batch, s.data, s.project.task)
    ref_preds = scoring.score_frame(model, reference, s.data, s.project.task)

    paths = Paths(tmp, tmp / "params.yaml", tmp / "home")
    versioning.init_data_repo(paths.data_repo, paths.dvc_remote, ROOT / "params.yaml")
    client = tracking.configure(paths)
    exps = tracking.ensure_experiments(client, "bench", paths.artifact_root)
    counter = iter(range(10_000))

    def track_batch() -> None:
        target = paths.data_repo / "data/batches" / f"b{next(counter)}.csv"
        target.write_bytes(batch_path.read_bytes())
        versioning.track(paths.data_repo, [target], "bench")

    def log_run() -> None:
        report = drift.compute_drift(reference, batch, s.data, s.drift)
        with tracking.run(exps.monitoring, "bench", {"batch_id": "x"}):
            tracking.log_metrics({f"m{i}": float(i) for i in range(50)}, step=1)
            tracking.log_json(report.to_dict(), "drift_report.json")
            tracking.log_json({"a": 1}, "validation.json")

    from modelwatch.stores import integrity
    from modelwatch.stores.ledger import open_ledger

    ledger = open_ledger(f"sqlite:///{tmp / 'ledger.db'}")
    with tracking.run(exps.training, "bench-model", {}):
        _, version = tracking.log_sklearn_model(model, reference[s.data.features], "bench-model")
    integrity.record(client, ledger, "bench-model", version)

    def load_unverified() -> object:  # what every load did before: MLflow trusts MLmodel
        import mlflow.sklearn

        os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"
        try:
            return mlflow.sklearn.load_model(f"models:/bench-model/{version}")
        finally:
            os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"

    ids = [str(i) for i in batch[s.data.id]]

    from modelwatch import explain
    from modelwatch.settings import TrainingSettings

    def explain_batch(with_model: object) -> None:  # what tasks/explain.py does per batch
        cfg = s.explain
        found = explain.explain_with_settings(
            with_model,
            explain.sample_rows(batch, cfg.sample_rows, cfg.seed),
            explain.sample_rows(reference, cfg.background_rows, cfg.seed),
            s,
        )
        explain.compare_attributions(
            found.mean_abs(), found.mean_abs(), method=found.method, output=found.output,
            rows=found.rows, reference_rows=found.rows, champion_version="1",
        )  # fmt: skip

    forest = fit.fit_model(
        reference, s.data, TrainingSettings(model="random_forest"), s.project.task
    ).pipeline
    t0 = time.perf_counter()
    explain_batch(model)
    first_explain_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    shap_permutation(model, batch, reference, s)
    first_shap_s = time.perf_counter() - t0

    def label_matching() -> None:  # the ledger's row ids of an accepted batch, then a lookup
        ledger.add_row_ids("bench-model", ids, 1, True)
        ledger.match_row_ids("bench-model", ids)

    steps = {
        "read batch CSV": lambda: io.read_csv_file(batch_path),
        "GX validation (suite + run)": lambda: validation.validate_frame(
            batch, reference, s.data, s.validation, batch_path.name
        ),
        "score with champion": lambda: scoring.score_frame(model, batch, s.data, s.project.task),
        "drift (11 features + prediction)": lambda: drift.compute_drift(
            reference,
            batch,
            s.data,
            s.drift,
            prediction_reference=ref_preds["prediction"],
            prediction_current=preds["prediction"],
        ),
        "DVC add + git commit + push": track_batch,
        "MLflow run (50 metrics, 2 JSON)": log_run,
        "fit candidate + validation (1 thread)": lambda: fit_one_thread(reference, s),
        "load model: mlflow.sklearn (before)": load_unverified,
        "load model: digest + skops allow-list": lambda: integrity.load_verified(
            client, ledger, "bench-model", version
        ),
        "row ids recorded + labels matched": label_matching,
        f"SHAP {s.explain.sample_rows} rows, HGB (permutation)": lambda: explain_batch(model),
        "  same with shap.explainers.Permutation": lambda: shap_permutation(
            model, batch, reference, s
        ),
        f"SHAP {s.explain.sample_rows} rows, forest (tree, then perm.)": lambda: explain_batch(
            forest
        ),
    }
    print(f"imports (pandas, sklearn, scipy, modelwatch core): {import_s:.2f} s")
    print(f"first SHAP call in a process: {first_explain_s:.2f} s")
    print(
        f"first shap.explainers.Permutation call (numba compiles shap's kernels): "
        f"{first_shap_s:.2f} s"
    )
    print(f"reference {len(reference)} rows, batch {len(batch)} rows, repeat {args.repeat}")
    print(f"{'step':36s} {'median s':>9s} {'min s':>8s}")
    for name, fn in steps.items():
        times = timed(fn, args.repeat)
        print(f"{name:36s} {statistics.median(times):9.3f} {min(times):8.3f}")


def fit_one_thread(reference: object, s: object) -> object:
    """fit.fit_model as the train stage runs it: one OpenMP thread (training/stage.py)."""
    from threadpoolctl import threadpool_limits

    from modelwatch.training import fit

    with threadpool_limits(limits=1):
        return fit.fit_model(reference, s.data, s.training, s.project.task)


def shap_permutation(model: object, batch: object, reference: object, s: object) -> object:
    """The same explanation through shap's own Permutation explainer (what modelwatch ran
    before modelwatch.explain.coalitions): same rows, background, permutations and thread limit."""
    import numpy as np
    import pandas as pd
    import shap
    from threadpoolctl import threadpool_limits

    from modelwatch import explain
    from modelwatch.explain.shap_values import model_output

    cfg, features = s.explain, list(s.data.features)
    x = explain.sample_rows(batch, cfg.sample_rows, cfg.seed)[features]
    bg = explain.sample_rows(reference, cfg.background_rows, cfg.seed)[features]
    text = [c for c in features if not pd.api.types.is_numeric_dtype(bg[c])]
    cats = {c: pd.unique(pd.concat([bg[c], x[c]]).dropna()) for c in text}

    def encode(frame: pd.DataFrame) -> np.ndarray:
        out = frame.copy()
        for c in text:
            out[c] = pd.Categorical(frame[c], categories=cats[c]).codes.astype(float)
        return out.to_numpy(dtype=float)

    def predict(z: np.ndarray) -> np.ndarray:
        frame = pd.DataFrame(z, columns=features)
        for c in text:
            frame[c] = cats[c][frame[c].to_numpy().astype(int)]
        frame = frame.astype(bg.dtypes.to_dict())
        return model_output(model, frame, s.project.task, s.data.positive_label)[0]

    masker = shap.maskers.Independent(encode(bg), max_samples=len(bg))
    explainer = shap.explainers.Permutation(predict, masker, seed=cfg.seed)
    with threadpool_limits(limits=1):
        evals = cfg.permutations * (2 * len(features) + 1)
        return explainer(encode(x), max_evals=evals, silent=True)


if __name__ == "__main__":
    main()
