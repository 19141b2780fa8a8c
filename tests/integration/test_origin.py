"""The live test origin serves real media the way a DVR-enabled HLS origin does.

Every test runs against real ffmpeg-made segments and a real HTTP server on loopback; the origin's
clock is a ManualClock, so the live edge moves only when a test moves it.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import m3u8
import pytest
import requests
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tests.support.clock import ManualClock
from tests.support.polling import eventually

from harvest.devtools import (
    HLS_INPUT_OPTIONS,
    KINDS,
    ChannelSpec,
    FaultPlan,
    LiveOrigin,
    Pool,
    decode_errors,
    derive_key,
    implicit_iv,
    probe,
    run_demo_origin,
    write_channels_yaml,
)
from harvest.domain.registry import load_registry

pytest_plugins = ("tests.support.media",)
pytestmark = pytest.mark.media

D = 2  # segment seconds
DVR = 60  # seconds of startover window in these tests
NOW = 1_800_000_007.3  # the `origin` fixture's wall time: off any segment boundary
StartOrigin = Callable[..., LiveOrigin]


@pytest.fixture
def web() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback only: never through a proxy from the environment
    return session


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def origin(start_origin: StartOrigin, media_pools: dict[str, Pool], clock: ManualClock) -> LiveOrigin:
    channels = {kind: ChannelSpec(kind, media_pools[kind], D, DVR) for kind in KINDS}
    return start_origin(channels, clock=clock)


def fetch_playlist(web: requests.Session, url: str) -> m3u8.M3U8:
    response = web.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/vnd.apple.mpegurl"
    return m3u8.loads(response.text, uri=url)


def msn_of(playlist: m3u8.M3U8, index: int) -> int:
    return int(playlist.media_sequence) + index


def media_playlist_urls(master: m3u8.M3U8) -> list[str]:
    urls = [p.absolute_uri for p in master.playlists]
    urls += [m.absolute_uri for m in master.media if m.uri]
    return urls


def decrypt(key: bytes, msn: int, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(implicit_iv(msn))).decryptor()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(decryptor.update(data) + decryptor.finalize()) + unpadder.finalize()


# --- playlists -----------------------------------------------------------------------------------


def test_master_lists_variants_audio_subtitles_and_iframe_playlists(
    origin: LiveOrigin, web: requests.Session
) -> None:
    # GIVEN a "ts" channel
    # WHEN its master playlist is read
    master = fetch_playlist(web, origin.master_url("ts"))

    # THEN it offers three video variants bound to one audio and one subtitles group
    assert master.is_variant
    assert [p.stream_info.resolution for p in master.playlists] == [(320, 180), (480, 270), (640, 360)]
    for variant in master.playlists:
        assert variant.stream_info.codecs == "avc1.4d401e,mp4a.40.2"
        assert variant.stream_info.audio == "aud"
        assert variant.stream_info.subtitles == "subs"
        assert variant.stream_info.bandwidth > variant.stream_info.average_bandwidth > 0
    assert sorted(m.type for m in master.media) == ["AUDIO", "SUBTITLES"]
    # AND an I-frame playlist per variant
    assert [p.uri for p in master.iframe_playlists] == [
        "v0/iframes.m3u8",
        "v1/iframes.m3u8",
        "v2/iframes.m3u8",
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_live_playlists_cover_the_dvr_window_with_program_date_times(
    kind: str, origin: LiveOrigin, web: requests.Session, media_pools: dict[str, Pool]
) -> None:
    # GIVEN a channel of each kind, a DVR window of 60 s and a 6-segment pool looped for ever
    size = media_pools[kind].size
    first, last = origin.live_window(kind)
    master = fetch_playlist(web, origin.master_url(kind))

    for url in media_playlist_urls(master):
        # WHEN each media playlist is read
        playlist = fetch_playlist(web, url)

        # THEN it is live and lists exactly the window, up to the last segment that has ended
        assert not playlist.is_endlist
        assert playlist.playlist_type is None
        assert playlist.media_sequence == first
        assert len(playlist.segments) == DVR // D
        assert msn_of(playlist, len(playlist.segments) - 1) == last
        assert origin.segment_start(kind, last + 1) <= NOW < origin.segment_start(kind, last + 2)
        assert playlist.target_duration == D
        # AND every segment has a PROGRAM-DATE-TIME equal to epoch0 + msn * d
        for index, segment in enumerate(playlist.segments):
            assert segment.program_date_time is not None
            assert segment.program_date_time.timestamp() == origin.segment_start(
                kind, msn_of(playlist, index)
            )
        # AND each wrap of the pool is a discontinuity, counted by the discontinuity sequence
        assert playlist.discontinuity_sequence == first // size
        wraps = [msn_of(playlist, i) for i, s in enumerate(playlist.segments) if s.discontinuity]
        assert wraps == [n for n in range(first + 1, last + 1) if n % size == 0]


def test_playlist_text_has_millisecond_utc_program_date_times(
    origin: LiveOrigin, web: requests.Session
) -> None:
    # GIVEN a live channel
    # WHEN its media playlist text is read
    text = web.get(origin.playlist_url("ts", "v0"), timeout=10).text

    # THEN PROGRAM-DATE-TIME is ISO 8601 with milliseconds and Z, on every segment
    lines = text.splitlines()
    stamps = [line.split(":", 1)[1] for line in lines if line.startswith("#EXT-X-PROGRAM-DATE-TIME:")]
    assert len(stamps) == sum(1 for line in lines if line.startswith("#EXTINF:"))
    assert all(len(stamp) == len("2027-01-15T08:00:00.000Z") and stamp.endswith("Z") for stamp in stamps)


def test_live_window_slides_as_time_passes(
    origin: LiveOrigin, web: requests.Session, clock: ManualClock
) -> None:
    # GIVEN a live playlist
    before = fetch_playlist(web, origin.playlist_url("ts", "v1"))

    # WHEN two segments' worth of time passes
    clock.advance(2 * D)
    after = fetch_playlist(web, origin.playlist_url("ts", "v1"))

    # THEN the window moved by two segments and kept its length
    assert after.media_sequence == before.media_sequence + 2
    assert len(after.segments) == len(before.segments)


def test_kind_specific_tags(origin: LiveOrigin, web: requests.Session) -> None:
    # GIVEN one channel per kind
    # WHEN their first variant playlists are read
    fmp4 = fetch_playlist(web, origin.playlist_url("fmp4", "v0"))
    aes = fetch_playlist(web, origin.playlist_url("aes", "v0"))
    packed = fetch_playlist(web, origin.playlist_url("byterange", "v0"))

    # THEN fMP4 segments have an init section
    assert all(s.init_section is not None and s.init_section.uri == "init.mp4" for s in fmp4.segments)
    # AND AES segments name a key that changes every 5 segments, with no IV (implicit IV = msn)
    for index, segment in enumerate(aes.segments):
        assert segment.key.method == "AES-128"
        assert segment.key.iv is None
        assert segment.key.uri == f"../keys/{msn_of(aes, index) // 5}.key"
    # AND packed segments carry byte ranges into 5-segment resources, the offset written only where needed
    for index, segment in enumerate(packed.segments):
        msn = msn_of(packed, index)
        assert segment.uri == f"pack-{msn // 5}.ts"
        explicit = index == 0 or msn % 5 == 0
        assert ("@" in segment.byterange) == explicit


# --- timeshift -----------------------------------------------------------------------------------


def test_timeshift_query_lists_the_overlapping_segments(origin: LiveOrigin, web: requests.Session) -> None:
    # GIVEN a window inside the DVR window that has fully passed, with edges inside segments
    _, last = origin.live_window("ts")
    start = origin.segment_start("ts", last - 10) + 0.5
    end = origin.segment_start("ts", last - 5) + 0.1

    # WHEN the playlist is requested for it
    playlist = fetch_playlist(web, f"{origin.playlist_url('ts', 'v0')}?start={start}&end={end}")

    # THEN it lists every segment overlapping [start, end) and ends, since nothing will be added
    assert playlist.media_sequence == last - 10
    assert len(playlist.segments) == 6
    assert playlist.is_endlist


def test_timeshift_reaching_into_the_future_stays_live(origin: LiveOrigin, web: requests.Session) -> None:
    # GIVEN a window that started 20 s ago and ends in a minute
    _, last = origin.live_window("fmp4")
    url = f"{origin.playlist_url('fmp4', 'audio')}?start={NOW - 20}&end={NOW + 60}"

    # WHEN the playlist is requested
    playlist = fetch_playlist(web, url)

    # THEN it runs up to the live edge and has no ENDLIST
    assert not playlist.is_endlist
    assert msn_of(playlist, len(playlist.segments) - 1) == last
    assert playlist.segments[0].program_date_time.timestamp() <= NOW - 20


def test_timeshift_query_on_master_is_passed_to_child_playlists(
    origin: LiveOrigin, web: requests.Session
) -> None:
    # GIVEN a timeshift query on the master
    query = f"start={NOW - 30}&end={NOW - 10}"

    # WHEN the master is read
    master = fetch_playlist(web, f"{origin.master_url('ts')}?{query}")

    # THEN every child playlist URI carries the query, so the whole presentation is clipped alike
    for url in media_playlist_urls(master):
        assert url.endswith(f"?{query}")
        assert fetch_playlist(web, url).is_endlist


def test_timeshift_errors(origin: LiveOrigin, web: requests.Session) -> None:
    url = origin.playlist_url("ts", "v0")
    # GIVEN a malformed query, an inverted window, and a window entirely in the future
    # WHEN they are requested THEN the first two are rejected and the third has nothing to list
    assert web.get(f"{url}?start=yesterday&end={NOW}", timeout=10).status_code == 400
    assert web.get(f"{url}?start={NOW}&end={NOW - 10}", timeout=10).status_code == 400
    assert web.get(f"{url}?start={NOW + 100}&end={NOW + 200}", timeout=10).status_code == 404


# --- segments ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_segments_are_served_byte_exact_even_after_leaving_the_window(
    kind: str, origin: LiveOrigin, web: requests.Session, media_pools: dict[str, Pool]
) -> None:
    # GIVEN a segment long gone from the live window, and one at the live edge
    first, last = origin.live_window(kind)
    pool = media_pools[kind]
    for msn in (first - 1000, last):
        for rendition in pool.renditions:
            # WHEN it is fetched from its source URL (and byte range, for packed resources)
            headers = {}
            byte_range = origin.source_range(kind, rendition.name, msn)
            if byte_range is not None:
                offset, length = byte_range
                headers["Range"] = f"bytes={offset}-{offset + length - 1}"
            response = web.get(origin.source_url(kind, rendition.name, msn), headers=headers, timeout=10)

            # THEN it is exactly the bytes the origin says it serves
            assert response.status_code == (206 if byte_range else 200)
            assert response.content == origin.segment_bytes(kind, rendition.name, msn)
            # AND those are the pool's file (encrypted, for "aes")
            plain = rendition.segment_files[msn % pool.size].read_bytes()
            assert origin.plain_segment_bytes(kind, rendition.name, msn) == plain
            assert (response.content == plain) == (kind != "aes")


def test_segment_urls_from_the_playlist_resolve_to_the_source(
    origin: LiveOrigin, web: requests.Session
) -> None:
    # GIVEN the live fMP4 audio playlist
    playlist = fetch_playlist(web, origin.playlist_url("fmp4", "audio"))
    segment = playlist.segments[-1]

    # WHEN its last segment and init section are fetched through the playlist's relative URIs
    body = web.get(segment.absolute_uri, timeout=10).content
    init = web.get(urljoin(playlist.base_uri, segment.init_section.uri), timeout=10).content

    # THEN they are the source's bytes for that msn
    msn = msn_of(playlist, len(playlist.segments) - 1)
    assert body == origin.segment_bytes("fmp4", "audio", msn)
    assert init == origin.init_bytes("fmp4", "audio")


def test_a_segment_that_has_not_ended_is_not_served_yet(origin: LiveOrigin, web: requests.Session) -> None:
    # GIVEN the segment after the live edge (still being "recorded")
    _, last = origin.live_window("ts")
    url = origin.source_url("ts", "v0", last + 1)

    # WHEN it is fetched THEN it is not there yet
    assert web.get(url, timeout=10).status_code == 404


def test_range_requests(origin: LiveOrigin, web: requests.Session) -> None:
    # GIVEN a segment
    _, last = origin.live_window("ts")
    url = origin.source_url("ts", "v2", last)
    whole = origin.segment_bytes("ts", "v2", last)

    # WHEN parts of it are requested
    middle = web.get(url, headers={"Range": "bytes=100-1099"}, timeout=10)
    tail = web.get(url, headers={"Range": "bytes=-188"}, timeout=10)
    rest = web.get(url, headers={"Range": f"bytes={len(whole) - 10}-"}, timeout=10)
    beyond = web.get(url, headers={"Range": f"bytes={len(whole)}-"}, timeout=10)

    # THEN each is a 206 with the right bytes and Content-Range; a range past the end is a 416
    assert middle.status_code == 206
    assert middle.content == whole[100:1100]
    assert middle.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
    assert middle.headers["Content-Length"] == "1000"
    assert tail.status_code == 206
    assert tail.content == whole[-188:]
    assert rest.status_code == 206
    assert rest.content == whole[-10:]
    assert beyond.status_code == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(whole)}"


def test_connections_are_kept_alive(origin: LiveOrigin) -> None:
    # GIVEN one HTTP/1.1 connection
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    _, last = origin.live_window("ts")
    received = 0
    try:
        # WHEN a playlist and three segments are fetched over it
        paths = ["/ts/v0/index.m3u8"] + [f"/ts/v0/{msn}.ts" for msn in range(last - 2, last + 1)]
        for path in paths:
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200
            assert int(response.headers["Content-Length"]) == len(body)
            received += len(body)
    finally:
        connection.close()

    # THEN the origin saw one connection, and counted the requests and the body bytes it sent
    # (its thread counts after writing the body, which the client may have read already: wait a bit)
    def counted() -> dict[str, Any] | None:
        now = origin.stats.snapshot()
        return now if now["bytes_sent"] >= received else None

    stats = eventually(counted, 5, f"the origin to count the {received} body bytes sent")
    assert stats["connections"] == 1
    assert stats["requests"] == {"playlist": 1, "segment": 3}
    assert stats["statuses"] == {"200": 4}
    assert stats["bytes_sent"] == received


# --- AES-128 -------------------------------------------------------------------------------------


def test_aes_segments_decrypt_with_the_rotating_key_and_implicit_iv(
    origin: LiveOrigin, web: requests.Session, tmp_path: Path
) -> None:
    # GIVEN the live AES playlist, whose keys rotate every 5 segments
    playlist = fetch_playlist(web, origin.playlist_url("aes", "v1"))
    keys_seen = set()
    for index in range(len(playlist.segments) - 6, len(playlist.segments)):
        segment = playlist.segments[index]
        msn = msn_of(playlist, index)

        # WHEN a segment and the key its playlist names are fetched
        key = web.get(segment.key.absolute_uri, timeout=10).content
        data = web.get(segment.absolute_uri, timeout=10).content

        # THEN the key is the derived one, and the segment decrypts with IV = msn to the pool's bytes
        assert key == derive_key("harvest-devtools", msn // 5) == origin.key_bytes("aes", msn // 5)
        assert data != origin.plain_segment_bytes("aes", "v1", msn)
        plain = decrypt(key, msn, data)
        assert plain == origin.plain_segment_bytes("aes", "v1", msn)
        keys_seen.add(key)
    # AND the six segments spanned a key rotation
    assert len(keys_seen) == 2
    # AND the decrypted bytes are a real TS ffprobe can read
    path = tmp_path / "plain.ts"
    path.write_bytes(plain)
    streams = probe(str(path), "-show_entries", "stream=codec_name,width")["streams"]
    assert streams == [{"codec_name": "h264", "width": 480}]


# --- I-frames ------------------------------------------------------------------------------------


def test_iframe_byte_ranges_hold_a_keyframe(
    origin: LiveOrigin, web: requests.Session, tmp_path: Path
) -> None:
    # GIVEN the I-frame playlist of a variant
    master = fetch_playlist(web, origin.master_url("ts"))
    playlist = fetch_playlist(web, master.iframe_playlists[2].absolute_uri)
    assert playlist.is_i_frames_only

    for segment in playlist.segments[-3:]:
        # WHEN the byte range of an entry is fetched
        length, offset = (int(part) for part in segment.byterange.split("@"))
        response = web.get(
            segment.absolute_uri, headers={"Range": f"bytes={offset}-{offset + length - 1}"}, timeout=10
        )
        assert response.status_code == 206
        path = tmp_path / "iframe.ts"
        path.write_bytes(response.content)

        # THEN that slice alone decodes to exactly one frame, an I-frame (a keyframe)
        frames = probe(str(path), "-show_entries", "frame=key_frame,pict_type")["frames"]
        assert [(f["key_frame"], f["pict_type"]) for f in frames] == [(1, "I")]


# --- decoding ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_rendition_decodes_cleanly_through_the_origin(kind: str, origin: LiveOrigin) -> None:
    # GIVEN a 30 s timeshift window spanning at least two wraps of the 12 s pool
    query = f"start={NOW - 40}&end={NOW - 10}"
    for rendition in ("v0", "v1", "v2", "audio"):
        url = f"{origin.playlist_url(kind, rendition)}?{query}"

        # WHEN ffmpeg plays it from the origin (fetching keys and init sections as needed)
        # THEN it decodes every frame without a warning
        assert decode_errors(url, *HLS_INPUT_OPTIONS) == ""


@pytest.mark.parametrize("kind", ["ts", "fmp4"])
def test_each_pool_segment_decodes_on_its_own(
    kind: str, media_pools: dict[str, Pool], tmp_path: Path
) -> None:
    # GIVEN the pool's segment files (fMP4 ones behind their init section)
    for rendition in media_pools[kind].renditions:
        if rendition.media_type == "SUBTITLES":
            continue
        for index, segment in enumerate(rendition.segment_files):
            path = tmp_path / f"{rendition.name}-{index}.{rendition.extension}"
            init = rendition.init_file.read_bytes() if rendition.init_file else b""
            path.write_bytes(init + segment.read_bytes())

            # WHEN ffmpeg decodes it THEN it prints nothing
            assert decode_errors(str(path)) == ""


def test_subtitle_segments_are_webvtt_with_a_timestamp_map(media_pools: dict[str, Pool]) -> None:
    # GIVEN the subtitle rendition of the "ts" pool
    subs = media_pools["ts"].rendition("subs")
    for index, path in enumerate(subs.segment_files):
        # WHEN ffmpeg reads a segment as WebVTT
        text = path.read_text()
        converted = decode_errors(str(path), output_format="webvtt")

        # THEN it parses cleanly, maps its timeline onto the video's PTS and holds this segment's cue
        assert converted == ""
        assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:")
        assert f"Test pool segment {index}" in text


# --- faults --------------------------------------------------------------------------------------


def segment_statuses(web: requests.Session, origin: LiveOrigin, msns: range) -> dict[int, int]:
    return {msn: web.get(origin.source_url("ts", "v0", msn), timeout=10).status_code for msn in msns}


def test_error_rate_fails_about_that_share_of_requests_and_a_retry_gets_through(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN an origin failing 30% of segment requests with 503
    plan = FaultPlan(error_rate=0.3, seed=7)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)}, faults=plan)
    _, last = origin.live_window("ts")
    msns = range(last - 199, last + 1)

    # WHEN 200 different segments are fetched once each
    first_try = segment_statuses(web, origin, msns)

    # THEN roughly 30% failed with 503, the rest succeeded, and the playlist was never hit
    failed = [msn for msn, status in first_try.items() if status == 503]
    assert 30 <= len(failed) <= 90
    assert set(first_try.values()) == {200, 503}
    assert fetch_playlist(web, origin.playlist_url("ts", "v0")).segments
    # AND a client retrying up to 5 times gets every failed segment
    for msn in failed:
        statuses = [web.get(origin.source_url("ts", "v0", msn), timeout=10).status_code for _ in range(5)]
        assert 200 in statuses
    # AND the same plan on a fresh origin fails exactly the same requests (reproducible)
    again = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)}, faults=plan)
    assert segment_statuses(web, again, msns) == first_try


def test_missing_segments_are_404_for_ever(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN a running origin, and a plan set on it with one missing segment per channel; the packed
    # one sits in the middle of its 5-segment resource
    origin = start_origin(
        {
            "ts": ChannelSpec("ts", media_pools["ts"], D, DVR),
            "byterange": ChannelSpec("byterange", media_pools["byterange"], D, DVR),
        }
    )
    _, last = origin.live_window("ts")
    gone = (last - 10) // 5 * 5 + 2
    origin.faults = FaultPlan(missing={("ts", "v0", gone), ("byterange", "audio", gone)})

    # WHEN it is fetched again and again THEN it is always 404, while its neighbours are fine
    statuses = [web.get(origin.source_url("ts", "v0", gone), timeout=10).status_code for _ in range(6)]
    assert statuses == [404] * 6
    neighbours = range(gone + 1, gone + 4)
    assert segment_statuses(web, origin, neighbours) == dict.fromkeys(neighbours, 200)
    # AND in a packed resource, only a range touching the missing segment is refused
    url = origin.source_url("byterange", "audio", gone)
    for msn, expected in ((gone - 1, 206), (gone, 404), (gone + 1, 206)):
        assert origin.source_url("byterange", "audio", msn) == url
        offset, length = origin.source_range("byterange", "audio", msn) or (0, 0)
        response = web.get(url, headers={"Range": f"bytes={offset}-{offset + length - 1}"}, timeout=10)
        assert response.status_code == expected
    assert web.get(url, timeout=10).status_code == 404  # the whole resource holds it too


def test_cut_responses_end_before_their_content_length(
    start_origin: StartOrigin, media_pools: dict[str, Pool]
) -> None:
    # GIVEN an origin that cuts every segment body (at most 3 times per path)
    origin = start_origin(
        {"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)}, faults=FaultPlan(cut_rate=1.0)
    )
    _, last = origin.live_window("ts")
    path = f"/ts/v0/{last}.ts"

    for _ in range(3):
        # WHEN the segment is fetched THEN the body stops short of Content-Length
        connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
        connection.request("GET", path)
        response = connection.getresponse()
        with pytest.raises(http.client.IncompleteRead):
            response.read()
        connection.close()
    # AND the fourth attempt gets the whole segment
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    connection.request("GET", path)
    assert connection.getresponse().read() == origin.segment_bytes("ts", "v0", last)
    connection.close()
    assert origin.stats.snapshot()["faults"] == {"cut": 3}


def test_stalled_requests_hang_past_a_client_timeout(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN an origin that stalls every segment request for 30 s
    plan = FaultPlan(stall_rate=1.0, stall_seconds=30)
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)}, faults=plan)
    _, last = origin.live_window("ts")

    # WHEN a client with a short read timeout fetches a segment THEN it times out
    with pytest.raises(requests.exceptions.ReadTimeout):
        web.get(origin.source_url("ts", "v0", last), timeout=0.5)
    # AND playlists are not affected (faults target segments by default)
    assert web.get(origin.playlist_url("ts", "v0"), timeout=10).status_code == 200


def test_faults_can_target_playlists(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN an origin failing every playlist request (3 times per path)
    plan = FaultPlan(error_rate=1.0, targets=frozenset({"playlist", "master"}))
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)}, faults=plan)

    # WHEN the master is fetched four times THEN the first three fail and the fourth succeeds
    statuses = [web.get(origin.master_url("ts"), timeout=10).status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]


def test_a_down_origin_drops_every_connection(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN a running origin that goes down
    origin = start_origin({"ts": ChannelSpec("ts", media_pools["ts"], D, DVR)})
    assert web.get(origin.master_url("ts"), timeout=10).status_code == 200
    origin.faults = FaultPlan(down=True)

    # WHEN anything is requested THEN the connection closes without an answer
    with pytest.raises(requests.exceptions.ConnectionError):
        web.get(origin.playlist_url("ts", "v0"), timeout=10)
    # AND it answers again once it is back up
    origin.faults = None
    assert web.get(origin.playlist_url("ts", "v0"), timeout=10).status_code == 200


# --- access and configuration --------------------------------------------------------------------


def test_a_channel_can_require_a_header(
    start_origin: StartOrigin, media_pools: dict[str, Pool], web: requests.Session
) -> None:
    # GIVEN a channel that requires X-TENCENT-PACKAGE
    spec = ChannelSpec("aes", media_pools["aes"], D, DVR, required_headers={"X-TENCENT-PACKAGE": "secret"})
    origin = start_origin({"locked": spec})
    _, last = origin.live_window("locked")
    urls = [
        origin.master_url("locked"),
        origin.source_url("locked", "v0", last),
        f"{origin.url}/locked/keys/1.key",
    ]

    # WHEN it is requested without, with a wrong, and with the right header
    # THEN only the right header gets through, for playlists, segments and keys alike
    for url in urls:
        assert web.get(url, timeout=10).status_code == 403
        assert web.get(url, headers={"X-TENCENT-PACKAGE": "guess"}, timeout=10).status_code == 403
        assert web.get(url, headers={"X-TENCENT-PACKAGE": "secret"}, timeout=10).status_code == 200


def test_written_registry_points_at_the_origin_channels(
    origin: LiveOrigin, media_pools: dict[str, Pool], tmp_path: Path
) -> None:
    # GIVEN the origin's channels, one of them behind a header
    channels = {kind: ChannelSpec(kind, media_pools[kind], D, DVR) for kind in ("ts", "fmp4")}
    channels["locked"] = ChannelSpec(
        "ts", media_pools["ts"], D, DVR, required_headers={"X-TENCENT-PACKAGE": "s"}
    )

    # WHEN a channel registry is written for them
    path = tmp_path / "channels.yaml"
    write_channels_yaml(path, origin.url, channels)

    # THEN the harvest service reads it: one `hls` endpoint per channel, at the master, with the DVR window
    registry = load_registry(path)
    assert sorted(registry.channels) == ["fmp4", "locked", "ts"]
    endpoint = registry.channel("ts").endpoint("hls")
    assert endpoint.url == origin.master_url("ts")
    assert endpoint.startover_window == DVR
    assert endpoint.timeshift_query == "start={start}&end={end}"
    assert registry.channel("locked").endpoint("hls").headers == {"X-TENCENT-PACKAGE": "s"}


def test_demo_origin_serves_until_stopped(
    tmp_path: Path, web: requests.Session, media_pools: dict[str, Pool]
) -> None:
    # GIVEN a data directory whose media cache is the test suite's (so nothing is re-encoded)
    (tmp_path / "media").symlink_to(media_pools["ts"].root.parent, target_is_directory=True)
    ready: list[LiveOrigin] = []
    stop = threading.Event()
    started = threading.Event()

    def on_ready(origin: LiveOrigin) -> None:
        ready.append(origin)
        started.set()

    # WHEN the demo origin runs in a thread
    thread = threading.Thread(
        target=run_demo_origin,
        kwargs={"data_dir": tmp_path, "host": "127.0.0.1", "port": 0, "kinds": ("ts", "aes"),
                "stop_event": stop, "on_ready": on_ready, "pool_seconds": 12},
    )  # fmt: skip
    thread.start()
    try:
        assert started.wait(60)
        url = ready[0].url
        # THEN it serves a live "demo" channel (and "demo-aes") with the requested window
        playlist = fetch_playlist(web, f"{url}/demo/v0/index.m3u8")
        assert len(playlist.segments) == 3600 // D
        assert web.get(f"{url}/demo-aes/master.m3u8", timeout=10).status_code == 200
    finally:
        stop.set()
        thread.join(30)
    # AND it stops when asked
    assert not thread.is_alive()
    with pytest.raises(requests.exceptions.ConnectionError):
        web.get(f"{url}/demo/master.m3u8", timeout=5)
