"""API load: Describe and Create requests per second and latency against `harvest serve`.

The load generator is P processes x T threads, each thread with its own keep-alive HTTP/1.1
connection (http.client, the lightest client in the standard library) sending requests signed with
harvest.api.tc3.sign_request exactly as the Tencent SDK signs them, closed loop (a thread sends
its next request when the previous answer is in). Only requests started after a short warm-up
count. Every answer is checked: an HTTP status other than 200 or an error envelope is an error.

To show the load generator is not the bottleneck, the report gives both sides' CPU use in cores.
Rate limiting is off (HARVEST_RATE_LIMIT=0). For Create, the channel's origin is a closed port:
the jobs are accepted (the API does not contact the origin) and their planning, in the background,
fails slowly while waiting for retries, so it takes almost no CPU from the API; on SCF the api
function runs apart from the workers anyway.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bench.harvest_run import SECRET_ID, SECRET_KEY, ServeOptions, ServeProcess, create_params, free_port
from bench.measure import cpu_seconds, tree
from bench.origin_setup import Window
from harvest.api.tc3 import sign_request
from harvest.settings import DEFAULT_REGION

API_VERSION = "2020-05-27"
DESCRIBE = "DescribeStreamPackageHarvestJob"
CREATE = "CreateStreamPackageHarvestJob"


@dataclass(frozen=True)
class LoadSpec:
    port: int
    action: str
    secret_id: str
    secret_key: str
    region: str
    seconds: float
    warmup: float
    threads: int
    start_at: float  # epoch: every process starts together
    describe_id: str = ""
    create_template: str = ""  # JSON of the Create params; "{ID}" is replaced per request
    rate: float = 0.0  # requests/s of the whole load, paced (open loop); 0: closed loop, as fast as answered
    processes: int = 1


def _body(spec: LoadSpec, tag: str, n: int) -> bytes:
    if spec.action == DESCRIBE:
        return json.dumps({"ID": spec.describe_id}).encode()
    return spec.create_template.replace("{ID}", f"load-{tag}-{n}").encode()


def _connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.connect()
    # http.client sends headers and body in two writes: without TCP_NODELAY, Nagle's algorithm
    # and the server's delayed ACK add ~40 ms to every request (urllib3, under the SDK, sets it too).
    assert conn.sock is not None
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _thread(spec: LoadSpec, tag: str, stop_at: float, count_from: float, out: dict[str, Any]) -> None:
    host = f"127.0.0.1:{spec.port}"
    conn = _connect(spec.port)
    latencies: list[float] = []
    errors = 0
    first_error = ""
    n = 0
    # Open loop: each thread sends on its own fixed schedule, and latency counts from the scheduled
    # time, so a slow answer that delays the next send is still charged (no coordinated omission).
    interval = spec.threads * spec.processes / spec.rate if spec.rate > 0 else 0.0
    scheduled = spec.start_at + (hash(tag) % 1000) / 1000 * interval
    while True:
        if interval:
            time.sleep(max(0.0, scheduled - time.time()))
        began = time.time()
        if began >= stop_at:
            break
        body = _body(spec, tag, n)
        n += 1
        headers = sign_request(
            secret_id=spec.secret_id, secret_key=spec.secret_key, host=host, action=spec.action,
            version=API_VERSION, body=body, region=spec.region,
        )  # fmt: skip
        t0 = time.perf_counter() - (max(0.0, began - scheduled) if interval else 0.0)
        scheduled += interval
        try:
            conn.request("POST", "/", body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = _connect(spec.port)
            status, data = 0, str(exc).encode()
        elapsed = time.perf_counter() - t0
        ok = status == 200 and b'"Error"' not in data
        if began >= count_from:
            latencies.append(elapsed)
            if not ok:
                errors += 1
                first_error = first_error or f"HTTP {status}: {data[:300]!r}"
    conn.close()
    out["latencies"] = latencies
    out["errors"] = errors
    out["first_error"] = first_error


def _process(spec: LoadSpec, index: int, results: Any) -> None:
    time.sleep(max(0.0, spec.start_at - time.time()))
    cpu0 = os.times()
    count_from = spec.start_at + spec.warmup
    stop_at = count_from + spec.seconds
    outs: list[dict[str, Any]] = [{} for _ in range(spec.threads)]
    threads = [
        threading.Thread(target=_thread, args=(spec, f"{index}x{t}", stop_at, count_from, outs[t]))
        for t in range(spec.threads)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu1 = os.times()
    results.put(
        {
            "latencies": [x for o in outs for x in o.get("latencies", [])],
            "errors": sum(o.get("errors", 0) for o in outs),
            "first_error": next((o["first_error"] for o in outs if o.get("first_error")), ""),
            "cpu_seconds": (cpu1.user + cpu1.system) - (cpu0.user + cpu0.system),
        }
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def run_load(spec: LoadSpec, processes: int, server_cpu: Any) -> dict[str, Any]:
    """Drive `spec` from `processes` processes; `server_cpu()` returns the server's CPU seconds."""
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    results = ctx.Queue()
    workers = [ctx.Process(target=_process, args=(spec, i, results)) for i in range(processes)]
    for worker in workers:
        worker.start()
    time.sleep(max(0.0, spec.start_at + spec.warmup - time.time()))
    cpu_before = server_cpu()
    gathered = [results.get(timeout=spec.seconds + spec.warmup + 120) for _ in workers]
    cpu_after = server_cpu()
    for worker in workers:
        worker.join(timeout=30)
    latencies = [x for g in gathered for x in g["latencies"]]
    errors = sum(g["errors"] for g in gathered)
    loadgen_cpu = sum(g["cpu_seconds"] for g in gathered)
    return {
        "action": spec.action,
        "requests": len(latencies),
        "errors": errors,
        "first_error": next((g["first_error"] for g in gathered if g["first_error"]), ""),
        "requests_per_s": round(len(latencies) / spec.seconds, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies, default=float("nan")) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else None,
        "connections": processes * spec.threads,
        "seconds": spec.seconds,
        "server_cores": round((cpu_after - cpu_before) / spec.seconds, 2),
        # Includes the warm-up and process start: an upper bound on the generator's share.
        "loadgen_cores": round(loadgen_cpu / (spec.seconds + spec.warmup), 2),
    }


