"""Hostile HTTP clients against a real `harvest serve` process: idle and trickling connections,
bodies over the limit (declared, chunked, undeclared), and broken framing.

The process's memory is read from /proc (VmRSS now, VmHWM the peak since it started), and the API
is checked with signed requests through the real Tencent SDK while the attack goes on.
"""

from __future__ import annotations

import contextlib
import socket
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tencentcloud.mdp.v20200527 import models
from tests.reliability.table import Recorder
from tests.support.api_stack import write_registry
from tests.support.serve_process import ServeProcess, serve_env, start_serve

MIB = 1024 * 1024
BODY_LIMIT = 1 * MIB
HEAD_TIMEOUT = 4.0


def memory_kb(process: ServeProcess, field: str) -> int:
    """VmRSS (now) or VmHWM (peak since start) of the serve process, in KiB."""
    for line in Path(f"/proc/{process.proc.pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/{process.proc.pid}/status")


def describe_latencies(process: ServeProcess, count: int = 20) -> list[float]:
    """Seconds taken by `count` signed DescribeStreamPackageHarvestJobs calls through the SDK."""
    client = process.client()
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        answer = client.DescribeStreamPackageHarvestJobs(models.DescribeStreamPackageHarvestJobsRequest())
        timings.append(time.perf_counter() - started)
        assert answer.TotalNum == 0
    return timings


@pytest.fixture
def serve(tmp_path: Path, clean_proxy_env: None) -> Iterator[ServeProcess]:
    env = serve_env(
        tmp_path / "data",
        write_registry(tmp_path),
        workers=1,
        extra={
            "HARVEST_MAX_BODY_BYTES": str(BODY_LIMIT),
            "HARVEST_REQUEST_HEAD_TIMEOUT": str(HEAD_TIMEOUT),
        },
    )
    process = start_serve(env, tmp_path / "data")
    try:
        yield process
    finally:
        process.stop()


def connect(process: ServeProcess) -> socket.socket:
    host, port = process.endpoint.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def closed_by_server(sock: socket.socket, within: float) -> bool:
    """True when the server closes (EOF or reset) within `within` seconds, whatever it answered."""
    sock.settimeout(within)
    deadline = time.monotonic() + within
    try:
        while time.monotonic() < deadline:
            if not sock.recv(65536):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False
    return False


def test_idle_and_trickling_connections_leave_the_api_answering(
    serve: ServeProcess, reliability_record: Recorder
) -> None:
    # GIVEN a running harvest serve, its memory and Describe latency at rest
    describe_latencies(serve, 5)  # warm up the client's connection pool and the server's threads
    rss_before = memory_kb(serve, "VmRSS")
    at_rest = describe_latencies(serve)

    # WHEN 500 connections sit idle and 500 more trickle a request head, a byte every 0.5 s
    idle = [connect(serve) for _ in range(500)]
    tricklers = [connect(serve) for _ in range(500)]
    head = b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 10_000
    stop = threading.Event()

    def trickle() -> None:
        position = 0
        while not stop.is_set() and position < len(head):
            for sock in tricklers:
                with contextlib.suppress(OSError):
                    sock.send(head[position : position + 1])
            position += 1
            stop.wait(0.5)

    trickler = threading.Thread(target=trickle, daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)
        # THEN signed Describes still answer quickly, and memory stays flat
        under_attack = describe_latencies(serve)
        rss_during = memory_kb(serve, "VmRSS")
        # (the median: on this shared 2-core machine another test's burst can delay any one call)
        assert statistics.median(under_attack) < 0.100, f"Describe took {under_attack} s under attack"
        assert rss_during - rss_before < 40 * 1024, f"RSS grew {(rss_during - rss_before) / 1024:.0f} MB"

        # AND every one of them is dropped once the request-head deadline passes, trickling or not
        started = time.monotonic()
        dropped = sum(closed_by_server(sock, HEAD_TIMEOUT + 6 - (time.monotonic() - started))
                      for sock in idle + tricklers)
        dropped_after = time.monotonic() - started + 1.0
    finally:
        stop.set()
        trickler.join()
        for sock in idle + tricklers:
            sock.close()
    assert dropped == 1000
    rss_after = memory_kb(serve, "VmRSS")
    after = describe_latencies(serve)
    assert statistics.median(after) < 0.100

    def ms(values: list[float]) -> str:
        return f"median {statistics.median(values) * 1000:.1f} ms, max {max(values) * 1000:.1f} ms"

    reliability_record(
        "1,000 idle or trickling connections",
        f"500 idle connections + 500 trickling a request head (1 byte per 0.5 s) to harvest serve,"
        f" HARVEST_REQUEST_HEAD_TIMEOUT={HEAD_TIMEOUT:g}",
        f"signed Describe (SDK) at rest {ms(at_rest)}; under attack {ms(under_attack)}; RSS"
        f" {rss_before / 1024:.0f} MB -> {rss_during / 1024:.0f} MB with 1,000 open"
        f" -> {rss_after / 1024:.0f} MB after; all 1,000 dropped by the head deadline"
        f" (within {dropped_after:.1f} s of the check); after: {ms(after)}",
    )


# --- bodies over the limit and broken framing ------------------------------------------------------


