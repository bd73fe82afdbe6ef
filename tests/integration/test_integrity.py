"""Models are verified before they are loaded, on a real MLflow store: a tampered MLmodel
(pickle), a replaced model file and a type outside the allow-list are each refused with a
message naming the version, and nothing in the file runs."""

from __future__ import annotations

import operator
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from modelwatch import names
from modelwatch.errors import ModelIntegrityError
from modelwatch.settings import load_settings
from modelwatch.stores import integrity, tracking
from modelwatch.stores.ledger import open_ledger
from modelwatch.training import fit, trusted
from tests.integration.test_registry import make_paths, point_mlflow_at, reset_mlflow

NAME = "integrity-test"


class Marker:
    """Unpickling this writes a file: proof that a pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    paths = make_paths(tmp_path)
    monkeypatch.chdir(tmp_path)
    client = point_mlflow_at(paths, monkeypatch)
    exps = tracking.ensure_experiments(client, "x", paths.artifact_root)
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    rng = np.random.default_rng(3)
    x = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    y = 2 * x["a"] - x["b"]
    models = {}
    for alpha in (1.0, 50.0):
        model = Pipeline([("s", StandardScaler()), ("m", Ridge(alpha=alpha))]).fit(x, y)
        with tracking.run(exps.training, f"ridge-{alpha}", {}):
            _, version = tracking.log_sklearn_model(model, x, NAME)
        integrity.record(client, ledger, NAME, version)
        models[version] = model
    yield {"client": client, "ledger": ledger, "x": x, "y": y, "models": models, "exps": exps}
    reset_mlflow()


def folder(store, version):
    return integrity.model_folder(store["client"], NAME, version)


def load(store, version):
    return integrity.load_verified(store["client"], store["ledger"], NAME, version)


def test_a_recorded_version_loads_and_predicts_like_the_original(store):
    """Reference: the fitted sklearn pipeline's own predict."""
    model = load(store, "1")
    np.testing.assert_array_equal(
        model.predict(store["x"]), store["models"]["1"].predict(store["x"])
    )
    tag = dict(store["client"].get_model_version(NAME, "1").tags)[names.MODEL_DIGEST]
    assert store["ledger"].get_meta(NAME, "model_digest:1") == tag
    assert tag == integrity.digest_of(integrity.read_files(folder(store, "1")))


def test_an_mlmodel_switched_to_pickle_is_refused_and_nothing_runs(store, tmp_path):
    target = folder(store, "1")
    marker = tmp_path / "pwned"
    (target / "model.pkl").write_bytes(pickle.dumps(Marker(str(marker))))
    meta = yaml.safe_load((target / "MLmodel").read_text())
    meta["flavors"]["sklearn"].update(serialization_format="pickle", pickled_model="model.pkl")
    (target / "MLmodel").write_text(yaml.safe_dump(meta))
    with pytest.raises(ModelIntegrityError, match=rf"^model {NAME} version 1: its files changed"):
        load(store, "1")
    assert not marker.exists()
    # even with the digest record gone (a version from before digests), pickle is refused
    store["ledger"].set_meta(
        NAME, "model_digest:1", integrity.digest_of(integrity.read_files(target))
    )
    with pytest.raises(ModelIntegrityError, match="serialization_format 'pickle'.*never pickle"):
        load(store, "1")
    assert not marker.exists()


def test_a_replaced_model_file_is_refused(store):
    shutil.copyfile(folder(store, "2") / "model.skops", folder(store, "1") / "model.skops")
    with pytest.raises(ModelIntegrityError) as err:
        load(store, "1")
    assert str(err.value).startswith(
        f"model {NAME} version 1: its files changed since registration"
    )
    assert load(store, "2") is not None  # the other version is untouched


def test_a_changed_tag_does_not_change_what_is_trusted(store):
    """The ledger holds the digest loads compare with; the tag is only for people."""
    store["client"].set_model_version_tag(NAME, "1", names.MODEL_DIGEST, "0" * 64)
    assert load(store, "1") is not None


