"""`harvest serve` as a measured subprocess, and one harvest job timed from Create to Completed.

Each measurement starts fresh `harvest serve` processes (a new data dir, so SQLite and the local
bucket start empty), creates one job through the SDK client (harvest.cli.client.HarvestClient) and
polls it every 50 ms until it leaves Running. The time is Create sent -> Completed seen; peak RSS
is that of every serve process's tree together (sampled) or the kernel's high-water mark, whichever
is larger; CPU seconds are read from /proc before and after.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException

from bench.measure import TreeSampler, cpu_seconds, hwm_bytes, tree, wait_exit
from bench.origin_setup import REPO_ROOT, Window, local_env
from bench.raw import bytes_under
from harvest.cli.client import ClientConfig, HarvestClient
from harvest.settings import DEFAULT_REGION

SECRET_ID = "AKIDbenchmark0000000000000000000000"
SECRET_KEY = "benchmark-secret-key-0000000000000"
BUCKET = "bench-1250000000"
POLL_SECONDS = 0.05
_UNREACHABLE = ("ClientNetworkError", "ServerNetworkError")


class BenchError(RuntimeError):
    """A benchmark step could not be done (the stack failed, a tool is missing, a job Failed)."""


def harvest_bin() -> str:
    beside = Path(sys.executable).with_name("harvest")
    if beside.exists():
        return str(beside)
    found = shutil.which("harvest")
    if found is None:
        raise BenchError("the `harvest` console script is not installed (make install)")
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def destination(region: str = DEFAULT_REGION) -> str:
    return f"https://{BUCKET}.cos.{region}.myqcloud.com/bench/"


@dataclass(frozen=True)
class ServeOptions:
    workers: int = 4
    download_concurrency: int | None = None  # None: the product default
    database_url: str = ""  # empty: the embedded SQLite under the data dir
    region: str = DEFAULT_REGION
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        values = {
            "HARVEST_SECRET_ID": SECRET_ID,
            "HARVEST_SECRET_KEY": SECRET_KEY,
            "HARVEST_RATE_LIMIT": "0",
            "HARVEST_REGION": self.region,
        }
        if self.download_concurrency is not None:
            values["HARVEST_DOWNLOAD_CONCURRENCY"] = str(self.download_concurrency)
        values.update(self.extra_env)
        return local_env(values)


class ServeProcess:
    """One `harvest serve` process on a free port."""

    def __init__(self, data_dir: Path, channels: Path, options: ServeOptions, log_path: Path) -> None:
        self.data_dir = data_dir
        self.channels = channels
        self.options = options
        self.log_path = log_path
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise BenchError("harvest serve is not running")
        return self._proc.pid

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, timeout: int = 60) -> HarvestClient:
        config = ClientConfig(self.endpoint, SECRET_ID, SECRET_KEY, self.options.region)
        return HarvestClient(config, timeout=timeout)

    def start(self, ready_timeout: float = 90.0) -> ServeProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port can be taken between our probe and the server's bind
            self.port = free_port()
            args = [
                harvest_bin(), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir), "--channels", str(self.channels),
                "--workers", str(self.options.workers),
            ]  # fmt: skip
            if self.options.database_url:
                args += ["--database-url", self.options.database_url]
            # Closed in stop(): the child writes to it for as long as it runs.
            self._log = open(self.log_path, "ab")  # noqa: SIM115
            self._proc = subprocess.Popen(
                args, env=self.options.env(), cwd=REPO_ROOT, stdout=self._log, stderr=subprocess.STDOUT
            )
            if self._wait_ready(ready_timeout):
                return self
            self.stop()
        raise BenchError(f"harvest serve did not start; see {self.log_path}:\n{self.log_tail()}")

    def _wait_ready(self, timeout: float) -> bool:
        client = self.client(timeout=5)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                return False
            try:
                client.describe("bench-readiness-probe")
                return True
            except TencentCloudSDKException as exc:
                if exc.get_code() not in _UNREACHABLE:
                    return True  # the API answered (ResourceNotFound): it is up
            time.sleep(0.1)
        return False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""

    def tree_pids(self) -> list[int]:
        return tree(self.pid)

    def stop(self, timeout: float = 60.0) -> tuple[int, float]:
        """SIGTERM and reap: (lifetime peak RSS, the kernel's VmHWM, read just before; CPU seconds)."""
        proc, self._proc = self._proc, None
        peak, cpu = 0, 0.0
        if proc is not None:
            peak = hwm_bytes(proc.pid)
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            result = wait_exit(proc.pid, timeout) if proc.returncode is None else None
            if proc.returncode is None and result is None:
                proc.kill()
                result = wait_exit(proc.pid)
            if result is not None:
                proc.returncode = result[0]
                cpu = result[1].ru_utime + result[1].ru_stime
        if self._log is not None:
            self._log.close()
            self._log = None
        return peak, cpu


@dataclass(frozen=True)
class HarvestResult:
    seconds: float
    plan_seconds: float | None  # Create -> first seen planned (progress has a total), when known
    peak_rss: int  # bytes, every serve process together
    idle_rss: int  # bytes, before the job
    cpu_seconds: float  # serve processes, during the job
    origin_cpu_seconds: float
    segments: int  # media segment files harvested
    bytes: int  # their bytes on disk
    playlists: int
    chunks: int | None

    def to_json(self) -> dict[str, Any]:
        mb = self.bytes / 1e6
        return {
            "seconds": round(self.seconds, 3),
            "plan_seconds": None if self.plan_seconds is None else round(self.plan_seconds, 3),
            "mb": round(mb, 2),
            "mb_per_s": round(mb / self.seconds, 2),
            "segments": self.segments,
            "segments_per_s": round(self.segments / self.seconds, 1),
            "peak_rss_mb": round(self.peak_rss / 1e6, 1),
            "idle_rss_mb": round(self.idle_rss / 1e6, 1),
            "cpu_seconds": round(self.cpu_seconds, 2),
            "origin_cpu_seconds": round(self.origin_cpu_seconds, 2),
            "playlists": self.playlists,
            "chunks": self.chunks,
        }


def create_params(
    job_id: str, channel: str, window: Window, region: str, endpoint: str = "hls"
) -> dict[str, str]:
    return {
        "ID": job_id,
        "ChannelName": channel,
        "EndpointName": endpoint,
        "TimeFormat": "Epoch seconds",
        "StartTime": str(window.start),
        "EndTime": str(window.end),
        "Destination": destination(region),
        "Manifest": f"{job_id}/index.{'mpd' if endpoint == 'dash' else 'm3u8'}",
    }


class _Poller:
    """Progress when the API offers it (Phase, SegmentsTotal, chunk counts), else the job record."""

    def __init__(self, client: HarvestClient, job_id: str) -> None:
        self._client = client
        self._job_id = job_id
        self._progress = True

    def __call__(self) -> dict[str, Any]:
        if self._progress:
            try:
                return self._client.progress(self._job_id)
            except TencentCloudSDKException as exc:
                if exc.get_code() in _UNREACHABLE:
                    raise
                self._progress = False  # an API without the progress action: use Describe from now on
        return self._client.describe(self._job_id)


def run_job(
    serves: Sequence[ServeProcess],
    origin_pid: int,
    channel: str,
    window: Window,
    job_id: str,
    timeout: float,
    endpoint: str = "hls",
) -> HarvestResult:
    """Create one job on the first serve process and wait for it; the measurement."""
    client = serves[0].client()
    roots = [s.pid for s in serves]
    idle = TreeSampler(roots).sample()
    cpu_before = cpu_seconds(p for r in roots for p in tree(r))
    origin_before = cpu_seconds([origin_pid])
    planned_at: float | None = None
    state: dict[str, Any] = {}
    with TreeSampler(roots) as sampler:
        began = time.perf_counter()
        client.create(create_params(job_id, channel, window, serves[0].options.region, endpoint))
        poll = _Poller(client, job_id)
        while True:
            state = poll()
            now = time.perf_counter()
            if planned_at is None and int(state.get("SegmentsTotal") or 0) > 0:
                planned_at = now
            if state.get("Status") != "Running":
                break
            if now - began > timeout:
                raise BenchError(f"job {job_id} still Running after {timeout:.0f} s")
            time.sleep(POLL_SECONDS)
        seconds = time.perf_counter() - began
        cpu_after = cpu_seconds(p for r in roots for p in tree(r))
    origin_after = cpu_seconds([origin_pid])
    if state.get("Status") != "Completed":
        info = client.describe(job_id)
        raise BenchError(f"job {job_id} ended {info.get('Status')}: {info.get('ErrMessage')}")
    bucket_dir = serves[0].data_dir / "cos" / BUCKET
    segments, size = bytes_under(bucket_dir, (".m4s",) if endpoint == "dash" else (".ts",))
    playlists, _ = bytes_under(bucket_dir, (".m3u8", ".mpd"))
    chunks = state.get("ChunksTotal")
    return HarvestResult(
        seconds=seconds,
        plan_seconds=None if planned_at is None else planned_at - began,
        peak_rss=sampler.best_peak,
        idle_rss=idle,
        cpu_seconds=cpu_after - cpu_before,
        origin_cpu_seconds=origin_after - origin_before,
        segments=segments,
        bytes=size,
        playlists=playlists,
        chunks=None if chunks is None else int(chunks),
    )


def harvest_once(
    work: Path,
    channels: Path,
    origin_pid: int,
    channel: str,
    window: Window,
    options: ServeOptions,
    processes: int = 1,
    label: str = "harvest",
    timeout: float = 3600.0,
    endpoint: str = "hls",
) -> HarvestResult:
    """Start `processes` serve processes on one fresh data dir, run one job, stop them, clean up."""
    data_dir = work / label
    shutil.rmtree(data_dir, ignore_errors=True)
    logs = work / "logs"
    serves = [ServeProcess(data_dir, channels, options, logs / f"{label}-{i}.log") for i in range(processes)]
    try:
        for serve in serves:
            serve.start()
        os.sync()  # the previous run's dirty pages are written back before this one is timed
        result = run_job(serves, origin_pid, channel, window, f"{label}-{os.getpid()}", timeout, endpoint)
    except BenchError as exc:
        raise BenchError(f"{exc}\n--- serve log ---\n{serves[0].log_tail()}") from exc
    finally:
        stopped = [serve.stop() for serve in serves]
        shutil.rmtree(data_dir, ignore_errors=True)
    # One process: the kernel's lifetime high-water mark is exact (the job is all it did).
    if processes == 1:
        result = replace(result, peak_rss=max(result.peak_rss, stopped[0][0]))
    return result
