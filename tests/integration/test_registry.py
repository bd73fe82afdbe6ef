"""Registry aliases and model logging against a real MLflow SQLite store in tmp_path."""

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from modelwatch.errors import RegistryError
from modelwatch.settings import Paths
from modelwatch.stores import registry, tracking
from modelwatch.stores.alias_history import AliasHistory
from modelwatch.stores.ledger import open_ledger

NAME = "bike-test"


def make_paths(folder: Path) -> Paths:
    return Paths(folder, folder / "params.yaml", folder / "home")


def point_mlflow_at(paths: Paths, mp: pytest.MonkeyPatch):
    """configure() sets these process-wide; setenv first so the monkeypatch removes them again."""
    mp.setenv("MLFLOW_TRACKING_URI", paths.tracking_uri)
    mp.setenv("MLFLOW_REGISTRY_URI", paths.tracking_uri)
    return tracking.configure(paths)


def reset_mlflow() -> None:
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def fit(x: pd.DataFrame, y: pd.Series, alpha: float) -> Pipeline:
    return Pipeline([("scale", StandardScaler()), ("model", Ridge(alpha=alpha))]).fit(x, y)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Built once: a store with two pipelines logged in two training runs as versions 1 and 2.
    The cwd is an empty folder meanwhile, so a stray ./mlruns or ./mlartifacts would show."""
    base = tmp_path_factory.mktemp("registry")
    paths = make_paths(base)
    cwd = base / "cwd"
    cwd.mkdir()
    rng = np.random.default_rng(5)
    x = pd.DataFrame(rng.normal(size=(80, 3)), columns=["temp", "hum", "windspeed"])
    y = pd.Series(3 * x["temp"] - 2 * x["hum"] + rng.normal(0, 0.1, 80), name="cnt")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        client = point_mlflow_at(paths, mp)
        experiments = tracking.ensure_experiments(client, "x", paths.artifact_root)
        models, runs = {}, {}
        for alpha in (1.0, 100.0):
            model = fit(x, y, alpha)
            with tracking.run(experiments.training, f"ridge-{alpha}", {"alpha": str(alpha)}) as rid:
                _, version = tracking.log_sklearn_model(model, x, NAME)
            models[version], runs[version] = model, rid
        reset_mlflow()
    return {
        "paths": paths,
        "cwd": cwd,
        "experiments": experiments,
        "models": models,
        "runs": runs,
        "x": x,
    }


@pytest.fixture
def client(built, tmp_path, monkeypatch):
    """A private copy of the built store (aliases are per test; artifacts stay in the original)."""
    paths = make_paths(tmp_path)
    paths.home.mkdir()
    shutil.copyfile(built["paths"].mlflow_db, paths.mlflow_db)
    yield point_mlflow_at(paths, monkeypatch)
    reset_mlflow()


@pytest.fixture
def history(tmp_path):
    """The alias history next to the client fixture's store (<home>/registry)."""
    return AliasHistory(make_paths(tmp_path).registry_dir, NAME)


def test_log_registers_consecutive_versions_with_their_runs(built, client):
    assert sorted(built["models"]) == ["1", "2"]
    for version, run_id in built["runs"].items():
        mv = client.get_model_version(NAME, version)
        assert mv.run_id == run_id
        run = client.get_run(run_id)
        assert run.info.experiment_id == built["experiments"].training
        assert run.data.tags["alpha"] == {"1": "1.0", "2": "100.0"}[version]


def test_promote_moves_champion_and_keeps_previous(built, client, history, tmp_path, monkeypatch):
    monkeypatch.setenv("MODELWATCH_ACTOR", "alice")
    assert registry.promote(client, NAME, "1", history=history) is None
    assert registry.aliases(client, NAME) == {"champion": "1"}
    assert registry.get_alias(client, NAME, registry.PREVIOUS) is None

    assert (
        registry.promote(
            client,
            NAME,
            "2",
            history=history,
            via="retrain/run-7",
            reason="lower MAE",
            decision_id="d-2",
        )
        == "1"
    )
    assert registry.aliases(client, NAME) == {"champion": "2", "previous_champion": "1"}
    champion = registry.require_alias(client, NAME, registry.CHAMPION)
    assert (champion.version, champion.run_id) == ("2", built["runs"]["2"])
    previous = registry.require_alias(client, NAME, registry.PREVIOUS)
    assert (previous.version, previous.run_id) == ("1", built["runs"]["1"])

    # promoting the champion again must not overwrite previous_champion with itself
    assert registry.promote(client, NAME, "2", history=history) == "2"
    assert registry.aliases(client, NAME) == {"champion": "2", "previous_champion": "1"}

    # two transactions of two records each; the no-op third promotion recorded nothing
    records = history.records()
    moves = [
        (r.seq, r.txn, r.action, r.state, r.from_version, r.to_version, r.previous_after)
        for r in records
    ]
    assert moves == [
        (1, 1, "promote", "prepared", None, "1", None),
        (2, 1, "promote", "committed", None, "1", None),
        (3, 3, "promote", "prepared", "1", "2", "1"),
        (4, 3, "promote", "committed", "1", "2", "1"),
    ]
    who = {(r.actor, r.via, r.reason, r.decision_id) for r in records[2:]}
    assert who == {("alice", "retrain/run-7", "lower MAE", "d-2")}
    assert (records[0].via, records[0].reason, records[0].decision_id) == (None, "", "")
    assert history.path == tmp_path / "home" / "registry" / f"{NAME}.aliases.jsonl"


