"""The DASH reader and writer on hand-written MPDs: addressing, the wall clock, Periods, what is kept.

The planner runs against an in-memory origin (tests/unit/hls/hls_playlists.FakeOrigin); the harvest
of real media from a live origin is in tests/integration/test_dash_engine.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from xml.etree import ElementTree as ET

import pytest
from tests.unit.hls.hls_playlists import Dest, FakeOrigin

from harvest.domain.registry import Endpoint, parse_registry
from harvest.engine.formats import manifest_keys
from harvest.engine.plan import Plan, build_plan
from harvest.errors import ConfigError, PlaylistError, WindowNotCovered
from harvest.formats.mpd import date_time, duration, expand, parse_mpd

AST = 1_800_000_000.0  # 2027-01-15T08:00:00Z
AST_TEXT = "2027-01-15T08:00:00Z"
URL = "http://origin.example/live/manifest.mpd"
NS = {"d": "urn:mpeg:dash:schema:mpd:2011"}


def mpd(periods: str, *, root: str = "", extra: str = "") -> str:
    return (
        '<?xml version="1.0"?>\n<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="dynamic"'
        f' availabilityStartTime="{AST_TEXT}" minBufferTime="PT2S" timeShiftBufferDepth="PT600S"'
        f' profiles="urn:mpeg:dash:profile:isoff-live:2011" {root}>{extra}{periods}</MPD>'
    )


def video(segment_info: str, rep_id: str = "v0", extra: str = "") -> str:
    return (
        f'<AdaptationSet contentType="video" mimeType="video/mp4">{extra}'
        f'<Representation id="{rep_id}" bandwidth="500000" codecs="avc1.4d401e" width="640" height="360">'
        f"{segment_info}</Representation></AdaptationSet>"
    )


def plan(
    text: str, start: float, end: float, now: float = AST + 1000, more: Mapping[str, str] | None = None
) -> tuple[Plan, ET.Element]:
    origin = FakeOrigin({URL: text, **(more or {})})
    endpoint = Endpoint(name="dash", url=URL, protocol="DASH")
    result = build_plan(origin, endpoint, AST + start, AST + end, Dest(), "show/index.mpd", now=now)
    return result, ET.fromstring(result.playlists["vod/show/index.mpd"])


def segment_urls(result: Plan) -> list[str]:
    return [task.url.rsplit("/", 1)[1] for task in result.tasks if task.counts]


def timeline(element: ET.Element) -> list[tuple[str | None, str, str | None]]:
    return [(s.get("t"), s.get("d", ""), s.get("r")) for s in element.iterfind(".//d:S", NS)]


# --- addressing ---------------------------------------------------------------------------------


def test_number_template_without_a_timeline_numbers_segments_from_the_availability_start() -> None:
    # GIVEN $Number%05d$ with @duration 2 s and startNumber 10, the Period at availabilityStartTime
    info = (
        '<SegmentTemplate timescale="90000" duration="180000" startNumber="10"'
        ' media="seg-$Number%05d$.m4s" initialization="init-$RepresentationID$.mp4"/>'
    )
    # WHEN [100 s, 106 s) is planned
    result, out = plan(mpd(f'<Period id="a" start="PT0S">{video(info)}</Period>'), 100, 106)
    # THEN segments 50..52 (10 + 100/2 ...) are fetched, and the MPD lists exactly them
    assert segment_urls(result) == ["seg-00060.m4s", "seg-00061.m4s", "seg-00062.m4s"]
    template = out.find(".//d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("startNumber") == "60"
    assert timeline(out) == [("9000000", "180000", "2")]
    assert out.get("type") == "static"
    assert out.get("mediaPresentationDuration") == "PT6.000S"
    assert out.get("availabilityStartTime") is None
    assert out.get("timeShiftBufferDepth") is None


def test_time_template_with_a_repeat_to_the_next_s_and_r_minus_one_to_the_live_edge() -> None:
    # GIVEN $Time$ with a timeline: S r="-1" up to the next S@t, then a 3 s segment, then r="-1" again
    info = (
        '<SegmentTemplate timescale="1000" media="t$Time$.m4s" initialization="init.mp4"><SegmentTimeline>'
        '<S t="0" d="2000" r="-1"/><S t="10000" d="3000"/><S d="2000" r="-1"/>'
        "</SegmentTimeline></SegmentTemplate>"
    )
    text = mpd(f'<Period id="a" start="PT0S">{video(info)}</Period>')
    # WHEN [6 s, 17 s) is planned at a live edge of 20.5 s
    result, out = plan(text, 6, 17, now=AST + 20.5)
    # THEN 6, 8 (the repeats before t=10000), 10 (3 s), 13, 15 are kept, and the timeline says so
    assert segment_urls(result) == [f"t{t}.m4s" for t in (6000, 8000, 10000, 13000, 15000)]
    assert timeline(out) == [("6000", "2000", "1"), ("10000", "3000", None), ("13000", "2000", "1")]
    # AND a window past the live edge is not covered yet
    with pytest.raises(WindowNotCovered, match=r"Representation 'v0'.*missing at the end"):
        plan(text, 14, 24, now=AST + 20.5)


def test_segment_list_keeps_its_urls_and_byte_ranges_into_one_stored_object_per_segment() -> None:
    info = (
        '<SegmentList timescale="1000" duration="2000"><Initialization sourceURL="all.mp4" range="0-99"/>'
        + "".join(
            f'<SegmentURL media="all.mp4" mediaRange="{100 + 10 * i}-{109 + 10 * i}"/>' for i in range(5)
        )
        + "</SegmentList>"
    )
    result, out = plan(mpd(f'<Period start="PT0S">{video(info)}</Period>'), 2, 6)
    assert [task.range for task in result.tasks] == [(0, 100), (110, 10), (120, 10)]
    template = out.find(".//d:SegmentTemplate", NS)
    assert template is not None
    assert template.get("media") == "index/video_v0/$Number$.m4s"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("$RepresentationID$/$Number$.m4s", "v 1/7.m4s"),
        ("$Number%04d$-$Time%012d$.m4s", "0007-000000123456.m4s"),
        ("b$Bandwidth%08d$/$$$Time$.m4s", "b00500000/$123456.m4s"),
    ],
)
def test_template_identifiers_and_format_tags(template: str, expected: str) -> None:
    rep = ET.Element("Representation", {"id": "v 1", "bandwidth": "500000"})
    assert expand(template, rep, "v 1", "here", number=7, time=123456) == expected


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("$SubNumber$.m4s", r"identifier \$SubNumber\$ is not supported"),
        ("$RepresentationID%05d$.m4s", r"format tag '%05d' on \$RepresentationID\$ is not supported"),
        ("$Number%5x$.m4s", r"format tag '%5x' on \$Number\$ is not supported"),
    ],
)
def test_unsupported_template_identifiers_are_refused_naming_them(template: str, message: str) -> None:
    rep = ET.Element("Representation", {"id": "v0", "bandwidth": "1"})
    with pytest.raises(PlaylistError, match=message):
        expand(template, rep, "v0", "MPD x Representation 'v0'", number=1)


# --- the wall clock and Periods -----------------------------------------------------------------


def test_a_window_across_a_period_boundary_keeps_both_periods_with_their_offsets() -> None:
    # GIVEN Period a [0, 10 s) and Period b from 10 s, b with presentationTimeOffset 5 s in media time
    a = '<SegmentTemplate timescale="1000" duration="2000" startNumber="0" media="a$Number$.m4s"/>'
    b = (
        '<SegmentTemplate timescale="1000" presentationTimeOffset="5000" media="b$Time$.m4s">'
        '<SegmentTimeline><S t="5000" d="2000" r="-1"/></SegmentTimeline></SegmentTemplate>'
    )
    text = mpd(
        f'<Period id="a" start="PT0S" duration="PT10S">{video(a)}</Period><Period id="b">{video(b)}</Period>'
    )
    # WHEN [6 s, 14 s) is planned
    result, out = plan(text, 6, 14)
    # THEN a's segments 3, 4 and b's media times 5000, 7000 are kept, in two Periods
    assert segment_urls(result) == ["a3.m4s", "a4.m4s", "b5000.m4s", "b7000.m4s"]
    periods = out.findall("d:Period", NS)
    assert [(p.get("id"), p.get("start"), p.get("duration")) for p in periods] == [
        ("a", "PT0.000S", "PT4.000S"),
        ("b", "PT4.000S", "PT4.000S"),
    ]
    # AND each keeps its media times, its presentationTimeOffset moved to where the Period now begins
    first, second = (p.find(".//d:SegmentTemplate", NS) for p in periods)
    assert first is not None
    assert second is not None
    assert (first.get("presentationTimeOffset"), timeline(periods[0])) == ("6000", [("6000", "2000", "1")])
    assert (second.get("presentationTimeOffset"), timeline(periods[1])) == ("5000", [("5000", "2000", "1")])


def test_utc_timing_from_the_origin_sets_the_live_edge() -> None:
    info = '<SegmentTemplate timescale="1" duration="2" startNumber="0" media="$Number$.m4s"/>'
    text = mpd(
        f'<Period start="PT0S">{video(info)}</Period>'
        '<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-iso:2014" value="http://origin.example/time"/>'
    )
    # The local clock says 1000 s, the origin's says 9 s: only segments ending by 9 s exist.
    with pytest.raises(WindowNotCovered):
        plan(text, 4, 12, more={"http://origin.example/time": "2027-01-15T08:00:09.5Z"})
    result, _ = plan(text, 4, 8, more={"http://origin.example/time": "2027-01-15T08:00:09.5Z"})
    assert segment_urls(result) == ["2.m4s", "3.m4s"]


def test_a_dynamic_mpd_without_availability_start_time_cannot_be_placed() -> None:
    text = mpd('<Period start="PT0S"/>').replace(f' availabilityStartTime="{AST_TEXT}"', "")
    with pytest.raises(
        PlaylistError, match="no availabilityStartTime: it cannot be placed on the wall clock"
    ):
        plan(text, 0, 4)


def test_base_url_chains_resolve_and_the_first_of_several_is_used_with_a_warning() -> None:
    info = '<SegmentTemplate timescale="1" duration="2" startNumber="0" media="$Number$.m4s"/>'
    text = mpd(
        '<Period start="PT0S"><BaseURL>p/</BaseURL>'
        f"{video(info, extra='<BaseURL>a/</BaseURL><BaseURL>http://mirror.example/a/</BaseURL>')}</Period>",
        extra="<BaseURL>http://cdn.example/root/</BaseURL>",
    )
    result, out = plan(text, 0, 2)
    assert [task.url for task in result.tasks] == ["http://cdn.example/root/p/a/0.m4s"]
    assert any("several BaseURLs" in w and "'a/'" in w for w in result.warnings)
    assert out.find(".//d:BaseURL", NS) is None


def test_content_protection_roles_labels_and_events_in_the_window_are_kept() -> None:
    protection = (
        '<ContentProtection xmlns:cenc="urn:mpeg:cenc:2013"'
        ' schemeIdUri="urn:uuid:edef8ba9-79d6-4ace-a3c8-27dcd51d21ed">'
        "<cenc:pssh>AAAAMnBzc2g=</cenc:pssh></ContentProtection>"
        '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/><Label>Camera</Label>'
    )
    info = '<SegmentTemplate timescale="1" duration="2" startNumber="0" media="$Number$.m4s"/>'
    events = (
        '<EventStream schemeIdUri="urn:scte:scte35:2014:xml+bin" timescale="10">'
        '<Event presentationTime="20" duration="40" id="1"/>'
        '<Event presentationTime="200" duration="20" id="2"/>'
        "</EventStream>"
    )
    _, out = plan(mpd(f'<Period start="PT0S">{events}{video(info, extra=protection)}</Period>'), 4, 8)
    assert [e.get("id") for e in out.iterfind(".//d:Event", NS)] == ["1"]
    stream = out.find(".//d:EventStream", NS)
    assert stream is not None
    assert stream.get("presentationTimeOffset") == "40"
    pssh = out.find(".//{urn:mpeg:cenc:2013}pssh")
    assert pssh is not None
    assert pssh.text == "AAAAMnBzc2g="
    assert out.find(".//d:Label", NS) is not None
    assert out.find(".//d:Role", NS) is not None


def test_hostile_xml_is_refused() -> None:
    bomb = (
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><MPD>&b;</MPD>'
    )
    with pytest.raises(PlaylistError, match="is not well-formed XML"):
        parse_mpd(bomb, URL)
    with pytest.raises(PlaylistError, match="not MPD in namespace"):
        parse_mpd("<MPD/>", URL)


def test_durations_and_dates() -> None:
    assert duration("PT1H2M3.5S", "x") == 3723.5
    assert duration("P1DT1S", "x") == 86401
    with pytest.raises(PlaylistError, match="not a duration"):
        duration("P1Y", "x")
    assert date_time("2027-01-15T08:00:00.1Z", "x") == AST + 0.1
    assert date_time("2027-01-15T16:00:00+08:00", "x") == AST


# --- the format seam and the registry ---------------------------------------------------------


def test_manifest_keys_put_the_other_format_beside_the_manifest() -> None:
    cmaf = Endpoint(name="c", url="http://o/x.m3u8", protocol="CMAF", dash_url="http://o/x.mpd")
    assert manifest_keys(cmaf, "vod/main.m3u8") == {"DASH": "vod/main.mpd", "HLS": "vod/main.m3u8"}
    assert manifest_keys(cmaf, "vod/main.mpd") == {"DASH": "vod/main.mpd", "HLS": "vod/main.m3u8"}
    # Without a dash_url the MPD is still written (from the HLS reading), beside the master
    only_hls = Endpoint(name="c", url="http://o/x.m3u8", protocol="CMAF")
    assert manifest_keys(only_hls, "vod/main.m3u8") == {"DASH": "vod/main.mpd", "HLS": "vod/main.m3u8"}
    hls = Endpoint(name="h", url="http://o/x.m3u8", protocol="HLS")
    assert manifest_keys(hls, "vod/main.m3u8") == {"HLS": "vod/main.m3u8"}


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        (
            {"protocol": "HLS", "url": "http://o/live.mpd"},
            r"url 'http://o/live.mpd' names a DASH manifest \(.mpd\)",
        ),
        ({"protocol": "DASH", "url": "http://o/live.m3u8"}, r"url 'http://o/live.m3u8' names a HLS manifest"),
        (
            {"protocol": "CMAF", "url": "http://o/a.m3u8", "dash_url": "http://o/a.m3u8"},
            "dash_url .* names a HLS manifest .* protocol CMAF reads dash_url as DASH",
        ),
        (
            {"protocol": "HLS", "url": "http://o/a.m3u8", "dash_url": "http://o/a.mpd"},
            "dash_url .*for protocol CMAF only",
        ),
        ({"protocol": "DASH"}, "url must be http"),
    ],
)
def test_the_registry_refuses_a_url_of_another_format_naming_channel_endpoint_and_rule(
    endpoint: dict[str, str], message: str
) -> None:
    data = {"channels": [{"name": "news", "endpoints": [{"name": "live", **endpoint}]}]}
    with pytest.raises(ConfigError, match=f"channel 'news' endpoint 'live': {message}"):
        parse_registry(data)


def test_a_job_on_a_dash_endpoint_defaults_to_index_mpd_and_refuses_an_m3u8_manifest() -> None:
    from dataclasses import replace

    from harvest.domain.validation import CreateParams, validate_create
    from harvest.errors import FieldError
    from harvest.settings import Settings

    registry = parse_registry(
        {
            "channels": [
                {"name": "news", "endpoints": [{"name": "d", "url": "http://o/l.mpd", "protocol": "DASH"}]}
            ]
        }
    )
    now = AST + 10_000
    params = CreateParams(
        id="job-1",
        channel_name="news",
        endpoint_name="d",
        time_format="Epoch seconds",
        start_time=str(int(now) - 600),
        end_time=str(int(now) - 300),
        destination="https://vod-1250000000.cos.ap-singapore.myqcloud.com/out/",
    )
    settings = Settings(region="ap-singapore")
    assert validate_create(params, registry, settings, now).manifest == "job-1/index.mpd"
    with pytest.raises(
        FieldError, match=r"names a HLS manifest, but endpoint 'd' is DASH: use \.mpd"
    ) as caught:
        validate_create(replace(params, manifest="show/index.m3u8"), registry, settings, now)
    assert caught.value.code.startswith("InvalidParameter")


def test_text_tracks_sidecar_webvtt_and_ttml_in_mp4_are_kept_with_language_and_role() -> None:
    from tests.support.dash import assert_valid_mpd

    # GIVEN video, a sidecar WebVTT file (no segment information: one file at its BaseURL) and TTML
    # in fMP4 segments (stpp), each text set with its language, Role and Label
    media = "$RepresentationID$/$Number$.m4s"
    info = f'<SegmentTemplate timescale="1" duration="2" startNumber="0" media="{media}"/>'
    text_sets = (
        '<AdaptationSet contentType="text" mimeType="text/vtt" lang="fr">'
        '<Label>Français</Label><Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>'
        '<Representation id="vtt-fr" bandwidth="1000"><BaseURL>subs/fr.vtt</BaseURL></Representation>'
        "</AdaptationSet>"
        '<AdaptationSet contentType="text" mimeType="application/mp4" codecs="stpp" lang="de">'
        '<Role schemeIdUri="urn:mpeg:dash:role:2011" value="caption"/>'
        f'<Representation id="ttml-de" bandwidth="2000">{info}</Representation></AdaptationSet>'
    )
    text = mpd(f'<Period id="p" start="PT0S">{video(info)}{text_sets}</Period>')
    # WHEN [100 s, 104 s) is planned
    result, out = plan(text, 100, 104)
    # THEN the sidecar is fetched whole, once, and the TTML segments like any other
    urls = [task.url.split("/live/", 1)[1] for task in result.tasks]
    assert urls == ["v0/50.m4s", "v0/51.m4s", "subs/fr.vtt", "ttml-de/50.m4s", "ttml-de/51.m4s"]
    # AND the MPD keeps both sets with language, Role and Label; the sidecar is a relative BaseURL
    sets = out.findall(".//d:AdaptationSet", NS)
    labelled = [(s.get("lang"), s.find("d:Role", NS)) for s in sets[1:]]
    assert [(lang, role.get("value") if role is not None else None) for lang, role in labelled] == [
        ("fr", "subtitle"),
        ("de", "caption"),
    ]
    base = sets[1].find("d:Representation/d:BaseURL", NS)
    assert base is not None
    assert base.text == "index/text_vtt-fr/fr.vtt"
    assert result.tasks[2].key == "vod/show/index/text_vtt-fr/fr.vtt"
    assert result.tasks[2].content_type == "text/vtt"
    # AND the sidecar (which spans the whole Period) does not move the VOD's start or length
    assert out.get("mediaPresentationDuration") == "PT4.000S"
    assert_valid_mpd(result.playlists["vod/show/index.mpd"])


def test_a_remote_period_is_refused_naming_it() -> None:
    text = mpd('<Period xmlns:xlink="http://www.w3.org/1999/xlink" xlink:href="http://o/p.xml"/>')
    with pytest.raises(PlaylistError, match=r"Period 0 is remote \(xlink:href\)"):
        plan(text, 0, 4)
