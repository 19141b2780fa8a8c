"""Selecting the segments of a time window, and refusing windows a playlist cannot fill."""

from __future__ import annotations

import pytest
from hls_playlists import BASE, ORIGIN, Seg, media, steady, with_tags

from harvest.errors import PlaylistError
from harvest.hls.model import MediaPlaylist
from harvest.hls.parse import parse_media
from harvest.hls.window import place_by_live_edge, select_window

URL = f"{ORIGIN}/v360/index.m3u8"


def ten_segments() -> MediaPlaylist:
    """msn 0..9, segment i covering [BASE + 6i, BASE + 6i + 6)."""
    return parse_media(media(steady(10)), URL)


@pytest.mark.parametrize(
    ("start", "end", "msns"),
    [
        (0, 60, list(range(10))),  # the whole playlist
        (3, 57, list(range(10))),  # edges inside segments take the whole segments
        (6, 12, [1]),  # exactly on boundaries: only the segment inside
        (6.0005, 11.9995, [1]),  # within a millisecond of a boundary counts as on it
        (5.9, 12.1, [0, 1, 2]),  # just past the boundaries takes the neighbours
        (13, 14, [2]),  # a window inside one segment
        (54, 60, [9]),  # the last segment
    ],
)
def test_window_selects_exactly_the_overlapping_segments(start: float, end: float, msns: list[int]) -> None:
    # GIVEN ten 6 s segments / WHEN a window is selected
    window = select_window(ten_segments(), BASE + start, BASE + end, "v0")
    # THEN exactly the segments overlapping [start, end) are chosen, and they cover the window
    assert [s.msn for s in window.segments] == msns
    assert window.begins <= BASE + start + 0.001
    assert window.ends >= BASE + end - 0.001


def test_gap_segments_are_selected_and_count_as_coverage() -> None:
    # GIVEN a GAP segment in the middle of the window
    playlist = parse_media(media(with_tags(steady(5), 2, "#EXT-X-GAP")), URL)
    # WHEN the window spans it / THEN it is selected like any other segment
    window = select_window(playlist, BASE, BASE + 30, "v0")
    assert [(s.msn, s.gap) for s in window.segments] == [
        (0, False),
        (1, False),
        (2, True),
        (3, False),
        (4, False),
    ]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        # 6 s target duration is the tolerance: 7 s missing at either end is too much
        (-7, 30, r"rendition v0 does not cover the window: 7\.0 s missing at the start"),
        (0, 67, r"rendition v0 does not cover the window: 7\.0 s missing at the end"),
        (100, 200, r"no segments in \[2023-11-14T22:15:00.000Z,2023-11-14T22:16:40.000Z\) for rendition v0"),
        (30, 30, r"the window .* is empty"),
    ],
)
def test_windows_the_playlist_cannot_fill_fail_with_the_shortfall(
    start: float, end: float, message: str
) -> None:
    with pytest.raises(PlaylistError, match=message):
        select_window(ten_segments(), BASE + start, BASE + end, "v0")


def test_a_shortfall_within_one_target_duration_is_tolerated() -> None:
    # GIVEN a window starting 5 s before the playlist's first segment (target duration 6 s)
    window = select_window(ten_segments(), BASE - 5, BASE + 60, "v0")
    # THEN it is accepted and starts at the first segment
    assert window.segments[0].msn == 0


def test_a_hole_in_pdt_time_inside_the_window_fails() -> None:
    # GIVEN a 30 s jump in PDT between msn 2 and msn 3
    segs = steady(3) + [Seg(f"seg_{3 + i}.ts", pdt=BASE + 48 + 6 * i) for i in range(3)]
    playlist = parse_media(media(segs), URL)
    # WHEN the window spans the hole / THEN the job fails naming the hole
    with pytest.raises(PlaylistError, match=r"v0 does not cover the window: 30\.0 s missing between"):
        select_window(playlist, BASE, BASE + 60, "v0")


