"""StartTime / EndTime parsing for the two TimeFormat values the API documents.

The API says "1. Epoch seconds 2. ISO-8601". Epoch times are positive integer strings. ISO-8601
times carry a UTC offset (or Z), or none: Tencent's own example sends `2023-08-10 00:00:00`
(a space, no zone), which is read as a wall-clock time in the configured zone (HARVEST_TIMEZONE),
never in whatever zone the server process happens to run in.
"""

from __future__ import annotations

import functools
import re
from datetime import date, datetime, timedelta, timezone, tzinfo
from enum import Enum

from harvest.errors import FieldError


class TimeFormat(str, Enum):
    EPOCH = "epoch"
    ISO8601 = "iso8601"

    @property
    def canonical(self) -> str:
        """The spelling the API documents, stored and echoed whatever spelling was sent."""
        return "Epoch seconds" if self is TimeFormat.EPOCH else "ISO-8601"


# Accepted spellings, compared case-insensitively. The docs' literal text is "Epoch seconds" and "ISO-8601".
_TIME_FORMATS = {
    "epoch": TimeFormat.EPOCH,
    "epoch seconds": TimeFormat.EPOCH,
    "iso-8601": TimeFormat.ISO8601,
    "iso8601": TimeFormat.ISO8601,
}

# 12 digits reach year 9999; a 13-digit value is almost always epoch milliseconds.
_EPOCH = re.compile(r"[1-9][0-9]{0,11}")
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})"
    r"(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}:?\d{2})?",
    re.ASCII,  # \d would otherwise match any script's digits
)
# A date-time inside a playlist or an MPD (HLS #EXT-X-PROGRAM-DATE-TIME, DATERANGE dates, MPD
# xs:dateTime attributes): seconds (optional, as 3.11's fromisoformat has them) with any number of
# fraction digits, and Z, +HH:MM, +HHMM, +HH or no zone (UTC).
_DOCUMENT_DATE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_MAX_SHOWN = 64  # values are echoed in messages; keep a hostile 1 MB string out of them


def shown(value: str) -> str:
    """`value` quoted for an error message, cut short when long."""
    return repr(value if len(value) <= _MAX_SHOWN else value[:_MAX_SHOWN] + "...")


def parse_time_format(value: str) -> TimeFormat:
    try:
        return _TIME_FORMATS[value.strip().lower()]
    except KeyError:
        raise FieldError(
            "TimeFormat", f"TimeFormat {shown(value)} is not supported: use 'Epoch seconds' or 'ISO-8601'"
        ) from None


def parse_time(value: str, time_format: TimeFormat, field: str, zone: tzinfo = timezone.utc) -> float:
    """Epoch seconds of `value`; FieldError naming the rule it breaks.

    A zone-less ISO-8601 time is a wall-clock time in `zone`.
    """
    if time_format is TimeFormat.EPOCH:
        return float(_parse_epoch(value, field))
    return _parse_iso(value, field, zone)


def _parse_epoch(value: str, field: str) -> int:
    if _EPOCH.fullmatch(value):
        return int(value)
    if value.isascii() and value.isdigit() and len(value) == 13:
        raise FieldError(field, f"{field} {shown(value)} looks like epoch milliseconds; send epoch seconds")
    raise FieldError(
        field,
        f"{field} {shown(value)} is not epoch seconds: expected a positive integer string like '1700000000'",
    )


def _parse_iso(value: str, field: str, zone: tzinfo) -> float:
    match = _ISO.fullmatch(value)
    if match is None:
        raise FieldError(
            field,
            f"{field} {shown(value)} is not an ISO-8601 time: expected e.g. '2023-08-01T10:00:00+08:00',"
            " '2023-08-01T02:00:00Z' or '2023-08-01 10:00:00'",
            zh=f"{field} {shown(value)} 不是 ISO-8601 时间,例如 '2023-08-01T10:00:00+08:00'"
            "、'2023-08-01T02:00:00Z' 或 '2023-08-01 10:00:00'",
        )
    try:
        offset = _offset(match["zone"]) if match["zone"] else zone
        year, month, day = (int(part) for part in match["date"].split("-"))
        hour, minute, second = int(match["hour"]), int(match["minute"]), int(match["second"] or 0)
        moment = datetime(year, month, day, hour, minute, second, tzinfo=offset)
    except ValueError as exc:
        raise FieldError(
            field,
            f"{field} {shown(value)} is not a real time: {exc}",
            zh=f"{field} {shown(value)} 不是有效时间:{exc}",
        ) from None
    if not match["zone"] and not _exists(moment):
        raise FieldError(
            field,
            f"{field} {shown(value)} does not exist in time zone {zone} (a daylight-saving gap):"
            " add a UTC offset",
            zh=f"{field} {shown(value)} 在时区 {zone} 中不存在(夏令时跳变),请加上 UTC 偏移",
        )
    fraction = float("0." + match["fraction"]) if match["fraction"] else 0.0
    return moment.timestamp() + fraction


def document_date_time(text: str) -> float:
    """Epoch seconds of a date-time written in a playlist or an MPD; ValueError if it is not one.

    The same on every Python: 3.10's `datetime.fromisoformat` (SCF's runtime) refuses what
    packagers write every day, such as ffmpeg's `2026-11-30T16:23:44.068+0000` (no colon in the
    offset) or a fraction of other than 3 or 6 digits, and 3.11's accepts them.
    """
    match = _DOCUMENT_DATE_TIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO 8601 date-time: {shown(text)}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    # Arithmetic on the day's ordinal, not datetime(...).timestamp(): a 24 h playlist has 14,400 of
    # these, and the datetime way took 3.3 us each, a quarter of planning it (bench/README.md, round 4).
    hours, minutes, seconds = int(hour), int(minute), int(second) if second else 0
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ValueError(f"not a time of day: {shown(text)}")
    moment = _day_start(year, month, day) + hours * 3600 + minutes * 60 + seconds
    if zone:
        moment -= _offset_seconds(zone)
    return moment + float("0." + fraction) if fraction else float(moment)


def _exists(moment: datetime) -> bool:
    """False for a wall-clock time skipped by a daylight-saving jump (it would not round-trip)."""
    there_and_back = datetime.fromtimestamp(moment.timestamp(), moment.tzinfo)
    return there_and_back.replace(tzinfo=None) == moment.replace(tzinfo=None)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


@functools.lru_cache(maxsize=256)  # a playlist's dates share a few days
def _day_start(year: str, month: str, day: str) -> int:
    """Epoch seconds at the day's start (UTC); ValueError for a day that does not exist."""
    return (date(int(year), int(month), int(day)).toordinal() - _EPOCH_ORDINAL) * 86400


@functools.lru_cache(maxsize=64)
def _offset_seconds(zone: str) -> int:
    offset = _offset(zone).utcoffset(None)
    assert offset is not None
    return int(offset.total_seconds())


def _offset(zone: str) -> timezone:
    if zone in ("Z", "z"):
        return timezone.utc
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)  # +HH alone: whole hours
    if hours > 23 or minutes > 59:
        raise ValueError(f"UTC offset {zone} is out of range")
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if zone[0] == "-" else delta)
