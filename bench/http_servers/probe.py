"""Send the hostile clients of README.md to each server named on the command line; print the outcomes."""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

PY = os.environ.get("PY", sys.executable)
POST = b"POST / HTTP/1.1\r\nHost: x\r\n"
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) // 1024
    return -1


def read_all(sock: socket.socket) -> bytes:
    data = b""
    with contextlib.suppress(OSError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def get_seconds(port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        read_all(sock)
    return time.perf_counter() - started


def answer_to(port: int, head: bytes, piece: bytes = b"", total: int = 0) -> str:
    """The status line the server answers after `head` and up to `total` bytes of `piece`."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(head)
        sent = 0
        with contextlib.suppress(OSError):
            while sent < total:
                sock.sendall(piece)
                sent += len(piece)
        status = read_all(sock).split(b"\r\n")[0].decode(errors="replace") or "(closed, no answer)"
    return f"{status} after {sent / 2**20:.1f} MiB sent"


def trickled_head_dropped_after(port: int, limit: float = 40) -> str:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(1)
        started = time.monotonic()
        for byte in b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            if time.monotonic() - started > limit:
                return f"never (still open at {limit:.0f} s)"
            try:
                sock.send(bytes([byte]))
                if sock.recv(100) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        return f"{time.monotonic() - started:.0f} s"


def probe(kind: str) -> dict[str, str]:
    port = free_port()
    server = subprocess.Popen([PY, str(Path(__file__).with_name("serve_one.py")), kind, str(port)])
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.1)
        time.sleep(0.5)
        at_rest = rss_mb(server.pid)
        result = {"trickled head dropped after": trickled_head_dropped_after(port)}
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(1000)]
        time.sleep(1)
        timings = [get_seconds(port) for _ in range(20)]
        result["GET with 1,000 idle (median / max ms)"] = (
            f"{statistics.median(timings) * 1000:.1f} / {max(timings) * 1000:.1f}"
        )
        result["RSS MB at rest -> 1,000 idle"] = f"{at_rest} -> {rss_mb(server.pid)}"
        for sock in idle:
            sock.close()
        time.sleep(1)
        result["chunk size -1"] = answer_to(port, CHUNKED + b"-1\r\n", b"x" * 65536, 8 << 20)
        result["endless chunk-size line"] = answer_to(port, CHUNKED, b"f" * 65536, 64 << 20)
        result["Content-Length -1"] = answer_to(port, POST + b"Content-Length: -1\r\n\r\n")
        notchunked = POST + b"Transfer-Encoding: notchunked\r\n\r\n"
        result["Transfer-Encoding: notchunked"] = answer_to(port, notchunked, b"x" * 65536, 8 << 20)
        chunk = b"10000\r\n" + b"x" * 65536 + b"\r\n"
        result["200 MiB chunked (1 MiB limit)"] = answer_to(port, CHUNKED, chunk, 200 << 20)
        result["RSS MB after"] = str(rss_mb(server.pid))
        return result
    finally:
        server.kill()
        server.wait()


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(name, probe(name), flush=True)