def _write_dead_channel(path: Path) -> Path:
    # A port nothing listens on: planning of the load's jobs fails (slowly, between retries).
    dead = f"http://127.0.0.1:{free_port()}/load/master.m3u8"
    registry = {
        "channels": [
            {
                "name": "load",
                "endpoints": [
                    {
                        "name": "hls",
                        "url": dead,
                        "startover_window": 86400,
                        "timeshift_query": "start={start}&end={end}",
                    }
                ],
            }
        ]
    }
    path.write_text(yaml.safe_dump(registry, sort_keys=False), encoding="utf-8")
    return path


def measure_api(
    work: Path,
    seconds: float,
    processes: int = 2,
    threads: int = 4,
    region: str = DEFAULT_REGION,
    paced: tuple[tuple[str, str, float], ...] = (("describe", DESCRIBE, 500.0), ("create", CREATE, 200.0)),
) -> dict[str, Any]:
    """Describe, then Create, each for `seconds`, against one fresh `harvest serve`."""
    data_dir = work / "api"
    shutil.rmtree(data_dir, ignore_errors=True)
    channels = _write_dead_channel(work / "api-channels.yaml")
    serve = ServeProcess(data_dir, channels, ServeOptions(region=region), work / "logs" / "api.log").start()
    try:
        end = int(time.time()) - 60
        window = Window(end - 60, end, 6)
        describe_id = "load-describe-target"
        serve.client().create(create_params(describe_id, "load", window, region))
        template = json.dumps(create_params("{ID}", "load", window, region))

        def server_cpu() -> float:
            return cpu_seconds(tree(serve.pid))

        results: dict[str, Any] = {}
        # Closed loop (the most the server answers), then open loop at the target rate (the latency
        # a client sees at that load, which is what the p99 target is about).
        runs = [("describe", DESCRIBE, 0.0), ("create", CREATE, 0.0)]
        runs += [(f"{name}_at_{rate:g}", action, rate) for name, action, rate in paced]
        for key, action, rate in runs:
            spec = LoadSpec(
                port=serve.port, action=action, secret_id=SECRET_ID, secret_key=SECRET_KEY, region=region,
                seconds=seconds, warmup=min(1.0, seconds / 2), threads=threads, start_at=time.time() + 1.5,
                describe_id=describe_id, create_template=template.replace("{ID}", key + "-{ID}"), rate=rate,
                processes=processes,
            )  # fmt: skip
            results[key] = run_load(spec, processes, server_cpu)
        results["load_generator"] = (
            f"{processes} processes x {threads} threads, one keep-alive http.client connection per thread,"
            " requests signed with harvest.api.tc3.sign_request; closed loop, then paced (open loop)"
            " at the target rates"
        )
        return results
    finally:
        serve.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
