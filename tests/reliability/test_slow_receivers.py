"""A CallbackURL receiver that answers a byte every 2 s holds up nobody, and a callback survives a crash.

- `harvest serve` with ONE queue consumer: a job whose callback goes to a trickling receiver ends,
  and an unrelated job created right after must still complete promptly. Each delivery attempt is
  cut at its overall deadline (HARVEST_CALLBACK_DEADLINE), whatever the receiver does.
- `harvest serve` killed while it delivers a callback: the restarted process delivers it.
"""

from __future__ import annotations

import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.reliability.table import Recorder
from tests.reliability.test_crashes import read_job, serve_params
from tests.support.polling import eventually
from tests.support.serve_process import channels_file_for, serve_env, start_serve

from harvest.devtools import ChannelSpec, LiveOrigin, Pool

pytest_plugins = ("tests.support.media",)

pytestmark = pytest.mark.media

TRICKLE_EVERY = 2.0
DEADLINE = 3.0


class Trickler:
    """Accepts a POST, then sends its answer's status line one byte every 2 s, for as long as allowed.

    With `trickle_first`, only that many connections trickle; later ones get a plain 200 at once.
    """

    def __init__(self, trickle_first: int | None = None) -> None:
        self.connections = 0
        self.stopping = threading.Event()
        trickler = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                trickler.connections += 1
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)
                    if trickle_first is not None and trickler.connections > trickle_first:
                        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                        return
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
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        channels_file_for(origin, tmp_path),
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
        assert serve.wait_until_ended("slow-cb", timeout=60) == "Completed"
        eventually(lambda: trickler.connections >= 1, 10, "the callback to reach the receiver")
        # AND an unrelated job is created right after
        created = time.monotonic()
        serve.create(serve_params("unrelated", now - 40, now - 10, ""))
        status = serve.wait_until_ended("unrelated", timeout=60)
        unrelated_took = time.monotonic() - created
        # AND the slow callback's outcome is recorded after its attempts hit the deadline
        database = f"sqlite:///{data_dir / 'harvest.db'}"
        eventually(lambda: bool(read_job(database, "slow-cb")[0].callback_status), 30, "the callback outcome")
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


@pytest.mark.slow
def test_a_callback_whose_deliverer_was_killed_is_delivered_after_the_restart(
    tmp_path: Path, media_pools: dict[str, Pool], reliability_record: Recorder
) -> None:
    # GIVEN a receiver that trickles its first answer and answers 200 after that, and `harvest serve`
    # with short leases, a 5 s callback deadline and one attempt (so a claim goes stale after 20 s)
    trickler = Trickler(trickle_first=1)
    origin = LiveOrigin({"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)}).start()
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        channels_file_for(origin, tmp_path),
        extra={
            "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true",
            "HARVEST_CALLBACK_DEADLINE": "5",
            "HARVEST_FETCH_ATTEMPTS": "1",
            "HARVEST_VISIBILITY_TIMEOUT": "3",
        },
    )
    first = start_serve(env, data_dir)
    second = None
    database = f"sqlite:///{data_dir / 'harvest.db'}"
    try:
        # WHEN the job ends and the process is killed while the receiver holds the callback
        now = int(time.time())
        first.create(serve_params("orphan", now - 40, now - 10, trickler.url()))
        eventually(lambda: trickler.connections >= 1, 60, "the callback to reach the receiver")
        first.kill()
        killed = time.monotonic()
        # AND a new process starts on the same data dir
        second = start_serve(env, data_dir)
        eventually(lambda: bool(read_job(database, "orphan")[0].callback_status), 60, "the callback outcome")
        delivered_after = time.monotonic() - killed
        job = read_job(database, "orphan")[0]
    finally:
        first.stop(5)
        if second is not None:
            second.stop(10)
        trickler.stop()
        origin.stop()
    # THEN the restarted process delivered it, once its predecessor's claim had gone stale
    assert job.callback_status == "delivered: HTTP 200 after 1 attempt", job.callback_status
    assert trickler.connections == 2
    reliability_record(
        "Crash while delivering a callback",
        "SIGKILL of `harvest serve` while the receiver holds the CallbackURL POST; restart on the same"
        " data dir (HARVEST_CALLBACK_DEADLINE=5, 1 attempt: a claim goes stale after 20 s)",
        f"callback {job.callback_status!r} {delivered_after:.1f} s after the kill; 2 POSTs in all",
    )

