"""A small project for the scoring service (tests/e2e/test_serving.py, benchmarks/bench_serve.py):
the demo's reference period, two versions registered through the project's own store functions
(the ones the bootstrap and retrain tasks call: tracking.log_sklearn_model, integrity.record),
version 1 promoted champion through the alias history, no Prefect needed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
from threadpoolctl import threadpool_limits

from modelwatch import io
from modelwatch.settings import load_settings
from modelwatch.stores import integrity, recovery, registry, tracking
from modelwatch.stores.project import Project, open_project
from modelwatch.training.fit import build_pipeline
from tests.conftest import ROOT, demo_plan, write_params


@dataclass
class ServingProject:
    params: Path
    proj: Project
    versions: list[str]
    reference: pd.DataFrame

    @property
    def name(self) -> str:
        return self.proj.model_name

    def register(self, max_iter: int) -> str:
        """Fits the project's pipeline on the reference and registers it; returns the version."""
        s, proj = self.proj.settings, self.proj
        x, y = self.reference[s.data.features], self.reference[s.data.target]
        hyper = {**s.training.hyperparameters, "max_iter": max_iter}
        training = s.training.model_copy(update={"hyperparameters": hyper})
        with threadpool_limits(limits=1):  # as the training stage: no oversubscribed cores
            model = build_pipeline(s.data, training, s.project.task).fit(x, y)
        with tracking.run(proj.experiments.training, f"serving-{max_iter}", {}):
            _, version = tracking.log_sklearn_model(
                model, x, proj.model_name, s.training.trusted_types
            )
        integrity.record(proj.client, proj.ledger, proj.model_name, version)
        self.versions.append(version)
        return version

    def move(self, alias: str, version: str) -> None:
        """Moves champion (promote, recorded in the alias history) or challenger."""
        history = recovery.history_of(self.proj)
        move = registry.promote if alias == registry.CHAMPION else registry.set_challenger
        move(
            self.proj.client,
            self.name,
            version,
            history=history,
            via="tests",
            reason="serving test",
        )


def make_project(folder: Path, promote: bool = True, **serving: object) -> ServingProject:
    """Returns a project with two registered versions (max_iter 20 and 60), version 1 the
    champion (promote False: no champion yet)."""
    params = write_params("params.yaml", folder, serving=serving)
    loaded = load_settings(params)
    plan = demo_plan(loaded, loaded.paths.home / "demo")
    reference = io.read_csv_file(plan.reference)
    proj = open_project(params)
    project = ServingProject(params, proj, [], reference)
    for max_iter in (20, 60):
        project.register(max_iter)
    if promote:
        project.move(registry.CHAMPION, project.versions[0])
    return project


def start_service(
    params: Path, port: int, log_path: Path, endpoint: str = "/ready"
) -> subprocess.Popen:
    """Starts `modelwatch serve-model` in its own process group; returns once the endpoint
    answers 200 (/ready: a champion is loaded).

    Raises:
        RuntimeError: it did not become ready within 120 s (its log is in the message).
    """
    proc = launch_service(params, port, log_path)
    wait_ready(proc, port, log_path, endpoint)
    return proc


def launch_service(params: Path, port: int, log_path: Path) -> subprocess.Popen:
    """Starts `modelwatch serve-model` in its own process group and returns at once (it loads
    while the caller does something else; wait_ready waits for it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    cmd = [
        str(Path(sys.executable).parent / "modelwatch"),
        "--params",
        str(params),
        "serve-model",
        "--port",
        str(port),
    ]
    out = open(log_path, "wb")  # noqa: SIM115 (the child writes it while it lives)
    return subprocess.Popen(
        cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(
    proc: subprocess.Popen,
    port: int,
    log_path: Path,
    endpoint: str = "/ready",
    until: Callable[[httpx.Response], bool] = lambda r: True,
) -> httpx.Response:
    """Returns the endpoint's first 200 answer that `until` accepts (e.g. a challenger loaded).

    Raises:
        RuntimeError: none within 120 s, or the process ended (its log is in the message).
    """
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        try:
            r = httpx.get(f"http://127.0.0.1:{port}{endpoint}", timeout=2)
            if r.status_code == 200 and until(r):
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    stop_service(proc)
    raise RuntimeError(f"serve-model did not become ready:\n{log_path.read_text()[-3000:]}")


def stop_service(proc: subprocess.Popen, timeout: float = 60) -> int:
    """SIGTERM (graceful), then SIGKILL of the group if it does not end; returns the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return proc.wait()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