def push_until_refused(sock: socket.socket, head: bytes, piece: Callable[[int], bytes], total: int) -> int:
    """Send `head` then pieces until `total` bytes or the server stops reading; bytes sent."""
    sock.sendall(head)
    sent = 0
    sock.settimeout(5)
    try:
        while sent < total:
            data = piece(sent)
            sock.sendall(data)
            sent += len(data)
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    return sent


def read_answer(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return data


PIECE = 256 * 1024
BIG = 200 * MIB


def _post_head(extra: str) -> bytes:
    return (
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "X-TC-Action: DescribeStreamPackageHarvestJobs\r\n" + extra + "\r\n"
    ).encode()


OVERSIZED: dict[str, tuple[bytes, Callable[[int], bytes]]] = {
    "Content-Length 200 MiB": (_post_head(f"Content-Length: {BIG}\r\n"), lambda _: b"x" * PIECE),
    "chunked, 200 MiB in 256 KiB chunks": (
        _post_head("Transfer-Encoding: chunked\r\n"),
        lambda _: f"{PIECE:x}\r\n".encode() + b"x" * PIECE + b"\r\n",
    ),
    "chunk size -1": (_post_head("Transfer-Encoding: chunked\r\n"), lambda _: b"-1\r\n" + b"x" * PIECE),
    "a chunk-size line that never ends": (
        _post_head("Transfer-Encoding: chunked\r\n"),
        lambda _: b"f" * PIECE,
    ),
    "Content-Length -1": (_post_head("Content-Length: -1\r\n"), lambda _: b"x" * PIECE),
    "Transfer-Encoding: notchunked": (
        _post_head("Transfer-Encoding: notchunked\r\n"),
        lambda _: b"x" * PIECE,
    ),
    "Content-Length and Transfer-Encoding both": (
        _post_head("Content-Length: 4\r\nTransfer-Encoding: chunked\r\n"),
        lambda _: b"x" * PIECE,
    ),
}


def test_bodies_over_the_limit_and_broken_framing_are_refused_at_the_limit(
    serve: ServeProcess, reliability_record: Recorder
) -> None:
    # GIVEN harvest serve with a 1 MiB body limit that has read one body at the limit
    describe_latencies(serve, 3)
    peak_at_rest = memory_kb(serve, "VmHWM")
    sock = connect(serve)
    sock.sendall(_post_head(f"Content-Length: {BODY_LIMIT}\r\nConnection: close\r\n") + b" " * BODY_LIMIT)
    assert read_answer(sock).startswith(b"HTTP/1.1 200 ")  # the API's answer: unsigned, AuthFailure
    sock.close()
    peak_before = memory_kb(serve, "VmHWM")
    outcomes: list[str] = []
    peaks: list[int] = []
    for _round in range(3):
        for case, (head, piece) in OVERSIZED.items():
            # WHEN a client sends the case's request and keeps pushing up to 200 MiB
            sock = connect(serve)
            sent = push_until_refused(sock, head, piece, BIG)
            answer = read_answer(sock)
            sock.close()
            # THEN it gets an answer (4xx, 501, or the API's RequestSizeLimitExceeded) and the
            # connection is closed long before 200 MiB went in
            status_line = answer.split(b"\r\n", 1)[0].decode("latin-1")
            assert status_line.startswith("HTTP/1.1 "), f"{case}: no answer"
            status = int(status_line.split()[1])
            if status == 200:
                assert b"RequestSizeLimitExceeded" in answer, f"{case}: {answer[:300]!r}"
                verdict = "RequestSizeLimitExceeded"
            else:
                assert status in (400, 413, 431, 501), f"{case}: {status_line}"
                verdict = status_line.removeprefix("HTTP/1.1 ").strip()
            assert sent < 32 * MIB, f"{case}: the server read {sent} bytes"
            if _round == 0:
                outcomes.append(f"{case}: {verdict}, closed after {sent / MIB:.1f} MiB sent")
        peaks.append(memory_kb(serve, "VmHWM"))
    # AND memory does not grow with what is pushed: a few MB of buffers and threads, never a body
    first_mb, later_mb = (peaks[0] - peak_before) / 1024, (peaks[-1] - peaks[0]) / 1024
    # On a loaded machine the serve process's peak also moves by a few MB (more worker threads, each
    # with its own malloc arena, when requests overlap). Buffering would show as hundreds of MB:
    # every round pushes 7 bodies of up to 200 MiB, and one buffered body alone is 200 MiB.
    assert first_mb < 16, f"peak RSS grew {first_mb:.1f} MB in the first round"
    assert later_mb < 16, f"peak RSS grew {later_mb:.1f} MB in rounds 2-3"
    # AND the API still answers
    assert statistics.median(describe_latencies(serve, 5)) < 0.100
    reliability_record(
        "Request bodies over the limit and broken framing",
        "HARVEST_MAX_BODY_BYTES=1 MiB; each request pushes up to 200 MiB, 3 rounds: "
        + ", ".join(OVERSIZED),
        "; ".join(outcomes)
        + f"; peak RSS {peak_at_rest / 1024:.1f} MB at rest, {peak_before / 1024:.1f} MB after one accepted"
        f" 1 MiB body, +{first_mb:.1f} MB after the 7 hostile requests, +{later_mb:.1f} MB more after"
        " the same 7 twice again",
    )
