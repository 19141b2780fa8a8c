"""CancelStreamPackageHarvestJob against `harvest serve`: the job stops fetching within a second.

A real serve process harvests from a slowed live origin; the cancel (through the SDK's
CommonClient) makes the job Failed with who and when, no segment request starts more than a
second after the cancel is answered (chunks poll their job's status every 0.1 s and finish only
the segment they are on), the objects already written stay, and the CallbackURL fires once.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from tencentcloud.common import credential
from tencentcloud.common.common_client import CommonClient
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tests.support.callback_receiver import CallbackReceiver
from tests.support.engine import BUCKET, DESTINATION
from tests.support.polling import eventually
from tests.support.serve_process import (
    SERVE_REGION,
    SERVE_SECRET_ID,
    SERVE_SECRET_KEY,
    channels_file_for,
    serve_env,
    start_serve,
)

from harvest.devtools import ChannelSpec, FaultPlan, LiveOrigin, Pool

pytest_plugins = ("tests.support.media", "tests.support.callback_receiver")
pytestmark = pytest.mark.media


class TimedOrigin(LiveOrigin):
    """A LiveOrigin that notes when each segment request arrives (monotonic seconds)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.segment_requests: list[float] = []
        self._times_lock = threading.Lock()

    def _serve(self, handler: Any, head: bool) -> None:
        if urlsplit(handler.path).path.endswith(".ts"):
            with self._times_lock:
                self.segment_requests.append(time.monotonic())
        super()._serve(handler, head)

    def requests_after(self, moment: float) -> list[float]:
        with self._times_lock:
            return [at - moment for at in self.segment_requests if at > moment]


def test_a_cancelled_job_stops_fetching_within_a_second_and_calls_back_once(
    tmp_path: Path, media_pools: dict[str, Pool], callback_receiver: CallbackReceiver
) -> None:
    # GIVEN a live channel whose every segment answers 0.3 s late, and `harvest serve` on it
    origin = TimedOrigin(
        {"ts": ChannelSpec("ts", media_pools["ts"], dvr_window=3600)},
        faults=FaultPlan(stall_rate=1.0, stall_seconds=0.3, seed=3),
    )
    origin.start()
    data_dir = tmp_path / "data"
    env = serve_env(
        data_dir,
        channels_file_for(origin, tmp_path),
        workers=2,
        extra={"HARVEST_DOWNLOAD_CONCURRENCY": "4", "HARVEST_ALLOW_PRIVATE_CALLBACKS": "true"},
    )
    serve = start_serve(env, data_dir)
    job_dir = data_dir / "cos" / BUCKET / "out" / "cancel"
    try:
        profile = ClientProfile(httpProfile=HttpProfile(endpoint=serve.endpoint, protocol="http"))
        common = CommonClient(
            "mdp",
            "2020-05-27",
            credential.Credential(SERVE_SECRET_ID, SERVE_SECRET_KEY),
            SERVE_REGION,
            profile,
        )
        now = int(time.time())
        common.call_json(
            "CreateStreamPackageHarvestJob",
            {
                "ID": "cancel",
                "ChannelName": "ts",
                "EndpointName": "hls",
                "TimeFormat": "Epoch seconds",
                "StartTime": str(now - 310),
                "EndTime": str(now - 10),
                "Destination": DESTINATION,
                "Manifest": "cancel/index.m3u8",
                "CallbackURL": callback_receiver.url(),
            },
        )
        # WHEN it is cancelled while harvesting (20 objects stored)
        eventually(lambda: sum(1 for _ in job_dir.rglob("*.ts")) >= 20, 60, "20 stored segments")
        answer = common.call_json("CancelStreamPackageHarvestJob", {"ID": "cancel"})["Response"]["Info"]
        cancelled_at = time.monotonic()
        # THEN the job is Failed, saying who cancelled it and when
        assert answer["Status"] == "Failed"
        assert re.fullmatch(
            rf"cancelled by {SERVE_SECRET_ID} at \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ", answer["ErrMessage"]
        )
        # AND the callback fires once, with that record
        eventually(
            lambda: len(callback_receiver.received()) >= 1, 10, lambda: "the callback:\n" + serve.log_tail(80)
        )
        time.sleep(3.0)  # long past the last fetch: anything still running would show by now
        late = origin.requests_after(cancelled_at)
        described = common.call_json("DescribeStreamPackageHarvestJob", {"ID": "cancel"})["Response"]["Info"]
    finally:
        serve.stop()
        origin.stop()
    # AND no segment request started more than a second after the cancel was answered
    assert all(offset < 1.0 for offset in late), late
    # (at most the downloads already under way, 2 consumers x 4, could be waiting to start)
    assert len(late) <= 8, late
    callbacks = callback_receiver.received()
    assert [(body["ID"], body["Status"], body["ErrMessage"]) for _, body in callbacks] == [
        ("cancel", "Failed", answer["ErrMessage"])
    ]
    # AND the job stays Failed with the same message, and the objects already written stay
    assert (described["Status"], described["ErrMessage"]) == ("Failed", answer["ErrMessage"])
    stored = sum(1 for _ in job_dir.rglob("*.ts"))
    assert stored >= 20
    print(
        f"cancel: {len(late)} segment requests after the answer, latest at"
        f" +{max(late, default=0):.3f} s; {stored} stored"
    )
