"""The scoring service: a FastAPI app run by uvicorn (`modelwatch serve-model`).

POST /predict and /invocations score JSON or CSV rows with the champion; GET /health, /ready and
/metrics. Every scoring request, refused ones included, goes to the prediction log.
"""

from __future__ import annotations

import logging
import random
import re
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from modelwatch.decide.probation import SHADOW_PREFIX
from modelwatch.serving import schema
from modelwatch.serving.metrics import ServingMetrics
from modelwatch.serving.models import ModelWatcher, Served
from modelwatch.serving.predlog import PredictionLog, RequestRecord
from modelwatch.settings import DataSettings, ServingSettings
from modelwatch.training import scoring

log = logging.getLogger(__name__)

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
SHADOW_QUEUE = 64  # requests waiting for shadow scoring; beyond it a drawn request is skipped


class ModelFailed(Exception):
    """The model raised while scoring a valid request (a 500)."""


@dataclass(frozen=True)
class Scored:
    body: dict
    rows: pd.DataFrame


@dataclass
class Service:
    """What the endpoints share: settings, the models, the log, the metrics."""

    serving: ServingSettings
    data: DataSettings
    task: str
    watcher: ModelWatcher
    predlog: PredictionLog
    metrics: ServingMetrics
    rng: random.Random

    def __post_init__(self) -> None:
        self.shadow_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shadow")
        self._pending = threading.BoundedSemaphore(SHADOW_QUEUE)


