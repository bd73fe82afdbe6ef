"""Does the retrain policy pay? Replay the bike-sharing weekly batches of 2011 and 2012 under
four policies and print mean MAE, retrains, promotions, rejections and rollbacks.

Policies:
  never      the first champion (trained on the reference period) serves every batch
  every      retrain after every batch whose predecessor is labelled, and deploy it
  schedule   retrain every --every batches, and deploy it
  modelwatch the project's policy from params.yaml: decide_retraining (drift, performance,
             staleness, persistence, cooldown, budget), then compare_models on the holdout
             neither model saw (thresholds through mlflow.validate_evaluation_results,
             significance, segments), then probation against the previous champion in shadow
             with automatic rollback

The replay runs in one process on the same pure functions the Prefect flows call (policy,
windows, training pipeline, promotion, probation, drift). It skips what does not change a
decision: Prefect, MLflow runs, GX validation, DVC versioning. Labels arrive one batch late,
as in the demo. Every policy trains the same pipeline (build_pipeline, params.yaml's
hyperparameters, one thread) on the same kind of window (windows.build_window).

    .venv/bin/python benchmarks/bench_policies.py                 # 2011-2012, ~104 batches
    .venv/bin/python benchmarks/bench_policies.py --max-batches 30 --policies never modelwatch
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelwatch import drift  # noqa: E402
from modelwatch.decide import policy, probation, promotion  # noqa: E402
from modelwatch.errors import InsufficientDataError  # noqa: E402
from modelwatch.performance.metrics import compute_metrics  # noqa: E402
from modelwatch.settings import Settings, load_settings  # noqa: E402
from modelwatch.stores import gate  # noqa: E402
from modelwatch.streams.demo import cut_batches, load_source, split_reference  # noqa: E402
from modelwatch.training import scoring, windows  # noqa: E402
from modelwatch.training.fit import build_pipeline, fit_model, split_xy  # noqa: E402


@dataclass
class Model:
    version: int
    pipeline: object
    train: pd.DataFrame
    trained_through: int
    baseline: float | None
    first_batch: int  # first batch it scored


@dataclass
class Outcome:
    name: str
    errors: list[float] = field(default_factory=list)
    retrains: int = 0
    promotions: int = 0
    rejections: int = 0
    deferred: int = 0
    rollbacks: int = 0
    seconds: float = 0.0


VERBOSE = False


def fit(frame: pd.DataFrame, s: Settings) -> object:
    x, y = split_xy(frame, s.data)
    return build_pipeline(s.data, s.training, s.project.task).fit(x, y)


def score(model: Model, frame: pd.DataFrame, s: Settings) -> pd.DataFrame:
    return scoring.score_frame(model.pipeline, frame, s.data, s.project.task)


def metric_of(frame: pd.DataFrame, preds: pd.DataFrame, s: Settings, metric: str) -> float:
    values = compute_metrics(frame[s.data.target], preds[s.data.prediction], s.project.task)
    return values[metric]


class Replay:
    """State shared by one policy's replay: batches, labels so far, the serving model."""

    def __init__(self, name: str, reference: pd.DataFrame, batches: list, s: Settings):
        self.s, self.reference, self.batches = s, reference, batches
        self.out = Outcome(name)
        self.version = 1
        self.champion = Model(1, fit(reference, s), reference, 0, None, 1)
        self.previous: Model | None = None
        self.on_probation = False
        self.preds: dict[int, pd.DataFrame] = {}
        self.shadow: dict[int, pd.DataFrame] = {}
        self.served_by: dict[int, int] = {}
        self.realized: dict[int, float] = {}
        self.drift: dict[int, float] = {}
        self.violated: dict[int, tuple[str, ...]] = {}
        self.retrain_at: list[int] = []

    def labelled(self, index: int) -> list[windows.LabelledBatch]:
        delay = self.s.demo.label_delay_batches if self.s.demo else 1
        return [
            windows.LabelledBatch(bid, i, frame)
            for i, (bid, frame) in enumerate(self.batches, start=1)
            if i <= index - delay
        ]

    def candidate(self, index: int) -> tuple[Model, windows.TrainingWindow] | None:
        try:
            window = windows.build_window(self.reference, self.labelled(index), self.s.training)
        except InsufficientDataError:
            self.out.deferred += 1
            return None
        self.version += 1
        self.out.retrains += 1
        self.retrain_at.append(index)
        model = Model(
            self.version,
            fit(window.train, self.s),
            window.train,
            window.through_index,
            None,
            index + 1,
        )
        return model, window

    def deploy(self, model: Model, baseline: float | None) -> None:
        model.baseline = baseline
        self.previous, self.champion = self.champion, model
        self.out.promotions += 1


