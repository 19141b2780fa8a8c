"""Choose the segments of one rendition that make up the VOD for a time window [start, end).

Selection is by EXT-X-PROGRAM-DATE-TIME, the one clock every rendition shares, so renditions stay
aligned without comparing media sequence numbers across playlists (anchors §5 rule 5).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

from harvest.errors import PlaylistError, WindowNotCovered
from harvest.hls.model import MediaPlaylist, Segment
from harvest.hls.parse import format_date

# Segment edges come from sums of float EXTINFs, so "exactly on the boundary" is fuzzy by a few
# nanoseconds; a segment must overlap the window by more than this to be selected.
EDGE_EPSILON = 0.001


@dataclass(frozen=True)
class Window:
    """The segments `playlist.segments[first:stop]` chosen for [start, end)."""

    playlist: MediaPlaylist
    first: int
    stop: int
    start: float
    end: float

    @cached_property
    def segments(self) -> tuple[Segment, ...]:
        return self.playlist.segments[self.first : self.stop]

    @property
    def begins(self) -> float:
        """PDT of the first selected segment."""
        return self.playlist.segments[self.first].pdt or 0.0

    @property
    def ends(self) -> float:
        """End of the last selected segment."""
        return self.playlist.segments[self.stop - 1].end


def place_by_live_edge(playlist: MediaPlaylist, live_edge: float) -> MediaPlaylist:
    """Give a playlist without any EXT-X-PROGRAM-DATE-TIME times by its live edge.

    The documented fallback rule: the last segment ends at `live_edge` (the epoch time the live
    playlist was fetched) and every earlier segment starts where the next one starts minus its own
    EXTINF. It is only as accurate as the origin's EXTINF values and its publishing delay, so the
    planner uses it only for live playlists (no EXT-X-ENDLIST); an ended playlist without PDT has
    no defensible position in time.
    """
    times: list[float] = []
    current = live_edge
    for segment in reversed(playlist.segments):
        current -= segment.duration
        times.append(current)
    times.reverse()
    segments = tuple(
        dataclasses.replace(segment, pdt=pdt) for segment, pdt in zip(playlist.segments, times, strict=True)
    )
    return dataclasses.replace(playlist, segments=segments)


def _when(epoch: float) -> str:
    return format_date(epoch)


def select_window(
    playlist: MediaPlaylist,
    start: float,
    end: float,
    rendition: str,
    fallback_live_edge: float | None = None,
) -> Window:
    """Select exactly the segments whose [pdt, pdt + EXTINF) overlaps [start, end).

    A window edge inside a segment takes the whole segment, so the VOD covers the whole window and
    no selected segment lies wholly outside it; an edge within EDGE_EPSILON of a segment boundary
    counts as on the boundary.

    Coverage rule: with tolerance = the source EXT-X-TARGETDURATION, the job fails (PlaylistError
    naming the rendition and the seconds missing) when the first selected segment starts more than
    the tolerance after `start`, the last one ends more than the tolerance before `end`, or two
    consecutive selected segments leave a hole in PDT time longer than the tolerance. GAP segments
    count as coverage: the origin declared them, and they are carried through as EXT-X-GAP.

    `fallback_live_edge`: for a playlist without any PDT, place it with `place_by_live_edge`
    instead of failing.
    """
    if not end > start:
        raise PlaylistError(f"the window [{_when(start)},{_when(end)}) is empty")
    if not playlist.has_pdt:
        if not playlist.segments:
            raise PlaylistError(
                f"no segments in [{_when(start)},{_when(end)}) for rendition {rendition}:"
                " the playlist is empty"
            )
        if fallback_live_edge is None:
            raise PlaylistError(
                f"playlist {playlist.url} has no EXT-X-PROGRAM-DATE-TIME; cannot place a time window"
            )
        playlist = place_by_live_edge(playlist, fallback_live_edge)

    chosen = [
        i
        for i, segment in enumerate(playlist.segments)
        if segment.pdt is not None  # always true here; keeps the type checker honest
        and segment.pdt < end - EDGE_EPSILON
        and segment.pdt + segment.duration > start + EDGE_EPSILON
    ]
    if not chosen:
        raise WindowNotCovered(f"no segments in [{_when(start)},{_when(end)}) for rendition {rendition}")
    first, last = chosen[0], chosen[-1]
    if last - first + 1 != len(chosen):
        raise PlaylistError(
            f"rendition {rendition}: the PDT timeline goes backwards inside the window,"
            " so the window is not one run of segments"
        )
    window = Window(playlist=playlist, first=first, stop=last + 1, start=start, end=end)
    _check_coverage(window, rendition)
    return window


def _check_coverage(window: Window, rendition: str) -> None:
    tolerance = float(window.playlist.target_duration)
    missing_start = window.begins - window.start
    if missing_start > tolerance:
        raise PlaylistError(
            f"rendition {rendition} does not cover the window: {missing_start:.1f} s missing at the start"
            f" (its first segment in the window starts at {_when(window.begins)},"
            f" the window at {_when(window.start)})"
        )
    missing_end = window.end - window.ends
    if missing_end > tolerance:
        raise WindowNotCovered(
            f"rendition {rendition} does not cover the window: {missing_end:.1f} s missing at the end"
            f" (its last segment ends at {_when(window.ends)}, the window at {_when(window.end)})"
        )
    previous = window.segments[0]
    for segment in window.segments[1:]:
        hole = (segment.pdt or 0.0) - previous.end
        if hole > tolerance:
            raise PlaylistError(
                f"rendition {rendition} does not cover the window: {hole:.1f} s missing"
                f" between {_when(previous.end)} and {_when(segment.pdt or 0.0)}"
            )
        previous = segment
