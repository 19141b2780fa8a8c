"""Domain-level rules of the harvest use cases that need no origin or store."""

from __future__ import annotations

import pytest

from harvest.domain.urlpolicy import UrlPolicy, local_names_only
from harvest.domain.validation import check_callback_target
from harvest.errors import FieldError, PlaylistError, WindowNotCovered
from harvest.hls.model import MediaPlaylist, Segment
from harvest.hls.window import select_window
from harvest.usecases.harvest import public_message


@pytest.mark.parametrize(
    ("reason", "shown"),
    [
        (
            "playlist http://o.example/a.m3u8?token=s3cr3t line 4: bad",
            "playlist http://o.example/a.m3u8 line 4: bad",
        ),
        ("segment https://cdn/x/1.ts#frag: HTTP 404", "segment https://cdn/x/1.ts: HTTP 404"),
        (
            "segment v0/14096535.ts: HTTP 404 after 5 attempts",
            "segment v0/14096535.ts: HTTP 404 after 5 attempts",
        ),
        (
            "playlist http://user:pa55@o.example:8080/a.m3u8?token=x line 1: does not start with #EXTM3U",
            "playlist http://o.example:8080/a.m3u8 line 1: does not start with #EXTM3U",
        ),
        (
            "cannot write b/k.ts: [Errno 20] Not a directory: '/srv/harvest/.harvest/cos/b/k.ts'",
            "cannot write b/k.ts: [Errno 20] Not a directory: '.../k.ts'",
        ),
        (
            "database postgresql://app:pw@db:5432/harvest?schema=s is down.",
            "database postgresql://db:5432/harvest is down.",
        ),
        ("bytes 0-99/100 of v0/1.ts (see https://h/x/).", "bytes 0-99/100 of v0/1.ts (see https://h/x/)."),
    ],
)
def test_err_messages_never_carry_url_credentials_queries_or_local_paths(reason: str, shown: str) -> None:
    assert public_message(reason) == shown


def _playlist(first_pdt: float, count: int) -> MediaPlaylist:
    segments = tuple(
        Segment(msn=i, uri=f"http://o/{i}.ts", duration=2.0, duration_text="2.000", pdt=first_pdt + 2 * i)
        for i in range(count)
    )
    return MediaPlaylist(url="http://o/v.m3u8", target_duration=2, segments=segments)


def test_a_window_beyond_the_live_edge_is_not_covered_yet() -> None:
    # GIVEN a playlist whose last segment ends at 120 WHEN the window ends at 130
    # THEN the error says "not covered", the kind the planner retries near the live edge
    with pytest.raises(WindowNotCovered, match="missing at the end"):
        select_window(_playlist(100.0, 10), 104.0, 130.0, "v0")
    with pytest.raises(WindowNotCovered, match="no segments"):
        select_window(_playlist(100.0, 10), 200.0, 210.0, "v0")


def test_an_unusable_playlist_is_not_mistaken_for_an_uncovered_window() -> None:
    # A hole inside the window cannot fill in later: a plain PlaylistError, failed at once.
    playlist = _playlist(100.0, 10)
    holed = MediaPlaylist(
        url=playlist.url, target_duration=2, segments=playlist.segments[:3] + playlist.segments[6:]
    )
    with pytest.raises(PlaylistError) as info:
        select_window(holed, 100.0, 118.0, "v0")
    assert not isinstance(info.value, WindowNotCovered)


def test_create_time_callback_check_refuses_local_names_without_dns() -> None:
    for url in (
        "http://localhost/hook",
        "http://api.localhost:8080/x",
        "http://127.0.0.1/x",
        "http://[::1]/x",
        "http://2130706433/x",
        "http://0x7f.1/x",
        "http://10.1/x",
    ):
        with pytest.raises(FieldError):
            check_callback_target(url, UrlPolicy(), resolve=local_names_only, unresolved_ok=True)
    # a public-looking name passes here; the notifier resolves and checks it when it connects
    check_callback_target(
        "https://hooks.example.com/done", UrlPolicy(), resolve=local_names_only, unresolved_ok=True
    )
