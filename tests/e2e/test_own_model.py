"""Bring your own model (README): a custom training entry point through the whole loop, and
broken entry points that fail a retrain with one line while the champion keeps serving (adopt:
test_adopt.py). Real flows, stores and DVC stage."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
import yaml

from modelwatch.settings import load_settings
from modelwatch.stores.project import open_project
from tests.e2e.test_lifecycle import LAX_PROMOTION, Life
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "bank_splines"
BANK_RETRAIN = {"max_model_age_batches": 2, "cooldown_batches": 0, "max_drift_share": None,
                "performance_limit": None, "max_performance_drop": None}  # fmt: skip


def example_params(folder: Path, **overrides: dict) -> Path:
    """The example's params and module copied into folder (the module is looked up beside the
    params file), stores in folder/home, a shorter stream."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(EXAMPLE / "bank_splines.py", folder)
    raw = yaml.safe_load((EXAMPLE / "params.yaml").read_text())
    raw["demo"]["source"] = str(ROOT / "data/demo/bank_marketing/bank-marketing.csv")
    raw["project"]["home"] = str(folder / "home")
    for section, values in overrides.items():
        raw[section] = {**(raw.get(section) or {}), **values}
    path = folder / "params.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def versions_of(params: Path) -> list:
    proj = open_project(params)
    name = proj.settings.project.model_name
    found = proj.client.search_model_versions(f"name = '{name}'")
    return sorted(found, key=lambda v: int(v.version))


def test_the_example_entry_point_runs_bootstrap_batches_a_retrain_and_a_promotion(tmp_path):
    from flows.replay import replay

    params = example_params(
        tmp_path,
        demo={"max_batches": 5},
        retrain=BANK_RETRAIN,
        promotion={**LAX_PROMOTION, "threshold": None},
    )
    rows = replay(params_path=params)
    assert [r["validation"] for r in rows] == ["accepted"] * 5
    versions = versions_of(params)
    assert len(versions) >= 2
    assert {v.tags["entry_point"] for v in versions} == {"bank_splines:train"}
    decisions = [r["decision"] for r in rows]
    assert any("promoted" in d for d in decisions), decisions
    repo = load_settings(params).paths.data_repo
    stage = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["train"]
    assert str((tmp_path / "bank_splines.py").resolve()) in stage["deps"]
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["train"]
    assert str((tmp_path / "bank_splines.py").resolve()) in [d["path"] for d in lock["deps"]]


BROKEN = {
    "missing_module:train": "cannot import missing_module: ModuleNotFoundError",
    "broken_fits:returns_text": "returned str, not a fitted estimator (predict missing)",
    "broken_fits:raises": "the fit raised ValueError: no convergence in this window",
}


def test_a_broken_entry_point_fails_the_retrain_with_one_line_and_the_champion_serves(tmp_path):
    from flows.retrain import retrain

    life = Life(tmp_path)
    (tmp_path / "broken_fits.py").write_text(textwrap.dedent(
        """
        def returns_text(window, *, target, **hyperparameters):
            return "a model"

        def raises(window, *, target, **hyperparameters):
            raise ValueError("no convergence in this window")
        """
    ))  # fmt: skip
    life.bootstrap()
    for k in (1, 2, 3):
        life.labels(k)
        assert life.monitor(k, return_state=True).is_completed()
    before = life.aliases()
    raw = yaml.safe_load(life.params.read_text())
    for spec, said in BROKEN.items():
        raw["training"]["entry_point"] = spec
        life.params.write_text(yaml.safe_dump(raw, sort_keys=False))
        state = retrain(reason="try it", params_path=life.params, force=True, return_state=True)
        assert state.is_failed()
        message = state.message
        assert f"training.entry_point {spec}: {said}" in message, message
        assert life.aliases() == before
    result = life.monitor(4)
    assert result.batch_id == life.batch_id(4)
    assert life.run_of(4).tags["champion_version"] == before["champion"]
