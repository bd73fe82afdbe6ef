"""Cut the bundled dataset into a reference period, production batches and late label files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from modelwatch import io
from modelwatch.errors import ConfigError
from modelwatch.settings import DataSettings, DemoSettings


@dataclass(frozen=True)
class DemoBatch:
    """One production batch: its inputs file and the label file that arrives later."""

    index: int
    batch_id: str
    inputs: Path
    labels: Path | None


@dataclass(frozen=True)
class DemoPlan:
    reference: Path
    batches: tuple[DemoBatch, ...]
    label_delay: int

    def labels_due(self, index: int) -> list[DemoBatch]:
        """Returns the batches whose labels have arrived by the time batch `index` comes in."""
        return [
            b for b in self.batches if b.labels is not None and b.index <= index - self.label_delay
        ]


def load_source(path: Path, data: DataSettings, demo: DemoSettings) -> pd.DataFrame:
    """Returns the demo source in time order, with an id column added when configured.

    Raises:
        ConfigError: a configured column is missing from the source file.
    """
    frame = io.read_csv_file(path)
    if demo.add_row_id:
        frame.insert(0, data.id, range(1, len(frame) + 1))
    needed = [data.id, data.target, *data.features] + ([data.timestamp] if data.timestamp else [])
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: columns {missing} named in params.yaml are not in the file")
    return frame


def split_reference(
    frame: pd.DataFrame, data: DataSettings, demo: DemoSettings
) -> tuple[pd.DataFrame, pd.DataFrame]:
    if demo.reference_rows is not None:
        return frame.iloc[: demo.reference_rows], frame.iloc[demo.reference_rows :]
    if data.timestamp is None:
        raise ConfigError("demo.reference_end needs data.timestamp")
    ts = pd.to_datetime(frame[data.timestamp])
    cut = ts < pd.Timestamp(demo.reference_end)
    return frame[cut], frame[~cut]


def cut_batches(
    rest: pd.DataFrame, data: DataSettings, demo: DemoSettings
) -> list[tuple[str, pd.DataFrame]]:
    if demo.batch_rows is not None:
        starts = range(0, len(rest), demo.batch_rows)
        return [(f"rows{s}", rest.iloc[s : s + demo.batch_rows]) for s in starts]
    if data.timestamp is None:
        raise ConfigError("demo.batch_freq needs data.timestamp")
    ts = pd.to_datetime(rest[data.timestamp])
    try:
        groups = rest.set_index(ts).groupby(
            pd.Grouper(freq=demo.batch_freq, label="left", closed="left")
        )
    except ValueError as exc:
        raise ConfigError(f"demo.batch_freq: {exc} (got {demo.batch_freq!r})") from None
    out = []
    for start, part in groups:
        if len(part):
            out.append((start.strftime("%Y-%m-%d"), part.reset_index(drop=True)))
    return out


def prepare_demo(source: Path, data: DataSettings, demo: DemoSettings, out_dir: Path) -> DemoPlan:
    """Writes reference.csv, batches/<id>.csv (inputs only) and labels/<id>.csv; returns the plan.

    Raises:
        ConfigError: the demo section does not fit the source file.
    """
    frame = load_source(source, data, demo)
    if demo.shuffle_seed is not None:  # a stationary control stream: time order destroyed
        frame = frame.sample(frac=1.0, random_state=demo.shuffle_seed).reset_index(drop=True)
    reference, rest = split_reference(frame, data, demo)
    if len(reference) == 0 or len(rest) == 0:
        raise ConfigError(
            f"demo: the reference rule leaves {len(reference)} reference rows and "
            f"{len(rest)} production rows; both must be non-empty"
        )
    inputs_cols = [data.id, *([data.timestamp] if data.timestamp else []), *data.features]
    io.write_csv(reference[[*inputs_cols, data.target]], out_dir / "reference.csv")
    cuts = cut_batches(rest, data, demo)[: demo.max_batches]
    batches: list[DemoBatch] = []
    for i, (start, part) in enumerate(cuts, start=1):
        batch_id = f"batch-{i:03d}-{start}"
        inputs = out_dir / "batches" / f"{batch_id}.csv"
        labels = out_dir / "labels" / f"{batch_id}.csv"
        io.write_csv(part[inputs_cols], inputs)
        io.write_csv(part[[data.id, data.target]], labels)
        batches.append(DemoBatch(i, batch_id, inputs, labels))
        if demo.bad_batch_after == i and demo.bad_batch_column:
            batches.append(_bad_copy(part[inputs_cols], batch_id, demo, out_dir, i))
    return DemoPlan(out_dir / "reference.csv", tuple(batches), demo.label_delay_batches)


def _bad_copy(
    part: pd.DataFrame, batch_id: str, demo: DemoSettings, out_dir: Path, index: int
) -> DemoBatch:
    """A faulty re-delivery of a batch: one column recorded in the wrong unit (e.g. percent)."""
    col = demo.bad_batch_column
    if col not in part.columns:
        raise ConfigError(f"demo.bad_batch_column: {col!r} is not a batch column")
    bad = part.copy()
    bad[col] = bad[col] * demo.bad_batch_factor
    bad_id = f"{batch_id}-sensor-fault"
    path = out_dir / "batches" / f"{bad_id}.csv"
    io.write_csv(bad, path)
    return DemoBatch(index, bad_id, path, None)
