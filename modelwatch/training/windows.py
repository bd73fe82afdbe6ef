"""Choose the training window and the holdout that neither champion nor challenger has seen."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from modelwatch.errors import InsufficientDataError
from modelwatch.settings import TrainingSettings


@dataclass(frozen=True)
class LabelledBatch:
    batch_id: str
    index: int
    frame: pd.DataFrame


@dataclass(frozen=True)
class TrainingWindow:
    train: pd.DataFrame
    holdout: pd.DataFrame
    train_batches: tuple[str, ...]
    holdout_batches: tuple[str, ...]
    through_index: int
    holdout_from_index: int

    def describe(self) -> str:
        return (
            f"train on {len(self.train)} rows ({', '.join(self.train_batches)}); "
            f"compare on {len(self.holdout)} rows ({', '.join(self.holdout_batches)})"
        )


def build_window(
    reference: pd.DataFrame, labelled: list[LabelledBatch], settings: TrainingSettings
) -> TrainingWindow:
    """Returns the newest `holdout_batches` labelled batches as holdout and the
    `window_batches` before them as training data (the reference fills in when too few).

    Raises:
        InsufficientDataError: fewer labelled batches than the holdout needs.
    """
    ordered = sorted(labelled, key=lambda b: b.index)
    if len(ordered) < settings.holdout_batches:
        raise InsufficientDataError(
            f"{len(ordered)} labelled batch(es) so far; comparing models needs "
            f"{settings.holdout_batches} that no model was trained on (training.holdout_batches)"
        )
    holdout = ordered[len(ordered) - settings.holdout_batches :]
    before = ordered[: len(ordered) - settings.holdout_batches][-settings.window_batches :]
    parts = [b.frame for b in before]
    names = [b.batch_id for b in before]
    if len(before) < settings.window_batches:
        parts.insert(0, reference)
        names.insert(0, "reference")
    cols = list(reference.columns)
    return TrainingWindow(
        train=pd.concat([p[cols] for p in parts], ignore_index=True),
        holdout=pd.concat([b.frame[cols] for b in holdout], ignore_index=True),
        train_batches=tuple(names),
        holdout_batches=tuple(b.batch_id for b in holdout),
        through_index=before[-1].index if before else 0,
        holdout_from_index=holdout[0].index,
    )


def window_options(
    reference: pd.DataFrame,
    labelled: list[LabelledBatch],
    settings: TrainingSettings,
    since_drop: int | None = None,
) -> list[TrainingWindow]:
    """Returns the windows a retrain fits and chooses from on the shared holdout
    (fit.choose_window): training's own first; then `long_window_batches` when set and the
    labelled batches reach past training's own window (on a stream that only drifts, or not at
    all, more rows make a better model); then the `since_drop` batches the retrain policy
    proposes after a performance drop when fewer than training's own (after a concept change the
    older rows teach the old relation). Options with the same training batches appear once.

    Raises:
        InsufficientDataError: see build_window.
    """
    sizes = [settings.window_batches]
    if settings.long_window_batches is not None:
        sizes.append(settings.long_window_batches)
    if since_drop is not None and since_drop < settings.window_batches:
        sizes.append(since_drop)
    options: list[TrainingWindow] = []
    for size in sizes:
        sized = settings.model_copy(update={"window_batches": size})
        window = build_window(reference, labelled, sized)
        if all(window.train_batches != o.train_batches for o in options):
            options.append(window)
    return options
