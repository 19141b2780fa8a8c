"""`harvest serve` as a real subprocess, for crash and multi-process tests, and a callback receiver.

`start_serve(...)` launches the console script with HARVEST_* settings and waits for its banner
(which tells the port when HARVEST_PORT is 0); `ServeProcess.kill()` sends SIGKILL, as a crash
would, and `stop()` SIGTERM, as an operator would. Every line the process writes (its JSON logs
and the banner, stdout and stderr) is kept in `output`, so tests can search the logs.
`CallbackReceiver` records the CallbackURL notifications a job's end sends, to count them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models

from harvest.devtools import LiveOrigin, write_channels_yaml

SERVE_SECRET_ID = "AKIDserveprocess"
SERVE_SECRET_KEY = "serve-process-secret-key"
SERVE_REGION = "ap-singapore"
BANNER = "harvest serve: API at "
HARVEST_BIN = Path(sys.executable).with_name("harvest")


@dataclass
class ServeProcess:
    proc: subprocess.Popen[str]
    data_dir: Path
    url: str = ""
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None
    _banner: threading.Event = field(default_factory=threading.Event)

    @property
    def endpoint(self) -> str:
        return self.url.split("://", 1)[-1].rstrip("/")

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def client(self) -> mdp_client.MdpClient:
        profile = ClientProfile(
            httpProfile=HttpProfile(endpoint=self.endpoint, protocol="http", reqTimeout=30)
        )
        return mdp_client.MdpClient(
            credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY), SERVE_REGION, profile
        )

    def create(self, params: Mapping[str, Any]) -> models.HarvestJobResp:
        request = models.CreateStreamPackageHarvestJobRequest()
        request.from_json_string(json.dumps(dict(params)))
        return self.client().CreateStreamPackageHarvestJob(request).Info

    def describe(self, job_id: str) -> models.HarvestJobResp:
        request = models.DescribeStreamPackageHarvestJobRequest()
        request.ID = job_id
        return self.client().DescribeStreamPackageHarvestJob(request).Info

    def wait_until_ended(self, job_id: str, timeout: float) -> str:
        """Poll Describe until the job is no longer Running; its Status (the log tail if it never ends)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = str(self.describe(job_id).Status)
            if status != "Running":
                return status
            time.sleep(0.2)
        raise AssertionError(
            f"job {job_id} still Running after {timeout} s:\n" + "\n".join(self.output[-30:])
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, leases stay taken until they expire."""
        if self.alive:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self._join_reader()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM and wait; SIGKILL if it does not stop in time. The exit code."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._join_reader()
        return int(self.proc.returncode)

    def log_text(self) -> str:
        return "\n".join(self.output)

    def _join_reader(self) -> None:
        if self._reader is not None:
            self._reader.join(timeout=10)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.output.append(line)
            if line.startswith(BANNER) and not self._banner.is_set():
                self.url = line[len(BANNER) :].split("/ ", 1)[0].split(" ", 1)[0].rstrip("/")
                self._banner.set()


def channels_file_for(origin: LiveOrigin, directory: Path) -> Path:
    """`directory`/channels.yaml naming every channel of `origin`: the registry for a serve process."""
    registry = directory / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    return registry


def serve_env(
    data_dir: Path,
    channels: Path,
    *,
    database_url: str = "",
    workers: int = 2,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment for one `harvest serve`: this process's, minus any HARVEST_* it happens to carry."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HARVEST_")}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "HARVEST_SECRET_ID": SERVE_SECRET_ID,
            "HARVEST_SECRET_KEY": SERVE_SECRET_KEY,
            "HARVEST_REGION": SERVE_REGION,
            "HARVEST_HOST": "127.0.0.1",
            "HARVEST_PORT": "0",
            "HARVEST_WORKERS": str(workers),
            "HARVEST_RATE_LIMIT": "0",
            "HARVEST_DATA_DIR": str(data_dir),
            "HARVEST_CHANNELS": str(channels),
        }
    )
    if database_url:
        env["HARVEST_DATABASE_URL"] = database_url
    env.update(extra or {})
    return env


def start_serve(
    env: Mapping[str, str], data_dir: Path, timeout: float = 60.0, args: tuple[str, ...] = ()
) -> ServeProcess:
    """Start `harvest serve --data-dir DATA_DIR [ARGS]` and wait until it prints its banner."""
    proc = subprocess.Popen(
        [
            str(HARVEST_BIN),
            "serve",
            "--data-dir",
            str(data_dir),
            "--channels",
            env["HARVEST_CHANNELS"],
            *args,
        ],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    served = ServeProcess(proc=proc, data_dir=data_dir)
    served._reader = threading.Thread(target=served._read, name="serve-output", daemon=True)
    served._reader.start()
    deadline = time.monotonic() + timeout
    while not served._banner.wait(0.1):
        if not served.alive or time.monotonic() > deadline:
            served.stop(5)
            raise RuntimeError(f"harvest serve did not start (exit {proc.returncode}):\n{served.log_text()}")
    return served


class CallbackReceiver:
    """An HTTP server that records every CallbackURL POST (path and JSON body) and answers 200.

    `redirect_to` makes it answer every POST with 302 to that URL instead (for redirect tests).
    """

    def __init__(self, redirect_to: str | None = None) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"unreadable": body.decode("utf-8", "replace")}
                with receiver._lock:
                    receiver.posts.append((self.path, payload))
                if redirect_to is not None:
                    self.send_response(302)
                    self.send_header("Location", redirect_to)
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def received(self) -> list[tuple[str, dict[str, Any]]]:
        with self._lock:
            return list(self.posts)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def callback_receiver() -> Iterator[CallbackReceiver]:
    """A running CallbackReceiver (load with `pytest_plugins = ("tests.support.serve_process",)`)."""
    running = CallbackReceiver()
    yield running
    running.stop()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; AssertionError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)
