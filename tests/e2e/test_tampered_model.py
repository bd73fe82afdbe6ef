"""A champion whose files were changed in the MLflow store, through the real monitor flow:
the batch fails cleanly with one line naming the version and a critical alert; nothing in the
file runs; once the files are restored the same batch runs."""

from __future__ import annotations

import pickle
import shutil

import pytest
import yaml

from modelwatch.stores import integrity, registry
from modelwatch.stores.ledger import open_ledger
from tests.e2e.test_lifecycle import Life
from tests.integration.test_delivery import receiver  # noqa: F401 (a fixture)
from tests.integration.test_integrity import Marker

pytestmark = pytest.mark.slow


def test_a_tampered_champion_fails_the_batch_cleanly_and_alerts(tmp_path, receiver):  # noqa: F811
    hook = {"name": "ops", "url": f"{receiver.base}/hook", "min_severity": "warning"}
    life = Life(tmp_path, alerts={"webhooks": [hook]})
    life.bootstrap()
    assert life.monitor(1, return_state=True).is_completed()
    champion = registry.require_alias(life.client, life.name, registry.CHAMPION).version
    folder = integrity.model_folder(life.client, life.name, champion)
    saved = tmp_path / "saved"
    shutil.copytree(folder, saved)
    marker = tmp_path / "pwned"
    (folder / "model.pkl").write_bytes(pickle.dumps(Marker(str(marker))))
    meta = yaml.safe_load((folder / "MLmodel").read_text())
    meta["flavors"]["sklearn"].update(serialization_format="pickle", pickled_model="model.pkl")
    (folder / "MLmodel").write_text(yaml.safe_dump(meta))

    state = life.monitor(2, return_state=True)
    assert state.is_failed() and state.name == "Failed"
    assert f"model {life.name} version {champion}: its files changed" in state.message
    assert not marker.exists()
    titles = receiver.titles("/hook")
    assert any("Model refused" in t for t in titles), titles
    assert life.aliases()["champion"] == champion
    ledger = open_ledger(life.loaded.paths.ledger_url)
    (waiting,) = ledger.unfinished(life.name)
    assert waiting.batch_id == life.batch_id(2) and "ModelIntegrityError" in (waiting.error or "")

    shutil.rmtree(folder)
    shutil.copytree(saved, folder)
    result = life.monitor(2)
    assert result.batch_id == life.batch_id(2)
    assert life.run_of(2).tags["champion_version"] == champion
