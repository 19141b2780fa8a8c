"""A CallbackURL receiver that answers a byte every 2 s holds up nobody.

`harvest serve` with ONE queue consumer: a job whose callback goes to a trickling receiver ends,
and an unrelated job created right after must still complete promptly. Each delivery attempt is cut
at its overall deadline (HARVEST_CALLBACK_DEADLINE), whatever the receiver does.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import read_job, serve_params, wait_for, wait_until_ended
from tests.support.serve_process import serve_env, start_serve

from harvest.devtools import ChannelSpec, LiveOrigin, Pool, write_channels_yaml

pytest_plugins = ("tests.support.media",)

pytestmark = pytest.mark.media

TRICKLE_EVERY = 2.0
DEADLINE = 3.0


class Trickler:
    """Accepts a POST, then sends its answer's status line one byte every 2 s, for as long as allowed."""

    def __init__(self) -> None:
        self.connections = 0
        self.stopping = threading.Event()
        trickler = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                trickler.connections += 1
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)
                    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"z" * 1000:
                        self.request.sendall(bytes([byte]))
                        if trickler.stopping.wait(TRICKLE_EVERY):
                            return
                except OSError:
                    return  # the client gave up: what the deadline is for

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def stop(self) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def trickler() -> Iterator[Trickler]:
    running = Trickler()
    yield running
    running.stop()


def test_a_trickling_callback_receiver_delays_no_other_job(
    tmp_path: Path, media_pools: dict[str, Pool], trickler: Trickler, reliability_record: Recorder
) -> None:
    # GIVEN `harvest serve` with one queue consumer, a 3 s callback deadline and 2 attempts
    origin = LiveOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}).start()
    registry = tmp_path / "channels.yaml"
    write_channels_yaml(registry, origin.url, origin.channels)
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        registry,
        workers=1,
        extra={
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
            "HARVEST_CALLBACK_DEADLINE": str(DEADLINE),
            "HARVEST_FETCH_ATTEMPTS": "2",
        },
    )
    serve = start_serve(env, data_dir)
    try:
        # WHEN a job whose CallbackURL trickles its answer ends
        now = int(time.time())
        serve.create(serve_params("slow-cb", now - 40, now - 10, trickler.url()))
        assert wait_until_ended(serve, "slow-cb", timeout=60) == "Completed"
        wait_for(lambda: trickler.connections >= 1, 10, "the callback to reach the receiver")
        # AND an unrelated job is created right after
        created = time.monotonic()
        serve.create(serve_params("unrelated", now - 40, now - 10, ""))
        status = wait_until_ended(serve, "unrelated", timeout=60)
        unrelated_took = time.monotonic() - created
        # AND the slow callback's outcome is recorded after its attempts hit the deadline
        database = f"sqlite:///{data_dir / 'harvest.db'}"
        wait_for(lambda: bool(read_job(database, "slow-cb")[0].callback_status), 30, "the callback outcome")
        outcome = read_job(database, "slow-cb")[0].callback_status
    finally:
        serve.stop(10)
        origin.stop()
    # THEN the unrelated job completed promptly, and each callback attempt was cut at the deadline
    assert status == "Completed"
    assert unrelated_took < 10, unrelated_took
    assert outcome == f"failed: no answer within the {DEADLINE:g} s deadline after 2 attempts", outcome
    assert trickler.connections == 2
    reliability_record(
        "Slow CallbackURL receiver",
        f"the receiver answers one byte every {TRICKLE_EVERY:g} s; `harvest serve` with 1 consumer,"
        f" HARVEST_CALLBACK_DEADLINE={DEADLINE:g}, 2 attempts; an unrelated job created right after",
        f"unrelated job Completed {unrelated_took:.1f} s after its Create; callback outcome {outcome!r}",
    )
