"""StartTime / EndTime in both documented formats, and the refusals that name their rule."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harvest.domain.timeparse import TimeFormat, document_date_time, parse_time, parse_time_format
from harvest.errors import FieldError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Epoch seconds", TimeFormat.EPOCH),
        ("epoch SECONDS", TimeFormat.EPOCH),
        ("Epoch", TimeFormat.EPOCH),
        ("ISO-8601", TimeFormat.ISO8601),
        ("iso8601", TimeFormat.ISO8601),
        (" ISO-8601 ", TimeFormat.ISO8601),
    ],
)
def test_time_formats_are_read_case_insensitively(text: str, expected: TimeFormat) -> None:
    assert parse_time_format(text) is expected


@pytest.mark.parametrize("text", ["", "unix", "Epoch milliseconds", "RFC3339", "ISO 8601"])
def test_other_time_formats_are_refused(text: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_time_format(text)
    assert caught.value.code == "InvalidParameter"
    assert "Epoch seconds" in caught.value.message
    assert "ISO-8601" in caught.value.message


@pytest.mark.parametrize(
    ("text", "epoch"), [("1", 1.0), ("1700000000", 1700000000.0), ("253402300799", 253402300799.0)]
)
def test_epoch_seconds(text: str, epoch: float) -> None:
    assert parse_time(text, TimeFormat.EPOCH, "StartTime") == epoch


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0", "positive integer"),
        ("-5", "positive integer"),
        ("+5", "positive integer"),
        ("017", "positive integer"),
        ("1700000000.5", "positive integer"),
        (" 1700000000", "positive integer"),
        ("", "positive integer"),
        ("1700000000000", "milliseconds"),
        ("2023-08-01T10:00:00Z", "positive integer"),
        ("\u0661\u0667" + "\u0660" * 8, "positive integer"),  # Arabic-Indic digits pass str.isdigit()
    ],
)
def test_epoch_refusals_name_field_and_rule(text: str, says: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_time(text, TimeFormat.EPOCH, "EndTime")
    assert caught.value.code == "InvalidParameter"
    assert "EndTime" in caught.value.message
    assert says in caught.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-08-01T10:00:00+08:00", datetime(2023, 8, 1, 2, tzinfo=timezone.utc)),
        ("2023-08-01T02:00:00Z", datetime(2023, 8, 1, 2, tzinfo=timezone.utc)),
        ("2023-08-01t02:00:00z", datetime(2023, 8, 1, 2, tzinfo=timezone.utc)),
        ("2023-08-01T02:00Z", datetime(2023, 8, 1, 2, tzinfo=timezone.utc)),
        ("2023-08-01T01:30:00-0030", datetime(2023, 8, 1, 2, tzinfo=timezone.utc)),
        ("2023-08-01T02:00:00.250Z", datetime(2023, 8, 1, 2, 0, 0, 250000, tzinfo=timezone.utc)),
        ("2023-08-01T02:00:00,5+00:00", datetime(2023, 8, 1, 2, 0, 0, 500000, tzinfo=timezone.utc)),
    ],
)
def test_iso_8601_with_offset(text: str, expected: datetime) -> None:
    assert parse_time(text, TimeFormat.ISO8601, "StartTime") == pytest.approx(expected.timestamp())


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("2023-08-01  10:00:00", "not an ISO-8601 time"),
        ("2023-08-01_10:00:00", "not an ISO-8601 time"),
        ("2023-08-01", "not an ISO-8601 time"),
        ("1700000000", "not an ISO-8601 time"),
        ("2023-02-30T10:00:00Z", "not a real time"),
        ("2023-08-01T24:00:00Z", "not a real time"),
        ("2023-08-01T10:00:00+24:00", "not a real time"),
        ("2023-08-01T10:00:00+05:60", "not a real time"),
        ("2023-08-01T10:00:00.1234567890Z", "not an ISO-8601 time"),
    ],
)
def test_iso_refusals_name_field_and_rule(text: str, says: str) -> None:
    with pytest.raises(FieldError) as caught:
        parse_time(text, TimeFormat.ISO8601, "StartTime")
    assert caught.value.code == "InvalidParameter"
    assert "StartTime" in caught.value.message
    assert says in caught.value.message


def test_a_huge_value_is_not_echoed_whole() -> None:
    with pytest.raises(FieldError) as caught:
        parse_time("9" * 100_000, TimeFormat.EPOCH, "StartTime")
    assert len(caught.value.message) < 300


@given(
    moment=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31)),
    offset_minutes=st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
)
def test_iso_and_epoch_agree_on_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    # GIVEN an instant written in some UTC offset, to whole seconds
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(microsecond=0, tzinfo=timezone.utc).astimezone(zone)
    # WHEN it is parsed as ISO-8601 and as epoch seconds THEN both give the same instant
    iso = parse_time(local.isoformat(), TimeFormat.ISO8601, "StartTime")
    assert iso == local.timestamp()
    assert parse_time(str(int(local.timestamp())), TimeFormat.EPOCH, "StartTime") == iso


def test_iso_digits_must_be_ascii() -> None:
    with pytest.raises(FieldError):
        parse_time("\u0662\u0660\u0662\u0663-08-01T10:00:00Z", TimeFormat.ISO8601, "StartTime")


@pytest.mark.parametrize(
    ("text", "zone", "expected"),
    [
        # Tencent's own Create example: a space, no zone.
        ("2023-08-10 00:00:00", "Asia/Shanghai", datetime(2023, 8, 9, 16, tzinfo=timezone.utc)),
        ("2023-08-10T00:00:00", "Asia/Shanghai", datetime(2023, 8, 9, 16, tzinfo=timezone.utc)),
        ("2023-08-10 00:00:00", "UTC", datetime(2023, 8, 10, tzinfo=timezone.utc)),
        ("2023-08-10T00:00", "America/New_York", datetime(2023, 8, 10, 4, tzinfo=timezone.utc)),  # EDT
        ("2023-01-10 00:00:00", "America/New_York", datetime(2023, 1, 10, 5, tzinfo=timezone.utc)),  # EST
        # An explicit offset wins over the configured zone.
        ("2023-08-10 00:00:00+00:00", "Asia/Shanghai", datetime(2023, 8, 10, tzinfo=timezone.utc)),
        ("2023-08-10 00:00:00Z", "Asia/Shanghai", datetime(2023, 8, 10, tzinfo=timezone.utc)),
    ],
)
def test_a_zone_less_iso_time_is_read_in_the_configured_zone(
    text: str, zone: str, expected: datetime
) -> None:
    assert parse_time(text, TimeFormat.ISO8601, "StartTime", ZoneInfo(zone)) == expected.timestamp()


def test_a_wall_clock_time_skipped_by_daylight_saving_is_refused() -> None:
    # GIVEN 02:30 on the night New York's clocks jump from 02:00 to 03:00
    with pytest.raises(FieldError) as caught:
        parse_time("2024-03-10 02:30:00", TimeFormat.ISO8601, "EndTime", ZoneInfo("America/New_York"))
    # THEN the refusal names the field and the reason, and how to avoid it
    assert caught.value.code == "InvalidParameter"
    assert "EndTime" in caught.value.message
    assert "daylight-saving" in caught.value.message


@pytest.mark.parametrize(
    ("text", "canonical"),
    [("epoch", "Epoch seconds"), ("  epoch SECONDS ", "Epoch seconds"), ("iso8601", "ISO-8601")],
)
def test_each_time_format_has_one_canonical_spelling(text: str, canonical: str) -> None:
    assert parse_time_format(text).canonical == canonical


def test_harvest_timezone_must_be_an_iana_name() -> None:
    from harvest.errors import ConfigError
    from harvest.settings import DEFAULT_TIMEZONE, Settings

    assert Settings.from_env({}).timezone == DEFAULT_TIMEZONE == "Asia/Shanghai"
    assert Settings.from_env({"HARVEST_TIMEZONE": "UTC"}).zone == ZoneInfo("UTC")
    with pytest.raises(ConfigError, match="HARVEST_TIMEZONE"):
        Settings.from_env({"HARVEST_TIMEZONE": "Mars/Olympus_Mons"})


# --- date-times inside playlists and MPDs ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ffmpeg's hls muxer: no colon in the offset (Python 3.10's fromisoformat refuses it)
        ("2026-11-30T16:23:44.068+0000", datetime(2026, 11, 30, 16, 23, 44, 68000, timezone.utc)),
        ("2026-11-30T16:23:44.068+00:00", datetime(2026, 11, 30, 16, 23, 44, 68000, timezone.utc)),
        ("2026-11-30T16:23:44Z", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),
        ("2026-11-30t16:23:44z", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),
        # fractions of 1, 2 and 7 digits (3.10 takes only 3 or 6)
        ("2026-11-30T16:23:44.5Z", datetime(2026, 11, 30, 16, 23, 44, 500000, timezone.utc)),
        ("2026-11-30T16:23:44.25Z", datetime(2026, 11, 30, 16, 23, 44, 250000, timezone.utc)),
        ("2026-11-30T16:23:44.1250000Z", datetime(2026, 11, 30, 16, 23, 44, 125000, timezone.utc)),
        ("2026-11-30T21:53:44.068+05:30", datetime(2026, 11, 30, 16, 23, 44, 68000, timezone.utc)),
        ("2026-11-30T08:23:44-0800", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),
        ("2026-11-30T08:23:44-08", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),
        ("2026-11-30T16:23:44", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),  # no zone: UTC
        ("2026-11-30T16:23Z", datetime(2026, 11, 30, 16, 23, tzinfo=timezone.utc)),
        (" 2026-11-30T16:23:44Z\r", datetime(2026, 11, 30, 16, 23, 44, tzinfo=timezone.utc)),
    ],
)
def test_document_date_times_read_the_same_on_every_python(text: str, expected: datetime) -> None:
    assert document_date_time(text) == pytest.approx(expected.timestamp(), abs=1e-6)


@pytest.mark.parametrize(
    "text",
    ["2026-11-30", "yesterday", "2026-11-30T25:00:00Z", "2026-11-30T16:23:44+2400", "2026-11-30T16:23:44 UTC",
     "2026-13-01T00:00:00Z", "\uff12\uff10\uff12\uff16-11-30T16:23:44Z"],
)  # fmt: skip
def test_what_is_not_a_date_time_is_refused(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 (the callers turn any ValueError into their own message)
        document_date_time(text)


@given(
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(min_value=-23 * 60, max_value=23 * 60),
)
def test_every_offset_spelling_gives_the_same_instant(moment: datetime, offset_minutes: int) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    local = moment.replace(tzinfo=zone)
    sign = "-" if offset_minutes < 0 else "+"
    hours, minutes = divmod(abs(offset_minutes), 60)
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S.%f")
    with_colon = document_date_time(f"{stamp}{sign}{hours:02d}:{minutes:02d}")
    without = document_date_time(f"{stamp}{sign}{hours:02d}{minutes:02d}")
    assert with_colon == without == pytest.approx(local.timestamp(), abs=1e-6)