def test_a_type_outside_the_allow_list_is_neither_saved_nor_loaded(store):
    x, y = store["x"], store["y"]
    odd = Pipeline([("f", FunctionTransformer(operator.neg)), ("m", Ridge())]).fit(x, y)
    with pytest.raises(ModelIntegrityError, match="_operator.neg.*training.trusted_types"):
        tracking.log_sklearn_model(odd, x, NAME)
    # registered by someone else, with a MLmodel that trusts it: the load still refuses
    import mlflow

    with tracking.run(store["exps"].training, "outside", {}):
        info = mlflow.sklearn.log_model(
            odd, name="model", registered_model_name=NAME, pip_requirements=[],
            skops_trusted_types=["_operator.neg"],
        )  # fmt: skip
    version = str(info.registered_model_version)
    with pytest.raises(ModelIntegrityError, match=rf"version {version}: model.skops holds types"):
        load(store, version)
    loaded = integrity.load_verified(store["client"], store["ledger"], NAME, version,
                                     ["_operator.neg"])  # fmt: skip
    np.testing.assert_allclose(loaded.predict(x), odd.predict(x))


def test_the_allow_list_is_what_the_built_in_pipelines_need():
    """Reference: skops.io.get_untrusted_types on every built-in model, both tasks, fitted on
    the bundled data: the list is neither narrower (a model could not load) nor wider."""
    found = set()
    for params in ("params.yaml", "params.bank.yaml"):
        loaded = load_settings(params)
        settings = loaded.settings
        frame = pd.read_csv(loaded.paths.resolve(settings.demo.source)).head(300)
        x, y = fit.split_xy(frame, settings.data)
        for model in ("hist_gradient_boosting", "random_forest", "linear", "dummy"):
            training = settings.training.model_copy(update={"model": model, "hyperparameters": {}})
            pipe = fit.build_pipeline(settings.data, training, settings.project.task).fit(x, y)
            found |= set(trusted.needed_types(pipe))
    assert found == set(trusted.ALLOWED_TYPES)


def test_the_train_stage_file_is_skops_and_a_pickle_in_its_place_is_refused(tmp_path):
    x = pd.DataFrame({"a": [1.0, 2, 3, 4], "b": [0.0, 1, 0, 1]})
    model = Pipeline([("m", Ridge())]).fit(x, [1.0, 2, 3, 4])
    path = tmp_path / "model.skops"
    fit.save_model(model, path)
    np.testing.assert_array_equal(fit.load_model(path).predict(x), model.predict(x))
    marker = tmp_path / "pwned"
    path.write_bytes(pickle.dumps(Marker(str(marker))))
    with pytest.raises(ModelIntegrityError, match="not a readable skops file"):
        fit.load_model(path)
    assert not marker.exists()


def test_logging_a_model_says_nothing_about_the_refused_serving_check(store, caplog):
    """MLflow checks the input example by loading the model with its own loader, which the
    no-pickle setting refuses: modelwatch drops that one warning (it loads through integrity)."""
    import logging

    model = store["models"]["1"]
    with caplog.at_level(logging.WARNING, logger="mlflow"):
        with tracking.run(store["exps"].training, "quiet", {}):
            tracking.log_sklearn_model(model, store["x"], NAME)
    assert not [r for r in caplog.records if "serving input" in r.getMessage()]
    assert logging.getLogger("mlflow.models.model").filters == []


def test_a_version_loaded_through_mlflow_elsewhere_still_verifies(store):
    """Loading models:/<name>/<version> from a local store makes MLflow rewrite the version's
    registered_model_meta; that file is outside the digest, every other file is in it."""
    import mlflow.artifacts

    target = folder(store, "1")
    mlflow.artifacts.download_artifacts(f"models:/{NAME}/1")
    (target / "registered_model_meta").write_text("model_name: someone-else\n")
    assert load(store, "1") is not None
    (target / "requirements.txt").write_text("evil-package==6.6.6\n")
    with pytest.raises(ModelIntegrityError, match="its files changed"):
        load(store, "1")