def create_app(service: Service) -> FastAPI:
    """Returns the app; its lifespan starts the alias watcher and the log's flush timer and, at
    shutdown, finishes shadow scoring and writes the log."""

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        await run_in_threadpool(service.watcher.start)
        service.predlog.start()
        yield
        service.watcher.stop()
        service.shadow_pool.shutdown(wait=True)
        service.predlog.close()
        log.info("serve-model: stopped; prediction log written to %s", service.predlog.log_dir)

    app = FastAPI(title="modelwatch scoring service", lifespan=lifespan)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        champion, challenger = service.watcher.champion.served, service.watcher.challenger.served
        if champion is None:
            return JSONResponse({"status": "not ready", "model_version": None}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "model_version": champion.version,
                "challenger_version": challenger.version if challenger else None,
            }
        )

    @app.get("/metrics")
    def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(service.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def score(request: Request) -> Response:
        return await _score(service, request)

    app.add_api_route("/predict", score, methods=["POST"])
    app.add_api_route("/invocations", score, methods=["POST"])
    return app


async def _score(service: Service, request: Request) -> Response:
    received, start = datetime.now(UTC), time.perf_counter()
    served = service.watcher.champion.served  # read once: this request's model
    sent_id = request.headers.get("x-request-id")
    request_id = sent_id if sent_id and REQUEST_ID.match(sent_id) else uuid.uuid4().hex
    fmt, rows, scored, error = None, 0, None, None
    try:
        if sent_id is not None and sent_id != request_id:
            raise schema.refuse(
                400,
                f"header X-Request-ID {sent_id[:40]!r}: expected 1-128 characters of "
                "letters, digits and . _ : -",
            )
        fmt = schema.media_type(request.headers.get("content-type"))
        if served is None:
            raise schema.refuse(503, "no champion model is loaded yet (see GET /ready)")
        body = await _read_body(request, _max_bytes(service.serving.max_rows, served))
        scored = await run_in_threadpool(
            _score_rows, service, served, body, fmt, request_id, received
        )
        status, rows, answer = 200, len(scored.rows), scored.body
    except schema.RequestError as exc:
        status, rows, answer, error = exc.status, exc.rows, exc.to_dict(), str(exc)
    except ModelFailed as exc:
        status, error = 500, str(exc)
        answer = {"error": error, "column": None, "row": None, "problems": []}
        log.error("serve-model: request %s: %s", request_id, error)
    except Exception as exc:  # a bug of the service: answered, counted and logged like the rest
        status, error = 500, f"internal error of the scoring service: {type(exc).__name__}: {exc}"
        answer = {"error": error, "column": None, "row": None, "problems": []}
        log.exception("serve-model: request %s failed", request_id)
    answer = {"request_id": request_id, **answer}
    seconds = time.perf_counter() - start
    service.metrics.observe(request.url.path, status, seconds, rows)
    record = RequestRecord(
        request_id,
        received,
        status,
        seconds * 1000,
        rows,
        served.version if served else None,
        False,
        error,
        fmt,
    )
    if scored is not None and _draw_shadow(service):
        service.shadow_pool.submit(_shadow, service, record, scored.rows)
    else:
        service.predlog.add(record, scored.rows if scored is not None else None)
    return JSONResponse(answer, status_code=status, headers={"X-Request-ID": request_id})


CELL_BYTES = 256  # a generous size of one value in JSON or CSV, for the body-size bound


def _max_bytes(max_rows: int, served: Served) -> int:
    """The largest body read: max_rows rows of the model's columns at CELL_BYTES per value
    (plus room for ids and extra columns); a larger one is refused before it is in memory."""
    return max_rows * (len(served.columns) + 4) * CELL_BYTES + 65536


async def _read_body(request: Request, limit: int) -> bytes:
    """Returns the body, read up to `limit` bytes.

    Raises:
        RequestError: 413, the body (its Content-Length, or what was read) is larger.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(size: int, limit: int) -> schema.RequestError:
    return schema.refuse(
        413,
        f"request body of {size} bytes or more; at most {limit} bytes for serving.max_rows "
        "rows: split the request",
    )


def _score_rows(
    service: Service, served: Served, body: bytes, fmt: str, request_id: str, received: datetime
) -> Scored:
    """Reads, validates and scores a request; returns the answer and the rows to log."""
    data = service.data
    request = schema.read_request(body, fmt, service.serving.max_rows)
    conformed = schema.conform(request, served.columns, data.id, data.timestamp)
    ids = [
        f"{request_id}:{i}" if not conformed.ids or conformed.ids[i] is None else conformed.ids[i]
        for i in range(request.rows)
    ]
    frame = conformed.frame.assign(**{data.id: ids})
    try:
        out = scoring.score_frame(served.model, frame, data, service.task)
    except Exception as exc:  # the model's own failure: any kind, reported as a 500
        raise ModelFailed(
            f"model version {served.version} failed to score the request: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    answer: dict[str, Any] = {
        "model_version": served.version,
        "predictions": out[data.prediction].tolist(),
    }
    per_class = scoring.class_score_columns(out)
    if per_class:
        answer["probabilities"] = [
            dict(zip(per_class, p, strict=True))
            for p in out[list(per_class.values())].to_numpy().tolist()
        ]
    elif scoring.SCORE in out.columns:
        answer["probabilities"] = out[scoring.SCORE].tolist()
    if conformed.ignored:
        answer["ignored_columns"] = conformed.ignored
    outputs = [c for c in out.columns if c != data.id]
    rows = pd.DataFrame(
        {
            "request_id": request_id,
            "row": pd.Series(range(request.rows), dtype="int64"),
            data.id: ids,
            "received_at": pd.Series([received] * request.rows),
            "model_version": served.version,
        }
    )
    if data.timestamp and conformed.timestamps is not None:  # the rows' own time, as sent
        rows[data.timestamp] = pd.Series(conformed.timestamps, dtype="str")
    rows = pd.concat([rows, conformed.frame, out[outputs].reset_index(drop=True)], axis=1)
    rows["shadow_version"] = pd.Series([None] * request.rows, dtype="str")
    for c in outputs:
        rows[SHADOW_PREFIX + c] = pd.Series([None] * request.rows, dtype=_nullable(out[c]))
    return Scored(answer, rows)


def _nullable(column: pd.Series) -> str:
    """A dtype of the same kind that holds missing values (shadow columns of unscored rows)."""
    kind = column.dtype.kind
    return {"i": "Int64", "u": "Int64", "f": "float64", "b": "boolean"}.get(kind, "str")


def _draw_shadow(service: Service) -> bool:
    share = service.serving.shadow_share
    if share <= 0 or service.watcher.challenger.served is None:
        return False
    if service.rng.random() >= share:
        return False
    if not service._pending.acquire(blocking=False):
        service.metrics.shadow_skipped.inc()
        return False
    return True


def _shadow(service: Service, record: RequestRecord, rows: pd.DataFrame) -> None:
    """Scores a request's rows with the challenger and logs them beside the champion's answer;
    a failure only logs the rows without shadow columns (and is counted)."""
    try:
        challenger = service.watcher.challenger.served
        if challenger is not None:
            features = rows[[c.name for c in challenger.columns]]
            frame = features.assign(**{service.data.id: rows[service.data.id]})
            out = scoring.score_frame(challenger.model, frame, service.data, service.task)
            rows = rows.copy()
            rows["shadow_version"] = challenger.version
            for c in out.columns:
                if c != service.data.id and SHADOW_PREFIX + c in rows.columns:
                    rows[SHADOW_PREFIX + c] = out[c].to_numpy()
            record = RequestRecord(**{**vars(record), "shadow": True})
            service.metrics.shadow_rows.inc(len(rows))
    except Exception as exc:  # never the request's failure: counted, logged, rows kept
        service.metrics.shadow_errors.inc()
        log.warning("serve-model: shadow scoring of request %s failed: %s", record.request_id, exc)
    finally:
        service.predlog.add(record, rows)
        service._pending.release()


def build_service(params_path: Path) -> Service:
    """Opens the project's stores and builds the service (models are loaded at startup).

    Raises:
        ConfigError: the params file is invalid.
    """
    from modelwatch.settings import load_settings
    from modelwatch.stores import tracking
    from modelwatch.stores.ledger import open_ledger

    loaded = load_settings(params_path)
    s, paths = loaded.settings, loaded.paths
    client = tracking.configure(paths)
    metrics = ServingMetrics()

    def on_event(kind: str, alias: str, detail: str) -> None:
        if kind == "reload":
            metrics.reloads.labels(alias).inc()
        else:
            metrics.reload_failures.labels(alias).inc()
        watcher = service.watcher
        metrics.serving(
            {
                a.alias: a.served.version if a.served else None
                for a in (watcher.champion, watcher.challenger)
            }
        )

    watcher = ModelWatcher(
        client,
        open_ledger(paths.ledger_url),
        s.project.model_name,
        s.training.trusted_types,
        s.serving.reload_seconds,
        on_event,
    )
    log_dir = paths.home / s.serving.log_dir
    predlog = PredictionLog(
        log_dir,
        s.serving.window,
        s.serving.flush_seconds,
        on_failure=lambda _: metrics.log_failures.inc(),
    )
    service = Service(s.serving, s.data, s.project.task, watcher, predlog, metrics, random.Random())
    return service


def run(params_path: Path, host: str | None, port: int | None) -> int:
    """Serves until SIGTERM or SIGINT (graceful: requests finish, the log is written)."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    service = build_service(params_path)
    config = uvicorn.Config(
        create_app(service),
        host=host or service.serving.host,
        port=port or service.serving.port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
    # uvicorn re-raises the SIGTERM it handled once it has shut down; by then the requests
    # finished and the log is written, so the process ends with 0 rather than -15
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    uvicorn.Server(config).run()
    return 0
