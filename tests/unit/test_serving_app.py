"""The scoring endpoint in process (httpx's ASGI transport, no registry): a classifier's
probabilities and score columns in the answer and the log, and a model that raises on valid input
(a 500 with a clear message, counted, logged). The models are set into the service by hand; the
lifespan (alias watcher, flush timer) is not started."""

from __future__ import annotations

import asyncio
import random

import httpx
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from modelwatch.serving import app, schema
from modelwatch.serving.metrics import ServingMetrics
from modelwatch.serving.models import ModelWatcher, Served
from modelwatch.serving.predlog import PredictionLog
from modelwatch.settings import DataSettings, ServingSettings

DATA = DataSettings(id="id", target="y", features=["a", "b"], positive_label=1)
COLUMNS = [schema.Column("a", "double"), schema.Column("b", "long")]


class Broken:
    """A model that fails on any input (stands for a model with a bug; not under test)."""

    def predict(self, x):
        raise ValueError("boom")


def post(svc: app.Service, path: str, **kwargs) -> httpx.Response:
    """One request to the app in process (httpx's ASGI transport; no lifespan, no server)."""

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app.create_app(svc))
        async with httpx.AsyncClient(transport=transport, base_url="http://serving") as client:
            return await client.post(path, **kwargs)

    return asyncio.run(send())


def service(tmp_path, model, shadow_share=0.0, max_rows=10000) -> app.Service:
    watcher = ModelWatcher(None, None, "m", [], 60.0, lambda *_: None)
    watcher.champion.served = Served("7", model, COLUMNS)
    plog = PredictionLog(tmp_path, "daily", 60)
    settings = ServingSettings(shadow_share=shadow_share, max_rows=max_rows)
    return app.Service(
        settings, DATA, "classification", watcher, plog, ServingMetrics(), random.Random(0)
    )


@pytest.fixture(scope="module")
def classifier():
    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.normal(size=80), "b": rng.integers(0, 5, 80)})
    return LogisticRegression().fit(x, (x["a"] + 0.2 * x["b"] > 0.4).astype(int)), x


def test_a_classifier_answers_with_the_positive_class_probability_and_logs_it(tmp_path, classifier):
    """Reference: the fitted LogisticRegression's own predict and predict_proba."""
    model, x = classifier
    svc = service(tmp_path, model)
    body = {"dataframe_records": x.head(3).to_dict("records")}
    r = post(svc, "/predict", json=body, headers={"X-Request-ID": "q1"})
    assert r.status_code == 200
    answer = r.json()
    assert answer["predictions"] == model.predict(x.head(3)).tolist()
    np.testing.assert_allclose(answer["probabilities"], model.predict_proba(x.head(3))[:, 1])
    (requests, rows) = sorted(svc.predlog.flush(), key=lambda p: p.name)
    logged = pq.read_table(rows).to_pandas()
    np.testing.assert_allclose(logged["prediction_score"], answer["probabilities"])
    assert logged["id"].tolist() == ["q1:0", "q1:1", "q1:2"]
    assert logged["shadow.prediction_score"].isna().all()
    # the champion's kind of value, null where not shadow-scored
    assert str(pq.read_schema(rows).field("shadow.prediction").type) == "int64"


def test_a_model_that_raises_is_a_500_naming_the_version_counted_and_logged(tmp_path):
    svc = service(tmp_path, Broken())
    body = {"dataframe_records": [{"a": 1.0, "b": 2}]}
    r = post(svc, "/invocations", json=body)
    assert r.status_code == 500
    assert r.json()["error"] == "model version 7 failed to score the request: ValueError: boom"
    assert svc.metrics.errors.labels("500")._value.get() == 1
    assert svc.metrics.rows._value.get() == 0
    (requests,) = svc.predlog.flush()
    record = pq.read_table(requests).to_pandas().iloc[0]
    assert (record["status"], record["model_version"], record["format"]) == (500, "7", "json")
    assert record["error"].endswith("ValueError: boom")


def test_a_body_far_larger_than_max_rows_allow_is_413_before_it_is_read(tmp_path, classifier):
    model, _ = classifier
    svc = service(tmp_path, model, max_rows=1)
    limit = 1 * (2 + 4) * app.CELL_BYTES + 65536
    body = b'{"dataframe_records": [{"a": 1.0, "b": 2, "pad": "' + b"x" * limit + b'"}]}'
    r = post(svc, "/predict", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"] == (
        f"request body of {len(body)} bytes or more; at most {limit} bytes for "
        "serving.max_rows rows: split the request"
    )
