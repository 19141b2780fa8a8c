"""The DASH reader on what ffmpeg's own dash muxer writes live: a dynamic MPD with a SegmentTemplate,
without a SegmentTimeline (`-use_timeline 0`, $Number%05d$ from @duration and availabilityStartTime)
and with one (`-use_timeline 1`).

ffmpeg encodes a test source in real time (`-re`) into a served folder and is killed mid-stream, so the
MPD on disk is the live one (type="dynamic"); the planner reads it over HTTP, the planned segments are
fetched and stored as a job would, and the static MPD written must validate and decode with -xerror.
"""

from __future__ import annotations

import functools
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from tests.support.dash import NS, assert_valid_mpd
from tests.support.engine import ffmpeg_decode_errors

from harvest.composition import build_origin
from harvest.domain.registry import Endpoint
from harvest.engine.plan import build_plan
from harvest.formats.mpd import date_time
from harvest.settings import Settings

pytestmark = pytest.mark.media


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    root = tmp_path / "live"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ffmpeg_live(folder: Path, timeline: bool) -> subprocess.Popen[bytes]:
    command = [
        "ffmpeg", "-nostdin", "-v", "error", "-re",
        "-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=60",
        "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=60",
        "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-keyint_min", "25", "-sc_threshold", "0",
        "-c:a", "aac", "-b:a", "64k",
        "-f", "dash", "-seg_duration", "1", "-use_template", "1", "-use_timeline", "1" if timeline else "0",
        "-window_size", "10", "-extra_window_size", "0",
        str(folder / "live.mpd"),
    ]  # fmt: skip
    return subprocess.Popen(command, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("timeline", [False, True], ids=["duration", "timeline"])
def test_ffmpegs_live_mpd_is_harvested_to_a_static_mpd_that_decodes(
    served: tuple[Path, str], tmp_path: Path, timeline: bool
) -> None:
    folder, url = served
    # GIVEN ffmpeg's dash muxer writing a live MPD in real time, stopped (SIGKILL) after ~6 s
    process = ffmpeg_live(folder, timeline)
    time.sleep(6.5)
    process.kill()
    process.wait()
    now = time.time()
    text = (folder / "live.mpd").read_text()
    assert 'type="dynamic"' in text
    ast = date_time(ET.fromstring(text).get("availabilityStartTime", ""), "availabilityStartTime")
    # WHEN seconds 2..4 of the stream are planned from the MPD over HTTP
    origin = build_origin(Settings(fetch_backoff=0.01))
    endpoint = Endpoint(name="ffmpeg", url=f"{url}/live.mpd", protocol="DASH")
    plan = build_plan(origin, endpoint, ast + 2, ast + 4, _Dest(), "vod/index.mpd", now=now)
    # THEN it asks for the init sections and the segments of both streams that overlap the window
    names = sorted(task.url.rsplit("/", 1)[1] for task in plan.tasks)
    assert [n for n in names if n.startswith("init")] == ["init-stream0.m4s", "init-stream1.m4s"]
    media = [n for n in names if n.startswith("chunk")]
    assert {n.split("-")[1] for n in media} == {"stream0", "stream1"}
    assert len(media) >= 4
    # AND once stored (each the origin's bytes), the static MPD validates and decodes with -xerror
    out = tmp_path / "bucket"
    for task in plan.tasks:
        target = out / task.key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(origin.get_bytes(task.url, {}))
        assert target.read_bytes() == (folder / task.url.rsplit("/", 1)[1]).read_bytes()
    mpd_text = plan.playlists["out/vod/index.mpd"]
    assert_valid_mpd(mpd_text)
    mpd = ET.fromstring(mpd_text)
    assert mpd.get("type") == "static"
    assert len(mpd.findall(".//d:Representation", NS)) == 2
    (out / "out/vod/index.mpd").write_text(mpd_text)
    assert ffmpeg_decode_errors(out / "out/vod/index.mpd") == ""


class _Dest:
    bucket = "vod-1250000000"
    prefix = "out/"
