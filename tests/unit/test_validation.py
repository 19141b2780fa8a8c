"""Every Create rule and the code it answers with; the paging, delete and callback rules."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pytest

from harvest.domain.registry import parse_registry
from harvest.domain.urlpolicy import UrlPolicy
from harvest.domain.validation import (
    CreateParams,
    check_callback_target,
    check_callback_url,
    check_delete_ids,
    check_job_id,
    check_page,
    validate_create,
)
from harvest.errors import ChannelNotFound, EndpointNotFound, FieldError, HarvestError, MissingParameter
from harvest.settings import Settings

NOW = 1_717_210_000.0
DESTINATION = "https://harvest-1250000000.cos.ap-singapore.myqcloud.com/vod/"
REGISTRY = parse_registry(
    {
        "channels": [
            {
                "name": "news",
                "id": "ch-news",
                "endpoints": [{"name": "hls", "url": "http://origin/news.m3u8", "startover_window": 7200}],
            }
        ]
    }
)
SETTINGS = Settings(region="ap-singapore")


def params(**overrides: Any) -> CreateParams:
    """A request that passes every rule: 30 minutes that ended 10 minutes before NOW."""
    base = CreateParams(
        id="job-1",
        channel_name="news",
        endpoint_name="hls",
        time_format="Epoch seconds",
        start_time=str(int(NOW) - 2400),
        end_time=str(int(NOW) - 600),
        destination=DESTINATION,
    )
    return replace(base, **overrides)


def test_tencents_iso_example_is_read_in_the_configured_zone_and_echoed_as_sent() -> None:
    # GIVEN Tencent's zone-less spelling, an instant (StartTime == EndTime), and an odd TimeFormat spelling
    settings = replace(SETTINGS, timezone="Asia/Shanghai")
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(NOW - 600 + 8 * 3600))  # wall clock in UTC+8
    valid = validate_create(
        params(time_format="  iso8601 ", start_time=when, end_time=when), REGISTRY, settings, int(NOW)
    )
    # THEN the instant is the one in UTC+8, the times are echoed exactly, TimeFormat canonically
    assert valid.start_epoch == valid.end_epoch == int(NOW) - 600
    assert (valid.start_time, valid.end_time, valid.time_format) == (when, when, "ISO-8601")


def refusal(request: CreateParams, settings: Settings = SETTINGS) -> HarvestError:
    with pytest.raises(HarvestError) as caught:
        validate_create(request, REGISTRY, settings, NOW)
    return caught.value


def test_a_valid_request_passes_and_echoes_what_was_sent() -> None:
    valid = validate_create(
        params(manifest="a//b.m3u8", callback_url="https://hooks.example.com/x"), REGISTRY, SETTINGS, NOW
    )
    assert (valid.id, valid.channel.id, valid.endpoint.name) == ("job-1", "ch-news", "hls")
    assert (valid.start_epoch, valid.end_epoch) == (NOW - 2400, NOW - 600)
    assert (valid.start_time, valid.end_time, valid.time_format) == (
        str(int(NOW) - 2400),
        str(int(NOW) - 600),
        "Epoch seconds",
    )
    assert (valid.destination, valid.location.bucket, valid.location.prefix) == (
        DESTINATION,
        "harvest-1250000000",
        "vod/",
    )
    # Manifest is echoed as sent; its normalised key is what the engine writes to
    assert (valid.manifest, valid.manifest_key) == ("a//b.m3u8", "a/b.m3u8")
    assert valid.callback_url == "https://hooks.example.com/x"


def test_defaults_for_manifest_and_destination() -> None:
    # GIVEN no Manifest THEN it is <ID>/index.m3u8
    assert validate_create(params(), REGISTRY, SETTINGS, NOW).manifest == "job-1/index.m3u8"
    # GIVEN no Destination but a default THEN the default is used
    with_default = replace(SETTINGS, default_destination=DESTINATION + "defaults/")
    valid = validate_create(params(destination=None), REGISTRY, with_default, NOW)
    assert (valid.destination, valid.location.prefix) == (DESTINATION + "defaults/", "vod/defaults/")
    # GIVEN neither THEN Destination is missing
    error = refusal(params(destination=None))
    assert isinstance(error, MissingParameter)
    assert "Destination" in error.message


@pytest.mark.parametrize(
    ("overrides", "code", "says"),
    [
        ({"id": ""}, "InvalidParameter.Id", "ID"),
        ({"id": "a b"}, "InvalidParameter.Id", "1-128"),
        ({"id": "x" * 129}, "InvalidParameter.Id", "1-128"),
        ({"id": "job/1"}, "InvalidParameter.Id", "1-128"),
        ({"channel_name": "weather"}, "InvalidParameter.NotFound", "weather"),
        ({"channel_name": "x" * 500}, "InvalidParameter.Name", "ChannelName"),
        ({"endpoint_name": "dash"}, "InvalidParameter.NotFound", "dash"),
        ({"endpoint_name": ""}, "InvalidParameter.Name", "EndpointName"),
        ({"time_format": "unix"}, "InvalidParameter", "TimeFormat"),
        ({"start_time": "yesterday"}, "InvalidParameter", "StartTime"),
        ({"end_time": "1717209400000"}, "InvalidParameter", "milliseconds"),
        (
            {
                "time_format": "ISO-8601",
                "start_time": "2024-06-01 02:00:00",
                "end_time": "2024-06-01T02:30:00Z+",
            },
            "InvalidParameter",
            "EndTime",
        ),
        ({"start_time": str(int(NOW) - 500)}, "InvalidParameterValue", "earlier than StartTime"),
        ({"end_time": str(int(NOW) + 1)}, "InvalidParameterValue", "future"),
        (
            {"start_time": str(int(NOW) - 7201)},
            "InvalidParameterValue",
            "startover window is 7200 s",
        ),
        ({"destination": "s3://bucket/x"}, "InvalidParameter", "COS URL"),
        ({"destination": ""}, "MissingParameter", "Destination"),
        (
            {"destination": "https://harvest-1250000000.cos.ap-beijing.myqcloud.com/"},
            "InvalidParameterValue",
            "ap-beijing",
        ),
        ({"manifest": "/index.m3u8"}, "InvalidParameter", "relative"),
        ({"manifest": "../index.m3u8"}, "InvalidParameter", "'..'"),
        ({"manifest": ""}, "InvalidParameter", "Manifest"),
        ({"callback_url": "javascript:alert(1)"}, "InvalidParameter.Url", "http"),
    ],
)
def test_each_rule_answers_its_code_and_names_the_field(
    overrides: dict[str, Any], code: str, says: str
) -> None:
    error = refusal(params(**overrides))
    assert error.code == code
    assert says in error.message


def test_duration_limit_is_24_hours_inclusive() -> None:
    # GIVEN an endpoint that keeps two days
    registry = parse_registry(
        {
            "channels": [
                {
                    "name": "news",
                    "endpoints": [{"name": "hls", "url": "http://o/x", "startover_window": 200000}],
                }
            ]
        }
    )
    end = int(NOW) - 600
    # THEN exactly 24 h passes and one second more is refused
    validate_create(params(start_time=str(end - 86400), end_time=str(end)), registry, SETTINGS, NOW)
    with pytest.raises(FieldError) as caught:
        validate_create(params(start_time=str(end - 86401), end_time=str(end)), registry, SETTINGS, NOW)
    assert caught.value.code == "InvalidParameterValue"
    assert "86400" in caught.value.message


def test_window_edges_are_inclusive() -> None:
    # GIVEN a window that starts exactly at the startover edge and ends exactly now THEN it passes
    validate_create(params(start_time=str(int(NOW) - 7200), end_time=str(int(NOW))), REGISTRY, SETTINGS, NOW)


def test_rules_are_checked_in_field_order() -> None:
    # GIVEN a request that breaks several rules THEN the first field's rule is reported
    request = params(id="bad id", channel_name="weather", time_format="unix", destination="x")
    assert refusal(request).code == "InvalidParameter.Id"
    assert refusal(replace(request, id="ok")).code == "InvalidParameter.NotFound"


def test_unknown_names_raise_the_registry_errors() -> None:
    assert isinstance(refusal(params(channel_name="weather")), ChannelNotFound)
    assert isinstance(refusal(params(endpoint_name="dash")), EndpointNotFound)


# --- other actions --------------------------------------------------------------------------------


@pytest.mark.parametrize("job_id", ["a", "A-Z_0-9", "x" * 128])
def test_job_ids_within_the_rule(job_id: str) -> None:
    assert check_job_id(job_id) == job_id


@pytest.mark.parametrize(("page_num", "page_size"), [(1, 1), (1, 100), (1, 1000), (1000, 10)])
def test_pages_within_bounds(page_num: int, page_size: int) -> None:
    check_page(page_num, page_size)


@pytest.mark.parametrize(
    ("page_num", "page_size", "code"),
    [
        (0, 10, "InvalidParameter.PageNum"),
        (-1, 10, "InvalidParameter.PageNum"),
        (1001, 10, "InvalidParameter.PageNum"),
        (1, 0, "InvalidParameter.PageSize"),
        (1, 1001, "InvalidParameter.PageSize"),
    ],
)
def test_pages_out_of_bounds(page_num: int, page_size: int, code: str) -> None:
    with pytest.raises(FieldError) as caught:
        check_page(page_num, page_size)
    assert caught.value.code == code


@pytest.mark.parametrize(
    ("ids", "code"),
    [
        ([], "InvalidParameter.Id"),
        (["a"] * 101, "InvalidParameter.Id"),
        (["a", "b c"], "InvalidParameter.Id"),
    ],
)
def test_delete_ids_rules(ids: Sequence[str], code: str) -> None:
    with pytest.raises(FieldError) as caught:
        check_delete_ids(ids)
    assert caught.value.code == code


def test_delete_ids_accepts_1_to_100() -> None:
    assert check_delete_ids(["a"]) == ["a"]
    assert len(check_delete_ids([f"j{i}" for i in range(100)])) == 100


# --- callback URLs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://example.com", "https://hooks.example.com:8443/done?job=1", "https://[2001:db8::1]/x"]
)
def test_callback_urls_that_pass(url: str) -> None:
    assert check_callback_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("ftp://example.com/x", "http"),
        ("https:///path-only", "host"),
        ("example.com/x", "http"),
        ("https://example.com/" + "x" * 2048, "2048"),
        ("https://example.com/a b", "whitespace"),
        ("https://example.com:99999/", "not a valid URL"),
    ],
)
def test_callback_urls_that_do_not(url: str, says: str) -> None:
    with pytest.raises(FieldError) as caught:
        check_callback_url(url)
    assert caught.value.code == "InvalidParameter.Url"
    assert says in caught.value.message


def resolver(table: dict[str, list[str]]) -> Any:
    def resolve(host: str, port: int = 0) -> list[str]:
        if host not in table:
            raise OSError("Name or service not known")
        return table[host]

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.1.2.3/x",
        "http://172.16.0.1/x",
        "http://192.168.1.1/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/x",
        "http://0.0.0.0/x",
        "http://[::1]/x",
        "http://[fe80::1]/x",
        "http://[fd00::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://224.0.0.1/x",
        "http://internal.example/x",  # resolves to a private address
        "http://mixed.example/x",  # one public, one private address
    ],
)
def test_non_public_callback_targets_are_refused(url: str) -> None:
    resolve = resolver({"internal.example": ["10.0.0.5"], "mixed.example": ["203.0.113.9", "192.168.0.9"]})
    with pytest.raises(FieldError) as caught:
        check_callback_target(url, UrlPolicy(allow_private=False), resolve=resolve)
    assert caught.value.code == "InvalidParameter.Url"
    assert "refused" in caught.value.message


def test_public_targets_pass_and_private_ones_pass_when_allowed() -> None:
    resolve = resolver({"hooks.example": ["8.8.8.8", "2001:4860:4860::8888"]})
    check_callback_target("https://hooks.example/done", UrlPolicy(allow_private=False), resolve=resolve)
    check_callback_target("http://1.1.1.1/done", UrlPolicy(allow_private=False), resolve=resolve)
    check_callback_target("http://127.0.0.1:9/done", UrlPolicy(allow_private=True), resolve=resolve)


def test_unresolvable_callback_hosts_are_refused() -> None:
    with pytest.raises(FieldError) as caught:
        check_callback_target("https://nowhere.invalid/", UrlPolicy(), resolve=resolver({}))
    assert "does not resolve" in caught.value.message
