"""The harvest use cases wired to the in-memory fakes (tests/support/fakes.py): no media, server or network.

`World` holds one of each port, the real OutboxRelay between the fake job store and the fake queue,
and a ManualClock that the store, the origin's delays and the use cases share. Jobs are created
through the real create use case; a test then calls `plan_job`, `harvest_chunk`, `finalize_job`...
itself and looks at what a user or the next step would see: the job record, its chunks, the
objects in the bucket, the messages on the queue.

The channel "demo" has one HLS endpoint, "hls", whose live media playlist `live(...)` writes:
segments of SEGMENT_SECONDS with a PROGRAM-DATE-TIME each, from BASE.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.clock import ManualClock
from tests.support.fakes import (
    MemoryJobStore,
    MemoryObjectStore,
    MemoryQueue,
    RecordingNotifier,
    ScriptedOrigin,
)

from harvest.adapters.relay import OutboxRelay
from harvest.domain.job import HarvestJob, Message
from harvest.domain.registry import Channel, Endpoint, Registry
from harvest.domain.validation import CreateParams
from harvest.hls.parse import format_date
from harvest.settings import Settings
from harvest.usecases.api_jobs import create_job
from harvest.usecases.download_pool import DownloadPool
from harvest.usecases.harvest import HarvestDeps

BASE = 1_700_000_000.0  # the first segment's PROGRAM-DATE-TIME
SEGMENT_SECONDS = 2.0
REGION = "ap-singapore"
BUCKET = "vod-1250000000"
DESTINATION = f"https://{BUCKET}.cos.{REGION}.myqcloud.com/out/"
ORIGIN = "http://origin.example/live"
PLAYLIST_URL = f"{ORIGIN}/index.m3u8"
MASTER_URL = f"{ORIGIN}/master.m3u8"  # the endpoint's URL with `make_world(master=True)`
MASTER = "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360\nindex.m3u8\n"
CHANNEL = "demo"
ENDPOINT = "hls"
HEADERS = {"X-Origin-Token": "t0ken"}


def segment_url(index: int) -> str:
    return f"{ORIGIN}/seg_{index}.ts"


def segment_body(index: int) -> bytes:
    return f"segment {index} ".encode() * 20


def live_playlist(count: int, ended: bool = False) -> str:
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:2", "#EXT-X-MEDIA-SEQUENCE:0"]
    for index in range(count):
        lines += [
            f"#EXT-X-PROGRAM-DATE-TIME:{format_date(BASE + SEGMENT_SECONDS * index)}",
            f"#EXTINF:{SEGMENT_SECONDS:.3f},",
            f"seg_{index}.ts",
        ]
    return "\n".join([*lines, *(["#EXT-X-ENDLIST"] if ended else [])]) + "\n"


def settings(**overrides: Any) -> Settings:
    options: dict[str, Any] = {
        "region": REGION,
        "credentials": {"AKIDtest": "secret"},
        "download_concurrency": 4,
    }
    return Settings(**{**options, **overrides})


@dataclass
class World:
    clock: ManualClock
    store: MemoryJobStore
    queue: MemoryQueue
    objects: MemoryObjectStore
    origin: ScriptedOrigin
    notifier: RecordingNotifier
    deps: HarvestDeps
    sleeps: list[float] = field(default_factory=list)  # every deps.sleep, in seconds

    def live(self, count: int) -> None:
        """The origin serves a live playlist of `count` segments (BASE, BASE + 2, ...) and each segment,
        and a master playlist with that one variant."""
        self.origin.serve(MASTER_URL, MASTER)
        self.origin.serve(PLAYLIST_URL, live_playlist(count))
        for index in range(count):
            self.origin.serve(segment_url(index), segment_body(index))

    def create(self, job_id: str, start: float, end: float, callback_url: str | None = None) -> HarvestJob:
        """A job for [start, end) of the demo channel, through the real create use case."""
        params = CreateParams(
            id=job_id,
            channel_name=CHANNEL,
            endpoint_name=ENDPOINT,
            time_format="Epoch seconds",
            start_time=str(int(start)),
            end_time=str(int(end)),
            destination=DESTINATION,
            manifest=f"{job_id}/index.m3u8",
            callback_url=callback_url,
        )
        return create_job(
            self.store, self.deps.relay, self.deps.registry, self.deps.settings, params, self.clock()
        )

    def published(self) -> list[Message]:
        """Every message on the queue (the relay publishes what the steps commit), in order."""
        return self.queue.messages()

    def take_published(self) -> list[Message]:
        """The messages published since the last call (leased and acked away, as a consumer would)."""
        taken = []
        while deliveries := self.queue.receive(100, 60.0):
            for delivery in deliveries:
                taken.append(delivery.message)
                self.queue.ack(delivery.id)
        return taken

    def stored_keys(self, prefix: str = "") -> list[str]:
        return [key for key, _ in self.objects.list(BUCKET, prefix)]


def make_world(
    now: float = BASE + 3600, objects: MemoryObjectStore | None = None, master: bool = False, **overrides: Any
) -> World:
    """A world at `now` (by default an hour after BASE), with `overrides` of Settings; `objects`
    replaces the bucket (a test's subclass that fails on purpose); with `master` the endpoint is
    the master playlist rather than the media playlist."""
    clock = ManualClock(now)
    store = MemoryJobStore(clock)
    queue = MemoryQueue(clock)
    objects = objects or MemoryObjectStore()
    origin = ScriptedOrigin(clock)
    notifier = RecordingNotifier()
    endpoint = Endpoint(name=ENDPOINT, url=MASTER_URL if master else PLAYLIST_URL, headers=dict(HEADERS))
    registry = Registry({CHANNEL: Channel(CHANNEL, "ch-demo", {ENDPOINT: endpoint})})
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    chosen = settings(**overrides)
    deps = HarvestDeps(
        settings=chosen,
        registry=registry,
        store=store,
        queue=queue,
        relay=OutboxRelay(store, queue),
        objects=objects,
        origin=origin,
        notifier=notifier,
        downloads=DownloadPool(chosen.download_concurrency),
        clock=clock,
        sleep=sleep,
    )
    return World(clock, store, queue, objects, origin, notifier, deps, sleeps)
