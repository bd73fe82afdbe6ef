"""Streams with known, planted changes: the ground truth a retrain policy is judged against
(pure, seeded; issue "a policy that beats a fixed schedule").

Each stream is a time-ordered table with an id, a daily timestamp, numeric and categorical
features and a target, cut into batches of `batch_rows`, and says where its change is:

- stationary   nothing changes (the control: no drift alarm, no retrain needed)
- abrupt       the relation between inputs and target changes at one batch (concept drift)
- gradual      the relation moves from the old to the new one over `ramp_batches` batches
- covariate    a feature's distribution shifts inside the range it had before (x3: mean
               +0.75 sd, spread 0.6 of before), the relation stays (drift that should not
               trigger a retrain: a model trained before still predicts well; a shift out of
               the range seen in training is not harmless for a tree model, which does not
               extrapolate)
- label_shift  classification: the share of the positive class changes, inputs given the
               class do not (prior shift)

Regression targets are a noisy function of the features; classification targets are drawn
from a logistic model of the same function.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

KINDS = ("stationary", "abrupt", "gradual", "covariate", "label_shift")
NUMERIC = ["x1", "x2", "x3", "x4"]
CATEGORICAL = ["segment"]
SEGMENTS = ["a", "b", "c"]


@dataclass(frozen=True)
class PlantedStream:
    """A stream and its truth: the reference period, then batches; the first batch (1-based,
    after the reference) the change touches, and whether it hurts a model trained before it
    (concept drift, label shift) or not (covariate)."""

    kind: str
    task: str
    frame: pd.DataFrame
    batch_rows: int
    reference_batches: int
    change_batch: int | None
    harmful: bool

    @property
    def reference(self) -> pd.DataFrame:
        return self.frame.iloc[: self.reference_batches * self.batch_rows]

    @property
    def batches(self) -> list[pd.DataFrame]:
        rows, start = self.batch_rows, self.reference_batches * self.batch_rows
        return [self.frame.iloc[i : i + rows] for i in range(start, len(self.frame), rows)]


def make_stream(
    kind: str,
    task: str = "regression",
    *,
    batches: int = 30,
    batch_rows: int = 300,
    reference_batches: int = 6,
    change_batch: int = 15,
    ramp_batches: int = 6,
    seed: int = 0,
) -> PlantedStream:
    """Returns a stream of reference_batches + batches batches of batch_rows rows; the change
    (if any) starts at batch `change_batch` counted after the reference.

    Raises:
        ValueError: an unknown kind or task, label_shift on regression, a change outside the
            stream.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")
    if task not in ("regression", "classification"):
        raise ValueError(f"unknown task {task!r}")
    if kind == "label_shift" and task != "classification":
        raise ValueError("label_shift needs task classification")
    if kind != "stationary" and not 1 <= change_batch <= batches:
        raise ValueError(f"change_batch {change_batch} outside 1..{batches}")
    rng = np.random.default_rng(seed)
    total = (reference_batches + batches) * batch_rows
    batch_of_row = np.arange(total) // batch_rows - reference_batches + 1  # <= 0: reference
    # how far the change has gone at each row: 0 before, 1 after (a ramp for gradual)
    if kind == "stationary":
        progress = np.zeros(total)
    elif kind == "gradual":
        progress = np.clip((batch_of_row - change_batch + 1) / ramp_batches, 0, 1)
    else:
        progress = (batch_of_row >= change_batch).astype(float)
    x = rng.normal(size=(total, len(NUMERIC)))
    if kind == "covariate":  # x3 narrows and moves inside the range it had; the relation stays
        x[:, 2] = np.where(progress > 0, 0.75 + 0.6 * x[:, 2], x[:, 2])
    segment = rng.choice(SEGMENTS, size=total, p=[0.5, 0.3, 0.2])
    seg_effect = pd.Series(segment).map({"a": 0.0, "b": 1.0, "c": -1.0}).to_numpy()
    old = 2.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5 * x[:, 2] + seg_effect
    # the new relation: x1's effect reverses, x4 starts to matter
    new = -1.0 * x[:, 0] - 1.0 * x[:, 1] + 0.5 * x[:, 2] + 1.5 * x[:, 3] + seg_effect
    if kind in ("abrupt", "gradual"):
        signal = (1 - progress) * old + progress * new
    else:
        signal = old
    if task == "regression":
        target = signal + rng.normal(scale=0.5, size=total)
    else:
        p = 1 / (1 + np.exp(-(signal - 1.0)))
        target = np.where(rng.uniform(size=total) < p, 1, 0)
        if kind == "label_shift":  # inputs given the class stay: resample x | y from before
            target = _prior_shift(rng, x, segment, target, progress)
    frame = pd.DataFrame(x, columns=NUMERIC).round(4)
    frame.insert(0, "row_id", np.arange(1, total + 1))
    frame.insert(1, "day", (pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(total) //
                 max(batch_rows // 7, 1), unit="D")).strftime("%Y-%m-%d"))  # fmt: skip
    frame["segment"] = segment
    frame["target"] = target
    harmful = kind in ("abrupt", "gradual", "label_shift")
    return PlantedStream(
        kind,
        task,
        frame,
        batch_rows,
        reference_batches,
        None if kind == "stationary" else change_batch,
        harmful,
    )


def _prior_shift(
    rng: np.random.Generator,
    x: np.ndarray,
    segment: np.ndarray,
    target: np.ndarray,
    progress: np.ndarray,
) -> np.ndarray:
    """Label shift proper: after the change, rows are drawn from the before-change rows of a
    class chosen with the new prior, so p(x | y) stays and only p(y) moves."""
    before = np.flatnonzero(progress == 0)
    pos, neg = before[target[before] == 1], before[target[before] == 0]
    base = target[before].mean()
    share = min(0.9, base + 0.3)  # the new share of the positive class
    out = target.copy()
    for i in np.flatnonzero(progress > 0):
        donor = rng.choice(pos) if rng.uniform() < share else rng.choice(neg)
        x[i], segment[i], out[i] = x[donor], segment[donor], target[donor]
    return out
