"""Inputs that must never break or age the loop, through the real monitor-batch flow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.e2e.test_lifecycle import QUIET_RETRAIN, Life
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

DATA = Path(__file__).resolve().parents[1] / "data"


def test_a_burst_of_rejected_batches_does_not_age_the_champion(tmp_path):
    """20 rejected batches between two good ones: with a staleness limit of 4 accepted batches
    the second good batch (the 2nd accepted since bootstrap) must not retrain for staleness,
    although its step is 22."""
    from flows.monitor import monitor_batch

    life = Life(tmp_path)
    raw = yaml.safe_load(life.params.read_text())
    raw["retrain"] = {**raw["retrain"], **QUIET_RETRAIN, "max_model_age_batches": 4}
    life.params.write_text(yaml.safe_dump(raw, sort_keys=False))
    life.bootstrap()
    assert life.monitor(1, return_state=True).is_completed()
    bad = pd.read_csv(DATA / "bike_out_of_range.csv")
    folder = life.loaded.paths.incoming_batches
    for i in range(20):
        frame = bad.copy()
        frame.loc[0, "temp"] = round(0.01 * (i + 1), 2)  # 20 different files, all out of range
        target = folder / f"bad-{i:02d}.csv"
        frame.to_csv(target, index=False)
        state = monitor_batch(batch_path=target, params_path=life.params, return_state=True)
        assert state.name == "Rejected", state.message
    result = life.monitor(2)
    assert result.index == 22
    assert not result.decision.retrain, result.decision.summary()
    assert "champion is 2 batches old (limit 4)" in result.decision.summary()


def test_awkward_file_names_stay_inside_the_project(tmp_path):
    """'...csv' (its stem is '..'), a non-ASCII name and a quote in the name, through the
    real flow: quarantine stays in its folder, artifact keys and MLflow filters hold, and
    `modelwatch decision` finds the batch by its id."""
    import shutil

    from flows.monitor import monitor_batch
    from modelwatch.app import status
    from modelwatch.stores import history

    life = Life(tmp_path)
    life.bootstrap()
    folder = life.loaded.paths.incoming_batches
    folder.mkdir(parents=True, exist_ok=True)
    dots = folder / "...csv"
    shutil.copyfile(DATA / "bike_out_of_range.csv", dots)
    state = monitor_batch(batch_path=dots, params_path=life.params, return_state=True)
    assert state.name == "Rejected"
    quarantine = life.loaded.paths.quarantine
    (kept,) = [p for p in quarantine.iterdir() if p.is_dir()]
    assert kept.parent == quarantine and kept.name.startswith("batch-")
    assert not (quarantine.parent / "...csv").exists()
    for name in ("semaine d'été.csv",):
        target = folder / name
        shutil.copyfile(life.batches[0].inputs, target)
        state = monitor_batch(batch_path=target, params_path=life.params, return_state=True)
        assert state.is_completed(), state.message
        run = history.find_by_batch_id(life.client, life.exps.monitoring, "semaine d'été")
        assert run is not None and run.status == history.ACCEPTED
        assert "semaine d'été" in status.decision_record(life.params, "semaine d'été")


def test_bad_labels_files_are_refused_and_never_break_a_later_batch(tmp_path):
    """A non-numeric target, a missing target column and text ids in labels files: each is
    refused at intake with its problem, kept in quarantine, alerted; the good labels of the
    same drop evaluate their batch, and the next batches run."""
    life = Life(tmp_path)
    life.bootstrap()
    assert life.monitor(1, return_state=True).is_completed()
    incoming = life.loaded.paths.incoming_labels
    incoming.mkdir(parents=True, exist_ok=True)
    good = pd.read_csv(life.batches[0].labels)
    broken = good.copy()
    broken["cnt"] = broken["cnt"].astype(str)
    broken.loc[0, "cnt"] = "thirty"
    broken.to_csv(incoming / "a-text-target.csv", index=False)
    good[["instant"]].to_csv(incoming / "b-no-target.csv", index=False)
    texts = good.copy()
    texts["instant"] = texts["instant"].map(lambda v: f"{v:,}x")
    texts.to_csv(incoming / "c-text-ids.csv", index=False)
    life.labels(1)  # and the right labels of batch 1
    second = life.monitor(2)
    third = life.monitor(3)
    assert [e.batch_id for e in second.evaluations] == [life.batch_id(1)]
    assert third.batch_id == life.batch_id(3)
    quarantine = life.loaded.paths.quarantine / "labels"
    assert sorted(p.name for p in quarantine.iterdir()) == [
        "a-text-target",
        "b-no-target",
        "c-text-ids",
    ]
    report = (quarantine / "a-text-target" / "report.md").read_text()
    assert "column 'cnt': the target must be a number, 1 value(s) are not (e.g. 'thirty')" in report
    assert "column 'cnt' is missing" in (quarantine / "b-no-target" / "report.md").read_text()
    assert (
        "ids are numbers in the reference" in (quarantine / "c-text-ids" / "report.md").read_text()
    )
    assert not list(incoming.glob("*.csv"))
    stored = life.loaded.paths.data_repo / "data" / "labels"
    assert not any(stored.glob("a-text-target*")) and not any(stored.glob("c-text-ids*"))


def test_labels_of_a_rejected_batch_are_kept_apart_and_unknown_ids_counted(tmp_path, receiver):  # noqa: F811
    """One labels file holds the labels of an accepted batch, of a rejected batch and of ids no
    batch delivered: the accepted batch is evaluated, the rejected batch's rows are kept apart
    in the labels quarantine (never evaluated), the unknown ids are counted in the batch's run
    and in `status`, and a warning goes out."""
    from flows.monitor import monitor_batch
    from modelwatch.app import status

    hook = {"name": "ops", "url": f"{receiver.base}/hook", "min_severity": "info"}
    life = Life(tmp_path, alerts={"webhooks": [hook]})
    life.bootstrap()
    assert life.monitor(1, return_state=True).is_completed()
    rejected = pd.read_csv(life.batches[1].inputs)
    rejected.loc[0, "temp"] = 7.5  # out of range: the whole batch is rejected
    folder = life.loaded.paths.incoming_batches
    rejected.to_csv(folder / "bad-week.csv", index=False)
    state = monitor_batch(batch_path=folder / "bad-week.csv", params_path=life.params,
                          return_state=True)  # fmt: skip
    assert state.name == "Rejected"
    first, second = (pd.read_csv(life.batches[k].labels) for k in (0, 1))
    unknown = first.head(10).assign(instant=lambda f: f["instant"] + 9_000_000)
    mixed = pd.concat([first, second, unknown], ignore_index=True)
    incoming = life.loaded.paths.incoming_labels
    incoming.mkdir(parents=True, exist_ok=True)
    mixed.to_csv(incoming / "mixed.csv", index=False)

    result = life.monitor(3)
    assert [e.batch_id for e in result.evaluations] == [life.batch_id(1)]
    run = life.run_of(3)
    assert run.metrics["labels.files_in"] == 1
    assert run.metrics["labels.rows_in"] == len(mixed)
    assert run.metrics["labels.unknown_ids"] == 10
    assert run.metrics["labels.rejected_batch_rows"] == len(second)
    apart = life.loaded.paths.quarantine / "labels" / "mixed"
    kept = pd.read_csv(apart / "rows_of_rejected_batches.csv")
    assert sorted(kept["instant"]) == sorted(second["instant"])
    assert (
        f"{len(second)} of {len(mixed)} rows label ids that only rejected"
        in (apart / "report.md").read_text()
    )
    stored = pd.read_csv(life.loaded.paths.data_repo / "data" / "labels" / "mixed.csv")
    assert len(stored) == len(first) + 10 and not stored["instant"].isin(second["instant"]).any()
    text = status.status(life.params)
    assert (
        f"labels: 1 file(s), {len(mixed)} row(s) taken in; 10 id(s) matched no batch; "
        f"{len(second)} row(s) of rejected batches kept apart"
    ) in text
    titles = [b["text"] for b in receiver.bodies("/hook")]
    assert any(f"Labels of rejected batches kept apart ({len(second)} rows)" in t for t in titles)


def test_an_evaluation_that_raises_does_not_stop_the_next_batch(tmp_path):
    """Batch 1's stored predictions are damaged after its labels arrived: batch 2 is processed
    and accepted (the evaluation of batch 1 is reported as failed, not done), and once the file
    is whole again batch 3 evaluates batch 1."""
    life = Life(tmp_path)
    life.bootstrap()
    assert life.monitor(1, return_state=True).is_completed()
    life.labels(1)
    stored = life.loaded.paths.data_repo / "data" / "predictions" / f"{life.batch_id(1)}.csv"
    whole = stored.read_bytes()
    stored.write_text("instant,prediction\nnot,numbers\n")
    second = life.monitor(2)
    assert second.batch_id == life.batch_id(2) and second.evaluations == ()
    assert "labels_evaluated" not in life.run_of(1).tags
    stored.write_bytes(whole)
    third = life.monitor(3)
    assert [e.batch_id for e in third.evaluations] == [life.batch_id(1)]
    assert life.run_of(1).tags["labels_evaluated"] == "true"