def test_promote_of_missing_version_changes_nothing(client, history):
    registry.promote(client, NAME, "1", history=history)
    before = history.path.read_bytes()
    with pytest.raises(RegistryError, match=f"^model '{NAME}' has no version '7'$"):
        registry.promote(client, NAME, "7", history=history)
    assert registry.aliases(client, NAME) == {"champion": "1"}
    assert history.path.read_bytes() == before


def test_set_challenger_with_history_records_a_set(client, history):
    registry.set_challenger(client, NAME, "1", history=history, actor="bob", reason="trained")
    registry.set_challenger(client, NAME, "2", history=history, actor="bob", reason="retrained")
    assert registry.aliases(client, NAME) == {"challenger": "2"}
    got = [(r.action, r.alias, r.from_version, r.to_version, r.state) for r in history.records()]
    assert got == [
        ("set", "challenger", None, "1", "prepared"),
        ("set", "challenger", None, "1", "committed"),
        ("set", "challenger", "1", "2", "prepared"),
        ("set", "challenger", "1", "2", "committed"),
    ]
    assert history.champion_at(history.records()[-1].at) is None  # no champion moved


def test_challenger_and_tags(client):
    registry.set_challenger(client, NAME, "2")
    registry.tag_version(client, NAME, "2", {"validation_status": "passed", "holdout_mae": 0.25})
    info = registry.get_alias(client, NAME, registry.CHALLENGER)
    assert info.version == "2"
    assert info.tags == {"validation_status": "passed", "holdout_mae": "0.25"}


def test_missing_alias_or_model_is_none(client):
    assert registry.get_alias(client, NAME, registry.CHAMPION) is None
    assert registry.get_alias(client, "no-such-model", registry.CHAMPION) is None
    assert registry.aliases(client, NAME) == {}
    assert registry.aliases(client, "no-such-model") == {}


@pytest.mark.parametrize("name", [NAME, "no-such-model"])
def test_require_alias_names_model_and_alias(client, history, name):
    registry.promote(client, NAME, "1", history=history)
    with pytest.raises(
        RegistryError,
        match=f"^model '{name}' has no 'challenger' alias "
        r"\(run `modelwatch bootstrap`\)$",
    ):
        registry.require_alias(client, name, registry.CHALLENGER)
    assert registry.aliases(client, NAME) == {"champion": "1"}  # registry unchanged


def test_load_model_predicts_like_the_original(built, client, history, tmp_path):
    models, x = built["models"], built["x"]
    registry.promote(client, NAME, "1", history=history)
    registry.promote(client, NAME, "2", history=history)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    for alias, version in [(registry.CHAMPION, "2"), (registry.PREVIOUS, "1")]:
        loaded = registry.load_model(client, ledger, NAME, alias)
        np.testing.assert_array_equal(loaded.predict(x), models[version].predict(x))
    # the two versions really are different models
    assert not np.allclose(models["1"].predict(x), models["2"].predict(x))


def test_load_model_of_missing_alias(client, tmp_path):
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    with pytest.raises(RegistryError, match=f"^model '{NAME}' has no 'challenger' alias"):
        registry.load_model(client, ledger, NAME, registry.CHALLENGER)


def test_artifacts_land_under_artifact_root_not_cwd(built, client):
    import mlflow

    root, experiments = built["paths"].artifact_root, built["experiments"]
    for exp_id, suffix in [
        (experiments.monitoring, "monitoring"),
        (experiments.training, "training"),
    ]:
        assert client.get_experiment(exp_id).artifact_location == (root / f"x-{suffix}").as_uri()
    for version in ("1", "2"):
        source = client.get_model_version(NAME, version).source  # models:/m-<id>
        logged = mlflow.get_logged_model(source.removeprefix("models:/"))
        location = Path(logged.artifact_location.removeprefix("file://"))
        assert location.is_relative_to(root)
        assert (location / "MLmodel").is_file()
    assert len(list(root.rglob("MLmodel"))) == 2
    assert os.listdir(built["cwd"]) == []


def test_ensure_experiments_is_idempotent(tmp_path, monkeypatch):
    paths = make_paths(tmp_path)
    fresh = point_mlflow_at(paths, monkeypatch)
    try:
        first = tracking.ensure_experiments(fresh, "y", paths.artifact_root)
        assert tracking.ensure_experiments(fresh, "y", paths.artifact_root) == first
        assert first.monitoring != first.training
        assert sorted(e.name for e in fresh.search_experiments()) == [
            "Default",
            "y-monitoring",
            "y-training",
        ]
        assert paths.mlflow_db.is_file()
    finally:
        reset_mlflow()


def test_a_tracking_server_that_does_not_answer_is_not_a_missing_alias(monkeypatch):
    """A server that is down must fail the batch as down, never as "no champion: run bootstrap"
    (found when an MLflow server was killed in the middle of a batch, test_server_mode)."""
    import socket

    from mlflow import MlflowClient

    from modelwatch.errors import StoreUnavailable

    with socket.socket() as s:  # a port where nothing listens: connection refused
        s.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{s.getsockname()[1]}"
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for call in (
        lambda: registry.get_alias(client, NAME, "champion"),
        lambda: registry.require_alias(client, NAME, "champion"),
        lambda: registry.aliases(client, NAME),
        lambda: registry.newest_trained_through(client, NAME),
    ):
        with pytest.raises(StoreUnavailable, match=f"MLflow tracking server {uri} did not answer"):
            call()
