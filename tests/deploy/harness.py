"""The pieces of an SCF look-alike for the deploy rehearsal: instances, function URLs, CKafka delivery.

- `ScfInstance`: one warm instance of a deployed function, a Python 3.10 process running
  tests/deploy/scf_runtime.py over the unpacked code zip and layer zip.
- `FunctionUrl`: an HTTP server that turns each request into the documented function-URL event
  (583/96099: body, headers, httpMethod, path, queryString; the client address in
  x-scf-remote-addr) and the function's answer {statusCode, headers, body} back into HTTP.
- `ckafka_event`: the CKafka trigger's event for one record (583/17530).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import threading
import zipfile
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl, urlsplit

RUNTIME = Path(__file__).with_name("scf_runtime.py")
READY_TIMEOUT = 60.0


def find_python310() -> str | None:
    """A Python 3.10 that runs (SCF's runtime), as the Makefile's PY310 finds it."""
    candidates = [
        shutil.which("python3.10") or "",
        *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.10*/bin/python3.10"))),
        "/usr/bin/python3.10",
    ]
    for candidate in candidates:
        if not candidate:
            continue
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
                timeout=20,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 10)":
            return candidate
    return None


def unpack(archive: Path, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as code:
        code.extractall(target)
    return target


class InvocationError(Exception):
    """The function raised: SCF reports the invocation as failed and the trigger may retry it."""


class ScfInstance:
    def __init__(
        self, python: str, code_dir: Path, layer_dir: Path, handler: str, env: Mapping[str, str], log: Path
    ) -> None:
        self.name = code_dir.parent.name
        self.log_path = log
        self._log: IO[bytes] = log.open("ab")
        self._lock = threading.Lock()
        self._process = subprocess.Popen(
            # -B: SCF sets PYTHONDONTWRITEBYTECODE, which -I (isolated: no PYTHON* variables) would drop.
            [python, "-I", "-S", "-B", str(RUNTIME), str(code_dir), str(layer_dir), handler],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=dict(env),
            text=True,
        )
        ready = self._read()
        if ready != {"ready": True}:
            raise RuntimeError(f"{self.name} did not start: {ready}; log {log}: {self.log_text()[-2000:]}")

    def _read(self) -> Any:
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited (code {self._process.poll()}): {self.log_text()[-3000:]}")
        return json.loads(line)

    def invoke(self, event: Mapping[str, Any], env: Mapping[str, str], request_id: str = "req") -> Any:
        """One invocation, as the platform makes it: one at a time per instance."""
        context = {"request_id": request_id, "function_name": self.name, "time_limit_in_ms": 900_000}
        with self._lock:
            assert self._process.stdin is not None
            self._process.stdin.write(
                json.dumps({"event": event, "context": context, "env": dict(env)}) + "\n"
            )
            self._process.stdin.flush()
            answer = self._read()
        if "error" in answer:
            raise InvocationError(f"{self.name}: {answer['error']['type']}: {answer['error']['message']}")
        return answer["result"]

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._process.stdout is not None:
            self._process.stdout.close()
        self._log.close()


class FunctionUrl:
    """A function URL (https://<appid>-<url-id>.<region>.tencentscf.com) on 127.0.0.1."""

    def __init__(self, instance: ScfInstance, keys: Any) -> None:
        self.instance = instance
        self.keys = keys  # () -> the role's current keys, as env for the invocation
        self.events: list[dict[str, Any]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        url = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                headers = {name.lower(): value for name, value in self.headers.items()}
                headers["x-scf-remote-addr"] = self.client_address[0]
                event = {
                    "body": body.decode("utf-8"),
                    "headers": headers,
                    "httpMethod": self.command,
                    "path": parts.path or "/",
                    "queryString": dict(parse_qsl(parts.query, keep_blank_values=True)),
                }
                url.events.append(event)
                answer = url.instance.invoke(event, url.keys())
                payload = answer.get("body", "")
                data = payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(int(answer.get("statusCode", 200)))
                for name, value in (answer.get("headers") or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def ckafka_event(topic: str, offset: int, key: str, body: str) -> dict[str, Any]:
    """The CKafka trigger's event for one record (583/17530; maxMsgNum 1 delivers one at a time)."""
    return {
        "Records": [
            {"Ckafka": {"topic": topic, "partition": 0, "offset": offset, "msgKey": key, "msgBody": body}}
        ]
    }
