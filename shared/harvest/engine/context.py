"""What every format's reader gets: the job's window, the endpoint, the clock and the limits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from harvest.domain.registry import Endpoint
from harvest.errors import PlaylistError
from harvest.hls.parse import DEFAULT_LIMITS, ParseLimits
from harvest.ports import Origin
from harvest.settings import Settings

# 24 h of 2 s segments in 3 renditions is 129,600 (of 6 s segments, in 10). At the cap a plan
# peaked at ~240 MB RSS in `harvest serve` (one rendition of 150,000 segments: its playlist is parsed
# whole, twice); 200,000 reached 299 MB. tests/reliability/test_memory.py measures it.
MAX_PLAN_TASKS = 150_000
MAX_WARNINGS = 20  # warnings kept in a plan; the rest are counted


@dataclass(frozen=True)
class PlanLimits:
    """Caps on what one job may plan (settings HARVEST_PLAYLIST_MAX_*, HARVEST_MAX_*)."""

    parse: ParseLimits = DEFAULT_LIMITS
    max_tasks: int = MAX_PLAN_TASKS

    @classmethod
    def from_settings(cls, settings: Settings) -> PlanLimits:
        parse = ParseLimits(
            max_chars=settings.playlist_max_chars,
            max_lines=settings.playlist_max_lines,
            max_variants=settings.max_variants,
            max_renditions=settings.max_renditions,
        )
        return cls(parse=parse, max_tasks=settings.max_plan_tasks)


DEFAULT_PLAN_LIMITS = PlanLimits()


@dataclass(frozen=True)
class PlanContext:
    """One job's planning inputs. Times are epoch seconds; the window is [start, end)."""

    origin: Origin
    endpoint: Endpoint
    start: float
    end: float
    now: float
    copy_keys: bool = False
    pdt_fallback: bool = True
    limits: PlanLimits = DEFAULT_PLAN_LIMITS


# --- manifest URLs ------------------------------------------------------------------------------


def playlist_url(url: str, timeshift_query: str, start: float, end: float) -> str:
    """`url` with the endpoint's time-shift query (`{start}`/`{end}` as epoch ints) appended.

    The window is widened to whole seconds (floor/ceil) so the origin never cuts it short. A URL
    that already carries every parameter of the query (a child URI copied from a time-shifted
    master, say) is left alone.
    """
    if not timeshift_query:
        return url
    try:
        query = timeshift_query.format(start=math.floor(start), end=math.ceil(end))
    except (KeyError, IndexError, ValueError) as exc:
        raise PlaylistError(
            f"endpoint timeshift_query {timeshift_query!r} is not valid:"
            " it may only use {start} and {end}"
        ) from exc
    parts = urlsplit(url)
    have = {name for name, _ in parse_qsl(parts.query, keep_blank_values=True)}
    want = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    if want and want <= have:
        return url
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit((parts.scheme, parts.netloc, parts.path, joined, parts.fragment))
