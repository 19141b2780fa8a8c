"""Choose the segments of one rendition that make up the VOD for a time window [start, end).

Selection is by EXT-X-PROGRAM-DATE-TIME, the one clock every rendition shares, so renditions stay
aligned without comparing media sequence numbers across playlists (anchors §5 rule 5).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from harvest.errors import PlaylistError, WindowNotCovered
from harvest.hls.model import DateRange, MediaPlaylist, Segment
from harvest.hls.parse import PDT_TAG, format_date

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

    The documented last-resort rule, for an endpoint with no rendition that has PDT: the last
    segment ends at `live_edge` (the epoch time the live playlist was fetched) and every earlier
    segment starts where the next one starts minus its own EXTINF. It is only as accurate as the
    origin's EXTINF values and its publishing delay; the result is `placed`, so the VOD never
    presents these guessed times as the origin's (no EXT-X-PROGRAM-DATE-TIME is written).
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
    return dataclasses.replace(playlist, segments=segments, placed=True)


# Two renditions' segments with the same media sequence number are taken as the same stretch of
# time only when their EXTINFs agree this closely.
ALIGN_TOLERANCE = 0.25


def align_to(playlist: MediaPlaylist, reference: MediaPlaylist) -> MediaPlaylist | None:
    """Times for a playlist without PDT, from a sibling rendition that has them; None if impossible.

    Packagers number the segments of every rendition alike, so within each discontinuity sequence:
    1. a segment with the same media sequence number (and discontinuity sequence) as one of the
       reference, and an EXTINF within ALIGN_TOLERANCE of it, starts at the reference's PDT; or
    2. a run that starts at an EXT-X-DISCONTINUITY starts where the reference's run of the same
       discontinuity sequence starts (a shared boundary), whatever the segment durations.
    The rest of the run follows by cumulative EXTINF, forward and back. Every run must be anchored.
    The result is `placed`: the times choose the window, and no PDT is written into the VOD.
    """
    if not playlist.segments or not reference.has_pdt:
        return None
    by_msn = {(s.msn, s.discontinuity_seq): s for s in reference.segments}
    boundaries = {
        s.discontinuity_seq: s.pdt for i, s in enumerate(reference.segments) if s.discontinuity or i == 0
    }
    segments = list(playlist.segments)
    times: list[float | None] = [None] * len(segments)
    run_start = 0
    while run_start < len(segments):
        dsn = segments[run_start].discontinuity_seq
        run_end = run_start
        while run_end < len(segments) and segments[run_end].discontinuity_seq == dsn:
            run_end += 1
        anchor = _anchor(segments, run_start, run_end, by_msn, boundaries)
        if anchor is None:
            return None
        index, pdt = anchor
        current = pdt
        for i in range(index, run_end):
            times[i] = current
            current += segments[i].duration
        current = pdt
        for i in range(index - 1, run_start - 1, -1):
            current -= segments[i].duration
            times[i] = current
        run_start = run_end
    placed = tuple(
        dataclasses.replace(segment, pdt=pdt) for segment, pdt in zip(segments, times, strict=True)
    )
    return dataclasses.replace(playlist, segments=placed, placed=True)


def _anchor(
    segments: list[Segment],
    start: int,
    stop: int,
    by_msn: dict[tuple[int, int], Segment],
    boundaries: dict[int, float | None],
) -> tuple[int, float] | None:
    for i in range(start, stop):
        twin = by_msn.get((segments[i].msn, segments[i].discontinuity_seq))
        if twin is not None and twin.pdt is not None:
            if abs(twin.duration - segments[i].duration) <= ALIGN_TOLERANCE:
                return i, twin.pdt
            break  # numbered alike but not the same stretch of time: try the boundary
    boundary = boundaries.get(segments[start].discontinuity_seq)
    if segments[start].discontinuity and boundary is not None:
        return start, boundary
    return None


def _unreadable_pdt(playlist: MediaPlaylist) -> str:
    """The parser's note on the first EXT-X-PROGRAM-DATE-TIME it could not read ("" if none)."""
    notes = itertools.chain((p for segment in playlist.segments for p in segment.problems), playlist.problems)
    return next((note for note in notes if PDT_TAG in note), "")


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

    Clocks that go back: where a segment starts before the previous one ended (a program clock
    reset at a discontinuity), the playlist holds several timelines that may each overlap the
    window. Only one may supply the VOD, or it would hold the same wall time twice: the one that
    holds the whole window, else the one that covers it within the tolerance; when several do (or
    none does) the job fails naming the discontinuity.

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
        unreadable = _unreadable_pdt(playlist)
        if unreadable:
            # The origin meant to date its segments: placing them by the live edge instead would
            # be a guess, and the job used to be told "no segments in the window" and retried as
            # not yet available until it was dead-lettered, never naming the date it could not read.
            raise PlaylistError(
                f"playlist {playlist.url} {unreadable}, and no segment has a readable"
                f" EXT-X-PROGRAM-DATE-TIME; cannot place a time window (rendition {rendition})"
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
    resets = _clock_resets(playlist.segments, chosen[0], chosen[-1] + 1)
    if resets:
        return _one_timeline(playlist, chosen, resets, start, end, rendition)
    first, last = chosen[0], chosen[-1]
    if last - first + 1 != len(chosen):
        raise PlaylistError(
            f"rendition {rendition}: the PDT timeline goes backwards inside the window,"
            " so the window is not one run of segments"
        )
    window = Window(playlist=playlist, first=first, stop=last + 1, start=start, end=end)
    _check_coverage(window, rendition)
    return window


def _clock_resets(segments: tuple[Segment, ...], first: int, stop: int) -> list[int]:
    """Indices in [first, stop) of segments where the program clock goes back.

    EXTINF values are often a little longer than the media (a 6.5 s EXTINF before a PDT 6 s later),
    so an overlap of up to half a segment (at least 1 s) is rounding, not a second timeline.
    """
    resets = []
    for i in range(first + 1, stop):
        previous, pdt = segments[i - 1], segments[i].pdt or 0.0
        if pdt <= (previous.pdt or 0.0) or pdt < previous.end - max(1.0, previous.duration / 2):
            resets.append(i)
    return resets


def _one_timeline(
    playlist: MediaPlaylist, chosen: list[int], resets: list[int], start: float, end: float, rendition: str
) -> Window:
    bounds = [chosen[0], *resets, chosen[-1] + 1]
    candidates: list[Window] = []
    failures: list[PlaylistError] = []
    for lo, hi in itertools.pairwise(bounds):
        picked = [i for i in chosen if lo <= i < hi]
        if not picked:
            continue
        window = Window(playlist=playlist, first=picked[0], stop=picked[-1] + 1, start=start, end=end)
        try:
            _check_coverage(window, rendition)
        except PlaylistError as exc:
            failures.append(exc)
            continue
        candidates.append(window)
    reset = playlist.segments[resets[0]]
    where = (
        f"the program clock goes back {playlist.segments[resets[0] - 1].end - (reset.pdt or 0.0):.1f} s"
        f" at segment {reset.msn}{' (a discontinuity)' if reset.discontinuity else ''}"
    )
    # A timeline that holds the whole window beats one that covers it only within the tolerance.
    containing = [w for w in candidates if w.begins <= start + EDGE_EPSILON and w.ends >= end - EDGE_EPSILON]
    if len(containing) == 1:
        return containing[0]
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        raise PlaylistError(
            f"rendition {rendition}: {where}, and both timelines cover the window"
            f" [{_when(start)},{_when(end)}): which one to harvest is ambiguous"
        )
    raise PlaylistError(
        f"rendition {rendition}: {where}; no single timeline covers the window ({failures[0]})"
    )


def overlapping_dateranges(
    dateranges: Iterable[DateRange], start: float, end: float
) -> tuple[DateRange, ...]:
    """The date ranges whose [START, END) overlaps the window [start, end), sorted by start.

    An open range (no end known yet) overlaps when it started before `end`. A range with no known
    start cannot be placed in time and is left out.
    """
    kept = [
        d
        for d in dateranges
        if d.start is not None and d.start < end and (d.end is None or d.end > start or d.start >= start)
    ]
    return tuple(sorted(kept, key=lambda d: d.start or 0.0))


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