def run_naive(name: str, every: int | None, reference, batches, s: Settings) -> Outcome:
    r = Replay(name, reference, batches, s)
    for index, (_, frame) in enumerate(batches, start=1):
        preds = score(r.champion, frame, s)
        r.out.errors.append(metric_of(frame, preds, s, "mae"))
        if every is None or index % every:
            continue
        made = r.candidate(index)
        if made is not None:
            r.deploy(made[0], None)
    return r.out


def run_modelwatch(reference, batches, s: Settings) -> Outcome:
    r = Replay("modelwatch", reference, batches, s)
    metric = s.retrain.performance_metric
    # as the bootstrap flow does: the first champion's baseline is its cross-validated score
    cv = fit_model(reference, s.data, s.training, s.project.task).cv_metrics
    r.champion.baseline = cv[metric]
    delay = s.demo.label_delay_batches if s.demo else 1
    for index, (_, frame) in enumerate(batches, start=1):
        champ = r.champion
        preds = score(champ, frame, s)
        r.preds[index], r.served_by[index] = preds, champ.version
        r.out.errors.append(metric_of(frame, preds, s, "mae"))
        if r.on_probation and r.previous is not None:
            r.shadow[index] = score(r.previous, frame, s)
        # labels of batch index - delay arrive now
        arrived = index - delay
        if arrived >= 1:
            _, labelled = batches[arrived - 1]
            r.realized[arrived] = metric_of(labelled, r.preds[arrived], s, metric)
        if r.on_probation:
            _judge_probation(r, index, delay)
        ref_preds = score(r.champion, r.champion.train, s)[s.data.prediction]
        report = drift.compute_drift(
            r.champion.train,
            frame,
            s.data,
            s.drift,
            prediction_reference=ref_preds,
            prediction_current=r.preds[index][s.data.prediction],
        )
        r.drift[index] = report.drift_share
        champ = r.champion
        own = [i for i in sorted(r.realized) if r.served_by[i] == champ.version]
        first = [i for i in sorted(r.drift) if r.served_by.get(i) == champ.version]
        window = s.retrain.persistence.window
        inputs = policy.PolicyInputs(
            batch_index=index,
            drift_share=report.drift_share,
            metric=metric,
            current_metric=r.realized[own[-1]] if own else None,
            baseline_metric=champ.baseline,
            baseline_drift_share=r.drift[first[0]] if first else None,
            batches_since_champion=index - champ.trained_through,
            recent=tuple(
                policy.BatchSignal(i, r.violated[i])
                for i in range(max(1, index - window + 1), index)
            ),
            retrain_batches=tuple(r.retrain_at),
        )
        decision = policy.decide_retraining(inputs, s.retrain, s.project.task)
        r.violated[index] = tuple(decision.violated)
        if not decision.retrain:
            continue
        made = r.candidate(index)
        if made is None:
            continue
        cand, win = made
        hold = win.holdout
        result = promotion.compare_models(
            hold,
            score(cand, hold, s),
            score(r.champion, hold, s),
            s.promotion,
            s.data,
            s.project.task,
            gate=gate.threshold_gate,
            candidate_version=str(cand.version),
            champion_version=str(r.champion.version),
            min_segment_rows=s.performance.min_segment_rows,
        )
        if result.promote:
            r.deploy(cand, result.candidate_metrics.get(metric))
            r.on_probation = s.promotion.probation.batches > 0
        else:
            r.out.rejections += 1
        if VERBOSE:
            fired = ",".join(decision.rules_fired)
            print(f"  batch {index} [{fired}]: {result.summary()}")
    return r.out


