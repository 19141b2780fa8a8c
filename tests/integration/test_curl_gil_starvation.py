"""A download thread that waits for the GIL does not blame the origin (libcurl client).

The libcurl client measures an origin's silence itself (libcurl only reports what happened when
it is asked), so a thread that is kept from running Python must not count that time as silence.
Here another thread holds the GIL for up to 0.3 s at a time (switch interval 0.3 s) while
segments are fetched with a 0.2 s timeout from an origin in another process that answers at
once: every fetch must succeed on its first attempt. A fetch here waits for the GIL 6-7 times
(about 2 s), so libcurl's own connect timeout, a backstop at CONNECT_BACKSTOP timeouts (2 s here,
100 s with the default 10 s timeout), is set out of the way: CI on a loaded machine once saw it
fire ("connect timeout"), and it is not what this test is about.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.polling import eventually

from harvest.adapters import curl_transport
from harvest.adapters.http_origin import HttpOrigin
from harvest.adapters.retry import RetryPolicy

pytest.importorskip("pycurl")

SEGMENTS = 3


@pytest.fixture
def other_process_origin(tmp_path: Path) -> Iterator[str]:
    for i in range(SEGMENTS):
        (tmp_path / f"{i}.ts").write_bytes(bytes([i]) * 4096)
    server = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = eventually(server.stdout.readline, 10, "the origin's banner")
        port = int(line.split("port ")[1].split()[0])
        yield f"http://127.0.0.1:{port}"
    finally:
        server.kill()
        server.wait(10)


def test_waiting_for_the_gil_is_not_taken_for_an_origin_timeout(
    other_process_origin: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(curl_transport, "CONNECT_BACKSTOP", 100)
    # GIVEN the libcurl client with a 0.2 s timeout and one attempt, and a thread that keeps the
    # GIL for up to 0.3 s at a time
    retries: list[tuple[str, str, bool]] = []
    origin = HttpOrigin(
        RetryPolicy(attempts=1), 0.2, 4, client="curl", on_error=lambda *e: retries.append(e)
    )
    stop = threading.Event()

    def hog() -> None:
        while not stop.is_set():
            sum(range(10_000))

    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.3)
    hogger = threading.Thread(target=hog, daemon=True)
    hogger.start()
    try:
        # WHEN segments are fetched one after another
        started = time.monotonic()
        bodies = [origin.get_bytes(f"{other_process_origin}/{i}.ts", {}) for i in range(SEGMENTS)]
        elapsed = time.monotonic() - started
    finally:
        stop.set()
        sys.setswitchinterval(switch)
        hogger.join(10)
    # THEN every one arrived whole at its first attempt, though the thread waited for the GIL
    assert bodies == [bytes([i]) * 4096 for i in range(SEGMENTS)]
    assert retries == []
    assert elapsed > 0.2  # the hog did hold the thread up longer than the timeout
