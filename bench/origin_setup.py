"""Start the benchmark origin in its own process and describe the window every tool downloads."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

from harvest.devtools.media import Pool
from harvest.devtools.origin import ChannelSpec, write_channels_yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
# Never send benchmark traffic through a proxy: everything stays on 127.0.0.1.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def local_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for every child process: no proxies, the repository importable."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


def http_get(url: str, timeout: float = 30.0) -> bytes:
    with _NO_PROXY.open(url, timeout=timeout) as response:
        body: bytes = response.read()
        return body


@dataclass(frozen=True)
class BenchChannel:
    name: str
    pool: Pool
    dvr_window: int  # seconds of history the origin serves; must outlast the benchmark
    dash: bool = False  # an fMP4 pool, also served as a live MPD (the DASH row)

    @property
    def segment_seconds(self) -> int:
        return self.pool.segment_seconds

    @property
    def renditions(self) -> list[str]:
        return [r.name for r in self.pool.renditions]

    def spec(self) -> ChannelSpec:
        if self.dash:
            return ChannelSpec(
                "fmp4", self.pool, self.segment_seconds, self.dvr_window, dash="number-timeline"
            )
        return ChannelSpec("ts", self.pool, self.segment_seconds, self.dvr_window)


@dataclass(frozen=True)
class Window:
    """A harvest window [start, end) in epoch seconds, on segment boundaries."""

    start: int
    end: int
    segment_seconds: int

    @property
    def seconds(self) -> int:
        return self.end - self.start

    @property
    def segments_per_rendition(self) -> int:
        return self.seconds // self.segment_seconds


def recent_window(seconds: int, segment_seconds: int, now: float | None = None) -> Window:
    """The latest `seconds` long window whose every segment has already ended (with a margin).

    Start and end sit on segment boundaries, so every tool selects exactly the same segments.
    """
    seconds = max(segment_seconds, seconds // segment_seconds * segment_seconds)
    now = time.time() if now is None else now
    end = math.floor(now / segment_seconds - 3) * segment_seconds
    return Window(end - seconds, end, segment_seconds)


class OriginProcess:
    """bench.origin_proc, started and spoken to over stdio."""

    def __init__(self, channels: list[BenchChannel], work_dir: Path, latency_ms: float = 0.0) -> None:
        self.channels = {c.name: c for c in channels}
        self.latency_ms = latency_ms
        self._work_dir = work_dir
        self._proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.pid = 0

    def __enter__(self) -> OriginProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> OriginProcess:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        spec_file = self._work_dir / "origin-spec.json"
        spec = {
            "host": "127.0.0.1",
            "latency_ms": self.latency_ms,
            "channels": [
                {
                    "name": c.name,
                    "pool_dir": str(c.pool.root),
                    "segment_seconds": c.segment_seconds,
                    "dvr_window": c.dvr_window,
                    "dash": c.dash,
                }
                for c in self.channels.values()
            ],
        }
        spec_file.write_text(json.dumps(spec), encoding="utf-8")
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.origin_proc", str(spec_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=local_env(),
        )
        hello = self._read()
        self.url, self.pid = hello["url"], int(hello["pid"])
        return self

    def _pipes(self) -> tuple[IO[str], IO[str]]:
        if self._proc is None or self._proc.stdin is None or self._proc.stdout is None:
            raise RuntimeError("the origin process is not running")
        return self._proc.stdin, self._proc.stdout

    def _read(self) -> dict[str, Any]:
        _, stdout = self._pipes()
        line = stdout.readline()
        if not line:
            raise RuntimeError("the origin process exited (see its stderr above)")
        data: dict[str, Any] = json.loads(line)
        return data

    def _command(self, command: str) -> dict[str, Any]:
        stdin, _ = self._pipes()
        stdin.write(command + "\n")
        stdin.flush()
        return self._read()

    def stats(self) -> dict[str, Any]:
        return self._command("stats")

    def reset(self) -> None:
        self._command("reset")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.write("quit\n")
                proc.stdin.close()
            proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def write_channels(self, path: Path) -> Path:
        write_channels_yaml(path, self.url, {name: c.spec() for name, c in self.channels.items()})
        return path

    def playlist_url(self, channel: str, rendition: str, window: Window) -> str:
        """The rendition's media playlist for `window` as a VOD (the origin's timeshift query)."""
        return f"{self.url}/{channel}/{rendition}/index.m3u8?start={window.start}&end={window.end}"

    def segment_urls(self, channel: str, window: Window) -> list[tuple[str, str]]:
        """(rendition, absolute URL) of every segment of the window, read from the origin's playlists."""
        urls: list[tuple[str, str]] = []
        for rendition in self.channels[channel].renditions:
            playlist = self.playlist_url(channel, rendition, window)
            text = http_get(playlist).decode("utf-8")
            urls += [
                (rendition, urljoin(playlist, line.strip()))
                for line in text.splitlines()
                if line.strip() and not line.startswith("#")
            ]
        return urls
