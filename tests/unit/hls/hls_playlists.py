"""Playlist fixtures for the HLS and planner tests: a small builder plus named playlists.

Times are epoch seconds from BASE (2023-11-14T22:13:20Z), so a segment's PDT reads as `BASE + 6 * i`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from harvest.domain.registry import Endpoint
from harvest.engine.plan import Plan, PlanLimits, build_plan
from harvest.errors import PlaylistError
from harvest.hls.parse import format_date
from harvest.ports import FetchedPlaylist, T

BASE = 1_700_000_000.0
ORIGIN = "http://127.0.0.1:9/live"


def iso(epoch: float) -> str:
    return format_date(epoch)


@dataclass(frozen=True)
class Seg:
    """One segment: `before` holds raw tag lines written between the previous URI and this EXTINF."""

    uri: str
    duration: str = "6.000"
    pdt: float | None = None
    before: tuple[str, ...] = ()
    title: str = ""


def media(
    segments: Iterable[Seg],
    *,
    target: int = 6,
    msn: int | None = None,
    dsn: int | None = None,
    version: int | None = None,
    header: Iterable[str] = (),
    trailer: Iterable[str] = (),
    ended: bool = False,
) -> str:
    lines = ["#EXTM3U"]
    if version is not None:
        lines.append(f"#EXT-X-VERSION:{version}")
    lines.append(f"#EXT-X-TARGETDURATION:{target}")
    if msn is not None:
        lines.append(f"#EXT-X-MEDIA-SEQUENCE:{msn}")
    if dsn is not None:
        lines.append(f"#EXT-X-DISCONTINUITY-SEQUENCE:{dsn}")
    lines.extend(header)
    for seg in segments:
        lines.extend(seg.before)
        if seg.pdt is not None:
            lines.append(f"#EXT-X-PROGRAM-DATE-TIME:{iso(seg.pdt)}")
        lines.append(f"#EXTINF:{seg.duration},{seg.title}")
        lines.append(seg.uri)
    lines.extend(trailer)
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def steady(
    count: int,
    *,
    first_msn: int = 0,
    start: float = BASE,
    duration: float = 6.0,
    name: str = "seg_{msn}.ts",
    pdt: str = "each",  # "each" | "first" | "none"
) -> list[Seg]:
    """`count` back-to-back segments of `duration` s starting at `start`."""
    segs = []
    for i in range(count):
        has_pdt = pdt == "each" or (pdt == "first" and i == 0)
        segs.append(
            Seg(
                uri=name.format(msn=first_msn + i),
                duration=f"{duration:.3f}",
                pdt=start + i * duration if has_pdt else None,
            )
        )
    return segs


def with_tags(segs: list[Seg], index: int, *tags: str) -> list[Seg]:
    """A copy of `segs` with raw tag lines added before segment `index`."""
    out = list(segs)
    seg = out[index]
    out[index] = Seg(seg.uri, seg.duration, seg.pdt, (*seg.before, *tags), seg.title)
    return out


class FakeOrigin:
    """In-memory ports.Origin for the planner: serves fixed playlists and records every request.

    The real HTTP origin is tested against a real server elsewhere; the planner only needs text.
    """

    def __init__(
        self,
        playlists: Mapping[str, str],
        redirects: Mapping[str, str] | None = None,
        segments: Mapping[str, bytes] | None = None,
    ) -> None:
        self.playlists = dict(playlists)
        self.redirects = dict(redirects or {})  # asked-for URL -> where the origin sends it
        self.segments = dict(segments or {})  # the few segments the planner may sniff
        self.requests: list[tuple[str, dict[str, str]]] = []

    def get_text(self, url: str, headers: Mapping[str, str]) -> str:
        return self.get_playlist(url, headers).text

    def get_playlist(self, url: str, headers: Mapping[str, str]) -> FetchedPlaylist:
        self.requests.append((url, dict(headers)))
        final = self.redirects.get(url, url)
        if final not in self.playlists:
            raise PlaylistError(f"playlist {url}: HTTP 404")
        return FetchedPlaylist(self.playlists[final], final)

    def get_bytes(
        self, url: str, headers: Mapping[str, str], byte_range: tuple[int, int] | None = None
    ) -> bytes:
        if url not in self.segments:
            raise AssertionError(f"the planner downloads no segment but to sniff one: {url}")
        data = self.segments[url]
        return data[byte_range[0] : byte_range[0] + byte_range[1]] if byte_range else data

    def stream(
        self,
        url: str,
        headers: Mapping[str, str],
        byte_range: tuple[int, int] | None,
        sink: Callable[[Iterator[bytes]], T],
    ) -> T:
        return sink(iter([self.get_bytes(url, headers, byte_range)]))


# --- named playlists ----------------------------------------------------------------------------

MASTER = "\n".join(
    [
        "#EXTM3U",
        "#EXT-X-VERSION:6",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-SESSION-DATA:DATA-ID="com.example.title",URI="title.json"',
        '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,'
        'CHANNELS="2",URI="audio/en.m3u8"',
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",LANGUAGE="en",NAME="English CC",DEFAULT=NO,FORCED=NO,'
        'URI="subs/en.m3u8"',
        '#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",LANGUAGE="en",NAME="CC1",INSTREAM-ID="CC1"',
        '#EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=700000,CODECS="avc1.4d401e,mp4a.40.2",'
        'RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="aac",SUBTITLES="subs",CLOSED-CAPTIONS="cc",X-CUSTOM=keep',
        "v360/index.m3u8",
        '#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="aac",'
        'SUBTITLES="subs",CLOSED-CAPTIONS="cc"',
        "v720/index.m3u8",
        '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=90000,CODECS="avc1.4d401e",RESOLUTION=640x360,URI="v360/iframes.m3u8"',
        "",
    ]
)
MASTER_URL = f"{ORIGIN}/master.m3u8"


def iframe_playlist(segs: list[Seg], length: int = 1000) -> str:
    """An I-frame playlist with one I-frame (bytes `length`@100) at the start of every given segment."""
    out = [
        Seg(seg.uri, seg.duration, seg.pdt, (*seg.before, f"#EXT-X-BYTERANGE:{length}@100"), seg.title)
        for seg in segs
    ]
    return media(out, header=["#EXT-X-I-FRAMES-ONLY"], version=4, msn=100)


def master_channel(count: int = 20) -> dict[str, str]:
    """Every playlist of MASTER: two video variants, audio, subtitles (10 s), I-frames; msn from 100."""
    video360 = steady(count, first_msn=100, name="seg_{msn}.ts")
    video720 = steady(count, first_msn=100, name="seg_{msn}.ts")
    audio = steady(count, first_msn=100, name="a_{msn}.aac")
    subs = steady(count * 6 // 10, first_msn=100, duration=10.0, name="s_{msn}.vtt")
    return {
        MASTER_URL: MASTER,
        f"{ORIGIN}/v360/index.m3u8": media(video360, msn=100, version=3),
        f"{ORIGIN}/v720/index.m3u8": media(video720, msn=100, version=3),
        f"{ORIGIN}/audio/en.m3u8": media(audio, msn=100, version=3),
        f"{ORIGIN}/subs/en.m3u8": media(subs, msn=100, target=10, version=3),
        f"{ORIGIN}/v360/iframes.m3u8": iframe_playlist(video360),
    }


# fMP4 in one file, addressed by byte ranges, the init section at its start (the way Apple's
# single-file packaging writes it). Segment i occupies bytes 1000 + 5000 * i .. + 5000.
def single_file_fmp4(count: int = 10) -> str:
    segs = [
        Seg(uri="main.mp4", pdt=BASE + 6 * i, before=(f"#EXT-X-BYTERANGE:5000@{1000 + 5000 * i}",))
        for i in range(count)
    ]
    # Every other range leaves out its offset: it must follow the previous one (§4.3.2.2).
    segs = [
        Seg(s.uri, s.duration, s.pdt, ("#EXT-X-BYTERANGE:5000",)) if i % 2 else s for i, s in enumerate(segs)
    ]
    return media(segs, header=['#EXT-X-MAP:URI="main.mp4",BYTERANGE="800@0"'], version=7, msn=0)


LOW_LATENCY = f"""#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0
#EXT-X-PART-INF:PART-TARGET=1.0
#EXT-X-MEDIA-SEQUENCE:50
#EXT-X-PROGRAM-DATE-TIME:{iso(BASE)}
#EXT-X-PART:DURATION=1.0,URI="p50.0.m4s",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.0,URI="p50.1.m4s"
#EXTINF:2.000,
s50.m4s
#EXT-X-PART:DURATION=1.0,URI="p51.0.m4s"
#EXT-X-PART:DURATION=1.0,URI="p51.1.m4s"
#EXTINF:2.000,
s51.m4s
#EXT-X-PART:DURATION=1.0,URI="p52.0.m4s"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI="p52.1.m4s"
#EXT-X-RENDITION-REPORT:URI="../v2/index.m3u8",LAST-MSN=51,LAST-PART=1
"""


# --- planning through the fake origin -----------------------------------------------------------


@dataclass(frozen=True)
class Dest:
    bucket: str = "media-1250000000"
    prefix: str = "vod/"


def plan_for(
    playlists: dict[str, str],
    start: float,
    end: float,
    *,
    url: str = MASTER_URL,
    now: float = BASE + 10_000,
    copy_keys: bool = False,
    endpoint: Endpoint | None = None,
    origin: FakeOrigin | None = None,
    limits: PlanLimits | None = None,
) -> tuple[Plan, FakeOrigin]:
    """Plan [BASE + start, BASE + end) of `playlists` (or of `origin`) into vod/show/index.m3u8."""
    origin = origin or FakeOrigin(playlists)
    plan = build_plan(
        origin,
        endpoint or Endpoint(name="main", url=url),
        BASE + start,
        BASE + end,
        Dest(),
        "show/index.m3u8",
        now=now,
        copy_keys=copy_keys,
        limits=limits or PlanLimits(),
    )
    return plan, origin
