"""Load test of `modelwatch serve-model` (make bench-serve): requests per second and latency
percentiles for 1-row and 100-row JSON requests, without and with shadow scoring
(shadow_share 1.0 and a challenger), and while the champion alias moves back and forth.

The service runs as its own process on a loopback port, on a small project (tests/e2e/
serving_setup.py: the demo's reference period, two registered versions). The load comes from
other processes: --clients closed-loop client processes (httpx, keep-alive), each sending its next
request when the last one is answered, for --seconds per scenario. Latency is measured by the
clients (round trip). A failed request is any answer other than 200 or a transport error; the
alias-move scenarios must have none (exit code 1 otherwise).

    .venv/bin/python benchmarks/bench_serve.py [--seconds 20] [--clients 2] [--move-every 3]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.serving_setup import (  # noqa: E402
    free_port,
    make_project,
    start_service,
    stop_service,
)


def client(url: str, body: bytes, seconds: float, out: mp.Queue) -> None:
    """One load process: posts the body until the time is up; sends back latencies (ms),
    failures and the versions that answered."""
    import httpx

    latencies, failures, versions = [], 0, set()
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=30) as http:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            start = time.perf_counter()
            try:
                r = http.post(url, content=body, headers=headers)
                ok = r.status_code == 200
                if ok:
                    versions.add(r.json()["model_version"])
            except httpx.HTTPError:
                ok = False
            latencies.append((time.perf_counter() - start) * 1000)
            failures += not ok
    out.put((latencies, failures, sorted(versions)))


def run_load(url: str, body: bytes, seconds: float, clients: int) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=client, args=(url, body, seconds, queue)) for _ in range(clients)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join()
    wall = time.monotonic() - started
    lat = np.concatenate([np.asarray(r[0]) for r in results])
    return {
        "requests": len(lat),
        "rps": len(lat) / seconds,
        "p50": float(np.percentile(lat, 50)),
        "p95": float(np.percentile(lat, 95)),
        "p99": float(np.percentile(lat, 99)),
        "failed": sum(r[1] for r in results),
        "versions": sorted({v for r in results for v in r[2]}),
        "wall": wall,
    }


def mover(project, versions: list[str], every: float, stop: threading.Event) -> list[str]:
    """Moves the champion between two versions every `every` seconds until stopped."""
    moves, i = [], 0
    while not stop.wait(every):
        i += 1
        target = versions[i % 2]
        project.move("champion", target)
        moves.append(target)
    return moves


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="per scenario")
    parser.add_argument("--clients", type=int, default=2, help="load processes")
    parser.add_argument("--move-every", type=float, default=3.0, help="seconds between moves")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    proc = None
    try:
        t0 = time.monotonic()
        project = make_project(tmp / "project", shadow_share=1.0, reload_seconds=1.0)
        port = free_port()
        proc = start_service(project.params, port, tmp / "service.log")
        print(f"project and service ready in {time.monotonic() - t0:.0f} s", flush=True)
        url = f"http://127.0.0.1:{port}/predict"
        data = project.proj.settings.data
        frame = project.reference[data.features]
        bodies = {
            n: json.dumps({"dataframe_records": frame.head(n).to_dict("records")}).encode()
            for n in (1, 100)
        }
        rows = []

        def scenario(name: str, n: int, moving: bool = False) -> None:
            stop, moves = threading.Event(), []
            thread = None
            if moving:
                thread = threading.Thread(
                    target=lambda: moves.extend(
                        mover(project, project.versions, args.move_every, stop)
                    )
                )
                thread.start()
            result = run_load(url, bodies[n], args.seconds, args.clients)
            stop.set()
            if thread:
                thread.join()
            result.update(name=name, rows=n, moves=len(moves))
            rows.append(result)
            print(
                f"{name:<24} {n:>3} rows: {result['rps']:7.1f} req/s  p50 {result['p50']:6.1f}"
                f"  p95 {result['p95']:6.1f}  p99 {result['p99']:6.1f} ms  failed "
                f"{result['failed']}  versions {','.join(result['versions'])}",
                flush=True,
            )

        for n in (1, 100):
            scenario("no shadow", n)
        project.move("challenger", project.versions[1])
        time.sleep(3)  # the service polls the alias every second
        for n in (1, 100):
            scenario("shadow (share 1.0)", n)
        project.proj.client.delete_registered_model_alias(project.name, "challenger")
        time.sleep(3)
        for n in (1, 100):
            scenario(f"alias move every {args.move_every:g} s", n, moving=True)
        metrics = __import__("httpx").get(f"http://127.0.0.1:{port}/metrics").text
        stop_service(proc)
        proc = None
    finally:
        if proc is not None:
            stop_service(proc)
    shadow_lines = [
        line
        for line in metrics.splitlines()
        if line.startswith(("modelwatch_serving_shadow_", "modelwatch_serving_reload"))
        and "_created" not in line
    ]
    print(
        f"\n{args.clients} client processes, {args.seconds:g} s per scenario; latency is the "
        "client's round trip\n"
    )
    print("| scenario | rows/request | requests | req/s | p50 ms | p95 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        moves = f" ({r['moves']} moves, versions {'+'.join(r['versions'])})" if r["moves"] else ""
        print(
            f"| {r['name']}{moves} | {r['rows']} | {r['requests']} | {r['rps']:.1f} | "
            f"{r['p50']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['failed']} |"
        )
    print("\nservice counters at the end:")
    for line in shadow_lines:
        print(f"  {line}")
    shutil.rmtree(tmp, ignore_errors=True)
    failed_moving = sum(r["failed"] for r in rows if r["moves"])
    if failed_moving:
        print(f"FAILED: {failed_moving} request(s) failed during alias moves")
    return 1 if failed_moving else 0


if __name__ == "__main__":
    raise SystemExit(main())
