"""`harvest serve` as a real subprocess, for crash and multi-process tests.

`start_serve(...)` launches the console script with HARVEST_* settings and waits for its banner
(which tells the port when HARVEST_PORT is 0); `ServeProcess.kill()` sends SIGKILL, as a crash
would, and `stop()` SIGTERM, as an operator would. Every line the process writes (its JSON logs
and the banner, stdout and stderr) is kept in `output`, so tests can search the logs.
`describe_until_ended` waits for a job through the SDK (the callback receiver is
tests/support/callback_receiver.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.mdp.v20200527 import mdp_client, models
from tests.support.polling import eventually

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
        info = describe_until_ended(self.client(), job_id, timeout, lambda: ":\n" + self.log_tail(30))
        return str(info.Status)

    def log_tail(self, lines: int) -> str:
        return "\n".join(self.output[-lines:])

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


def describe_until_ended(
    client: mdp_client.MdpClient, job_id: str, timeout: float, detail: Callable[[], str] = str
) -> models.HarvestJobResp:
    """Poll Describe until the job is no longer Running; its record. `detail` adds to a timeout's message."""
    request = models.DescribeStreamPackageHarvestJobRequest()
    request.ID = job_id

    def ended() -> models.HarvestJobResp | None:
        info = client.DescribeStreamPackageHarvestJob(request).Info
        return None if info.Status == "Running" else info

    return eventually(ended, timeout, lambda: f"job {job_id} to end{detail()}", interval=0.2)