def test_a_timeline_that_goes_backwards_inside_the_window_fails() -> None:
    # GIVEN PDTs that jump back 20 s after msn 3, so the window holds two separate runs
    segs = steady(4) + [Seg(f"seg_{4 + i}.ts", pdt=BASE + 4 + 6 * i) for i in range(4)]
    playlist = parse_media(media(segs), URL)
    with pytest.raises(PlaylistError, match=r"program clock goes back 20\.0 s at segment 4"):
        select_window(playlist, BASE + 20, BASE + 24, "v0")


def test_a_playlist_without_pdt_fails_unless_given_a_live_edge() -> None:
    # GIVEN a playlist with no EXT-X-PROGRAM-DATE-TIME at all
    playlist = parse_media(media(steady(10, pdt="none")), URL)
    # WHEN selected without a fallback / THEN the documented message
    with pytest.raises(PlaylistError) as caught:
        select_window(playlist, BASE, BASE + 12, "v0")
    assert caught.value.message == (
        f"playlist {URL} has no EXT-X-PROGRAM-DATE-TIME; cannot place a time window"
    )
    # WHEN given the live edge (the fetch time): the last segment ends there, the others count back
    window = select_window(playlist, BASE + 48, BASE + 60, "v0", fallback_live_edge=BASE + 60)
    assert [(s.msn, s.pdt) for s in window.segments] == [(8, BASE + 48), (9, BASE + 54)]


def test_place_by_live_edge_counts_back_by_extinf() -> None:
    playlist = parse_media(media([Seg("a", "4"), Seg("b", "6.5"), Seg("c", "2")]), URL)
    placed = place_by_live_edge(playlist, 1000.0)
    assert [s.pdt for s in placed.segments] == [987.5, 991.5, 998.0]
    assert placed.segments[-1].end == 1000.0


def test_renditions_with_different_segment_lengths_cover_the_same_window() -> None:
    # GIVEN video in 6 s segments and audio in 4 s segments on the same clock
    video = parse_media(media(steady(10)), URL)
    audio = parse_media(media(steady(15, duration=4.0)), URL)
    # WHEN both are selected for the same window
    v = select_window(video, BASE + 10, BASE + 40, "v0")
    a = select_window(audio, BASE + 10, BASE + 40, "audio")
    # THEN each covers the whole window with no segment wholly outside it
    for window in (v, a):
        assert window.begins <= BASE + 10 < window.segments[0].end
        assert window.segments[-1].pdt is not None
        assert window.segments[-1].pdt < BASE + 40 <= window.ends
    assert [s.msn for s in v.segments] == [1, 2, 3, 4, 5, 6]
    assert [s.msn for s in a.segments] == [2, 3, 4, 5, 6, 7, 8, 9]


def test_a_playlist_whose_every_pdt_is_unreadable_fails_naming_the_date_not_the_window() -> None:
    # GIVEN a playlist whose every EXT-X-PROGRAM-DATE-TIME is malformed (an origin that dates its
    # segments in a form nobody reads)
    text = media(steady(10, pdt="none"), header=["#EXT-X-PROGRAM-DATE-TIME:30/11/2026 16:23:44"])
    playlist = parse_media(text, URL)
    assert not playlist.has_pdt
    # WHEN selected, even with a live edge to fall back on
    with pytest.raises(PlaylistError) as caught:
        select_window(playlist, BASE, BASE + 12, "v0", fallback_live_edge=BASE + 60)
    # THEN it is not "no segments in the window" (retried as not yet available), but the date itself
    assert type(caught.value) is PlaylistError
    assert caught.value.message == (
        f"playlist {URL} line 3: #EXT-X-PROGRAM-DATE-TIME '30/11/2026 16:23:44' is not an ISO 8601"
        " date-time, and no segment has a readable EXT-X-PROGRAM-DATE-TIME; cannot place a time"
        " window (rendition v0)"
    )
