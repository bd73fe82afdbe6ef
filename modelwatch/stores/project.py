"""A project opened for work: settings, resolved stores, MLflow client and experiment ids."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from modelwatch import io
from modelwatch.errors import SchemaError, VersioningError
from modelwatch.settings import Paths, Settings, load_settings
from modelwatch.stores import tracking, versioning
from modelwatch.stores.ledger import Ledger, open_ledger

log = logging.getLogger(__name__)

REFERENCE = "data/reference/reference.csv"
WINDOW = "data/windows/train.csv"
HOLDOUT = "data/windows/holdout.csv"
MODEL_FILE = "models/model.skops"
TRAIN_METRICS = "metrics/train.json"


@dataclass(frozen=True)
class Project:
    settings: Settings
    paths: Paths
    client: Any
    experiments: tracking.Experiments
    ledger: Ledger

    @property
    def model_name(self) -> str:
        return self.settings.project.model_name

    def repo_path(self, rel: str) -> Path:
        return self.paths.data_repo / rel


def open_project(params_path: Path | str) -> Project:
    """Loads params, creates missing stores (data repo, experiments); returns the project.

    Raises:
        ConfigError: params file invalid.
    """
    loaded = load_settings(params_path)
    paths = loaded.paths
    for folder in (paths.home, paths.incoming_batches, paths.incoming_labels, paths.artifact_root):
        folder.mkdir(parents=True, exist_ok=True)
    versioning.init_data_repo(paths.data_repo, paths.dvc_remote, paths.params_file)
    client = tracking.configure(paths)
    experiments = tracking.ensure_experiments(
        client, loaded.settings.tracking.experiment, paths.experiment_artifact_root
    )
    return Project(loaded.settings, paths, client, experiments, open_ledger(paths.ledger_url))


def load_reference(project: Project) -> pd.DataFrame:
    """Returns the drift/validation reference: the current champion's training data.

    Raises:
        VersioningError: no reference has been versioned yet (bootstrap not run).
    """
    path = project.repo_path(REFERENCE)
    if not path.exists():
        raise VersioningError(f"{path}: no reference data yet (run `modelwatch bootstrap` first)")
    return io.read_csv_file(path)


@dataclass(frozen=True)
class RejectedLabels:
    """A labels file refused at the door: its name, every problem, where it was kept."""

    name: str
    problems: tuple[str, ...]
    folder: Path


def ingest_labels(project: Project, step: int) -> tuple[list[Path], list[RejectedLabels]]:
    """Checks the labels files that arrived in incoming/labels (performance.labels), copies
    the good ones into the data repo and returns every labels file there that DVC does not
    track yet (the new ones, and any that an interrupted run copied but never versioned), and
    the files refused: kept with a report in <quarantine>/labels/<name>/, never read again.

    Each good file's ids are matched with the ids batches delivered (the ledger's row ids):
    rows whose ids only rejected batches delivered are kept apart in that quarantine folder
    (rows_of_rejected_batches.csv, with a report) and never evaluated; ids no batch delivered
    yet are counted. The counts go to the ledger (label_checks) at this step. The incoming file
    is removed only once its copy is whole, so a kill at any point loses no labels."""
    from modelwatch.performance.labels import check_labels

    dest = project.repo_path("data/labels")
    dest.mkdir(parents=True, exist_ok=True)
    copied, refused = set(), []
    waiting = sorted(project.paths.incoming_labels.glob("*.csv"))
    reference = load_reference(project) if waiting else None
    for src in waiting:
        by_request = False
        if src.is_symlink():
            problems = ["a symbolic link, not a file: refused (it is not followed)"]
        else:
            try:
                frame = io.read_csv_file(src)
            except SchemaError as exc:
                problems = [str(exc).removeprefix(f"{src}: ")]
            else:
                data, task = project.settings.data, project.settings.project.task
                by_request = data.id not in frame.columns
                frame, problems = _by_request_id(project, frame)
                problems = problems or check_labels(frame, reference, data, task)
        if problems:
            refused.append(_quarantine_labels(project, src, problems))
            continue
        target = dest / src.name
        keep = _match_labels(project, src, frame, step)
        if keep is None and by_request:
            keep = frame  # keyed by request_id: the file taken in is the one keyed by id
        if keep is not None:  # some rows belong to rejected batches: the rest is taken in
            if len(keep):
                partial = target.with_name(f".{target.name}.partial")
                io.write_csv(keep, partial)
                partial.replace(target)
                copied.add(target)
        elif not (target.exists() and io.file_md5(target) == io.file_md5(src)):
            partial = target.with_name(f".{target.name}.partial")
            shutil.copyfile(src, partial)
            partial.replace(target)  # atomic: the repo never holds half a labels file
            copied.add(target)
        src.unlink()
    untracked = {p for p in dest.glob("*.csv") if not p.with_name(f"{p.name}.dvc").exists()}
    return sorted(copied | untracked), refused


def _by_request_id(project: Project, frame: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """A labels file keyed by request_id, keyed by the id column (performance.labels)."""
    from modelwatch.performance.labels import REQUEST_ID, map_request_ids
    from modelwatch.serving.logfiles import served_ids

    data = project.settings.data
    if data.id in frame.columns or REQUEST_ID not in frame.columns:
        return frame, []
    log_dir = project.paths.home / project.settings.serving.log_dir
    known = served_ids(log_dir, data, frame[REQUEST_ID].dropna().astype(str).tolist())
    return map_request_ids(frame, data, known)


def _match_labels(
    project: Project, src: Path, frame: pd.DataFrame, step: int
) -> pd.DataFrame | None:
    """Counts a labels file's ids that no batch delivered and those only rejected batches
    delivered (ledger label_checks); keeps the latter rows apart in the labels quarantine.
    Returns the rows to take in when some were kept apart, else None (take the file as is)."""
    from modelwatch.performance.labels import id_keys, key_of

    ids = frame[project.settings.data.id]
    matched = project.ledger.match_row_ids(project.model_name, id_keys(ids))
    keys = ids.map(key_of)
    unknown = int((~keys.isin(list(matched))).sum())
    rejected = keys.map(lambda k: matched.get(k) is False).astype(bool)
    kept_apart = None
    if rejected.any():
        folder = project.paths.quarantine / "labels" / io.safe_stem(src.name, io.file_md5(src))
        folder.mkdir(parents=True, exist_ok=True)
        io.write_csv(frame[rejected], folder / "rows_of_rejected_batches.csv")
        lines = [
            f"# Labels file {src.name}: {int(rejected.sum())} row(s) of rejected batches",
            "",
            f"- {int(rejected.sum())} of {len(frame)} rows label ids that only rejected "
            "(quarantined) batches delivered: kept here, never evaluated or used for training",
            f"- the other {int((~rejected).sum())} row(s) were taken in",
            "",
        ]
        io.write_text("\n".join(lines), folder / "report.md")
        kept_apart = str(folder)
        log.warning(
            "labels file %s: %d row(s) of rejected batches kept apart in %s",
            src.name,
            int(rejected.sum()),
            folder,
        )
    project.ledger.add_label_check(
        project.model_name,
        src.name,
        step,
        rows=len(frame),
        unknown=unknown,
        of_rejected=int(rejected.sum()),
        kept_apart=kept_apart,
    )
    return frame[~rejected] if rejected.any() else None


def _quarantine_labels(project: Project, src: Path, problems: list[str]) -> RejectedLabels:
    """Moves a refused labels file into <quarantine>/labels/<name>/ with report.md."""
    digest = "0" * 8 if src.is_symlink() else io.file_md5(src)
    folder = project.paths.quarantine / "labels" / io.safe_stem(src.name, digest)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Labels file {src.name} refused", "", *[f"- {p}" for p in problems], ""]
    io.write_text("\n".join(lines), folder / "report.md")
    kept = folder / (src.name if not src.name.startswith(".") else f"{folder.name}.csv")
    if src.is_symlink():
        src.unlink()  # the link only: its target is not ours
    else:
        shutil.move(str(src), kept)
    log.warning("labels file %s refused, kept in %s: %s", src.name, folder, "; ".join(problems))
    return RejectedLabels(src.name, tuple(problems), folder)


def all_labels(project: Project, since_step: int = 0) -> pd.DataFrame:
    """Returns the labels (id, target) of the files taken in at or after a step (the ledger
    knows which), later files winning on duplicate ids: labels arrive after their batch, so a
    batch of step s needs only the files from step s on, and reading them costs the same however
    many weeks of labels came before."""
    data = project.settings.data
    folder = project.repo_path("data/labels")
    names = project.ledger.label_files_since(project.model_name, since_step)
    files = [folder / n for n in names if (folder / n).exists()]
    if not files:
        return pd.DataFrame({data.id: pd.Series(dtype="int64"), data.target: pd.Series()})
    frames = [io.read_csv_file(f)[[data.id, data.target]] for f in files]
    return pd.concat(frames, ignore_index=True).drop_duplicates(data.id, keep="last")


def labelled_batches(
    project: Project, batch_ids: list[str], since_step: int = 0
) -> list[tuple[str, pd.DataFrame]]:
    """Returns (batch id, inputs joined with labels) for those of the given accepted batches
    (none older than since_step) whose labels have all arrived, in the order given."""
    data = project.settings.data
    labels = all_labels(project, since_step)
    out = []
    for batch_id in batch_ids:
        path = project.repo_path("data/batches") / f"{batch_id}.csv"
        if not path.exists():
            continue
        batch = io.read_csv_file(path)
        joined = batch.merge(labels, on=data.id, how="inner")
        if len(joined) == len(batch):
            out.append((batch_id, joined))
    return out


def store_for_repo(project: Project, src: Path, rel_dir: str, name: str | None = None) -> Path:
    """Copies a file into the data repository folder rel_dir; returns the new path."""
    target = project.repo_path(rel_dir) / (name or src.name)
    if target.exists() and target.resolve() == src.resolve():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, target)
    return target


def recent_batches(project: Project, order: list[str], count: int) -> list[str]:
    """Returns the ids of the newest `count` accepted batches that are stored, oldest first."""
    folder = project.repo_path("data/batches")
    found: list[str] = []
    for batch_id in reversed(order):  # newest first: at most `count` files looked at (and gaps)
        if (folder / f"{batch_id}.csv").is_file():
            found.append(batch_id)
            if len(found) == count:
                break
    return found[::-1]


def batches_with_predictions(
    project: Project, batch_ids: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """Returns the stored inputs of these batches and the predictions made for them."""
    data = project.settings.data
    frames, preds = [], []
    for batch_id in batch_ids:
        frames.append(io.read_csv_file(project.repo_path("data/batches") / f"{batch_id}.csv"))
        stored = io.read_csv_file(project.repo_path("data/predictions") / f"{batch_id}.csv")
        preds.append(stored[data.prediction])
    return pd.concat(frames, ignore_index=True), pd.concat(preds, ignore_index=True)


TIMELINE_RUN = "timeline_run_id"  # ledger meta: the monitoring timeline run


def log_timeline(proj: Project, metrics: dict[str, float | None], index: int) -> None:
    """Adds a batch's metrics to the monitoring timeline run (lines over batches in MLflow);
    the run's id is kept in the ledger, so finding it costs the same at every batch."""
    tracking.log_timeline(proj.client, timeline_run(proj), metrics, index)


def timeline_run(proj: Project) -> str:
    """Returns the id of the monitoring timeline run, made (once) the first time it is asked."""
    run_id = proj.ledger.get_meta(proj.model_name, TIMELINE_RUN)
    if run_id is None:
        run_id = tracking.timeline_run(proj.client, proj.experiments.monitoring, proj.model_name)
        proj.ledger.set_meta(proj.model_name, TIMELINE_RUN, run_id)
    return run_id
