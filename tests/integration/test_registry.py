"""Registry aliases and model logging against a real MLflow SQLite store in tmp_path."""

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from modelwatch import registry, tracking
from modelwatch.errors import RegistryError
from modelwatch.settings import Paths

NAME = "bike-test"


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A fresh MLflow store; the cwd is an empty folder so stray ./mlruns would show."""
    paths = Paths(tmp_path, tmp_path / "params.yaml", tmp_path / "home")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    # configure() sets these process-wide; setenv first so monkeypatch removes them afterwards
    monkeypatch.setenv("MLFLOW_TRACKING_URI", paths.tracking_uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", paths.tracking_uri)
    client = tracking.configure(paths)
    experiments = tracking.ensure_experiments(client, "x", paths.artifact_root)
    yield paths, client, experiments
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def frame() -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(size=(80, 3)), columns=["temp", "hum", "windspeed"])
    y = pd.Series(3 * x["temp"] - 2 * x["hum"] + rng.normal(0, 0.1, 80), name="cnt")
    return x, y


def fit(x: pd.DataFrame, y: pd.Series, alpha: float) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=alpha))]).fit(x, y)


@pytest.fixture
def two_versions(store, frame):
    """Two pipelines logged in two training runs and registered as versions 1 and 2."""
    _, _, experiments = store
    x, y = frame
    models, runs = {}, {}
    for alpha in (1.0, 100.0):
        model = fit(x, y, alpha)
        with tracking.run(experiments.training, f"ridge-{alpha}", {"alpha": str(alpha)}) as run_id:
            _, version = tracking.log_sklearn_model(model, x, NAME)
        models[version], runs[version] = model, run_id
    return models, runs


def test_log_registers_consecutive_versions_with_their_runs(store, two_versions):
    _, client, experiments = store
    models, runs = two_versions
    assert sorted(models) == ["1", "2"]
    for version, run_id in runs.items():
        mv = client.get_model_version(NAME, version)
        assert mv.run_id == run_id
        assert client.get_run(run_id).info.experiment_id == experiments.training
        assert client.get_run(run_id).data.tags["alpha"] == {"1": "1.0", "2": "100.0"}[version]


def test_promote_moves_champion_and_keeps_previous(store, two_versions):
    _, client, _ = store
    assert registry.promote(client, NAME, "1") is None
    assert registry.aliases(client, NAME) == {"champion": "1"}
    assert registry.get_alias(client, NAME, registry.PREVIOUS) is None

    assert registry.promote(client, NAME, "2") == "1"
    assert registry.aliases(client, NAME) == {"champion": "2", "previous_champion": "1"}
    champion = registry.require_alias(client, NAME, registry.CHAMPION)
    assert (champion.version, champion.run_id) == ("2", two_versions[1]["2"])

    # promoting the champion again must not overwrite previous_champion with itself
    assert registry.promote(client, NAME, "2") == "2"
    assert registry.aliases(client, NAME) == {"champion": "2", "previous_champion": "1"}


def test_challenger_and_tags(store, two_versions):
    _, client, _ = store
    registry.set_challenger(client, NAME, "2")
    registry.tag_version(client, NAME, "2", {"validation_status": "passed", "holdout_mae": 0.25})
    info = registry.get_alias(client, NAME, registry.CHALLENGER)
    assert (info.version, info.tags) == ("2", {"validation_status": "passed", "holdout_mae": "0.25"})


def test_missing_alias_or_model_is_none(store, two_versions):
    _, client, _ = store
    assert registry.get_alias(client, NAME, registry.CHAMPION) is None
    assert registry.get_alias(client, "no-such-model", registry.CHAMPION) is None
    assert registry.aliases(client, "no-such-model") == {}


@pytest.mark.parametrize("name", [NAME, "no-such-model"])
def test_require_alias_names_model_and_alias(store, two_versions, name):
    _, client, _ = store
    registry.promote(client, NAME, "1")
    with pytest.raises(RegistryError,
                       match=f"^model '{name}' has no 'challenger' alias "
                             r"\(run `modelwatch bootstrap`\)$"):
        registry.require_alias(client, name, registry.CHALLENGER)
    assert registry.aliases(client, NAME) == {"champion": "1"}       # registry unchanged


def test_load_model_predicts_like_the_original(store, two_versions, frame):
    _, client, _ = store
    models, _ = two_versions
    x, _ = frame
    registry.promote(client, NAME, "1")
    registry.promote(client, NAME, "2")
    for alias, version in [(registry.CHAMPION, "2"), (registry.PREVIOUS, "1")]:
        loaded = registry.load_model(NAME, alias)
        np.testing.assert_array_equal(loaded.predict(x), models[version].predict(x))
    # the two versions really are different models
    assert not np.allclose(models["1"].predict(x), models["2"].predict(x))


def test_load_model_of_missing_alias(store, two_versions):
    with pytest.raises(RegistryError, match=f"^models:/{NAME}@challenger cannot be loaded: "):
        registry.load_model(NAME, registry.CHALLENGER)


def test_artifacts_land_under_artifact_root_not_cwd(store, two_versions):
    import mlflow

    paths, client, experiments = store
    for exp_id, suffix in [(experiments.monitoring, "monitoring"), (experiments.training, "training")]:
        assert client.get_experiment(exp_id).artifact_location == (
            paths.artifact_root / f"x-{suffix}").as_uri()
    for version in ("1", "2"):
        source = client.get_model_version(NAME, version).source        # models:/m-<id>
        logged = mlflow.get_logged_model(source.removeprefix("models:/"))
        location = Path(logged.artifact_location.removeprefix("file://"))
        assert location.is_relative_to(paths.artifact_root)
        assert (location / "MLmodel").is_file()
    assert len(list(paths.artifact_root.rglob("MLmodel"))) == 2
    assert os.listdir(Path.cwd()) == []
    assert paths.mlflow_db.is_file()


def test_ensure_experiments_is_idempotent(store):
    paths, client, experiments = store
    assert tracking.ensure_experiments(client, "x", paths.artifact_root) == experiments
    assert experiments.monitoring != experiments.training
    names = sorted(e.name for e in client.search_experiments())
    assert names == ["Default", "x-monitoring", "x-training"]