def _judge_probation(r: Replay, index: int, delay: int) -> None:
    s, champ = r.s, r.champion
    done = [i for i in sorted(r.shadow) if i <= index - delay and r.served_by[i] == champ.version][
        : s.promotion.probation.batches
    ]
    if len(done) < s.promotion.probation.batches:
        return
    rows = pd.concat(
        [
            pd.concat(
                [
                    r.batches[i - 1][1][[s.data.target]].reset_index(drop=True),
                    r.preds[i][[s.data.prediction]].reset_index(drop=True),
                    probation.shadow_columns(r.shadow[i], s.data)
                    .drop(columns=[s.data.id])
                    .reset_index(drop=True),
                ],
                axis=1,
            )
            for i in done
        ],
        ignore_index=True,
    )
    verdict = probation.judge(
        rows,
        len(done),
        s.promotion.probation,
        s.data,
        s.project.task,
        s.retrain.performance_metric,
        champion_version=str(champ.version),
        previous_version=str(r.previous.version),
    )
    r.on_probation = False
    if verdict.status == "failed":
        r.champion, r.previous = r.previous, None
        r.out.rollbacks += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--max-batches", type=int, default=None, help="default: all of 2011-12")
    parser.add_argument("--every", type=int, default=4, help="fixed schedule: every N batches")
    parser.add_argument(
        "--policies", nargs="+", default=["never", "every", "schedule", "modelwatch"]
    )
    parser.add_argument("--verbose", action="store_true", help="print each comparison")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    loaded = load_settings(args.params)
    s, paths = loaded.settings, loaded.paths
    frame = load_source(paths.resolve(s.demo.source), s.data, s.demo)
    reference, rest = split_reference(frame, s.data, s.demo)
    batches = cut_batches(rest, s.data, s.demo)
    batches = [(start, part) for start, part in batches if len(part) >= s.validation.min_rows]
    batches = batches[: args.max_batches]
    print(
        f"bike sharing: reference {len(reference)} rows, {len(batches)} weekly batches "
        f"({batches[0][0]} .. {batches[-1][0]}), labels {s.demo.label_delay_batches} batch late"
    )
    runners = {
        "never": lambda: run_naive("never", None, reference, batches, s),
        "every": lambda: run_naive("every", 1, reference, batches, s),
        "schedule": lambda: run_naive(f"schedule/{args.every}", args.every, reference, batches, s),
        "modelwatch": lambda: run_modelwatch(reference, batches, s),
    }
    results = []
    with threadpool_limits(limits=1):
        for name in args.policies:
            start = time.perf_counter()
            out = runners[name]()
            out.seconds = time.perf_counter() - start
            results.append(out)
    print()
    print(
        f"{'policy':<12} {'mean MAE':>9} {'vs never':>9} {'retrains':>9} {'promotions':>11} "
        f"{'rejections':>11} {'deferred':>9} {'rollbacks':>10} {'seconds':>8}"
    )
    never = next((o for o in results if o.name == "never"), None)
    for o in results:
        mae = float(np.mean(o.errors))
        rel = f"{mae / np.mean(never.errors) - 1:+.0%}" if never else ""
        print(
            f"{o.name:<12} {mae:>9.2f} {rel:>9} {o.retrains:>9} {o.promotions:>11} "
            f"{o.rejections:>11} {o.deferred:>9} {o.rollbacks:>10} {o.seconds:>8.1f}"
        )
    by = {o.name: o for o in results}
    if {"never", "every", "modelwatch"} <= set(by):
        mw, ev, nv = by["modelwatch"], by["every"], by["never"]
        m_mw, m_ev, m_nv = (float(np.mean(o.errors)) for o in (mw, ev, nv))
        print()
        print(
            f"modelwatch vs never: {1 - m_mw / m_nv:.0%} lower MAE (target >= 30%)"
            + ("" if 1 - m_mw / m_nv >= 0.3 else "  MISSED")
        )
        print(
            f"modelwatch vs every batch: {m_mw / m_ev:.2f}x its MAE (target <= 1.1)"
            + ("" if m_mw / m_ev <= 1.1 else "  MISSED")
        )
        ratio = mw.retrains / max(ev.retrains, 1)
        print(
            f"modelwatch retrains: {mw.retrains} of every-batch's {ev.retrains} = {ratio:.2f} "
            "(target <= 0.25)" + ("" if ratio <= 0.25 else "  MISSED")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
