"""The command of the DVC `train` stage: fit the pipeline on a training window.

Run by `dvc repro train` inside the data repository (see dvc.yaml); it reads only the keys the
stage declares, so the model is a pure function of the window file and those params.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback
from pathlib import Path

from modelwatch.errors import ModelwatchError

ERROR_FILE = "stage_error.txt"  # beside the metrics: why the stage failed, in one line


def main(argv: list[str] | None = None) -> int:
    """Fits and saves the model, its cross-validated metrics and calibration; returns the exit
    code."""
    parser = argparse.ArgumentParser(prog="python -m modelwatch.training.stage")
    parser.add_argument("--params", type=Path, required=True)
    parser.add_argument("--window", type=Path, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True)
    # where training.entry_point's module is looked up first (the project's params folder)
    parser.add_argument("--search-path", type=Path, default=None)
    args = parser.parse_args(argv)

    from threadpoolctl import threadpool_limits

    from modelwatch import io
    from modelwatch.settings import load_settings
    from modelwatch.training import fit

    try:
        settings = load_settings(args.params).settings
        frame = io.read_csv_file(args.window)
        # One OpenMP thread: on a small shared machine, HistGradientBoosting's default of one
        # thread per core oversubscribes it (measured 12.8 s vs 4.7 s for a 600-row window).
        with threadpool_limits(limits=1):
            trained = fit.fit_model(
                frame,
                settings.data,
                settings.training,
                settings.project.task,
                search_path=args.search_path,
            )
        fit.save_model(trained.pipeline, args.model, settings.training.trusted_types)
    except Exception as exc:  # one line for the flow's error (the file), the trace for a person
        line = str(exc) if isinstance(exc, ModelwatchError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, ModelwatchError):
            traceback.print_exc()
        sys.stderr.write(f"train stage: {line}\n")
        args.metrics.parent.mkdir(parents=True, exist_ok=True)
        (args.metrics.parent / ERROR_FILE).write_text(line + "\n")
        return 1
    args.metrics.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "rows": trained.n_rows,
        "cv": trained.cv_metrics,
        "validation": trained.validation,
        "model": settings.training.model,
        "entry_point": trained.entry_point,
        "seed": settings.training.seed,
        "importance": trained.importance,
        # classification: isotonic maps of the out-of-fold scores (estimation.Calibrator)
        "calibration": trained.calibration,
    }
    args.metrics.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
