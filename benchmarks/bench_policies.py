"""Does the retrain policy pay, on every stream? Replays real and planted streams under four
strategies and prints, per stream, the mean of the performance metric, retrains, wasted
retrains (challengers that lost), promotions, rollbacks, dataset-drift alarms and, where the
stream has a planted change, how long the policy took to notice it and to promote a model
trained after it.

Strategies (every retrain goes through the same comparison and probation: only WHEN to retrain
differs, which is what the policy decides):
  never       the first champion serves every batch
  every       a challenger after every batch
  schedule/k  a challenger every k batches (batches k, 2k, ...: what a cron does); the table
              shows the best k among those with the policy's retrain count, or the next higher
              count when no k gives exactly it
  policy      the project's policy from the stream's params file: decide_retraining (drift,
              performance with its bootstrap interval, CBPE estimate, staleness, persistence,
              cooldown, budget, expected gain from past challenges)

Streams: bike (params.yaml, weekly 2011-2012, regression), bank (params.bank.yaml, 2,500-row
batches, classification), and streams with planted changes (modelwatch.streams.planted, 30
batches of 300 rows after a 6-batch reference, change at batch 15, each drawn --seeds times
and judged over all draws together): stationary, abrupt,
gradual, covariate (regression, with params.yaml's policy) and abrupt-cls, label-shift
(classification, with params.bank.yaml's policy). A planted stream's columns replace the data
section; everything else comes from the params file. Beside it, the stationary stream is cut
at 50, 300 and 3,000 rows per batch to count dataset-drift alarms at every size.

The replay runs in one process on the same pure functions the Prefect flows call (policy,
windows, training, promotion, probation, drift, estimation, bootstrap intervals). It skips what
does not change a decision: Prefect, MLflow runs, GX validation, DVC versioning. Labels arrive
demo.label_delay_batches late (1).

    .venv/bin/python benchmarks/bench_policies.py                      # every stream, ~10 min
    .venv/bin/python benchmarks/bench_policies.py --variants           # + each rule on/off, ~35 min
    .venv/bin/python benchmarks/bench_policies.py --streams abrupt bank --verbose
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from modelwatch import drift  # noqa: E402
from modelwatch.decide import policy, probation, promotion  # noqa: E402
from modelwatch.errors import InsufficientDataError  # noqa: E402
from modelwatch.performance import estimation  # noqa: E402
from modelwatch.performance.metrics import compute_metrics, metric_direction, worsening  # noqa: E402
from modelwatch.performance.resampling import bootstrap_intervals  # noqa: E402
from modelwatch.settings import DataSettings, Settings, load_settings  # noqa: E402
from modelwatch.stores import gate  # noqa: E402
from modelwatch.streams import planted  # noqa: E402
from modelwatch.streams.demo import cut_batches, load_source, split_reference  # noqa: E402
from modelwatch.training import scoring, windows  # noqa: E402
from modelwatch.training.fit import (  # noqa: E402
    build_pipeline,
    choose_window,
    fit_model,
    split_xy,
)

VERBOSE = False
REAL = ("bike", "bank")
PLANTED = {  # stream name -> (planted kind, task)
    "stationary": ("stationary", "regression"),
    "abrupt": ("abrupt", "regression"),
    "gradual": ("gradual", "regression"),
    "covariate": ("covariate", "regression"),
    "abrupt-cls": ("abrupt", "classification"),
    "label-shift": ("label_shift", "classification"),
}
STREAMS = (*REAL, *PLANTED)
DETECT_WITHIN = 3  # batches after the change's labels arrive
ALARMS_PER = 20  # at most 1 dataset-drift alarm in any 20 batches of the stationary control


@dataclass
class Stream:
    name: str
    s: Settings
    reference: pd.DataFrame
    batches: list[pd.DataFrame]
    change: int | None = None  # first batch (1-based) a planted change touches
    harmful: bool | None = None

    @property
    def metric(self) -> str:
        return self.s.retrain.performance_metric

    @property
    def delay(self) -> int:
        return self.s.demo.label_delay_batches if self.s.demo else 1


def load_stream(name: str, batch_rows: int = 300, batches: int = 30, seed: int = 0) -> Stream:
    """A real stream from its params file, or a planted one (drawn with `seed`) on the params
    of its task."""
    if name in REAL:
        loaded = load_settings(ROOT / ("params.yaml" if name == "bike" else "params.bank.yaml"))
        s, paths = loaded.settings, loaded.paths
        frame = load_source(paths.resolve(s.demo.source), s.data, s.demo)
        reference, rest = split_reference(frame, s.data, s.demo)
        cut = [part for _, part in cut_batches(rest, s.data, s.demo)]
        cut = [part for part in cut if len(part) >= s.validation.min_rows]
        return Stream(name, s, reference, cut)
    kind, task = PLANTED[name]
    made = planted.make_stream(kind, task, batches=batches, batch_rows=batch_rows, seed=seed)
    params = ROOT / ("params.yaml" if task == "regression" else "params.bank.yaml")
    base = load_settings(params).settings
    data = DataSettings(
        id="row_id",
        target="target",
        timestamp="day",
        prediction="prediction",
        features=[*planted.NUMERIC, *planted.CATEGORICAL],
        categorical=planted.CATEGORICAL,
        segments=planted.CATEGORICAL,
        positive_label=1 if task == "classification" else None,
    )
    promo = base.promotion.model_copy(
        update={"fairness": base.promotion.fairness.model_copy(update={"columns": []})}
    )
    s = base.model_copy(update={"data": data, "promotion": promo})
    return Stream(name, s, made.reference, made.batches, made.change_batch, made.harmful)


@dataclass
class Model:
    version: int
    pipeline: object
    train: pd.DataFrame
    trained_through: int
    baseline: float | None = None
    importance: dict[str, float] | None = None
    calibrator: estimation.Calibrator | None = None
    reference_preds: pd.Series | None = None


@dataclass
class Outcome:
    name: str
    values: list[float] = field(default_factory=list)
    retrains: int = 0
    promotions: int = 0
    rejections: int = 0
    rollbacks: int = 0
    promoted_at: list[int] = field(default_factory=list)
    alarms: list[int] = field(default_factory=list)  # batches with dataset drift (policy only)
    detected_at: int | None = None  # first batch at or after the change that violated a rule
    seconds: float = 0.0
    promoted_by_seed: list[list[int]] = field(default_factory=list)  # merge() of seeds
    detected_by_seed: list[int | None] = field(default_factory=list)

    def mean(self) -> float:
        return float(np.mean(self.values))


def metric_of(st: Stream, frame: pd.DataFrame, preds: pd.DataFrame) -> float:
    return _metrics(st, frame, preds)[st.metric]


def _metrics(st: Stream, frame: pd.DataFrame, preds: pd.DataFrame) -> dict[str, float]:
    s = st.s
    score = preds[scoring.SCORE] if scoring.SCORE in preds.columns else None
    return compute_metrics(
        frame[s.data.target],
        preds[s.data.prediction],
        s.project.task,
        y_score=score,
        positive_label=s.data.positive_label,
    )


class Replay:
    """One strategy's replay of a stream: the serving model, its shadow on probation, the
    predictions, labels so far and the policy's memory."""

    def __init__(self, st: Stream, name: str, measured: bool):
        self.st, self.s, self.measured = st, st.s, measured
        self.out = Outcome(name)
        self.version = 1
        self.champion = self._train(st.reference, 0, True)  # every first champion: a baseline
        self.previous: Model | None = None
        self.on_probation = False
        self.preds: dict[int, pd.DataFrame] = {}
        self.shadow: dict[int, pd.DataFrame] = {}
        self.served_by: dict[int, int] = {}
        self.retrain_at: list[int] = []
        self.challenges: list[policy.Challenge] = []

    def _train(self, frame: pd.DataFrame, through: int, measured: bool) -> Model:
        """A model on `frame`; measured: as train_candidate does (validation metrics,
        permutation importance, calibration), which the policy reads."""
        s = self.s
        if not measured:
            x, y = split_xy(frame, s.data)
            pipeline = build_pipeline(s.data, s.training, s.project.task).fit(x, y)
            return Model(self.version, pipeline, frame, through)
        trained = fit_model(frame, s.data, s.training, s.project.task)
        model = Model(
            self.version,
            trained.pipeline,
            frame,
            through,
            baseline=trained.cv_metrics.get(self.st.metric),
            importance=trained.importance,
            calibrator=(
                estimation.Calibrator.from_dict(trained.calibration)
                if trained.calibration
                else None
            ),
        )
        model.reference_preds = self.score(model, frame)[s.data.prediction]
        return model

    def score(self, model: Model, frame: pd.DataFrame) -> pd.DataFrame:
        return scoring.score_frame(model.pipeline, frame, self.s.data, self.s.project.task)

    def serve(self, index: int, frame: pd.DataFrame) -> None:
        preds = self.score(self.champion, frame)
        self.preds[index], self.served_by[index] = preds, self.champion.version
        self.out.values.append(metric_of(self.st, frame, preds))
        if self.on_probation and self.previous is not None:
            self.shadow[index] = self.score(self.previous, frame)
        if self.on_probation:
            self._judge_probation(index)

    def challenge(self, index: int, since_drop: int | None = None) -> None:
        """Trains a challenger on the labelled window and promotes it when it wins; since_drop:
        the policy's proposal, the window is then chosen as the retrain flow does."""
        st, s = self.st, self.s
        labelled = [
            windows.LabelledBatch(str(i), i, frame)
            for i, frame in enumerate(st.batches, start=1)
            if i <= index - st.delay
        ]
        try:
            window = windows.build_window(st.reference, labelled, s.training)
        except InsufficientDataError:
            return
        if window.holdout_from_index <= self.champion.trained_through:
            return  # no labelled batch the champion did not see: nothing to compare on
        options = windows.window_options(st.reference, labelled, s.training, since_drop)
        if len(options) > 1:
            window, _ = choose_window(
                options, s.data, s.training, s.project.task, s.promotion.metric
            )
        self.version += 1
        self.out.retrains += 1
        self.retrain_at.append(index)
        cand = self._train(window.train, window.through_index, self.measured)
        hold = window.holdout
        cand_scored, champ_scored = self.score(cand, hold), self.score(self.champion, hold)
        result = promotion.compare_models(
            hold,
            cand_scored,
            champ_scored,
            s.promotion,
            s.data,
            s.project.task,
            gate=gate.threshold_gate,
            candidate_version=str(cand.version),
            champion_version=str(self.champion.version),
            min_segment_rows=s.performance.min_segment_rows,
            champion_baseline=(self.champion.baseline if s.promotion.metric == st.metric else None),
        )
        metric = s.promotion.metric
        gain = -worsening(
            metric,
            result.champion_metrics[metric],
            result.candidate_metrics[metric],
            s.project.task,
        )
        self.challenges.append(policy.Challenge(index, gain, result.promote))
        if result.promote:
            cand.baseline = result.candidate_metrics.get(st.metric, cand.baseline)
            self.previous, self.champion = self.champion, cand
            self.on_probation = s.promotion.probation.batches > 0
            self.out.promotions += 1
            self.out.promoted_at.append(index)
        else:
            self.out.rejections += 1
        if VERBOSE:
            print(f"    {self.out.name} batch {index}: {result.summary()}")

    def _judge_probation(self, index: int) -> None:
        s, st, champ = self.s, self.st, self.champion
        done = [
            i
            for i in sorted(self.shadow)
            if i <= index - st.delay and self.served_by[i] == champ.version
        ][: s.promotion.probation.batches]
        if len(done) < s.promotion.probation.batches:
            return
        rows = pd.concat(
            [
                pd.concat(
                    [
                        st.batches[i - 1][[s.data.target]].reset_index(drop=True),
                        self.preds[i].drop(columns=[s.data.id]).reset_index(drop=True),
                        probation.shadow_columns(self.shadow[i], s.data)
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
            st.metric,
            champion_version=str(champ.version),
            previous_version=str(self.previous.version),
            score_column=scoring.SCORE if scoring.SCORE in rows.columns else None,
        )
        self.on_probation = False
        if verdict.status == "failed":
            self.champion, self.previous = self.previous, None
            self.out.rollbacks += 1


def run_schedule(st: Stream, every: int | None, name: str) -> Outcome:
    r = Replay(st, name, measured=False)
    for index, frame in enumerate(st.batches, start=1):
        r.serve(index, frame)
        if every is not None and index % every == 0:
            r.challenge(index)
    return r.out


def run_policy(st: Stream, s: Settings | None = None) -> Outcome:
    """The policy as monitor-batch applies it: inputs gathered as tasks/policy does."""
    st = st if s is None else Stream(st.name, s, st.reference, st.batches, st.change, st.harmful)
    s = st.s
    r = Replay(st, "policy", measured=True)
    realized: dict[int, tuple[float, tuple[float, float] | None]] = {}
    shares: dict[int, tuple[float, float]] = {}
    violated: dict[int, tuple[str, ...]] = {}
    last_challenge = 0
    for index, frame in enumerate(st.batches, start=1):
        r.serve(index, frame)
        arrived = index - st.delay  # labels of that batch arrive now
        if arrived >= 1:
            realized[arrived] = _realized(st, arrived, r.preds[arrived])
        champ = r.champion
        report = drift.compute_drift(
            champ.train,
            frame,
            s.data,
            s.drift,
            prediction_reference=champ.reference_preds,
            prediction_current=r.preds[index][s.data.prediction],
            importance=champ.importance,
        )
        if report.dataset_drift:
            r.out.alarms.append(index)
        shares[index] = (report.drift_share, report.weighted_drift_share)
        own = [i for i in sorted(realized) if r.served_by[i] == champ.version]
        first = [i for i in sorted(shares) if r.served_by.get(i) == champ.version and i < index]
        window = s.retrain.persistence.window
        value, interval = realized[own[-1]] if own else (None, None)
        keep = s.training.window_batches + s.training.holdout_batches
        evaluated = tuple(policy.Evaluated(i, *realized[i]) for i in own[-keep:])
        seen = max(champ.trained_through, last_challenge)
        inputs = policy.PolicyInputs(
            batch_index=index,
            drift_share=report.drift_share,
            weighted_drift_share=report.weighted_drift_share,
            baseline_drift_share=shares[first[0]][0] if first else None,
            baseline_weighted_drift_share=shares[first[0]][1] if first else None,
            prediction_drifted=report.prediction.drifted if report.prediction else None,
            metric=st.metric,
            current_metric=value,
            current_interval=interval,
            estimated_metric=_estimate(st, champ, r.preds[index]),
            baseline_metric=champ.baseline,
            batches_since_champion=index - seen,
            recent=tuple(
                policy.BatchSignal(i, violated[i]) for i in range(max(1, index - window + 1), index)
            ),
            retrain_batches=tuple(r.retrain_at),
            challenges=tuple(r.challenges[-max(s.retrain.gain.lookback, 10) :]),
            evaluated=evaluated,
            holdout_batches=s.training.holdout_batches,
        )
        decision = policy.decide_retraining(inputs, s.retrain, s.project.task)
        violated[index] = tuple(decision.violated)
        harmful = {"drift", "performance", "estimated"} & set(decision.violated)
        if st.change and index >= st.change and harmful and r.out.detected_at is None:
            r.out.detected_at = index
        if VERBOSE and (decision.retrain or decision.violated):
            print(f"    policy batch {index}: {decision.summary()}")
        if decision.retrain:
            before = r.out.retrains
            r.challenge(index, decision.window_batches)
            if r.out.retrains > before:
                last_challenge = index
    return r.out


def _realized(st: Stream, index: int, preds: pd.DataFrame) -> tuple[float, tuple | None]:
    """The realized metric of a labelled batch and its bootstrap interval (as the evaluation
    logs them: performance.bootstrap)."""
    s, frame = st.s, st.batches[index - 1]
    value = metric_of(st, frame, preds)
    score = preds[scoring.SCORE] if scoring.SCORE in preds.columns else None
    intervals = bootstrap_intervals(
        frame[s.data.target],
        preds[s.data.prediction],
        s.project.task,
        y_score=score,
        positive_label=s.data.positive_label,
        settings=s.performance.bootstrap,
    )
    return value, intervals.get(st.metric)


def _estimate(st: Stream, model: Model, preds: pd.DataFrame) -> float | None:
    if model.calibrator is None or not st.s.performance.estimate:
        return None
    estimated = estimation.estimate_batch(preds, model.calibrator, st.s.data)
    return estimated.get(st.metric)


def best_schedule(streams: list[Stream], retrains: int) -> tuple[int, Outcome] | None:
    """The best fixed schedule with the policy's retrain count over all `streams` (the seeds
    of one stream; the same k on each, as one cron would), or the next higher count."""
    n = len(streams[0].batches)
    if retrains == 0:
        return None
    counts = {k: len(streams) * (n // k) for k in range(1, n + 1)}
    target = min((c for c in counts.values() if c >= retrains), default=None)
    if target is None:
        return None
    tried = [
        (k, merge([run_schedule(st, k, f"schedule/{k}") for st in streams]))
        for k, c in counts.items()
        if c == target
    ]
    better = _better(streams[0])
    return max(tried, key=lambda t: better(t[1].mean()))


def merge(outcomes: list[Outcome]) -> Outcome:
    """One strategy over several seeds: values one after the other, counts summed; promoted_at
    and detected_at are kept per seed (promoted_by_seed, detected_by_seed)."""
    out = Outcome(outcomes[0].name)
    for o in outcomes:
        out.values += o.values
        out.retrains += o.retrains
        out.promotions += o.promotions
        out.rejections += o.rejections
        out.rollbacks += o.rollbacks
        out.alarms += o.alarms
        out.seconds += o.seconds
        out.promoted_by_seed.append(o.promoted_at)
        out.detected_by_seed.append(o.detected_at)
    return out


def _better(st: Stream) -> Callable[[float], float]:
    """A key that is larger for a better value of the stream's metric."""
    sign = -1.0 if metric_direction(st.metric, st.s.project.task) == "min" else 1.0
    return lambda v: sign * v


def alarm_runs(batch_rows: int, batches: int = 40) -> tuple[int, int, float]:
    """Dataset-drift alarms of the first champion's drift check on the stationary control cut
    at batch_rows: (alarms, the most in any ALARMS_PER batches, mean drifted-feature share)."""
    st = load_stream("stationary", batch_rows=batch_rows, batches=batches)
    s = st.s
    x, y = split_xy(st.reference, s.data)
    model = build_pipeline(s.data, s.training, s.project.task).fit(x, y)
    ref_preds = scoring.score_frame(model, st.reference, s.data, s.project.task)
    found, shares = [], []
    for frame in st.batches:
        preds = scoring.score_frame(model, frame, s.data, s.project.task)
        report = drift.compute_drift(
            st.reference,
            frame,
            s.data,
            s.drift,
            prediction_reference=ref_preds[s.data.prediction],
            prediction_current=preds[s.data.prediction],
        )
        found.append(int(report.dataset_drift))
        shares.append(report.drift_share)
    windowed = max(sum(found[i : i + ALARMS_PER]) for i in range(len(found) - ALARMS_PER + 1))
    return sum(found), windowed, float(np.mean(shares))


def run_stream(name: str, seeds: int = 1) -> dict:
    """Every strategy on a stream; a planted stream is drawn `seeds` times (seeds 0, 1, ...)
    and each strategy's batches over all draws count as one sample."""
    draws = [load_stream(name, seed=i) for i in range(seeds if name in PLANTED else 1)]
    st = draws[0]
    print(
        f"\n{name}: {st.s.project.task}, reference {len(st.reference)} rows, "
        f"{len(st.batches)} batches x {len(draws)} draw(s), metric {st.metric}"
        + (
            f", change at batch {st.change} ({'harmful' if st.harmful else 'harmless'})"
            if st.change
            else ""
        )  # fmt: skip
    )
    timed: list[Outcome] = []

    def timed_run(fn: Callable[[Stream], Outcome]) -> Outcome:
        outs = []
        for draw in draws:
            start = time.perf_counter()
            out = fn(draw)
            out.seconds = time.perf_counter() - start
            outs.append(out)
        out = merge(outs)
        timed.append(out)
        return out

    never = timed_run(lambda d: run_schedule(d, None, "never"))
    every = timed_run(lambda d: run_schedule(d, 1, "every"))
    pol = timed_run(run_policy)
    start = time.perf_counter()
    found = best_schedule(draws, pol.retrains)
    sched = found[1] if found else None
    if sched is not None:
        sched.seconds = time.perf_counter() - start
        timed.insert(2, sched)
    print(
        f"  {'strategy':<12} {st.metric:>8} {'retrains':>9} {'wasted':>7} {'promoted':>9} "
        f"{'rollbacks':>10} {'to promotion':>13} {'alarms':>7} {'seconds':>8}"
    )
    for o in timed:
        lag = _lag(st, o.promoted_by_seed)
        alarms = str(len(o.alarms)) if o.name == "policy" else ""
        print(
            f"  {o.name:<12} {o.mean():>8.4g} {o.retrains:>9} {o.rejections:>7} "
            f"{o.promotions:>9} {o.rollbacks:>10} {lag:>13} {alarms:>7} {o.seconds:>8.1f}"
        )
    rival = sched or never  # 0 retrains: the schedule with the same count is never
    wins = verdict(st, pol, rival)
    detect, worst = None, None
    if st.change and st.harmful:
        lags = [None if at is None else at - (st.change + st.delay) for at in pol.detected_by_seed]
        worst = None if None in lags else max(lags)
        detect = worst is not None and worst <= DETECT_WITHIN
    return {
        "stream": name,
        "metric": st.metric,
        "draws": len(draws),
        "never": never.mean(),
        "every": (every.mean(), every.retrains),
        "schedule": (sched.mean(), sched.retrains, sched.name) if sched else None,
        "policy": pol,
        "wins": wins,
        "detect": detect,
        "lag": worst,
    }


VARIANTS = {  # name -> (section, update): one setting changed from the stream's params file
    "shipped": (None, {}),
    "prediction_drift": ("retrain", {"prediction_drift": True}),
    "max_estimated_drop 0.1": ("retrain", {"max_estimated_drop": 0.1}),
    "point evidence": ("retrain", {"performance_evidence": "point"}),
    "equal weighting": ("retrain", {"drift_weighting": "equal"}),
    "no long window": ("training", {"long_window_batches": None}),
}


def run_variants(name: str, seeds: int) -> tuple[str, str, list[str]]:
    """The policy on `name` with each VARIANTS change: (name, metric, one cell per variant)."""
    draws = [load_stream(name, seed=i) for i in range(seeds if name in PLANTED else 1)]
    cells = []
    for section, update in VARIANTS.values():
        s = draws[0].s
        if (
            section == "retrain"
            and "max_estimated_drop" in update
            and s.project.task != "classification"
        ):
            cells.append("")  # CBPE estimates classification only
            continue
        if section is not None:
            changed = getattr(s, section).model_copy(update=update)
            s = s.model_copy(update={section: changed})
        out = merge([run_policy(d, s) for d in draws])
        cells.append(f"{out.mean():.4g} ({out.retrains}, {out.rejections})")
    print(
        f"  variants of {name}: "
        + "; ".join(f"{k} {c}" for k, c in zip(VARIANTS, cells, strict=True))
    )
    return name, draws[0].metric, cells


def verdict(st: Stream, pol: Outcome, rival: Outcome) -> str:
    """ "yes" when the policy's mean is at least the rival's; else "tie" when the 95 % percentile
    bootstrap interval of the mean per-batch difference (scipy.stats.bootstrap, paired by
    batch) still reaches 0, "NO" when the rival is better beyond that noise."""
    better = _better(st)
    diff = np.array([better(a) - better(b) for a, b in zip(pol.values, rival.values, strict=True)])
    if diff.mean() >= -1e-12:
        return "yes"
    ci = scipy.stats.bootstrap(
        (diff,), np.mean, confidence_level=0.95, method="percentile", random_state=0
    ).confidence_interval
    return "tie" if ci.high >= 0 else "NO"


def _lag(st: Stream, promoted_by_seed: list[list[int]]) -> str:
    """Batches from the change to the first promotion after it: the slowest draw's."""
    if not st.change:
        return ""
    lags = [next((i - st.change for i in at if i >= st.change), None) for at in promoted_by_seed]
    return "none" if None in lags else f"{max(lags)} batches"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", nargs="+", default=list(STREAMS), choices=STREAMS)
    parser.add_argument("--alarm-sizes", nargs="*", type=int, default=[50, 300, 3000])
    parser.add_argument(
        "--seeds", type=int, default=3, help="draws of each planted stream (seeds 0, 1, ...)"
    )
    parser.add_argument(
        "--variants",
        action="store_true",
        help="also run the policy with each rule that ships off turned on (and the long window "
        "off): the evidence for the shipped defaults",
    )
    parser.add_argument("--verbose", action="store_true", help="print each decision")
    args = parser.parse_args(argv)
    global VERBOSE
    VERBOSE = args.verbose
    rows = []
    with threadpool_limits(limits=1):
        for name in args.streams:
            rows.append(run_stream(name, args.seeds))
        variant_rows = (
            [run_variants(name, args.seeds) for name in args.streams] if args.variants else []
        )
        sizes = []
        for n in args.alarm_sizes:
            start = time.perf_counter()
            sizes.append((n, *alarm_runs(n), time.perf_counter() - start))
    print(
        "\nsummary (the metric's mean over all batches; schedule: the best at the policy's count)"
    )
    print(
        "| stream | draws | metric | never | every batch | fixed schedule | policy "
        "| policy >= schedule | drift alarms | change noticed |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed = 0
    for row in rows:
        pol: Outcome = row["policy"]
        ev_mean, ev_n = row["every"]
        sched = row["schedule"]
        sched_text = f"{sched[0]:.4g} ({sched[2]}, {sched[1]})" if sched else "= never"
        noticed = ""
        if row["detect"] is not None:
            lag = "never" if row["lag"] is None else f"{row['lag']:+d} after labels"
            noticed = ("yes, " if row["detect"] else "NO, ") + lag
        failed += (row["wins"] == "NO") + (row["detect"] is False)
        print(
            f"| {row['stream']} | {row['draws']} | {row['metric']} | {row['never']:.4g} "
            f"| {ev_mean:.4g} ({ev_n}) "
            f"| {sched_text} | {pol.mean():.4g} ({pol.retrains}, {pol.rejections} wasted) "
            f"| {row['wins']} | {len(pol.alarms)} | {noticed} |"
        )
    if variant_rows:
        print("\npolicy variants (the metric's mean over all draws; retrains, wasted)")
        print("| stream | metric | " + " | ".join(VARIANTS) + " |")
        print("|---|---|" + "---|" * len(VARIANTS))
        for name, metric, cells in variant_rows:
            print(f"| {name} | {metric} | " + " | ".join(cells) + " |")
    if sizes:
        print(f"\nstationary control, first champion's drift check, {ALARMS_PER}-batch windows:")
        print("| rows per batch | dataset-drift alarms | most in any 20 | mean drifted share | s |")
        print("|---|---|---|---|---|")
        for n, alarms, windowed, share, secs in sizes:
            failed += windowed > 1
            print(f"| {n} | {alarms} of 40 | {windowed} | {share:.3f} | {secs:.1f} |")
    print(f"\n{'all targets met' if not failed else f'{failed} target(s) MISSED'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
